//! Outcomes: how the risk lanes and the model's findings fared once people looked, computed from
//! decisions and examination results (issue "feedback loop"). For a head of risk management:
//!
//! - **hit rate**: of the red- and yellow-lane cases that were examined (an examination result
//!   recorded, or a seizure), the share where a discrepancy was found;
//! - **false-alarm share**: of the red- and yellow-lane cases closed (released or seized), the
//!   share released without any discrepancy recorded;
//! - **examinations per seizure**: cases examined, of every lane, per case seized;
//! - **green-lane discrepancies**: green cases examined (random checks) that found one, the
//!   misses the lanes let through;
//! - per **finding kind**: cases whose findings of that kind were confirmed (a discrepancy was
//!   found) or refuted (examined clean, or released without a discrepancy). An examination
//!   judges the case, so it counts once per kind and case, however many findings of the kind.
//!
//! Grouped by bay, by model release (name and sha256) and by ISO week, with the weeks in which
//! a model release was first seen, so a change in the trend can be told from a new model.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::store::stats::OutcomeRow;
use crate::store::{from_ms, ms_to_rfc3339};

/// Whether a case's examinations or status found a discrepancy (one recorded, or a seizure):
/// its findings stand confirmed.
pub fn discrepancy_found(status: &str, examinations: &[String]) -> bool {
    status == "seized" || examinations.iter().any(|e| e == "discrepancy")
}

impl OutcomeRow {
    fn flagged(&self) -> bool {
        self.lane == "red" || self.lane == "yellow"
    }
    fn seized(&self) -> bool {
        self.status == "seized"
    }
    fn discrepancy(&self) -> bool {
        discrepancy_found(&self.status, &self.examinations)
    }
    fn examined(&self) -> bool {
        self.seized() || !self.examinations.is_empty()
    }
    fn closed(&self) -> bool {
        self.status == "released" || self.seized()
    }
    /// Whether the case's findings stand refuted: looked at and nothing found.
    fn clean(&self) -> bool {
        !self.discrepancy() && (self.examined() || self.closed())
    }
    /// Whether the case's findings were judged, and if so, confirmed.
    pub(crate) fn judgement(&self) -> Option<bool> {
        if self.discrepancy() {
            Some(true)
        } else {
            self.clean().then_some(false)
        }
    }
}

/// The figures of one group of cases.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Cases.
    pub cases: u64,
    /// Red- and yellow-lane cases.
    pub flagged: u64,
    /// Of those, examined.
    pub flagged_examined: u64,
    /// Of those, with a discrepancy found.
    pub flagged_hits: u64,
    /// `flagged_hits / flagged_examined`.
    pub hit_rate: Option<f64>,
    /// Red- and yellow-lane cases released or seized.
    pub flagged_closed: u64,
    /// Of those, released without any discrepancy.
    pub false_alarms: u64,
    /// `false_alarms / flagged_closed`.
    pub false_alarm_share: Option<f64>,
    /// Cases examined, every lane.
    pub examined: u64,
    /// Cases seized.
    pub seizures: u64,
    /// `examined / seizures`.
    pub examinations_per_seizure: Option<f64>,
    /// Green-lane cases examined.
    pub green_examined: u64,
    /// Of those, with a discrepancy found (misses caught by random checks).
    pub green_discrepancies: u64,
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

impl Figures {
    fn add(&mut self, r: &OutcomeRow) {
        self.cases += 1;
        if r.flagged() {
            self.flagged += 1;
            if r.examined() {
                self.flagged_examined += 1;
                self.flagged_hits += u64::from(r.discrepancy());
            }
            if r.closed() {
                self.flagged_closed += 1;
                self.false_alarms += u64::from(!r.discrepancy());
            }
        } else if r.examined() {
            self.green_examined += 1;
            self.green_discrepancies += u64::from(r.discrepancy());
        }
        self.examined += u64::from(r.examined());
        self.seizures += u64::from(r.seized());
    }

