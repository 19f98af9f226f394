//! Risk and lane, shared by the bay and the server so that both compute the same figures
//! (TFA Art. 7.4 risk management; lanes as in ASYCUDA: green release, yellow documentary check,
//! red physical examination).
//!
//! **Scan risk** combines the findings as independent evidence: `s = 1 − Π(1 − score)`. A
//! missing declaration is not scan evidence; it enters through the declaration term.
//!
//! **Case risk** adds the declaration's pre-arrival risk `pre` (the server scores it when the
//! declaration is lodged): `risk = 1 − (1 − s)·(1 − ½·pre)`. The scan dominates (it sees the
//! goods); a risky declaration lifts a clean-looking scan by at most half its pre-arrival score.
//! A scan with **no matching declaration** counts as `pre =` [`UNDECLARED_PRE_RISK`].
//!
//! **Breakdown.** Every term `w` (a finding's score, or `½·pre`) gets the share
//! `risk · ln(1 − w) / Σ ln(1 − w)`. The shares add up to the risk exactly and do not depend on
//! the order of the terms, so an officer sees which finding contributed how much.

use serde::{Deserialize, Serialize};

use crate::ProtocolError;
use crate::report::{Finding, FindingKind, Lane, unit};

/// Pre-arrival risk of a scan that no declaration matches: goods arrived that nobody declared.
pub const UNDECLARED_PRE_RISK: f32 = 0.8;
/// How much of the pre-arrival risk carries into the case risk.
pub const DECLARATION_WEIGHT: f32 = 0.5;
/// Largest term used in the shares (a term of exactly 1 would take every share).
const MAX_TERM: f32 = 0.9999;

/// Where a site draws its lanes. Defaults: yellow from 0.35, red from 0.7.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaneThresholds {
    /// Risk from which a load goes to the yellow lane (documentary check).
    pub yellow: f32,
    /// Risk from which a load goes to the red lane (physical examination).
    pub red: f32,
}

impl Default for LaneThresholds {
    fn default() -> Self {
        Self {
            yellow: 0.35,
            red: 0.7,
        }
    }
}

impl LaneThresholds {
    /// Checks `0 < yellow < red ≤ 1`.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        if self.yellow > 0.0 && self.yellow < self.red && self.red <= 1.0 {
            Ok(())
        } else {
            Err(ProtocolError::invalid(
                "lanes",
                format!(
                    "thresholds must satisfy 0 < yellow < red <= 1, got yellow {} and red {}",
                    self.yellow, self.red
                ),
            ))
        }
    }

    /// The lane for a risk in [0, 1].
    pub fn lane(&self, risk: f32) -> Lane {
        if risk >= self.red {
            Lane::Red
        } else if risk >= self.yellow {
            Lane::Yellow
        } else {
            Lane::Green
        }
    }
}

/// What is known of the declaration's pre-arrival risk.
#[derive(Debug, Clone, PartialEq)]
pub enum PreArrival {
    /// A declaration matched, scored by the server with these reasons.
    Scored(f32, Vec<String>),
    /// No declaration matched.
    Undeclared,
    /// A declaration matched but its pre-arrival score is not known (e.g. read from a file).
    Unscored,
}

/// One term of the risk and its share of the total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contribution {
    /// `declaration`, or the finding kind (`concealed_object`, `mass_mismatch`, ...).
    pub source: String,
    /// In words, for the officer.
    pub label: String,
    /// The term's own weight in [0, 1].
    pub weight: f32,
    /// Its share of the risk; the shares add up to the risk.
    pub share: f32,
}

/// How a report's risk was reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskBreakdown {
    /// Risk from the scan's findings alone.
    pub scan_risk: f32,
    /// The declaration's pre-arrival risk as used (`null` when unknown).
    #[serde(default)]
    pub declaration_risk: Option<f32>,
    /// The terms, largest share first.
    pub contributions: Vec<Contribution>,
    /// The lane thresholds in force at the bay.
    pub thresholds: LaneThresholds,
}

