//! The outcomes panel of the dashboard (supervisors and admins): hit rate and false-alarm share
//! per ISO week as a server-rendered SVG chart with the weeks a model release changed, and how
//! each finding kind, bay and model release fared.

use super::escape;
use crate::outcomes::{Figures, Outcomes};

const W: f64 = 640.0;
const H: f64 = 220.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 40.0;

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{:.0} %", v * 100.0))
        .unwrap_or_else(|| "—".into())
}

/// The panel's HTML.
pub(super) fn panel(o: &Outcomes) -> String {
    let t = &o.totals;
    let summary = format!(
        "<p class=\"facts\" id=\"outcome-summary\">Red and yellow lanes: hit rate <strong>{}</strong> \
         ({} of {} examined found a discrepancy); false alarms <strong>{}</strong> ({} of {} closed were \
         released clean). Examinations per seizure: <strong>{}</strong> ({} examined, {} seized). Green-lane \
         random checks: {} of {} found a discrepancy.</p>",
        pct(t.hit_rate),
        t.flagged_hits,
        t.flagged_examined,
        pct(t.false_alarm_share),
        t.false_alarms,
        t.flagged_closed,
        t.examinations_per_seizure
            .map(|v| format!("{v:.1}"))
            .unwrap_or_else(|| "—".into()),
        t.examined,
        t.seizures,
        t.green_discrepancies,
        t.green_examined,
    );
    let kinds: String = o
        .kinds
        .iter()
        .map(|k| {
            format!(
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                escape(&k.kind.replace('_', " ")),
                k.judged,
                k.confirmed,
                k.refuted,
                pct(k.confirmation_rate)
            )
        })
        .collect();
    let groups: String = o
        .groups
        .iter()
        .filter(|g| g.by != "week")
        .map(|g| group_row(g.by, &g.key, &g.figures))
        .collect();
    format!(
        "<section id=\"outcomes\"><h2>Outcomes of the last 12 weeks</h2>{summary}\
         <p><a href=\"/api/v1/outcomes?format=csv\" download>Download CSV</a> · <a href=\"/api/v1/outcomes\">JSON</a></p>\
         {chart}\
         <h3>Findings by kind</h3><p class=\"muted\">An examination judges the whole case: each case counts once per finding kind.</p>\
         <table id=\"outcome-kinds\"><thead><tr><th>Finding</th><th>Cases judged</th><th>Confirmed</th><th>Refuted</th><th>Confirmed share</th></tr></thead><tbody>{kinds}</tbody></table>\
         <h3>By bay and model release</h3>\
         <table id=\"outcome-groups\"><thead><tr><th>By</th><th>Bay or model</th><th>Cases</th><th>Red + yellow</th><th>Hit rate</th><th>False alarms</th><th>Examinations per seizure</th><th>Green checks with a discrepancy</th></tr></thead><tbody>{groups}</tbody></table></section>",
        chart = chart(o),
    )
}

fn group_row(by: &str, key: &str, f: &Figures) -> String {
    format!(
        "<tr><td>{by}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{} of {}</td>\
         <td class=\"num\">{} of {}</td><td class=\"num\">{}</td><td class=\"num\">{} of {}</td></tr>",
        escape(key),
        f.cases,
        f.flagged,
        pct(f.hit_rate),
        f.flagged_examined,
        pct(f.false_alarm_share),
        f.flagged_closed,
        f.examinations_per_seizure
            .map(|v| format!("{v:.1}"))
            .unwrap_or_else(|| "—".into()),
        f.green_discrepancies,
        f.green_examined,
    )
}

/// Hit rate and false-alarm share per week, with a marker where a model release first appears.
fn chart(o: &Outcomes) -> String {
    let weeks: Vec<_> = o.groups.iter().filter(|g| g.by == "week").collect();
    if weeks.is_empty() {
        return "<p class=\"muted\" id=\"outcome-chart-empty\">No cases in the period yet.</p>"
            .into();
    }
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let step = if weeks.len() > 1 {
        plot_w / (weeks.len() - 1) as f64
    } else {
        0.0
    };
    let x = |i: usize| {
        if weeks.len() > 1 {
            LEFT + step * i as f64
        } else {
            LEFT + plot_w / 2.0
        }
    };
    let y = |v: f64| TOP + plot_h * (1.0 - v.clamp(0.0, 1.0));
    let mut svg = format!(
        "<svg id=\"outcome-chart\" class=\"chart\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" \
         aria-label=\"Hit rate and false-alarm share per ISO week\">"
    );
    for v in [0.0, 0.5, 1.0] {
        svg.push_str(&format!(
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/><text class=\"axis\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{:.0} %</text>",
            W - RIGHT,
            LEFT - 6.0,
            y(v) + 4.0,
            v * 100.0,
            y = y(v),
        ));
    }
    for (i, g) in weeks.iter().enumerate() {
        svg.push_str(&format!(
            "<text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            x(i),
            H - BOTTOM + 16.0,
            escape(g.key.split_once('-').map_or(&g.key[..], |(_, w)| w))
        ));
    }
    // A model release first seen in a week: a dashed line at that week, labelled.
    for (n, m) in o.model_changes.iter().enumerate() {
        if let Some(i) = weeks.iter().position(|g| g.key == m.week) {
            let at = x(i);
            let label = format!(
                "{} {}",
                m.model,
                m.sha256.chars().take(8).collect::<String>()
            );
            svg.push_str(&format!(
                "<line class=\"model-change\" x1=\"{at:.1}\" x2=\"{at:.1}\" y1=\"{TOP}\" y2=\"{:.1}\"><title>{} first seen {}</title></line>\
                 <text class=\"model-label\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                H - BOTTOM,
                escape(&label),
                escape(&m.first_seen),
                at + 3.0,
                TOP + 10.0 + (n % 2) as f64 * 12.0,
                escape(&label),
            ));
        }
    }
    for (class, name, value) in [
        (
            "line-hit",
            "hit rate",
            (|f: &Figures| f.hit_rate) as fn(&Figures) -> Option<f64>,
        ),
        ("line-false", "false alarms", |f: &Figures| {
            f.false_alarm_share
        }),
    ] {
        let points: Vec<(f64, f64, String, f64)> = weeks
            .iter()
            .enumerate()
            .filter_map(|(i, g)| value(&g.figures).map(|v| (x(i), y(v), g.key.clone(), v)))
            .collect();
        if points.len() > 1 {
            let path: Vec<String> = points
                .iter()
                .map(|(px, py, _, _)| format!("{px:.1},{py:.1}"))
                .collect();
            svg.push_str(&format!(
                "<polyline class=\"{class}\" points=\"{}\"/>",
                path.join(" ")
            ));
        }
        for (px, py, week, v) in &points {
            svg.push_str(&format!(
                "<circle class=\"{class}\" cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"3.5\"><title>{week}: {name} {:.0} %</title></circle>",
                v * 100.0
            ));
        }
    }
    svg.push_str("</svg>");
    format!(
        "{svg}<p class=\"legend\"><span class=\"key key-hit\"></span> hit rate · <span class=\"key key-false\"></span> false-alarm share · \
         <span class=\"key key-model\"></span> model release first seen</p>"
    )
}
