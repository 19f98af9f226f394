//! What a bay reports to the server about one scan.
//!
//! A report is built once by the edge agent, stored in its outbox, and sent (possibly many times,
//! after outages) to the server, which stores it once per [`ReportId`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::risk::{LaneThresholds, RiskBreakdown};
use crate::{BayId, ContainerCode, ProtocolError, ReportId, ScanId};

/// The report contract version.
pub const REPORT_CONTRACT: &str = "baylens.report/1";

/// The risk lane, in the customs sense: green releases, yellow checks documents,
/// red sends the load to physical examination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lane {
    /// Nothing found: release.
    Green,
    /// Something to look at on screen before release.
    Yellow,
    /// Physical examination.
    Red,
}

impl Lane {
    /// The lane for a risk score in [0, 1] under the default thresholds
    /// ([`LaneThresholds`]; sites may draw their own).
    pub fn for_risk(risk: f32) -> Self {
        LaneThresholds::default().lane(risk)
    }

    /// Lower-case name, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Green => "green",
            Lane::Yellow => "yellow",
            Lane::Red => "red",
        }
    }
}

/// A rectangle in scan pixel coordinates (column `x`, row `y`, from the top-left corner).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// Left column.
    pub x: u32,
    /// Top row.
    pub y: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// What kind of discrepancy a finding reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// The concealment model sees a dense object that does not belong in the surrounding cargo.
    ConcealedObject,
    /// No advance declaration matches the scan: the whole load is undeclared.
    NoDeclaration,
    /// The container code read at the bay differs from the declared one.
    ContainerCodeMismatch,
    /// The container code read at the bay fails its ISO 6346 check digit (or its form).
    ContainerCodeInvalid,
    /// The container was declared empty but holds goods.
    DeclaredEmptyNotEmpty,
    /// The estimated cargo mass differs from the declared gross mass beyond tolerance.
    MassMismatch,
    /// Material the declared goods cannot explain (e.g. metal in a load of textiles).
    MaterialMismatch,
    /// Mass in a part of the container where, by the declared volume, nothing should be.
    UndeclaredRegion,
    /// The load fills much more or much less of the container than the declared goods would.
    FillMismatch,
}

/// One thing an officer should look at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    /// What was found.
    pub kind: FindingKind,
    /// Confidence in [0, 1].
    pub score: f32,
    /// Where, if the finding has a place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<Region>,
    /// A sentence an officer understands.
    pub message: String,
}

/// Which model ran, and what it said about the scan as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRun {
    /// Model name and version, e.g. `concealment-v1`.
    pub name: String,
    /// sha256 of the ONNX file that ran.
    pub sha256: String,
    /// Highest per-pixel concealment probability.
    pub max_probability: f32,
    /// Fraction of the scan above the model's threshold.
    pub flagged_fraction: f32,
    /// Time spent in ONNX Runtime, milliseconds.
    pub inference_ms: f32,
}

/// Checks that a score lies in [0, 1].
pub(crate) fn unit(field: &str, v: f32) -> Result<(), ProtocolError> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(ProtocolError::invalid(
            field,
            format!("must be in [0, 1], got {v}"),
        ))
    }
}

/// A bay's report about one scan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanReport {
    /// Always [`REPORT_CONTRACT`].
    pub contract: String,
    /// Chosen by the agent, stable across retries.
    pub report_id: ReportId,
    /// The scan this report is about.
    pub scan_id: ScanId,
    /// The bay that scanned.
    pub bay: BayId,
    /// When the scan was taken.
    pub captured_at: DateTime<Utc>,
    /// When the agent finished analysing it.
    pub analysed_at: DateTime<Utc>,
    /// Container code from the scanner, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_code: Option<ContainerCode>,
    /// Declaration reference from the scanner, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declaration_ref: Option<String>,
    /// Scan width in pixels (columns, along the truck).
    pub width: u32,
    /// Scan height in pixels (rows).
    pub height: u32,
    /// The model that ran and its scan-wide output.
    pub model: ModelRun,
    /// What an officer should look at.
    pub findings: Vec<Finding>,
    /// Overall risk in [0, 1].
    pub risk: f32,
    /// The lane that risk puts the load in.
    pub lane: Lane,
    /// How the risk was reached (absent in reports from agents before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<RiskBreakdown>,
}

impl ScanReport {
    /// Risk from the scan alone, without the declaration term: what the server combines with
    /// its own pre-arrival score.
    pub fn scan_risk(&self) -> f32 {
        self.breakdown.as_ref().map_or(self.risk, |b| b.scan_risk)
    }
}