impl RiskBreakdown {
    /// Checks ranges (values from the wire).
    pub fn validate(&self) -> Result<(), ProtocolError> {
        self.thresholds.validate()?;
        unit("breakdown.scan_risk", self.scan_risk)?;
        if let Some(d) = self.declaration_risk {
            unit("breakdown.declaration_risk", d)?;
        }
        if self.contributions.len() > 1001 {
            return Err(ProtocolError::invalid(
                "breakdown.contributions",
                "more than 1001 terms",
            ));
        }
        for (i, c) in self.contributions.iter().enumerate() {
            unit(&format!("breakdown.contributions[{i}].weight"), c.weight)?;
            unit(&format!("breakdown.contributions[{i}].share"), c.share)?;
            if c.label.len() > 1000 || c.source.len() > 64 {
                return Err(ProtocolError::invalid(
                    format!("breakdown.contributions[{i}]"),
                    "label or source too long",
                ));
            }
        }
        Ok(())
    }
}

/// Scan risk from findings: `1 − Π(1 − score)`, a missing declaration left out.
pub fn scan_risk(findings: &[Finding]) -> f32 {
    let keep: f32 = findings
        .iter()
        .filter(|f| f.kind != FindingKind::NoDeclaration)
        .map(|f| 1.0 - f.score.clamp(0.0, 1.0))
        .product();
    (1.0 - keep).clamp(0.0, 1.0)
}

/// Case risk from scan risk and pre-arrival risk (`None`: no declaration matched).
pub fn case_risk(scan: f32, pre: Option<f32>) -> f32 {
    let pre = pre.unwrap_or(UNDECLARED_PRE_RISK).clamp(0.0, 1.0);
    (1.0 - (1.0 - scan.clamp(0.0, 1.0)) * (1.0 - DECLARATION_WEIGHT * pre)).clamp(0.0, 1.0)
}

fn kind_label(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::ConcealedObject => "concealed_object",
        FindingKind::NoDeclaration => "no_declaration",
        FindingKind::ContainerCodeMismatch => "container_code_mismatch",
        FindingKind::ContainerCodeInvalid => "container_code_invalid",
        FindingKind::DeclaredEmptyNotEmpty => "declared_empty_not_empty",
        FindingKind::MassMismatch => "mass_mismatch",
        FindingKind::MaterialMismatch => "material_mismatch",
        FindingKind::UndeclaredRegion => "undeclared_region",
        FindingKind::FillMismatch => "fill_mismatch",
    }
}

