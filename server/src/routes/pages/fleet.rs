//! The fleet page: every bay's agent at a glance, for supervisors and admins. What needs an
//! operator (a stale agent, a camera down, a disk filling up, reports piling up, a wrong clock)
//! is red. The page reloads its table every few seconds (`assets/app.js`).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::{escape, page, supervisor_page};
use crate::AppState;
use crate::error::Result;
use crate::store::fleet::{Check, FleetAgent};

/// Seconds between reloads of the table.
const REFRESH_SECS: u32 = 10;

pub(super) async fn fleet_page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response> {
    let v = match supervisor_page(
        &state,
        &headers,
        "Only supervisors and admins see the fleet.",
    )
    .await?
    {
        Ok(v) => v,
        Err(answer) => return Ok(answer),
    };
    let fleet = state.store.fleet().await?;
    let online = fleet.iter().filter(|a| a.online).count();
    let attention = fleet.iter().filter(|a| !a.problems.is_empty()).count();
    let rows: String = fleet.iter().map(row).collect();
    let empty = if fleet.is_empty() {
        "<tr><td colspan=\"12\" class=\"muted\">No agents registered yet (server agent add).</td></tr>"
    } else {
        ""
    };
    let body = format!(
        "<h1>Fleet</h1>\
         <p id=\"fleet-summary\" class=\"{summary_class}\">{n} agent(s): {online} online, {attention} need attention. \
         As of {now} UTC; this table reloads every {REFRESH_SECS} s.</p>\
         <table id=\"fleet\" data-refresh=\"{REFRESH_SECS}\"><thead><tr><th>Agent</th><th>Bay</th><th>State</th><th>Last contact</th>\
         <th>Version</th><th>Models</th><th>Outbox</th><th>Camera</th><th>Free disk</th><th>Scans today</th>\
         <th>Declarations</th><th>Clock</th></tr></thead><tbody>{rows}{empty}</tbody></table>",
        summary_class = if attention > 0 { "error" } else { "ok" },
        n = fleet.len(),
        now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S"),
    );
    Ok(page("Fleet", Some(&v), &body).into_response())
}

/// A table cell, red when `bad`.
fn cell(text: &str, bad: bool) -> String {
    if bad {
        format!("<td class=\"bad\">{}</td>", escape(text))
    } else {
        format!("<td>{}</td>", escape(text))
    }
}

fn row(a: &FleetAgent) -> String {
    let has = |check: Check| a.problems.iter().any(|p| p.check == check);
    let h = &a.health;
    let time = |t: &Option<String>| {
        t.as_deref()
            .map(|t| t.replace('T', " ").replace('Z', "").replace("+00:00", ""))
            .unwrap_or_else(|| "—".into())
    };
    let models = match a.models.as_object() {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(name, sha)| {
                let sha = sha.as_str().unwrap_or("");
                let serial = h
                    .model_serial
                    .map(|s| format!(" release {s}"))
                    .unwrap_or_else(|| " (shipped)".into());
                format!(
                    "{name}{serial} · {}",
                    sha.chars().take(12).collect::<String>()
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => "—".into(),
    };
    let outbox = match (a.queue_depth, &h.oldest_unsent_at) {
        (Some(0), _) => "empty".to_owned(),
        (Some(n), Some(_)) => format!("{n} waiting since {}", time(&h.oldest_unsent_at)),
        (Some(n), None) => format!("{n} waiting"),
        (None, _) => "—".to_owned(),
    };
    let disk = h
        .free_disk_bytes
        .map(|b| format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64))
        .unwrap_or_else(|| "—".into());
    let count = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_else(|| "—".into());
    let clock = h
        .clock_skew_ms
        .map(|ms| format!("{:+.1} s", ms as f64 / 1000.0))
        .unwrap_or_else(|| "—".into());
    let state = if a.online { "online" } else { "stale" };
    let needs = if a.problems.is_empty() {
        String::new()
    } else {
        format!(
            "<div class=\"needs\">{}</div>",
            escape(
                &a.problems
                    .iter()
                    .map(|p| p.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" · ")
            )
        )
    };
    format!(
        "<tr class=\"{class}\" data-agent=\"{name}\"><td>{name}{needs}</td><td>{bay}</td>{state}{seen}{version}{models}{outbox}{camera}{disk}{scans}{decl}{clock}</tr>",
        class = if a.problems.is_empty() {
            "healthy"
        } else {
            "problem"
        },
        name = escape(&a.name),
        bay = escape(&a.bay),
        state = cell(state, !a.online),
        seen = cell(&time(&a.last_seen_at), has(Check::Contact)),
        version = cell(a.version.as_deref().unwrap_or("—"), false),
        models = cell(&models, false),
        outbox = cell(&outbox, has(Check::Backlog)),
        camera = cell(h.camera.as_deref().unwrap_or("—"), has(Check::Camera)),
        disk = cell(&disk, has(Check::Disk)),
        scans = cell(&count(h.scans_today), false),
        decl = cell(&count(h.declarations_cached), false),
        clock = cell(&clock, has(Check::Clock)),
    )
}
