//! The server-rendered review UI. HTML comes from the server; one small script
//! (`assets/app.js`) adds keyboard navigation, the live queue (server-sent events), the
//! zoomable scan viewer with layer toggles, and the decision forms. Strict CSP: no inline
//! script or style.
//!
//! Pages: `/login`, `/queue` (risk-ranked, filters), `/cases/{id}` (viewer, declaration,
//! findings, decisions, history), `/audit`, `/dashboard` (release times).

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
use crate::extract::{P, Q};
use crate::routes::admin::{ReleaseQuery, release_data};
use crate::routes::cases::{Credentials, check_credentials};
use crate::store::users::SESSION_HOURS;
use crate::store::{AuditVerdict, CaseFilter, CaseSort, User};

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/queue") }))
        .route("/cases", get(|| async { Redirect::to("/queue") }))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/queue", get(queue_page))
        .route("/cases/{id}", get(case_page))
        .route("/audit", get(audit_page))
        .route("/dashboard", get(dashboard_page))
        .route("/static/app.js", get(app_js))
        .route("/static/app.css", get(app_css))
}

const APP_JS: &str = include_str!("../../assets/app.js");
const APP_CSS: &str = include_str!("../../assets/app.css");

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

async fn login_form() -> Html<String> {
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

async fn login(
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
struct LogoutForm {
    csrf: String,
}

async fn logout(
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

/// Query of the queue page (all optional; empty strings mean "any").
#[derive(Debug, Default, Deserialize)]
struct QueueQuery {
    bay: Option<String>,
    lane: Option<String>,
    status: Option<String>,
    container: Option<String>,
    from: Option<String>,
    to: Option<String>,
    sort: Option<String>,
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn parse_day(s: &Option<String>, end: bool) -> Option<chrono::DateTime<chrono::Utc>> {
    let day = chrono::NaiveDate::parse_from_str(non_empty(s)?.as_str(), "%Y-%m-%d").ok()?;
    let day = if end { day.succ_opt()? } else { day };
    Some(day.and_hms_opt(0, 0, 0)?.and_utc())
}

async fn queue_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Q(q): Q<QueueQuery>,
) -> Result<Response> {
    let Some(v) = viewer(&state, &headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let filter = CaseFilter {
        bay: non_empty(&q.bay),
        lane: non_empty(&q.lane),
        status: non_empty(&q.status),
        container: non_empty(&q.container),
        from: parse_day(&q.from, false),
        to: parse_day(&q.to, true),
        sort: match q.sort.as_deref() {
            Some("newest") => CaseSort::Newest,
            Some("oldest") => CaseSort::Oldest,
            _ => CaseSort::Risk,
        },
        limit: Some(200),
        offset: None,
    };
    let cases = state.store.list_cases(&v.user, &filter).await?;
    let mut rows = String::new();
    for c in &cases {
        rows.push_str(&format!(
            "<tr data-href=\"/cases/{id}\" data-risk=\"{risk:.4}\" tabindex=\"-1\"><td><a href=\"/cases/{id}\">#{id}</a></td><td>{bay}</td><td>{time}</td><td>{code}</td>\
             <td class=\"num\">{risk:.2}</td><td>{lane}</td><td>{status}</td><td class=\"num\">{findings}</td><td>{assigned}</td></tr>",
            id = c.id,
            bay = escape(&c.bay),
            time = escape(&c.captured_at.replace('T', " ").replace('Z', "")),
            code = escape(c.container_code.as_deref().unwrap_or("—")),
            risk = c.risk,
            lane = lane_badge(&c.lane),
            status = escape(&c.status.replace('_', " ")),
            findings = c.findings_count,
            assigned = escape(c.assigned_to.as_deref().unwrap_or("")),
        ));
    }
    let empty = if cases.is_empty() {
        "<p class=\"empty\">No cases match. New scans appear here within seconds of a bay reporting them.</p>"
    } else {
        ""
    };
    let val = |s: &Option<String>| escape(s.as_deref().unwrap_or(""));
    let bay_input = if v.user.role == Role::Officer {
        String::new()
    } else {
        format!(
            "<label>Bay<input name=\"bay\" value=\"{}\" size=\"10\"></label>",
            val(&q.bay)
        )
    };
    let body = format!(
        "<h1>Cases by risk</h1>\
         <form class=\"filters\" method=\"get\" action=\"/queue\">{bay_input}\
         <label>Lane{}</label><label>Status{}</label>\
         <label>Container<input name=\"container\" value=\"{}\" size=\"12\"></label>\
         <label>From<input type=\"date\" name=\"from\" value=\"{}\"></label><label>To<input type=\"date\" name=\"to\" value=\"{}\"></label>\
         <label>Sort{}</label><button>Filter</button> <a href=\"/queue\">Clear</a></form>\
         <p class=\"hint\">Keys: <kbd>j</kbd>/<kbd>k</kbd> move, <kbd>Enter</kbd> opens. New cases appear live.</p>{empty}\
         <table id=\"queue\" data-live=\"{}\"><thead><tr><th>Case</th><th>Bay</th><th>Scanned (UTC)</th><th>Container</th><th>Risk</th><th>Lane</th><th>Status</th><th>Findings</th><th>Assigned</th></tr></thead>\
         <tbody>{rows}</tbody></table>",
        select(
            "lane",
            q.lane.as_deref(),
            &[
                ("", "any"),
                ("red", "red"),
                ("yellow", "yellow"),
                ("green", "green")
            ]
        ),
        select(
            "status",
            q.status.as_deref(),
            &[
                ("", "any"),
                ("open", "open"),
                ("documentary_check", "documentary check"),
                ("physical_examination", "physical examination"),
                ("held", "held"),
                ("seized", "seized"),
                ("released", "released"),
            ]
        ),
        val(&q.container),
        val(&q.from),
        val(&q.to),
        select(
            "sort",
            q.sort.as_deref(),
            &[
                ("risk", "highest risk"),
                ("newest", "newest"),
                ("oldest", "oldest")
            ]
        ),
        // Live updates only when the list is unfiltered, so a filtered view stays exact.
        filter.bay.is_none()
            && filter.lane.is_none()
            && filter.status.is_none()
            && filter.container.is_none()
            && filter.from.is_none()
            && filter.to.is_none()
            && filter.sort == CaseSort::Risk,
    );
    Ok(page("Queue", Some(&v), &body).into_response())
}

async fn case_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    P(id): P<i64>,
) -> Result<Response> {
    let Some(v) = viewer(&state, &headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    match crate::routes::cases::visible_case(&state, Principal::User(v.user.clone()), id).await {
        Ok(_) => {}
        Err(ApiError::Forbidden(m)) => return Ok(forbidden(&v, &m)),
        Err(ApiError::NotFound) => {
            return Ok((
                StatusCode::NOT_FOUND,
                page("Not found", Some(&v), "<h1>No such case</h1>"),
            )
                .into_response());
        }
        Err(e) => return Err(e),
    }
    let d = state
        .store
        .case_detail(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let c = &d.summary;
    let width = d.report["width"].as_u64().unwrap_or(1).max(1);
    let height = d.report["height"].as_u64().unwrap_or(1).max(1);

    // Findings: boxes on the scan, and their explanations in the side panel.
    let mut boxes = String::new();
    let mut findings = String::new();
    for (i, f) in d.report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let n = i + 1;
        let score = f["score"].as_f64().unwrap_or(0.0);
        let kind = f["kind"].as_str().unwrap_or("finding").replace('_', " ");
        if let Some(r) = f.get("region").filter(|r| r.is_object()) {
            let (x, y, w, h) = (
                r["x"].as_u64().unwrap_or(0),
                r["y"].as_u64().unwrap_or(0),
                r["width"].as_u64().unwrap_or(0),
                r["height"].as_u64().unwrap_or(0),
            );
            boxes.push_str(&format!(
                "<rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" class=\"finding-box\"/><text x=\"{x}\" y=\"{}\" class=\"finding-label\">{n}</text>",
                y.saturating_sub(2).max(8)
            ));
        }
        findings.push_str(&format!(
            "<li><strong>{n}. {}</strong> <span class=\"score\">score {score:.2}</span><br>{}</li>",
            escape(&kind),
            escape(f["message"].as_str().unwrap_or(""))
        ));
    }
    if findings.is_empty() {
        findings =
            "<li>No findings: the scan matches what the model expects of honest cargo.</li>".into();
    }
    // The bay's breakdown of its risk: which finding (or the declaration) contributed how much.
    let mut breakdown = String::new();
    for c in d.report["breakdown"]["contributions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        // Findings are explained above; the declaration's reasons only here.
        let source = c["source"].as_str().unwrap_or("?");
        let what = if source == "declaration" {
            c["label"].as_str().unwrap_or("")
        } else {
            ""
        };
        breakdown.push_str(&format!(
            "<tr><td>{}</td><td class=\"num\">{:.2}</td><td class=\"num\">{:.2}</td><td>{}</td></tr>",
            escape(&source.replace('_', " ")),
            c["weight"].as_f64().unwrap_or(0.0),
            c["share"].as_f64().unwrap_or(0.0),
            escape(what)
        ));
    }
    let breakdown = if breakdown.is_empty() {
        String::new()
    } else {
        format!(
            "<h2>Why this risk (bay)</h2><table class=\"breakdown\"><thead><tr><th>From</th><th>Score</th><th>Share of risk</th><th>Why</th></tr></thead><tbody>{breakdown}</tbody></table>"
        )
    };

    // Expected cargo: declared items laid along the container in declaration order, each as
    // wide as its share of the declared mass, labelled with HS chapter and mass. The bay's
    // own expected-cargo layer replaces this when the agent sends one.
    let mut expected = String::new();
    let mut declaration_html =
        "<p class=\"warn\">No declaration matches this scan: goods arrived that nobody declared.</p>"
            .to_owned();
    if let Some(row) = &d.declaration {
        let decl = &row.declaration;
        let total: f64 = decl.items.iter().map(|i| i.gross_mass_kg).sum();
        let mut x = 0.0;
        for (i, item) in decl.items.iter().enumerate() {
            let w = if total > 0.0 {
                item.gross_mass_kg / total * width as f64
            } else {
                0.0
            };
            expected.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" class=\"expected-item expected-{}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" class=\"expected-label\">HS {:02} · {:.0} kg</text>",
                height as f64 * 0.15,
                height as f64 * 0.7,
                i % 4,
                x + 4.0,
                height as f64 * 0.15 + 14.0,
                item.chapter(),
                item.gross_mass_kg
            ));
            x += w;
        }
        if decl.declared_empty {
            expected.push_str(&format!(
                "<text x=\"8\" y=\"{}\" class=\"expected-label\">declared EMPTY</text>",
                height / 2
            ));
        }
        let items: String = decl
            .items
            .iter()
            .map(|i| {
                format!(
                    "<tr><td>{}</td><td>{}</td><td class=\"num\">{}{}</td><td class=\"num\">{:.0}</td></tr>",
                    escape(&i.hs_code),
                    escape(&i.description),
                    i.packages,
                    i.package_type
                        .as_deref()
                        .map(|t| format!(" {}", escape(t)))
                        .unwrap_or_default(),
                    i.gross_mass_kg
                )
            })
            .collect();
        let reasons: String = row
            .risk_reasons
            .iter()
            .map(|r| format!("<li>{}</li>", escape(r)))
            .collect();
        declaration_html = format!(
            "<table class=\"decl\"><tr><th>Reference</th><td>{}</td></tr><tr><th>Declarant</th><td>{} ({})</td></tr>\
             <tr><th>Expected</th><td>{}</td></tr><tr><th>Gross mass</th><td>{:.0} kg{}</td></tr>\
             <tr><th>Pre-arrival risk</th><td>{:.2}</td></tr></table>{}\
             <table class=\"items\"><thead><tr><th>HS code</th><th>Description</th><th>Packages</th><th>kg</th></tr></thead><tbody>{items}</tbody></table>",
            escape(&decl.reference),
            escape(&decl.declarant.name),
            escape(&decl.declarant.id),
            escape(
                &decl
                    .expected_arrival
                    .format("%Y-%m-%d %H:%M UTC")
                    .to_string(),
            ),
            decl.gross_mass_kg,
            if decl.declared_empty {
                " (declared empty)"
            } else {
                ""
            },
            row.pre_risk,
            if reasons.is_empty() {
                String::new()
            } else {
                format!("<ul class=\"reasons\">{reasons}</ul>")
            },
        );
    }

    let history: String = d
        .events
        .iter()
        .map(|e| {
            if e.kind == "photo"
                && let Some(layer) = e.value.as_deref()
            {
                // A photo an officer took at the bay tablet, kept as one of the case's layers.
                let src = format!("/api/v1/cases/{id}/layers/{}", escape(layer));
                return format!(
                    "<li><time>{}</time> <strong>{}</strong> photo from the bay<br><a href=\"{src}\"><img class=\"bay-photo\" src=\"{src}\" alt=\"Photo taken by {} at the bay\" width=\"320\" loading=\"lazy\"></a></li>",
                    escape(&e.at.replace('T', " ").replace('Z', "")),
                    escape(&e.username),
                    escape(&e.username),
                );
            }
            format!(
                "<li><time>{}</time> <strong>{}</strong> {} {}{}</li>",
                escape(&e.at.replace('T', " ").replace('Z', "")),
                escape(&e.username),
                escape(&e.kind),
                escape(&e.value.as_deref().unwrap_or("").replace('_', " ")),
                e.note
                    .as_deref()
                    .map(|n| format!(": <q>{}</q>", escape(n)))
                    .unwrap_or_default()
            )
        })
        .collect();
    let history = if history.is_empty() {
        "<li>Nothing yet.</li>".to_owned()
    } else {
        history
    };

    let closed = crate::store::cases::FINAL_STATUSES.contains(&c.status.as_str());
    let mut actions = String::new();
    if v.user.role == Role::Supervisor && !closed {
        actions.push_str(&format!(
            "<form class=\"api\" id=\"decision-form\" data-action=\"/api/v1/cases/{id}/decisions\" data-kind=\"decision\">\
             <h3>Decision</h3><label>Decision{}</label>\
             <label>Note (required except for release)<textarea name=\"note\" rows=\"3\" maxlength=\"4000\"></textarea></label>\
             <button type=\"submit\">Record decision</button><p class=\"form-error\" role=\"alert\"></p></form>",
            select(
                "decision",
                None,
                &[
                    ("release", "Release"),
                    ("documentary_check", "Documentary check"),
                    ("physical_examination", "Physical examination"),
                    ("hold", "Hold"),
                    ("seize", "Seize"),
                ]
            )
        ));
    }
    if v.user.role == Role::Supervisor {
        actions.push_str(&format!(
            "<form class=\"api\" data-action=\"/api/v1/cases/{id}/assignment\" data-kind=\"assignment\"><h3>Assign</h3>\
             <label>Officer of {bay} or supervisor<input name=\"username\" required maxlength=\"64\" autocomplete=\"off\"></label>\
             <button type=\"submit\">Assign</button><p class=\"form-error\" role=\"alert\"></p></form>\
             <form class=\"api\" data-action=\"/api/v1/cases/{id}/shares\" data-kind=\"share\"><h3>Share with an agency</h3>\
             <label>Agency account<input name=\"username\" required maxlength=\"64\" autocomplete=\"off\"></label>\
             <button type=\"submit\">Share</button><p class=\"form-error\" role=\"alert\"></p></form>",
            bay = escape(&c.bay)
        ));
    }
    if matches!(v.user.role, Role::Officer | Role::Supervisor) {
        actions.push_str(&format!(
            "<form class=\"api\" data-action=\"/api/v1/cases/{id}/examinations\" data-kind=\"examination\">\
             <h3>Examination result</h3><label>Result{}</label>\
             <label>Note (required for a discrepancy)<textarea name=\"note\" rows=\"2\" maxlength=\"4000\"></textarea></label>\
             <button type=\"submit\">Record result</button><p class=\"form-error\" role=\"alert\"></p></form>\
             <form class=\"api\" data-action=\"/api/v1/cases/{id}/notes\" data-kind=\"note\"><h3>Note</h3>\
             <textarea name=\"note\" rows=\"2\" maxlength=\"4000\" required></textarea><button type=\"submit\">Add note</button><p class=\"form-error\" role=\"alert\"></p></form>",
            select(
                "result",
                None,
                &[("consistent", "Consistent with declaration"), ("discrepancy", "Discrepancy found")]
            )
        ));
    }
    let audit_link = if matches!(v.user.role, Role::Supervisor | Role::Admin) {
        format!("<p><a href=\"/audit?subject=case:{id}\">Audit trail of this case</a></p>")
    } else {
        String::new()
    };
    let image = if c.has_image {
        format!(
            "<img id=\"layer-scan\" class=\"layer\" src=\"/api/v1/cases/{id}/preview\" alt=\"X-ray scan of case {id}\" width=\"{width}\" height=\"{height}\">"
        )
    } else {
        format!(
            "<div id=\"layer-scan\" class=\"layer noimage\" data-w=\"{width}\" data-h=\"{height}\">Image not received yet</div>"
        )
    };
    // Layers the bay sent (heat map, material map, ...), stacked over the scan.
    let mut layer_imgs = String::new();
    let mut layer_toggles = String::new();
    for name in &d.layers {
        let label = match name.as_str() {
            "heat" => "Concealment heat map",
            "material" => "Material map",
            "expected" => "Expected cargo (bay)",
            "findings" => "Findings (bay)",
            other => other,
        };
        let n = escape(name);
        layer_imgs.push_str(&format!(
            "<img id=\"layer-img-{n}\" class=\"layer overlay\" src=\"/api/v1/cases/{id}/layers/{n}\" alt=\"{label}\" width=\"{width}\" height=\"{height}\">"
        ));
        layer_toggles.push_str(&format!(
            "<label><input type=\"checkbox\" data-layer=\"layer-img-{n}\" checked> {label}</label>"
        ));
    }
    let body = format!(
        "<p><a href=\"/queue\">← Queue</a></p>\
         <h1>Case #{id} {lane} <span class=\"status\">{status}</span></h1>\
         <p class=\"facts\">Bay <strong>{bay}</strong> · container <strong>{code}</strong> · scanned {captured} · risk <strong>{risk:.2}</strong> (scan {scan_risk:.2}) · model {model}{assigned}</p>\
         <div class=\"case\">\
         <section class=\"viewer-wrap\">\
           <div class=\"toolbar\"><fieldset class=\"layers\"><legend>Layers</legend>\
             <label><input type=\"checkbox\" data-layer=\"layer-scan\" checked> Scan</label>{layer_toggles}\
             <label><input type=\"checkbox\" data-layer=\"layer-findings\" checked> Finding boxes</label>\
             <label><input type=\"checkbox\" data-layer=\"layer-expected\"> Expected cargo (declaration)</label></fieldset>\
             <span class=\"zoom\"><button type=\"button\" data-zoom=\"in\" aria-label=\"Zoom in\">+</button><button type=\"button\" data-zoom=\"out\" aria-label=\"Zoom out\">−</button>\
             <button type=\"button\" data-zoom=\"fit\">Fit</button><button type=\"button\" data-zoom=\"full\">1:1</button></span></div>\
           <div class=\"viewer\" id=\"viewer\" tabindex=\"0\" aria-label=\"Scan viewer: drag to pan, wheel to zoom\">\
             <div class=\"stage\" id=\"stage\" data-w=\"{width}\" data-h=\"{height}\">{image}{layer_imgs}\
               <svg id=\"layer-findings\" class=\"layer\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\">{boxes}</svg>\
               <svg id=\"layer-expected\" class=\"layer hidden\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\">{expected}</svg>\
             </div></div>\
           <p class=\"legend\"><span class=\"key key-finding\"></span> finding · <span class=\"key key-expected\"></span> declared item (width ∝ declared mass)</p>\
           <p class=\"legend\">Material map: <span class=\"key key-organic\"></span> organic · <span class=\"key key-mixed\"></span> organic or light inorganic · <span class=\"key key-inorganic\"></span> light inorganic · <span class=\"key key-metal\"></span> metal · <span class=\"key key-opaque\"></span> too dense to see through</p>\
         </section>\
         <aside class=\"panel\">\
           <h2>Findings</h2><ol class=\"findings\">{findings}</ol>{breakdown}\
           <h2>Declaration</h2>{declaration_html}\
           {actions}\
           <h2>History</h2><ul class=\"history\" id=\"history\">{history}</ul>{audit_link}\
         </aside></div>",
        lane = lane_badge(&c.lane),
        status = escape(&c.status.replace('_', " ")),
        bay = escape(&c.bay),
        code = escape(c.container_code.as_deref().unwrap_or("unknown")),
        captured = escape(&c.captured_at),
        risk = c.risk,
        scan_risk = c.scan_risk,
        model = escape(&c.model_name),
        assigned = c
            .assigned_to
            .as_deref()
            .map(|a| format!(" · assigned to <strong>{}</strong>", escape(a)))
            .unwrap_or_default(),
    );
    Ok(page(&format!("Case {id}"), Some(&v), &body).into_response())
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
    let Some(v) = viewer(&state, &headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    if !matches!(v.user.role, Role::Supervisor | Role::Admin) {
        return Ok(forbidden(
            &v,
            "Only supervisors and admins read the audit log.",
        ));
    }
    let subject = non_empty(&q.subject);
    let entries = state.store.audit_entries(subject.as_deref(), 500).await?;
    let verdict = match state.store.verify_audit().await? {
        AuditVerdict::Intact { rows, head } => format!(
            "<p class=\"ok\" id=\"chain\">Chain intact: {rows} entries, head <code>{}</code>.</p>",
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
    let body = format!(
        "<h1>Release times</h1><p>WCO Time Release Study intervals over the last 8 weeks, in minutes: median / 90th percentile. \
         <a href=\"/api/v1/release-times?format=csv\" download>Download CSV (one row per case)</a></p>\
         <table id=\"release\"><thead><tr><th>By</th><th>Bay or lane</th><th>Week</th><th>Cases</th><th>Lodging → scan</th><th>Scan → report</th><th>Report → decision</th><th>Scan → release</th></tr></thead><tbody>{rows}</tbody></table>"
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
