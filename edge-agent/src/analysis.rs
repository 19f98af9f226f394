//! From the model's output to a report: findings an officer can act on, a risk score and a lane.
//! Pure functions over plain data.

use baylens_models::ConcealmentOutput;
use baylens_protocol::report::REPORT_CONTRACT;
use baylens_protocol::risk::{LaneThresholds, PreArrival, assess};
use baylens_protocol::{
    Finding, FindingKind, Lane, ModelRun, Region, ReportId, ScanReport, ScanSidecar,
};
use chrono::{DateTime, Utc};

/// Builds the report for one scan.
pub fn build_report(
    report_id: ReportId,
    sidecar: &ScanSidecar,
    (width, height): (u32, u32),
    model_name: &str,
    model_sha256: &str,
    output: &ConcealmentOutput,
    analysed_at: DateTime<Utc>,
) -> ScanReport {
    let [px, py] = sidecar.pitch_mm();
    let metres = |pixels: u32| f64::from(pixels) * px / 1000.0;
    let rows_m = |pixels: u32| f64::from(pixels) * py / 1000.0;
    let findings: Vec<Finding> = output
        .detections
        .iter()
        .map(|d| Finding {
            kind: FindingKind::ConcealedObject,
            score: d.score.clamp(0.0, 1.0),
            region: Some(Region { x: d.x, y: d.y, width: d.width, height: d.height }),
            message: format!(
                "Possible concealment: goods of about {:.1} m x {:.1} m hidden in the cargo or behind a false wall, floor or ceiling, {:.1} m from the left edge of the scan and {:.1} m from its top: examine there.",
                metres(d.width),
                rows_m(d.height),
                metres(d.x),
                rows_m(d.y),
            ),
        })
        .collect();
    // Scan evidence only; `finish_report` adds the declaration checks and its risk.
    let risk = baylens_protocol::risk::scan_risk(&findings);
    ScanReport {
        contract: REPORT_CONTRACT.to_owned(),
        report_id,
        scan_id: sidecar.scan_id.clone(),
        bay: sidecar.bay.clone(),
        captured_at: sidecar.captured_at,
        analysed_at,
        container_code: sidecar.container_code.clone(),
        declaration_ref: sidecar.declaration_ref.clone(),
        width,
        height,
        model: ModelRun {
            name: model_name.to_owned(),
            sha256: model_sha256.to_owned(),
            max_probability: output.max_probability.clamp(0.0, 1.0),
            flagged_fraction: output.flagged_fraction.clamp(0.0, 1.0),
            inference_ms: output.inference_ms,
        },
        findings,
        risk,
        lane: Lane::for_risk(risk),
        breakdown: None,
    }
}

/// Adds findings from other checks (manifest verification) to a report, strongest first, and
/// sets its risk (scan findings and the declaration's pre-arrival risk), the risk's breakdown
/// and the lane under the site's thresholds.
pub fn finish_report(
    report: &mut ScanReport,
    extra: Vec<Finding>,
    pre: &PreArrival,
    lanes: LaneThresholds,
) {
    report.findings.extend(extra);
    report.findings.sort_by(|a, b| b.score.total_cmp(&a.score));
    let (risk, breakdown) = assess(&report.findings, pre, lanes);
    report.risk = risk;
    report.lane = lanes.lane(risk);
    report.breakdown = Some(breakdown);
}

#[cfg(test)]
mod tests {
    use super::*;
    use baylens_models::Detection;
    use ndarray::Array2;

    fn sidecar() -> ScanSidecar {
        let json = include_str!("../../protocol/SCAN_FORMAT.md");
        let start = json.find("```json").unwrap() + 7;
        let end = start + json[start..].find("```").unwrap();
        ScanSidecar::from_json(
            &json.as_bytes()[start..end],
            "2026-11-26T00:00:00Z".parse().unwrap(),
        )
        .unwrap()
    }

    fn output(detections: Vec<Detection>) -> ConcealmentOutput {
        ConcealmentOutput {
            heatmap: Array2::zeros((10, 10)),
            max_probability: detections.first().map_or(0.1, |d| d.score),
            detections,
            flagged_fraction: 0.0,
            inference_ms: 1.0,
        }
    }

    #[test]
    fn a_detection_becomes_a_located_finding_and_sets_the_lane() {
        let d = Detection {
            x: 100,
            y: 50,
            width: 30,
            height: 20,
            score: 0.92,
            pixels: 500,
        };
        let r = build_report(
            ReportId::parse("r").unwrap(),
            &sidecar(),
            (416, 208),
            "m",
            "h",
            &output(vec![d]),
            Utc::now(),
        );
        assert_eq!(r.findings.len(), 1);
        assert_eq!(
            r.findings[0].region,
            Some(Region {
                x: 100,
                y: 50,
                width: 30,
                height: 20
            })
        );
        // 30 px at 10 mm is 0.3 m.
        assert!(
            r.findings[0].message.contains("0.3 m x 0.2 m"),
            "{}",
            r.findings[0].message
        );
        assert_eq!(r.lane, Lane::Red);
        assert_eq!(r.risk, 0.92);
    }

    #[test]
    fn no_detection_is_green() {
        let r = build_report(
            ReportId::parse("r").unwrap(),
            &sidecar(),
            (416, 208),
            "m",
            "h",
            &output(vec![]),
            Utc::now(),
        );
        assert!(r.findings.is_empty());
        assert_eq!(r.lane, Lane::Green);
        // The report the agent builds is one the server accepts.
        ScanReport::from_json(&serde_json::to_vec(&r).unwrap()).unwrap();
    }
}