    fn finish(mut self) -> Self {
        self.hit_rate = ratio(self.flagged_hits, self.flagged_examined);
        self.false_alarm_share = ratio(self.false_alarms, self.flagged_closed);
        self.examinations_per_seizure = ratio(self.examined, self.seizures);
        self
    }
}

/// Figures of one group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// `bay`, `model` or `week`.
    pub by: &'static str,
    /// The bay, the model (`name@sha256 prefix`) or the ISO week (`2026-W49`).
    pub key: String,
    /// The figures.
    #[serde(flatten)]
    pub figures: Figures,
}

/// How one finding kind fared.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KindFigures {
    /// The finding kind.
    pub kind: String,
    /// Cases with findings of this kind that were examined or closed (only those can be
    /// judged; open cases are left out).
    pub judged: u64,
    /// Of those, a discrepancy was found.
    pub confirmed: u64,
    /// Of those, examined clean or released without a discrepancy.
    pub refuted: u64,
    /// `confirmed / (confirmed + refuted)`.
    pub confirmation_rate: Option<f64>,
}

impl KindFigures {
    /// Counts one judged case with findings of `kind` in `kinds`, and its rate.
    pub(crate) fn tally(kinds: &mut BTreeMap<String, KindFigures>, kind: &str, confirmed: bool) {
        let k = kinds.entry(kind.to_owned()).or_insert_with(|| KindFigures {
            kind: kind.to_owned(),
            ..Default::default()
        });
        k.judged += 1;
        if confirmed {
            k.confirmed += 1;
        } else {
            k.refuted += 1;
        }
        k.confirmation_rate = ratio(k.confirmed, k.judged);
    }
}

/// A model release first seen in the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelChange {
    /// Model name.
    pub model: String,
    /// Its file's sha256.
    pub sha256: String,
    /// The first scan it analysed in the period (RFC 3339).
    pub first_seen: String,
    /// That scan's ISO week.
    pub week: String,
}

/// Every figure of a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcomes {
    /// All cases of the period.
    pub totals: Figures,
    /// Per bay, per model release and per ISO week (the trend, oldest first).
    pub groups: Vec<Group>,
    /// Per finding kind.
    pub kinds: Vec<KindFigures>,
    /// Model releases in the order they were first seen.
    pub model_changes: Vec<ModelChange>,
}

/// The ISO week of a time, e.g. `2026-W49`.
pub fn iso_week(ms: i64) -> String {
    use chrono::Datelike;
    let w = from_ms(ms).iso_week();
    format!("{}-W{:02}", w.year(), w.week())
}

/// A model release as groups name it: its name and the first 12 hex digits of its sha256.
pub fn model_key(name: &str, sha256: &str) -> String {
    format!("{name}@{}", sha256.chars().take(12).collect::<String>())
}

