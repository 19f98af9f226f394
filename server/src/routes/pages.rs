//! The server-rendered review UI: login and the risk-ranked case list. No JavaScript: the list
//! refreshes itself every few seconds with a meta refresh.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};

use crate::AppState;
use crate::auth::{Principal, SESSION_COOKIE, session_cookie};
use crate::error::Result;
use crate::routes::cases::{Credentials, check_credentials};
use crate::store::SESSION_HOURS;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/cases") }))
        .route("/login", get(login_form).post(login))
        .route("/logout", axum::routing::post(logout))
        .route("/cases", get(cases_page))
}

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#1b1f24}table{border-collapse:collapse;width:100%}\
th,td{padding:.4rem .6rem;border-bottom:1px solid #ddd;text-align:left}th{background:#f3f4f6}\
.lane{font-weight:600;padding:.1rem .5rem;border-radius:.3rem}.red{background:#fdd;color:#900}.yellow{background:#ffefb3;color:#7a5a00}\
.green{background:#dfd;color:#064}form.inline{display:inline}input{margin:.2rem 0;padding:.3rem}";

fn page(title: &str, body: &str, refresh: bool) -> Html<String> {
    let meta = if refresh {
        "<meta http-equiv=\"refresh\" content=\"5\">"
    } else {
        ""
    };
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">{meta}<title>{} · BayLens</title><style>{STYLE}</style></head><body>{body}</body></html>",
        escape(title)
    ))
}

async fn login_form() -> Html<String> {
    login_page(None)
}

fn login_page(error: Option<&str>) -> Html<String> {
    let error = error
        .map(|e| format!("<p role=\"alert\" style=\"color:#900\">{}</p>", escape(e)))
        .unwrap_or_default();
    page(
        "Log in",
        &format!(
            "<h1>BayLens</h1>{error}<form method=\"post\" action=\"/login\">\
             <label>User name<br><input name=\"username\" autocomplete=\"username\" required></label><br>\
             <label>Password<br><input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label><br>\
             <button type=\"submit\">Log in</button></form>"
        ),
        false,
    )
}

async fn login(State(state): State<AppState>, Form(creds): Form<Credentials>) -> Result<Response> {
    let Ok(user_id) = check_credentials(&state, &creds).await else {
        return Ok((
            StatusCode::UNAUTHORIZED,
            login_page(Some("Wrong user name or password.")),
        )
            .into_response());
    };
    let token = state.store.new_session(user_id).await?;
    let cookie = format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        SESSION_HOURS * 3600
    );
    let mut response = Redirect::to("/cases").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

/// The session token of a page request, for logout.
#[derive(Debug)]
struct SessionToken(Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for SessionToken {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(session_cookie(parts)))
    }
}

async fn logout(
    State(state): State<AppState>,
    SessionToken(token): SessionToken,
) -> Result<Response> {
    if let Some(token) = token {
        state.store.end_session(&token).await?;
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("baylens_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    Ok(response)
}

async fn cases_page(
    State(state): State<AppState>,
    principal: Result<Principal, crate::error::ApiError>,
) -> Result<Response> {
    let Ok(Principal::User(user)) = principal else {
        return Ok(Redirect::to("/login").into_response());
    };
    let cases = state.store.list_cases(&user, 500).await?;
    let mut rows = String::new();
    for c in &cases {
        let image = if c.has_image {
            format!("<a href=\"/api/v1/cases/{}/preview\">scan</a>", c.id)
        } else {
            "pending".to_owned()
        };
        rows.push_str(&format!(
            "<tr data-case=\"{id}\"><td>{bay}</td><td>{time}</td><td>{code}</td><td>{risk:.2}</td><td><span class=\"lane {lane}\">{lane}</span></td>\
             <td>{status}</td><td>{findings}</td><td>{image}</td></tr>",
            id = c.id,
            bay = escape(&c.bay),
            time = escape(&c.captured_at),
            code = escape(c.container_code.as_deref().unwrap_or("—")),
            risk = c.risk,
            lane = escape(&c.lane),
            status = escape(&c.status),
            findings = c.findings_count,
        ));
    }
    let empty = if cases.is_empty() {
        "<p>No cases yet. Scans appear here seconds after a bay reports them.</p>"
    } else {
        ""
    };
    let body = format!(
        "<h1>Cases by risk</h1><p>Logged in as {} ({}). <form class=\"inline\" method=\"post\" action=\"/logout\"><button>Log out</button></form></p>{empty}\
         <table><thead><tr><th>Bay</th><th>Captured</th><th>Container</th><th>Risk</th><th>Lane</th><th>Status</th><th>Findings</th><th>Image</th></tr></thead>\
         <tbody>{rows}</tbody></table>",
        escape(&user.username),
        user.role.as_str()
    );
    Ok(page("Cases", &body, true).into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn escape_neutralises_markup() {
        assert_eq!(
            super::escape("<script>\"&'"),
            "&lt;script&gt;&quot;&amp;&#39;"
        );
    }
}
