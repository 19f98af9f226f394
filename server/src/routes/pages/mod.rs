//! The server-rendered review UI. HTML comes from the server; one small script
//! (`assets/app.js`) adds keyboard navigation, the live queue (server-sent events), the
//! zoomable scan viewer with layer toggles, and the decision forms. Strict CSP: no inline
//! script or style.
//!
//! Pages: `/login`, `/queue` (risk-ranked, filters), `/cases/{id}` (viewer, declaration,
//! findings, decisions, history), `/audit`, `/dashboard` (release times), `/fleet` (every bay's
//! agent, what needs an operator in red), `/imports` (cases from partners' signed bundles,
//! read-only).

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use crate::AppState;
use crate::auth::{
    Principal, Role, constant_time_eq, csrf_token, session_cookie, session_cookie_name,
};
use crate::error::{ApiError, Result};
use crate::extract::Q;
use crate::routes::admin::{ReleaseQuery, release_data};
use crate::routes::cases::{Credentials, check_credentials};
use crate::store::users::SESSION_HOURS;
use crate::store::{AuditVerdict, User};

mod case;
mod datasets;
mod fleet;
mod imports;
mod outcomes;
mod queue;
mod session;

use case::case_page;
use session::{login, login_form, logout};

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/queue") }))
        .route("/cases", get(|| async { Redirect::to("/queue") }))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/queue", get(queue::queue_page))
        .route("/cases/{id}", get(case_page))
        .route("/audit", get(audit_page))
        .route("/dashboard", get(dashboard_page))
        .route("/fleet", get(fleet::fleet_page))
        .route("/imports", get(imports::imports_page))
        .route("/datasets", get(datasets::datasets_page))
        .route("/imports/{id}", get(imports::import_page))
        .route("/static/app.js", get(app_js))
        .route("/static/app.css", get(app_css))
}

const APP_JS: &str = include_str!("../../../assets/app.js");
const APP_CSS: &str = include_str!("../../../assets/app.css");

async fn app_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        APP_JS,
    )
}

async fn app_css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], APP_CSS)
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

/// A logged-in page request: the user and their CSRF token.
struct Viewer {
    user: User,
    csrf: String,
}

async fn viewer(state: &AppState, headers: &HeaderMap) -> Result<Option<Viewer>> {
    let Some(token) = session_cookie(headers, state.settings.secure_cookies) else {
        return Ok(None);
    };
    Ok(state
        .store
        .user_by_session(&token)
        .await?
        .map(|user| Viewer {
            user,
            csrf: csrf_token(&token),
        }))
}

fn page(title: &str, v: Option<&Viewer>, body: &str) -> Html<String> {
    let (nav, csrf) = match v {
        Some(v) => {
            let mut links = vec![("/queue", "Queue"), ("/dashboard", "Release times")];
            if matches!(v.user.role, Role::Supervisor | Role::Admin) {
                links.push(("/audit", "Audit"));
                links.push(("/fleet", "Fleet"));
                links.push(("/imports", "Imported"));
                links.push(("/datasets", "Datasets"));
            }
            let links: String = links
                .iter()
                .map(|(href, label)| format!("<a href=\"{href}\">{label}</a>"))
                .collect();
            (
                format!(
                    "<header class=\"top\"><strong>BayLens</strong><nav>{links}</nav>\
                     <span class=\"who\">{} · {}{}</span>\
                     <form method=\"post\" action=\"/logout\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button>Log out</button></form></header>",
                    escape(&v.user.username),
                    v.user.role.as_str(),
                    v.user
                        .bay
                        .as_deref()
                        .map(|b| format!(" · {}", escape(b)))
                        .unwrap_or_default(),
                    v.csrf
                ),
                format!("<meta name=\"csrf-token\" content=\"{}\">", v.csrf),
            )
        }
        None => (String::new(), String::new()),
    };
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{csrf}\
         <title>{} · BayLens</title><link rel=\"stylesheet\" href=\"/static/app.css\"><script src=\"/static/app.js\" defer></script></head>\
         <body>{nav}<main>{body}</main></body></html>",
        escape(title)
    ))
}

/// The viewer of a page for supervisors and admins; otherwise the answer to send instead: the
/// login page, or 403 saying `why`.
async fn supervisor_page(
    state: &AppState,
    headers: &HeaderMap,
    why: &str,
) -> Result<std::result::Result<Viewer, Response>> {
    let Some(v) = viewer(state, headers).await? else {
        return Ok(Err(Redirect::to("/login").into_response()));
    };
    if !matches!(v.user.role, Role::Supervisor | Role::Admin) {
        return Ok(Err(forbidden(&v, why)));
    }
    Ok(Ok(v))
}

fn forbidden(v: &Viewer, message: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        page(
            "Forbidden",
            Some(v),
            &format!(
                "<h1>Not allowed</h1><p class=\"error\" role=\"alert\">{}</p><p><a href=\"/queue\">Back to the queue</a></p>",
                escape(message)
            ),
        ),
    )
        .into_response()
}

