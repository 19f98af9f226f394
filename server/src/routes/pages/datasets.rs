//! The dataset export page, for supervisors and admins: start an export of a period's
//! cleared scans and labelled cases (`crate::dataset`) as a background job, watch its
//! progress (the table reloads itself while a job runs) and download the result.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::{escape, page, supervisor_page};
use crate::AppState;
use crate::error::Result;
use crate::store::datasets::ExportJob;

/// Seconds between reloads of the job table while a job runs.
const REFRESH_SECS: u32 = 2;

pub(super) async fn datasets_page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response> {
    let v = match supervisor_page(
        &state,
        &headers,
        "Only supervisors and admins export datasets.",
    )
    .await?
    {
        Ok(v) => v,
        Err(answer) => return Ok(answer),
    };
    let jobs = state.store.exports(50).await?;
    let running = jobs.iter().any(|j| j.state == "running");
    let rows: String = jobs.iter().map(row).collect();
    let empty = if jobs.is_empty() {
        "<tr><td colspan=\"6\" class=\"muted\">No exports yet.</td></tr>"
    } else {
        ""
    };
    let today = chrono::Utc::now().date_naive();
    let month_ago = today - chrono::Duration::days(28);
    // The table reloads itself only while a job runs.
    let refresh = if running {
        format!(" data-refresh=\"{REFRESH_SECS}\" data-refresh-ids=\"exports\"")
    } else {
        String::new()
    };
    let body = format!(
        "<h1>Datasets</h1>\
         <p>Decisions become data: an export holds the <strong>cleared scans</strong> (released without a \
         discrepancy, with their declarations) for <code>edge-agent calibrate --cleared</code> and the \
         site adaptation, and the <strong>labelled cases</strong> (findings with their boxes and what the \
         examination found, COCO JSON), with a manifest of every file's sha256. Declarant names and ids, \
         plates and references are replaced by pseudonyms unless you keep them. Raw scans stay at the \
         bays until an export asks for them: export again once they have arrived.</p>\
         <form class=\"api filters\" id=\"export-form\" data-action=\"/api/v1/dataset-exports\" data-kind=\"export\">\
         <label>From <input type=\"date\" name=\"from\" value=\"{month_ago}\" required></label> \
         <label>To <input type=\"date\" name=\"to\" value=\"{today}\" required></label> \
         <label>Bay <input name=\"bay\" placeholder=\"all bays\" size=\"10\"></label> \
         <label><input type=\"checkbox\" name=\"keep_names\"> keep names</label> \
         <button type=\"submit\">Export</button><p class=\"form-error\" role=\"alert\"></p></form>\
         <table id=\"exports\"{refresh}><thead><tr><th>Export</th><th>Requested</th><th>Period</th>\
         <th>Progress</th><th>Contents</th><th>File</th></tr></thead><tbody>{rows}{empty}</tbody></table>"
    );
    Ok(page("Datasets", Some(&v), &body).into_response())
}

fn row(j: &ExportJob) -> String {
    let p = &j.params;
    // The period as the days chosen: `to` is exclusive, so its day is the one before.
    let day = |k: &str, back: i64| {
        p[k].as_i64()
            .map(|ms| {
                crate::store::from_ms(ms - back)
                    .format("%Y-%m-%d")
                    .to_string()
            })
            .unwrap_or_default()
    };
    let bay = p["bay"].as_str().unwrap_or("all bays");
    let names = if p["keep_names"].as_bool() == Some(true) {
        "names kept"
    } else {
        "pseudonyms"
    };
    let progress = match j.state.as_str() {
        "running" => format!(
            "<progress value=\"{}\" max=\"{}\"></progress> {} of {} cases",
            j.done,
            j.total.max(1),
            j.done,
            j.total
        ),
        state => escape(state),
    };
    let s = j.summary.clone().unwrap_or_default();
    let contents = match (j.state.as_str(), s["error"].as_str()) {
        (_, Some(e)) => format!("<span class=\"error\">{}</span>", escape(e)),
        ("done", _) => {
            let mut text = format!(
                "{} cleared scans, {} labelled cases ({} boxes)",
                s["cleared"], s["labelled"], s["boxes"]
            );
            if s["awaiting_raw"].as_u64().unwrap_or(0) > 0 {
                text.push_str(&format!(
                    "; {} scans await their raw data from the bays: export again once they have arrived",
                    s["awaiting_raw"]
                ));
            }
            escape(&text)
        }
        _ => String::new(),
    };
    let file = match (&j.sha256, j.state.as_str()) {
        (Some(sha), "done") => format!(
            "<a href=\"/api/v1/dataset-exports/{id}/download\" download>baylens-dataset-{id}.tar</a>\
             <br><code class=\"muted\" title=\"sha256\">{}</code>",
            escape(&sha[..16.min(sha.len())]),
            id = j.id
        ),
        _ => String::new(),
    };
    format!(
        "<tr data-state=\"{state}\"><td>#{id}</td><td>{at} by {by}</td><td>{from} – {to}, {bay}, {names}</td>\
         <td>{progress}</td><td>{contents}</td><td>{file}</td></tr>",
        state = escape(&j.state),
        id = j.id,
        at = escape(&j.requested_at.chars().take(16).collect::<String>()),
        by = escape(&j.requested_by),
        from = escape(&day("from_ms", 0)),
        to = escape(&day("to_ms", 1)),
        bay = escape(bay),
    )
}
