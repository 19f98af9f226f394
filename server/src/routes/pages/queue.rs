//! The review queue page: cases ranked by risk, filtered, each finding kind with its track
//! record at the bay (how often it was confirmed), and a filter on the findings this model
//! often gets wrong there (`crate::track_record`).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{escape, lane_badge, non_empty, page, select, viewer};
use crate::AppState;
use crate::auth::Role;
use crate::error::Result;
use crate::extract::Q;
use crate::store::{CaseFilter, CaseSort};
use crate::track_record::{MIN_JUDGED, OFTEN_WRONG_RATE, TrackRecord};

/// Query of the queue page (all optional; empty strings mean "any").
#[derive(Debug, Default, Deserialize)]
pub(super) struct QueueQuery {
    bay: Option<String>,
    lane: Option<String>,
    status: Option<String>,
    container: Option<String>,
    from: Option<String>,
    to: Option<String>,
    sort: Option<String>,
    /// `often_wrong`: only cases with a finding kind this model often gets wrong at the bay.
    record: Option<String>,
}

/// Weeks of decisions the track record looks back.
const RECORD_WEEKS: i64 = 12;

/// The track record of the bays `user` sees (none for agencies).
async fn track_record(state: &AppState, user: &crate::store::User) -> Result<Option<TrackRecord>> {
    let bay = match user.role {
        Role::Supervisor | Role::Admin => None,
        Role::Officer if user.bay.is_some() => user.bay.clone(),
        Role::Officer | Role::Agency | Role::Metrics => return Ok(None),
    };
    let to = crate::store::now_ms() + 1;
    let rows = state
        .store
        .outcome_rows(to - RECORD_WEEKS * 7 * 86_400_000, to, bay.as_deref(), None)
        .await?;
    Ok(Some(TrackRecord::compute(&rows)))
}