fn lane_badge(lane: &str) -> String {
    let l = escape(lane);
    format!("<span class=\"lane lane-{l}\">{l}</span>")
}

fn select(name: &str, current: Option<&str>, options: &[(&str, &str)]) -> String {
    let opts: String = options
        .iter()
        .map(|(v, label)| {
            let sel = if current == Some(*v) { " selected" } else { "" };
            format!("<option value=\"{v}\"{sel}>{label}</option>")
        })
        .collect();
    format!("<select name=\"{name}\">{opts}</select>")
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Query of the audit page.
#[derive(Debug, Deserialize)]
struct AuditPageQuery {
    subject: Option<String>,
}

async fn audit_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Q(q): Q<AuditPageQuery>,
) -> Result<Response> {
    let v = match supervisor_page(
        &state,
        &headers,
        "Only supervisors and admins read the audit log.",
    )
    .await?
    {
        Ok(v) => v,
        Err(answer) => return Ok(answer),
    };
    let subject = non_empty(&q.subject);
    let entries = state.store.audit_entries(subject.as_deref(), 500).await?;
    // Only what was appended since this process last found the chain intact is hashed here;
    // the whole chain is walked again at least hourly (and by `server audit verify`).
    let check = state.store.verify_audit_recent().await?;
    let how = if check.full {
        "whole chain checked".to_owned()
    } else {
        format!("{} new or last-checked entries hashed", check.checked)
    };
    let verdict = match check.verdict {
        AuditVerdict::Intact { rows, head } => format!(
            "<p class=\"ok\" id=\"chain\">Chain intact: {rows} entries, head <code>{}</code> ({how}).</p>",
            &head[..16]
        ),
        AuditVerdict::Broken { seq, reason } => format!(
            "<p class=\"error\" id=\"chain\" role=\"alert\">Chain broken at entry {seq}: {}</p>",
            escape(&reason)
        ),
    };
    let rows: String = entries
        .iter()
        .map(|e| {
            format!(
                "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                e.seq,
                escape(&e.at),
                escape(&e.actor),
                escape(&e.action),
                escape(&e.subject),
                escape(&e.detail.to_string())
            )
        })
        .collect();
    let title = subject
        .as_deref()
        .map(|s| format!("Audit log: {}", escape(s)))
        .unwrap_or_else(|| "Audit log".into());
    let body = format!(
        "<h1>{title}</h1>{verdict}<table id=\"audit\"><thead><tr><th>#</th><th>When</th><th>Who</th><th>Action</th><th>Subject</th><th>Detail</th></tr></thead><tbody>{rows}</tbody></table>"
    );
    Ok(page("Audit", Some(&v), &body).into_response())
}

async fn dashboard_page(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    let Some(v) = viewer(&state, &headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    if v.user.role == Role::Agency {
        return Ok(forbidden(&v, "Agencies do not see release-time figures."));
    }
    let q = ReleaseQuery {
        from: None,
        to: None,
        format: None,
    };
    let (_, groups) = release_data(&state, &v.user, &q).await?;
    // Negative lodging → scan means the declaration came after the truck (late lodging).
    let f = |m: Option<f64>| {
        m.map(|m| format!("{:.1}", if m.abs() < 0.05 { 0.0 } else { m }))
            .unwrap_or_else(|| "—".into())
    };
    let rows: String = groups
        .iter()
        .map(|g| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{} / {}</td><td class=\"num\">{} / {}</td><td class=\"num\">{} / {}</td><td class=\"num\">{} / {}</td></tr>",
                g.by,
                escape(&g.key),
                escape(&g.week),
                g.cases,
                f(g.lodging_to_scan.median_min),
                f(g.lodging_to_scan.p90_min),
                f(g.scan_to_report.median_min),
                f(g.scan_to_report.p90_min),
                f(g.report_to_decision.median_min),
                f(g.report_to_decision.p90_min),
                f(g.scan_to_release.median_min),
                f(g.scan_to_release.p90_min),
            )
        })
        .collect();
    // How the lanes and the model's findings fared, for those who set the risk rules.
    let outcomes = if matches!(v.user.role, Role::Supervisor | Role::Admin) {
        let q = crate::routes::outcomes::OutcomeQuery::default();
        outcomes::panel(&crate::routes::outcomes::outcome_data(&state, &q).await?)
    } else {
        String::new()
    };
    let body = format!(
        "<h1>Release times</h1><p>WCO Time Release Study intervals over the last 8 weeks, in minutes: median / 90th percentile. \
         <a href=\"/api/v1/release-times?format=csv\" download>Download CSV (one row per case)</a></p>\
         <table id=\"release\"><thead><tr><th>By</th><th>Bay or lane</th><th>Week</th><th>Cases</th><th>Lodging → scan</th><th>Scan → report</th><th>Report → decision</th><th>Scan → release</th></tr></thead><tbody>{rows}</tbody></table>{outcomes}"
    );
    Ok(page("Release times", Some(&v), &body).into_response())
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
