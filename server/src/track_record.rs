//! The track record of each finding kind per bay and model release: of the judged cases
//! (examined or closed) whose report had findings of that kind, how many were confirmed. The
//! review queue shows it beside each case's findings and can filter on the findings this model
//! often gets wrong at this bay (issue "feedback loop", item 4): a supervisor sees which alarms
//! deserve the first look and which ones the bay keeps refuting.
//!
//! A kind is **often wrong** at a bay for a release when at least [`MIN_JUDGED`] of its cases
//! were judged and at most [`OFTEN_WRONG_RATE`] of them confirmed. Fewer judged cases say too
//! little to call it either way; the rate is then shown with its count but not flagged.

use std::collections::{BTreeMap, HashMap};

use crate::outcomes::KindFigures;
use crate::store::stats::OutcomeRow;

/// Judged cases a kind needs at a bay before it can be called often wrong.
pub const MIN_JUDGED: u64 = 5;
/// Largest confirmation rate of a kind called often wrong.
pub const OFTEN_WRONG_RATE: f64 = 0.25;

/// Per (bay, model sha256): per finding kind, how its cases were judged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrackRecord {
    by: HashMap<(String, String), BTreeMap<String, KindFigures>>,
}

impl TrackRecord {
    /// From the outcome rows of a period (`Store::outcome_rows`).
    pub fn compute(rows: &[OutcomeRow]) -> Self {
        let mut by: HashMap<(String, String), BTreeMap<String, KindFigures>> = HashMap::new();
        // Judged as the outcome figures judge them (`crate::outcomes`).
        for r in rows {
            let Some(confirmed) = r.judgement() else {
                continue;
            };
            let kinds = by
                .entry((r.bay.clone(), r.model_sha256.clone()))
                .or_default();
            for kind in &r.finding_kinds {
                KindFigures::tally(kinds, kind, confirmed);
            }
        }
        Self { by }
    }

    /// How kind `kind` fared at `bay` with the model release `model_sha256`.
    pub fn kind(&self, bay: &str, model_sha256: &str, kind: &str) -> Option<&KindFigures> {
        self.by
            .get(&(bay.to_owned(), model_sha256.to_owned()))?
            .get(kind)
    }

    /// Whether the release often gets kind `kind` wrong at `bay` (see the module docs).
    pub fn often_wrong(&self, bay: &str, model_sha256: &str, kind: &str) -> bool {
        self.kind(bay, model_sha256, kind).is_some_and(|k| {
            k.judged >= MIN_JUDGED && k.confirmation_rate.is_some_and(|r| r <= OFTEN_WRONG_RATE)
        })
    }

    /// Every (bay, model sha256, kind figures), by bay, model and kind.
    pub fn rows(&self) -> Vec<(&str, &str, &KindFigures)> {
        let mut out: Vec<(&str, &str, &KindFigures)> = self
            .by
            .iter()
            .flat_map(|((bay, sha), kinds)| {
                kinds.values().map(move |k| (bay.as_str(), sha.as_str(), k))
            })
            .collect();
        out.sort_by(|a, b| (a.0, a.1, &a.2.kind).cmp(&(b.0, b.1, &b.2.kind)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(bay: &str, sha: &str, status: &str, exams: &[&str], kinds: &[&str]) -> OutcomeRow {
        OutcomeRow {
            case_id: 0,
            bay: bay.into(),
            lane: "red".into(),
            status: status.into(),
            model_name: "m".into(),
            model_sha256: sha.into(),
            captured_at: 0,
            examinations: exams.iter().map(|s| s.to_string()).collect(),
            finding_kinds: kinds.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_kind_refuted_again_and_again_at_one_bay_is_often_wrong_there_only() {
        let mut rows = Vec::new();
        // BAY01: five mass findings judged, one confirmed (20 %); one still open.
        rows.push(row(
            "BAY01",
            "a",
            "seized",
            &["discrepancy"],
            &["mass_mismatch"],
        ));
        for _ in 0..4 {
            rows.push(row(
                "BAY01",
                "a",
                "released",
                &["consistent"],
                &["mass_mismatch"],
            ));
        }
        rows.push(row("BAY01", "a", "open", &[], &["mass_mismatch"]));
        // BAY02, same release: two of five confirmed (40 %).
        for n in 0..5 {
            let exam = if n < 2 { "discrepancy" } else { "consistent" };
            rows.push(row("BAY02", "a", "released", &[exam], &["mass_mismatch"]));
        }
        // BAY01 with another release: four refuted, too few to judge.
        for _ in 0..4 {
            rows.push(row("BAY01", "b", "released", &[], &["mass_mismatch"]));
        }
        let t = TrackRecord::compute(&rows);
        let k = t.kind("BAY01", "a", "mass_mismatch").unwrap();
        assert_eq!((k.judged, k.confirmed, k.refuted), (5, 1, 4));
        assert_eq!(k.confirmation_rate, Some(0.2));
        assert!(t.often_wrong("BAY01", "a", "mass_mismatch"));
        assert!(!t.often_wrong("BAY02", "a", "mass_mismatch"));
        assert!(!t.often_wrong("BAY01", "b", "mass_mismatch"));
        assert!(!t.often_wrong("BAY01", "a", "concealed_object"));
        assert_eq!(t.rows().len(), 3);
    }
}