/// Computes every figure from the rows.
pub fn compute(rows: &[OutcomeRow]) -> Outcomes {
    let mut totals = Figures::default();
    let mut groups: BTreeMap<(u8, String), (&'static str, Figures)> = BTreeMap::new();
    let mut kinds: BTreeMap<String, KindFigures> = BTreeMap::new();
    let mut first_seen: BTreeMap<(String, String), i64> = BTreeMap::new();
    for r in rows {
        totals.add(r);
        for (order, by, key) in [
            (0, "bay", r.bay.clone()),
            (1, "model", model_key(&r.model_name, &r.model_sha256)),
            (2, "week", iso_week(r.captured_at)),
        ] {
            groups
                .entry((order, key))
                .or_insert_with(|| (by, Figures::default()))
                .1
                .add(r);
        }
        if let Some(confirmed) = r.judgement() {
            for kind in &r.finding_kinds {
                KindFigures::tally(&mut kinds, kind, confirmed);
            }
        }
        let seen = first_seen
            .entry((r.model_name.clone(), r.model_sha256.clone()))
            .or_insert(r.captured_at);
        *seen = (*seen).min(r.captured_at);
    }
    let mut model_changes: Vec<ModelChange> = first_seen
        .into_iter()
        .map(|((model, sha256), at)| ModelChange {
            model,
            sha256,
            first_seen: ms_to_rfc3339(at),
            week: iso_week(at),
        })
        .collect();
    model_changes.sort_by(|a, b| a.first_seen.cmp(&b.first_seen));
    Outcomes {
        totals: totals.finish(),
        groups: groups
            .into_iter()
            .map(|((_, key), (by, figures))| Group {
                by,
                key,
                figures: figures.finish(),
            })
            .collect(),
        kinds: kinds.into_values().collect(),
        model_changes,
    }
}

/// The groups as CSV, one row per group, totals first.
pub fn csv(o: &Outcomes) -> String {
    let f = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or_default();
    let mut out = String::from(
        "by,key,cases,flagged,flagged_examined,flagged_hits,hit_rate,flagged_closed,false_alarms,false_alarm_share,examined,seizures,examinations_per_seizure,green_examined,green_discrepancies\n",
    );
    let total = Group {
        by: "total",
        key: String::new(),
        figures: o.totals.clone(),
    };
    for g in std::iter::once(&total).chain(&o.groups) {
        let x = &g.figures;
        // Keys are bay ids, model names and weeks; quote them anyway, doubling any quote.
        out.push_str(&format!(
            "{},\"{}\",{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            g.by,
            g.key.replace('"', "\"\""),
            x.cases,
            x.flagged,
            x.flagged_examined,
            x.flagged_hits,
            f(x.hit_rate),
            x.flagged_closed,
            x.false_alarms,
            f(x.false_alarm_share),
            x.examined,
            x.seizures,
            f(x.examinations_per_seizure),
            x.green_examined,
            x.green_discrepancies,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, lane: &str, status: &str, exams: &[&str], kinds: &[&str]) -> OutcomeRow {
        OutcomeRow {
            case_id: id,
            bay: "BAY01".into(),
            lane: lane.into(),
            status: status.into(),
            model_name: "m".into(),
            model_sha256: "abcdef0123456789".into(),
            captured_at: 1_764_900_000_000,
            examinations: exams.iter().map(|s| s.to_string()).collect(),
            finding_kinds: kinds.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn figures_by_hand() {
        let rows = [
            row(1, "red", "seized", &["discrepancy"], &["concealed_object"]),
            row(2, "red", "released", &["consistent"], &["concealed_object"]),
            row(3, "yellow", "released", &[], &["mass_mismatch"]),
            row(4, "red", "physical_examination", &[], &["concealed_object"]),
            row(5, "green", "released", &["discrepancy"], &[]),
            row(6, "green", "open", &[], &[]),
        ];
        let o = compute(&rows);
        let t = &o.totals;
        assert_eq!(
            (t.cases, t.flagged, t.flagged_examined, t.flagged_hits),
            (6, 4, 2, 1)
        );
        assert_eq!(t.hit_rate, Some(0.5));
        assert_eq!((t.flagged_closed, t.false_alarms), (3, 2));
        assert_eq!(t.false_alarm_share, Some(2.0 / 3.0));
        assert_eq!((t.examined, t.seizures), (3, 1));
        assert_eq!(t.examinations_per_seizure, Some(3.0));
        assert_eq!((t.green_examined, t.green_discrepancies), (1, 1));
        let concealed = o
            .kinds
            .iter()
            .find(|k| k.kind == "concealed_object")
            .unwrap();
        assert_eq!(
            (concealed.judged, concealed.confirmed, concealed.refuted),
            (2, 1, 1)
        );
        let mass = o.kinds.iter().find(|k| k.kind == "mass_mismatch").unwrap();
        assert_eq!(
            (mass.confirmed, mass.refuted, mass.confirmation_rate),
            (0, 1, Some(0.0))
        );
        assert_eq!(o.model_changes.len(), 1);
        assert!(csv(&o).starts_with("by,key,"));
        assert_eq!(csv(&o).lines().count(), 1 + 1 + 3);
    }
}