/// The case risk with its breakdown.
pub fn assess(
    findings: &[Finding],
    pre: &PreArrival,
    thresholds: LaneThresholds,
) -> (f32, RiskBreakdown) {
    let scan = scan_risk(findings);
    let declaration_risk = match pre {
        PreArrival::Scored(p, _) => Some(p.clamp(0.0, 1.0)),
        PreArrival::Undeclared => Some(UNDECLARED_PRE_RISK),
        PreArrival::Unscored => None,
    };
    let risk = case_risk(scan, Some(declaration_risk.unwrap_or(0.0)));
    let mut terms: Vec<(String, String, f32)> = findings
        .iter()
        .filter(|f| f.kind != FindingKind::NoDeclaration && f.score > 0.0)
        .map(|f| {
            let label: String = f.message.chars().take(200).collect();
            (
                kind_label(f.kind).to_owned(),
                label,
                f.score.clamp(0.0, 1.0),
            )
        })
        .collect();
    match pre {
        PreArrival::Scored(p, reasons) if *p > 0.0 => terms.push((
            "declaration".into(),
            format!(
                "pre-arrival risk of the declaration: {}",
                reasons.join("; ")
            ),
            DECLARATION_WEIGHT * p.clamp(0.0, 1.0),
        )),
        PreArrival::Undeclared => terms.push((
            "declaration".into(),
            "no advance declaration matches this scan".into(),
            DECLARATION_WEIGHT * UNDECLARED_PRE_RISK,
        )),
        _ => {}
    }
    let logs: Vec<f32> = terms
        .iter()
        .map(|t| (1.0 - t.2.min(MAX_TERM)).ln())
        .collect();
    let total: f32 = logs.iter().sum();
    let mut contributions: Vec<Contribution> = terms
        .into_iter()
        .zip(&logs)
        .map(|((source, label, weight), l)| Contribution {
            source,
            label,
            weight,
            share: if total < 0.0 {
                (risk * l / total).clamp(0.0, 1.0)
            } else {
                0.0
            },
        })
        .collect();
    contributions.sort_by(|a, b| b.share.total_cmp(&a.share));
    (
        risk,
        RiskBreakdown {
            scan_risk: scan,
            declaration_risk,
            contributions,
            thresholds,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(kind: FindingKind, score: f32) -> Finding {
        Finding {
            kind,
            score,
            region: None,
            message: format!("{kind:?}"),
        }
    }

    #[test]
    fn case_risk_is_led_by_the_scan_and_lifted_by_the_declaration() {
        assert_eq!(case_risk(0.0, Some(0.0)), 0.0);
        assert!((case_risk(0.0, Some(0.6)) - 0.3).abs() < 1e-6);
        assert!((case_risk(0.9, Some(0.0)) - 0.9).abs() < 1e-6);
        assert!((case_risk(0.0, None) - 0.4).abs() < 1e-6);
        assert!(case_risk(0.8, Some(1.0)) <= 1.0);
    }

    #[test]
    fn shares_add_up_to_the_risk_and_rank_the_terms() {
        let findings = [
            finding(FindingKind::ConcealedObject, 0.9),
            finding(FindingKind::MassMismatch, 0.5),
        ];
        let pre = PreArrival::Scored(0.4, vec!["tobacco".into()]);
        let (risk, b) = assess(&findings, &pre, LaneThresholds::default());
        let expected = 1.0 - 0.1 * 0.5 * 0.8;
        assert!((risk - expected).abs() < 1e-6, "{risk}");
        assert!((b.scan_risk - 0.95).abs() < 1e-6);
        let sum: f32 = b.contributions.iter().map(|c| c.share).sum();
        assert!((sum - risk).abs() < 1e-5, "{sum} vs {risk}");
        assert_eq!(b.contributions[0].source, "concealed_object");
        assert_eq!(b.contributions[2].source, "declaration");
        assert!(b.contributions[2].label.contains("tobacco"));
    }

    #[test]
    fn a_missing_declaration_counts_once_through_the_declaration_term() {
        let findings = [finding(FindingKind::NoDeclaration, 0.8)];
        let (risk, b) = assess(
            &findings,
            &PreArrival::Undeclared,
            LaneThresholds::default(),
        );
        assert_eq!(b.scan_risk, 0.0);
        assert!((risk - 0.4).abs() < 1e-6);
        assert_eq!(b.contributions.len(), 1);
        assert_eq!(b.contributions[0].source, "declaration");
        assert_eq!(LaneThresholds::default().lane(risk), Lane::Yellow);
        let (clean, b) = assess(&[], &PreArrival::Unscored, LaneThresholds::default());
        assert_eq!(clean, 0.0);
        assert!(b.contributions.is_empty());
    }

    #[test]
    fn sites_draw_their_own_lanes() {
        let strict = LaneThresholds {
            yellow: 0.2,
            red: 0.5,
        };
        strict.validate().unwrap();
        assert_eq!(strict.lane(0.3), Lane::Yellow);
        assert_eq!(LaneThresholds::default().lane(0.3), Lane::Green);
        assert_eq!(strict.lane(0.5), Lane::Red);
        let bad = LaneThresholds {
            yellow: 0.8,
            red: 0.5,
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("yellow < red")
        );
    }
}
