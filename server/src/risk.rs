//! Risk scoring (TFA Art. 7.4 risk management).
//!
//! **Pre-arrival risk**, computed when a declaration is lodged, from rules a customs risk
//! analyst would recognise. Each rule that fires adds a reason and a weight `w`; the score is
//! `1 − Π(1 − w)`, so independent indicators accumulate but never exceed 1.
//!
//! | rule | weight |
//! |---|---|
//! | sensitive HS chapter: 93 arms 0.5, 24 tobacco 0.35, 71 precious metals 0.3, 22 beverages 0.25, 30 pharmaceuticals 0.2 | per item, the highest counts |
//! | vague goods description ("general cargo", "various", "FAK", "personal effects", "samples", "goods") | 0.2 |
//! | container declared empty (a classic cover for smuggling) | 0.2 |
//! | lodged less than 2 h before expected arrival | 0.15 |
//! | first declaration from this declarant | 0.1 |
//! | implausible mass per package (< 0.05 kg or > 3 t) | 0.1 |
//! | gross mass above a 20'/40' container's 30 480 kg maximum | 0.2 |
//!
//! **Case risk**, when a bay's report arrives: `1 − (1 − scan) · (1 − 0.5 · pre)`, the formula
//! the bays use too ([`baylens_protocol::risk`]). The scan dominates (it sees the goods); a risky
//! declaration lifts a clean-looking scan by at most half its pre-arrival score. A scan with
//! **no matching declaration** is treated as `pre = 0.8`: goods arrived that nobody declared.

use baylens_protocol::Declaration;
use chrono::{DateTime, Utc};

/// Pre-arrival score and the reasons behind it.
pub fn pre_arrival(
    d: &Declaration,
    prior_declarations_by_declarant: i64,
    lodged_at: DateTime<Utc>,
) -> (f64, Vec<String>) {
    let mut reasons = Vec::new();
    let mut keep = 1.0;
    let mut fire = |w: f64, why: String| {
        keep *= 1.0 - w;
        reasons.push(why);
    };
    let sensitive = d
        .items
        .iter()
        .filter_map(|i| {
            let (w, what): (f64, &str) = match i.chapter() {
                93 => (0.5, "arms and ammunition"),
                24 => (0.35, "tobacco"),
                71 => (0.3, "precious metals or stones"),
                22 => (0.25, "beverages and spirits"),
                30 => (0.2, "pharmaceuticals"),
                _ => return None,
            };
            Some((w, what, i.chapter()))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((w, what, ch)) = sensitive {
        fire(w, format!("sensitive goods: HS chapter {ch:02} ({what})"));
    }
    const VAGUE: [&str; 7] = [
        "general cargo",
        "various",
        "fak",
        "personal effects",
        "samples",
        "goods",
        "mixed",
    ];
    if let Some(item) = d.items.iter().find(|i| {
        let desc = i.description.trim().to_lowercase();
        VAGUE
            .iter()
            .any(|v| desc == *v || desc.starts_with(&format!("{v} ")))
    }) {
        fire(0.2, format!("vague description {:?}", item.description));
    }
    if d.declared_empty {
        fire(0.2, "container declared empty".into());
    }
    let notice = d.expected_arrival - lodged_at;
    if notice < chrono::Duration::hours(2) {
        fire(
            0.15,
            format!(
                "lodged only {} min before expected arrival",
                notice.num_minutes().max(0)
            ),
        );
    }
    if prior_declarations_by_declarant == 0 {
        fire(0.1, format!("first declaration from {}", d.declarant.id));
    }
    if let Some(item) = d.items.iter().find(|i| {
        let per = i.gross_mass_kg / f64::from(i.packages.max(1));
        !(0.05..=3000.0).contains(&per)
    }) {
        fire(
            0.1,
            format!(
                "implausible {:.2} kg per package for {:?}",
                item.gross_mass_kg / f64::from(item.packages.max(1)),
                item.description
            ),
        );
    }
    if d.container_code.is_some() && d.gross_mass_kg > 30_480.0 {
        fire(
            0.2,
            format!(
                "{:.0} kg exceeds a container's 30480 kg maximum gross mass",
                d.gross_mass_kg
            ),
        );
    }
    (1.0 - keep, reasons)
}

/// Case risk from the bay's scan risk and the declaration's pre-arrival risk (if any).
pub fn case_risk(scan: f64, pre: Option<f64>) -> f64 {
    f64::from(baylens_protocol::risk::case_risk(
        scan as f32,
        pre.map(|p| p as f32),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(items: serde_json::Value, extra: serde_json::Value) -> Declaration {
        let mut v = serde_json::json!({
            "contract": "baylens.declaration/1", "reference": "R1",
            "declarant": {"name": "A", "id": "T1"}, "office": "KEMBA",
            "container_code": "CSQU3054383",
            "expected_arrival": "2026-11-27T10:00:00Z",
            "gross_mass_kg": 1000.0, "items": items
        });
        for (k, val) in extra.as_object().unwrap() {
            v[k] = val.clone();
        }
        Declaration::from_json(&v.to_string(), "2026-11-26T00:00:00Z".parse().unwrap()).unwrap()
    }

    #[test]
    fn a_plain_declaration_from_a_known_trader_is_low_risk() {
        let d = decl(
            serde_json::json!([{"hs_code": "520812", "description": "Cotton fabric", "packages": 50, "gross_mass_kg": 1000.0}]),
            serde_json::json!({}),
        );
        let (score, reasons) = pre_arrival(&d, 12, "2026-11-26T00:00:00Z".parse().unwrap());
        assert_eq!(score, 0.0, "{reasons:?}");
    }

    #[test]
    fn indicators_accumulate_and_explain_themselves() {
        let d = decl(
            serde_json::json!([{"hs_code": "240220", "description": "General cargo", "packages": 50, "gross_mass_kg": 1000.0}]),
            serde_json::json!({}),
        );
        let lodged = "2026-11-27T09:30:00Z".parse().unwrap();
        let (score, reasons) = pre_arrival(&d, 0, lodged);
        assert_eq!(reasons.len(), 4, "{reasons:?}");
        assert!(reasons[0].contains("tobacco"));
        let expected = 1.0 - (0.65 * 0.8 * 0.85 * 0.9);
        assert!((score - expected).abs() < 1e-9);
    }

    #[test]
    fn case_risk_is_the_protocols() {
        assert!((case_risk(0.0, Some(0.6)) - 0.3).abs() < 1e-6);
        assert!((case_risk(0.0, None) - 0.4).abs() < 1e-6);
    }
}