/// The track record as a table that opens on demand.
fn record_details(record: &TrackRecord) -> String {
    let rows: String = record
        .rows()
        .into_iter()
        .map(|(bay, sha, k)| {
            let wrong = record.often_wrong(bay, sha, &k.kind);
            format!(
                "<tr{cls}><td>{bay}</td><td><code>{model}</code></td><td>{kind}</td><td class=\"num\">{j}</td>\
                 <td class=\"num\">{c}</td><td class=\"num\">{rate:.0} %</td></tr>",
                cls = if wrong { " class=\"often-wrong\"" } else { "" },
                bay = escape(bay),
                model = escape(&sha.chars().take(12).collect::<String>()),
                kind = escape(&k.kind.replace('_', " ")),
                j = k.judged,
                c = k.confirmed,
                rate = 100.0 * k.confirmation_rate.unwrap_or(0.0),
            )
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    format!(
        "<details id=\"track-record\"><summary>Track record of findings by bay and model (last {RECORD_WEEKS} weeks)</summary>\
         <table><thead><tr><th>Bay</th><th>Model</th><th>Finding</th><th>Judged</th><th>Confirmed</th><th>Rate</th></tr></thead>\
         <tbody>{rows}</tbody></table></details>"
    )
}

/// A case's finding kinds, each with its track record at the bay.
fn kinds_cell(record: Option<&TrackRecord>, bay: &str, sha: &str, kinds: &[String]) -> String {
    kinds
        .iter()
        .map(|kind| {
            let label = escape(&kind.replace('_', " "));
            let Some(k) = record.and_then(|r| r.kind(bay, sha, kind)) else {
                return format!(
                    "<span class=\"kind\" title=\"no judged case of this kind at {bay} with this model yet\">{label}</span>",
                    bay = escape(bay)
                );
            };
            let wrong = record.is_some_and(|r| r.often_wrong(bay, sha, kind));
            format!(
                "<span class=\"kind{cls}\" title=\"confirmed in {c} of {j} judged cases at {bay} with this model (last {RECORD_WEEKS} weeks){note}\">{label} {rate:.0} %</span>",
                cls = if wrong { " often-wrong" } else { "" },
                c = k.confirmed,
                j = k.judged,
                bay = escape(bay),
                note = if wrong { "; often wrong here" } else { "" },
                rate = 100.0 * k.confirmation_rate.unwrap_or(0.0),
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn parse_day(s: &Option<String>, end: bool) -> Option<chrono::DateTime<chrono::Utc>> {
    let day = chrono::NaiveDate::parse_from_str(non_empty(s)?.as_str(), "%Y-%m-%d").ok()?;
    crate::store::day_bound(day, end)
}

pub(super) async fn queue_page(
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
    let often_wrong_only = q.record.as_deref() == Some("often_wrong");
    let record = track_record(&state, &v.user).await?;
    let mut filter = filter;
    if often_wrong_only {
        filter.limit = Some(500);
    }
    let mut cases = state.store.list_cases(&v.user, &filter).await?;
    let ids: Vec<i64> = cases.iter().map(|c| c.id).collect();
    let findings = state.store.case_findings(&ids).await?;
    let scanned = cases.len();
    if often_wrong_only {
        cases.retain(|c| {
            findings.get(&c.id).is_some_and(|(sha, kinds)| {
                kinds.iter().any(|k| {
                    record
                        .as_ref()
                        .is_some_and(|r| r.often_wrong(&c.bay, sha, k))
                })
            })
        });
        cases.truncate(200);
    }
    let mut rows = String::new();
    for c in &cases {
        rows.push_str(&format!(
            "<tr data-href=\"/cases/{id}\" data-risk=\"{risk:.4}\" tabindex=\"-1\"><td><a href=\"/cases/{id}\">#{id}</a></td><td>{bay}</td><td>{time}</td><td>{code}</td>\
             <td class=\"num\">{risk:.2}</td><td>{lane}</td><td>{status}</td><td><span class=\"num\">{findings}</span> {kinds}</td><td>{assigned}</td></tr>",
            id = c.id,
            bay = escape(&c.bay),
            time = escape(&c.captured_at.replace('T', " ").replace('Z', "")),
            code = escape(c.container_code.as_deref().unwrap_or("—")),
            risk = c.risk,
            lane = lane_badge(&c.lane),
            status = escape(&c.status.replace('_', " ")),
            findings = c.findings_count,
            kinds = findings
                .get(&c.id)
                .map(|(sha, kinds)| kinds_cell(record.as_ref(), &c.bay, sha, kinds))
                .unwrap_or_default(),
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
    let record_input = if record.is_some() {
        format!(
            "<label title=\"cases with a finding kind that this model confirmed in at most {:.0} % of at least {MIN_JUDGED} judged cases at the bay\">\
             <input type=\"checkbox\" name=\"record\" value=\"often_wrong\"{}> Findings often wrong here</label>",
            100.0 * OFTEN_WRONG_RATE,
            if often_wrong_only { " checked" } else { "" }
        )
    } else {
        String::new()
    };
    let record_table = record.as_ref().map(record_details).unwrap_or_default();
    let truncated = if often_wrong_only && scanned >= 500 {
        "<p class=\"hint\">Only the 500 highest-ranked cases of these filters were checked for findings often wrong here: narrow the filters to see the rest.</p>"
    } else {
        ""
    };
    let body = format!(
        "<h1>Cases by risk</h1>\
         <form class=\"filters\" method=\"get\" action=\"/queue\">{bay_input}{record_input}\
         <label>Lane{}</label><label>Status{}</label>\
         <label>Container<input name=\"container\" value=\"{}\" size=\"12\"></label>\
         <label>From<input type=\"date\" name=\"from\" value=\"{}\"></label><label>To<input type=\"date\" name=\"to\" value=\"{}\"></label>\
         <label>Sort{}</label><button>Filter</button> <a href=\"/queue\">Clear</a></form>\
         <p class=\"hint\">Keys: <kbd>j</kbd>/<kbd>k</kbd> move, <kbd>Enter</kbd> opens. New cases appear live. Each finding kind shows how often it was confirmed at the bay with this model.</p>{record_table}{truncated}{empty}\
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
            && filter.sort == CaseSort::Risk
            && !often_wrong_only,
    );
    Ok(page("Queue", Some(&v), &body).into_response())
}
