//! Cases imported from other administrations' signed bundles, for supervisors and admins:
//! the list, and one case read-only, marked with its origin (protocol/CASE_BUNDLE.md).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{escape, lane_badge, page, supervisor_page};
use crate::AppState;
use crate::error::Result;
use crate::extract::P;

pub(super) async fn imports_page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response> {
    let v = match supervisor_page(
        &state,
        &headers,
        "Only supervisors and admins see imported cases.",
    )
    .await?
    {
        Ok(v) => v,
        Err(answer) => return Ok(answer),
    };
    let imports = state.store.imported_cases(500).await?;
    let rows: String = imports
        .iter()
        .map(|i| {
            format!(
                "<tr><td><a href=\"/imports/{id}\">#{id}</a></td><td>{origin}</td><td>{case}</td><td>{scan}</td>\
                 <td>{code}</td><td>{lane} {status}</td><td>{at}</td><td>{by}</td></tr>",
                id = i.id,
                origin = escape(&i.origin),
                case = i.origin_case_id,
                scan = escape(&i.scan_id),
                code = escape(i.container_code.as_deref().unwrap_or("—")),
                lane = lane_badge(&i.manifest.case.lane),
                status = escape(&i.manifest.case.status),
                at = escape(&i.imported_at),
                by = escape(&i.imported_by),
            )
        })
        .collect();
    let empty = if imports.is_empty() {
        "<tr><td colspan=\"8\" class=\"muted\">No imported cases yet. A partner's signed bundle is imported with POST /api/v1/bundles.</td></tr>"
    } else {
        ""
    };
    let body = format!(
        "<h1>Imported cases</h1>\
         <p>Cases received from other administrations as signed bundles. Each was checked against the \
         sender's trusted key and is read-only here.</p>\
         <table id=\"imports\"><thead><tr><th>Here</th><th>Origin</th><th>Case there</th><th>Scan</th>\
         <th>Container</th><th>Lane and status there</th><th>Imported</th><th>By</th></tr></thead>\
         <tbody>{rows}{empty}</tbody></table>"
    );
    Ok(page("Imported cases", Some(&v), &body).into_response())
}

pub(super) async fn import_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    P(id): P<i64>,
) -> Result<Response> {
    let v = match supervisor_page(
        &state,
        &headers,
        "Only supervisors and admins see imported cases.",
    )
    .await?
    {
        Ok(v) => v,
        Err(answer) => return Ok(answer),
    };
    let Some(i) = state.store.imported_case(id).await? else {
        return Ok((
            StatusCode::NOT_FOUND,
            page("Not found", Some(&v), "<h1>No such imported case</h1>"),
        )
            .into_response());
    };
    let history: serde_json::Value = match state
        .store
        .images
        .get(&object_store::path::Path::from(format!(
            "imports/{}/files/history.json",
            i.bundle_sha256
        )))
        .await
    {
        Ok(o) => serde_json::from_slice(&o.bytes().await.unwrap_or_default()).unwrap_or_default(),
        Err(_) => serde_json::Value::Null,
    };
    let history: String = history
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let s = |k: &str| escape(e[k].as_str().unwrap_or(""));
            format!(
                "<li><span class=\"when\">{}</span> <strong>{}</strong> {} {} <em>{}</em></li>",
                s("at"),
                s("username"),
                s("kind"),
                s("value"),
                s("note")
            )
        })
        .collect();
    let c = &i.manifest.case;
    let mut images = String::new();
    let mut files = String::new();
    for m in &i.manifest.members {
        let path = escape(&m.path);
        if m.media_type.starts_with("image/") {
            images.push_str(&format!(
                "<figure><img src=\"/api/v1/imports/{id}/files/{path}\" alt=\"{path}\" class=\"imported\"><figcaption>{path}</figcaption></figure>"
            ));
        }
        files.push_str(&format!(
            "<tr><td><a href=\"/api/v1/imports/{id}/files/{path}\">{path}</a></td><td>{}</td><td><code>{}</code></td></tr>",
            m.size,
            escape(&m.sha256)
        ));
    }
    let body = format!(
        "<p><a href=\"/imports\">← Imported cases</a></p>\
         <h1>Imported case #{id} {lane} <span class=\"status\">{status}</span></h1>\
         <p class=\"origin\" id=\"origin\">Read-only. From <strong>{origin}</strong> (signed by {issuer}, key {key}) \
         on {created}; their case #{their}. Imported {at} by {by}; bundle sha256 <code>{sha}</code>.</p>\
         <p class=\"facts\">Bay <strong>{bay}</strong> · container <strong>{code}</strong> · scan {scan} · scanned {captured} · declaration {decl}</p>\
         <div class=\"imported-images\">{images}</div>\
         <h2>History at the origin</h2><ul class=\"history\">{history}</ul>\
         <h2>Files</h2><table><thead><tr><th>File</th><th>Bytes</th><th>sha256 (checked on import)</th></tr></thead><tbody>{files}</tbody></table>",
        lane = lane_badge(&c.lane),
        status = escape(&c.status.replace('_', " ")),
        origin = escape(&i.origin),
        issuer = escape(&i.manifest.issuer),
        key = escape(&i.key_id),
        created = escape(&i.manifest.created_at),
        their = c.id,
        at = escape(&i.imported_at),
        by = escape(&i.imported_by),
        sha = escape(&i.bundle_sha256),
        bay = escape(&c.bay),
        code = escape(c.container_code.as_deref().unwrap_or("unknown")),
        scan = escape(&c.scan_id),
        captured = escape(&c.captured_at),
        decl = escape(c.declaration_ref.as_deref().unwrap_or("none")),
    );
    Ok(page(&format!("Imported case {id}"), Some(&v), &body).into_response())
}