impl ScanReport {
    /// Parses and checks a report received over the wire.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let report: Self = serde_json::from_slice(bytes).map_err(|e| ProtocolError::Malformed {
            document: "report",
            reason: e.to_string(),
        })?;
        report.validate()?;
        Ok(report)
    }

    fn validate(&self) -> Result<(), ProtocolError> {
        if self.contract != REPORT_CONTRACT {
            return Err(ProtocolError::UnsupportedContract {
                found: self.contract.clone(),
                expected: REPORT_CONTRACT,
            });
        }
        unit("risk", self.risk)?;
        unit("model.max_probability", self.model.max_probability)?;
        unit("model.flagged_fraction", self.model.flagged_fraction)?;
        if self.width == 0 || self.height == 0 {
            return Err(ProtocolError::invalid(
                "width",
                "scan size must be non-zero",
            ));
        }
        if self.findings.len() > 1000 {
            return Err(ProtocolError::invalid(
                "findings",
                "more than 1000 findings",
            ));
        }
        for (i, f) in self.findings.iter().enumerate() {
            unit(&format!("findings[{i}].score"), f.score)?;
            if f.message.len() > 1000 {
                return Err(ProtocolError::invalid(
                    format!("findings[{i}].message"),
                    "longer than 1000 bytes",
                ));
            }
            if let Some(r) = f.region {
                let inside = u64::from(r.x) + u64::from(r.width) <= u64::from(self.width)
                    && u64::from(r.y) + u64::from(r.height) <= u64::from(self.height);
                if !inside {
                    return Err(ProtocolError::invalid(
                        format!("findings[{i}].region"),
                        "lies outside the scan",
                    ));
                }
            }
        }
        let thresholds = match &self.breakdown {
            Some(b) => {
                b.validate()?;
                b.thresholds
            }
            None => LaneThresholds::default(),
        };
        if self.lane != thresholds.lane(self.risk) {
            return Err(ProtocolError::invalid(
                "lane",
                format!(
                    "{} does not match risk {} (expected {})",
                    self.lane.as_str(),
                    self.risk,
                    thresholds.lane(self.risk).as_str()
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ScanReport {
        ScanReport {
            contract: REPORT_CONTRACT.into(),
            report_id: ReportId::parse("r-1").unwrap(),
            scan_id: ScanId::parse("BAY01-1").unwrap(),
            bay: BayId::parse("BAY01").unwrap(),
            captured_at: "2026-11-25T12:00:00Z".parse().unwrap(),
            analysed_at: "2026-11-25T12:00:02Z".parse().unwrap(),
            container_code: None,
            declaration_ref: None,
            width: 100,
            height: 50,
            model: ModelRun {
                name: "concealment-v1".into(),
                sha256: "00".into(),
                max_probability: 0.9,
                flagged_fraction: 0.01,
                inference_ms: 3.0,
            },
            findings: vec![Finding {
                kind: FindingKind::ConcealedObject,
                score: 0.9,
                region: Some(Region {
                    x: 10,
                    y: 10,
                    width: 5,
                    height: 5,
                }),
                message: "dense object".into(),
            }],
            risk: 0.9,
            lane: Lane::Red,
            breakdown: None,
        }
    }

    #[test]
    fn a_report_round_trips_through_json() {
        let r = sample();
        let json = serde_json::to_vec(&r).unwrap();
        assert_eq!(ScanReport::from_json(&json).unwrap(), r);
    }

    #[test]
    fn lanes_follow_risk_thresholds() {
        assert_eq!(Lane::for_risk(0.0), Lane::Green);
        assert_eq!(Lane::for_risk(0.5), Lane::Yellow);
        assert_eq!(Lane::for_risk(0.7), Lane::Red);
    }

    #[test]
    fn inconsistent_reports_are_refused() {
        let mut r = sample();
        r.lane = Lane::Green;
        let err = ScanReport::from_json(&serde_json::to_vec(&r).unwrap()).unwrap_err();
        assert!(err.to_string().contains("does not match risk"));
        let mut r = sample();
        r.findings[0].region = Some(Region {
            x: 99,
            y: 0,
            width: 5,
            height: 5,
        });
        let err = ScanReport::from_json(&serde_json::to_vec(&r).unwrap()).unwrap_err();
        assert!(err.to_string().contains("outside the scan"));
        let mut r = sample();
        r.risk = 1.5;
        let err = ScanReport::from_json(&serde_json::to_vec(&r).unwrap()).unwrap_err();
        assert!(err.to_string().contains("invalid risk"));
    }

    #[test]
    fn unknown_report_fields_are_refused() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v["admin"] = serde_json::json!(true);
        let err = ScanReport::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("unknown field `admin`"));
    }
}
