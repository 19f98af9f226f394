//! The case page: the scan viewer with its layers, the declaration, findings, decisions and
//! the case's history.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::*;
use crate::error::Result;
use crate::extract::P;
use crate::store::camera_codes::CameraReading;
use crate::store::cases::LAYERS;

pub(super) async fn case_page(
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
    let mut audit_link = if matches!(v.user.role, Role::Supervisor | Role::Admin) {
        format!("<p><a href=\"/audit?subject=case:{id}\">Audit trail of this case</a></p>")
    } else {
        String::new()
    };
    // The case for another agency or administration, evidence and history signed as one file.
    if v.user.role != Role::Officer && state.settings.bundle_signer.is_some() {
        audit_link.push_str(&format!(
            "<p><a id=\"bundle-link\" href=\"/api/v1/cases/{id}/bundle\" download>Download the signed case bundle</a> \
             (report, declaration, history, examination results, audit entries and images, signed by this administration)</p>"
        ));
    }
    // The bay's findings as a DICOS Threat Detection Report, for screening systems.
    audit_link.push_str(&format!(
        "<p><a id=\"tdr-link\" href=\"/api/v1/cases/{id}/tdr\" download>Download the DICOS threat detection report</a> \
         (the bay's findings as potential threat objects, NEMA IIC 1)</p>"
    ));
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
    for name in d.layers.iter().filter(|l| LAYERS.contains(&l.as_str())) {
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
    let camera = camera_section(id, d.camera_code.as_ref());
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
           {camera}\
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

/// What the bay camera read over the truck pass, against the scanner's code and the
/// declaration's, with the frames that read it.
fn camera_section(id: i64, reading: Option<&CameraReading>) -> String {
    let Some(r) = reading else {
        return String::new();
    };
    let verdict = match &r.mismatch {
        Some(m) => format!("<p class=\"warn\" id=\"camera-mismatch\">{}</p>", escape(m)),
        None => "<p id=\"camera-match\">Agrees with the scanner's code and the declaration's.</p>"
            .to_owned(),
    };
    let frames: String = r
        .frames_evidence
        .iter()
        .map(|name| {
            let src = format!("/api/v1/cases/{id}/layers/{}", escape(name));
            format!(
                "<a href=\"{src}\"><img class=\"bay-photo\" src=\"{src}\" alt=\"Camera frame that read {}\" width=\"320\" loading=\"lazy\"></a>",
                escape(&r.code)
            )
        })
        .collect();
    format!(
        "<h2>Container code at the bay camera</h2><section id=\"camera-code\">\
         <p><strong>{code}</strong>{size} · {agreeing} of {frames} frames agree · confidence {conf:.2} · read {at}</p>{verdict}{shots}</section>",
        code = escape(&r.code),
        size = r
            .size_type
            .as_deref()
            .map(|s| format!(" ({})", escape(s)))
            .unwrap_or_default(),
        agreeing = r.agreeing,
        frames = r.frames,
        conf = r.confidence,
        at = escape(&r.read_at.replace('T', " ").replace('Z', "")),
        shots = frames,
    )
}
