//! Signing in and out of the review UI: the login form (same origin only, rate-limited like the
//! API's), the session cookie, and the logout form (CSRF-checked).

use super::*;

pub(super) async fn login_form() -> Html<String> {
    login_page(None)
}

fn login_page(error: Option<&str>) -> Html<String> {
    let error = error
        .map(|e| format!("<p role=\"alert\" class=\"error\">{}</p>", escape(e)))
        .unwrap_or_default();
    page(
        "Log in",
        None,
        &format!(
            "<div class=\"login\"><h1>BayLens</h1><p>Inspection review for supervisors and officers.</p>{error}\
             <form method=\"post\" action=\"/login\">\
             <label>User name<input name=\"username\" autocomplete=\"username\" required autofocus></label>\
             <label>Password<input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
             <button type=\"submit\">Log in</button></form></div>"
        ),
    )
}

/// Refuses a cross-site form post: browsers send `Origin` on POST, and it must be this host.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest == host)
}

pub(super) async fn login(
    State(state): State<AppState>,
    from: crate::extract::ClientAddr,
    headers: HeaderMap,
    Form(creds): Form<Credentials>,
) -> Result<Response> {
    if !same_origin(&headers) {
        return Err(ApiError::Forbidden("cross-site login form".into()));
    }
    let user = match check_credentials(&state, &creds, from).await {
        Ok(user) => user,
        Err(ApiError::TooManyRequests(wait)) => {
            return Ok((
                StatusCode::TOO_MANY_REQUESTS,
                login_page(Some(&format!(
                    "Too many failed attempts. Try again in {} minute(s).",
                    wait.div_ceil(60)
                ))),
            )
                .into_response());
        }
        Err(ApiError::Unauthorized) => {
            return Ok((
                StatusCode::UNAUTHORIZED,
                login_page(Some("Wrong user name or password.")),
            )
                .into_response());
        }
        Err(e) => return Err(e),
    };
    if user.role == crate::auth::Role::Metrics {
        return Ok((
            StatusCode::FORBIDDEN,
            login_page(Some(
                "This account is for a metrics scraper: it has no pages. Give it an API token (server user token) for /metrics.",
            )),
        )
            .into_response());
    }
    let token = state.store.new_session(&user).await?;
    let secure = if state.settings.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let name = session_cookie_name(state.settings.secure_cookies);
    let cookie = format!(
        "{name}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        SESSION_HOURS * 3600
    );
    let mut response = Redirect::to("/queue").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

/// The logout form.
#[derive(Debug, Deserialize)]
pub(super) struct LogoutForm {
    csrf: String,
}

pub(super) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Result<Response> {
    let secure = state.settings.secure_cookies;
    if let Some(token) = session_cookie(&headers, secure) {
        if !constant_time_eq(form.csrf.as_bytes(), csrf_token(&token).as_bytes()) {
            return Err(ApiError::Forbidden("wrong CSRF token".into()));
        }
        state.store.end_session(&token).await?;
    }
    let mut response = Redirect::to("/login").into_response();
    let (name, flag) = (
        session_cookie_name(secure),
        if secure { "; Secure" } else { "" },
    );
    let cleared = format!("{name}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{flag}");
    if let Ok(v) = HeaderValue::from_str(&cleared) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    #[test]
    fn form_posts_must_come_from_this_host() {
        let mut h = axum::http::HeaderMap::new();
        h.insert("host", "bay.example:8080".parse().unwrap());
        assert!(super::same_origin(&h));
        h.insert("origin", "http://bay.example:8080".parse().unwrap());
        assert!(super::same_origin(&h));
        h.insert("origin", "https://evil.example".parse().unwrap());
        assert!(!super::same_origin(&h));
    }
}
