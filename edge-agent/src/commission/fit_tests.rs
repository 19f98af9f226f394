//! Tests of the cleared-scan fit ([`super::fit`]).

use baylens_protocol::Declaration;

use super::*;
use crate::calibration::Calibration;
use crate::calibration::tests::{estimate, simulated};

/// A load the model flags at every threshold below index `flagged_up_to` (no cargo: the
/// manifest checks have nothing to say).
fn load(flagged_up_to: usize) -> Analysed {
    let declaration = Declaration::from_json(
        include_str!("../../../assets/declarations/example.json"),
        "2027-05-30T00:00:00Z".parse().unwrap(),
    )
    .unwrap();
    Analysed {
        scan_id: "s".into(),
        declaration,
        cargo: None,
        width: 10,
        pitch_mm: [10.0; 2],
        flagged_at: (0..THRESHOLDS.len()).map(|i| i < flagged_up_to).collect(),
    }
}

#[test]
fn the_threshold_moves_up_only_as_far_as_the_target_needs() {
    let lanes = LaneThresholds::default();
    let d = default_threshold_index();
    // 100 loads, 3 flagged at the default threshold, 1 of them at the next step too: 1 %
    // allows that one, so the threshold moves one step and no further.
    let mut scans: Vec<Analysed> = (0..97).map(|_| load(0)).collect();
    scans.extend([load(d + 1), load(d + 1), load(d + 2)]);
    let fit1 = fit(&scans, 0.01, lanes);
    assert_eq!(fit1.threshold_index, d + 1, "{:?}", fit1.lines);
    assert!(fit1.flagged_share <= 0.01);
    // A target of 3 % needs nothing moved, and nothing is tightened.
    let fit3 = fit(&scans, 0.03, lanes);
    assert_eq!(fit3.threshold_index, d);
    assert_eq!(fit3.tolerances, Tolerances::default());
}

#[test]
fn site_sections_replace_earlier_ones() {
    let fit = SiteFit {
        tolerances: Tolerances::default(),
        threshold_index: 9,
        lines: vec![],
        flagged_share: 0.0,
    };
    let base = crate::calibration::SCANNER_SIM;
    let once = with_site_sections(base, &fit, "first");
    let twice = with_site_sections(&once, &fit, "second");
    assert_eq!(twice.matches("[tolerances]").count(), 1);
    assert!(twice.contains("second") && !twice.contains("first"));
    let c = Calibration::parse(&twice).unwrap();
    assert_eq!(c.operating_point().threshold, THRESHOLDS[9]);
    assert_eq!(c.tolerances(), Tolerances::default());
}

/// A simulated honest load whose estimated mass lies `excess` (relative, beyond the absolute
/// tolerance) above what was declared, and that the model flags below `flagged_up_to`.
fn heavy(g: &scanner_sim::Generated, excess: f64, flagged_up_to: usize) -> Analysed {
    let mut cargo = estimate(g).expect("a container");
    cargo.mass_kg =
        g.declaration.gross_mass_kg * (1.0 + excess) + Tolerances::default().mass_absolute_kg;
    Analysed {
        scan_id: format!("{excess}-{flagged_up_to}"),
        declaration: g.declaration.clone(),
        cargo: Some(cargo),
        width: g.scan.width as usize,
        pitch_mm: [g.scan.pitch_mm, g.scan.pitch_vertical_mm],
        flagged_at: (0..THRESHOLDS.len()).map(|i| i < flagged_up_to).collect(),
    }
}

#[test]
fn a_loosening_a_later_one_made_redundant_is_taken_back() {
    let lanes = LaneThresholds::default();
    let d = default_threshold_index();
    let g = simulated(scanner_sim::Scenario::Honest, 51, 0);
    // One load flagged by the model and weighing 50 % over, left by a greedy pass at mass
    // 0.9 (say, for another load later cleared otherwise): 0.5 is all it needs.
    let mut scans: Vec<Analysed> = (0..99).map(|_| heavy(&g, 0.0, 0)).collect();
    scans.push(heavy(&g, 0.5, d + 1));
    let (tol, i) = tightened(
        &scans,
        0,
        lanes,
        (
            Tolerances {
                mass_relative: 0.9,
                ..Tolerances::default()
            },
            d + 1,
        ),
    );
    assert_eq!(i, d + 1, "the model still flags it below");
    assert!((0.5..0.51).contains(&tol.mass_relative), "{tol:?}");
    // Allowed one flagged load, both loosenings go.
    let (tol, i) = tightened(&scans, 1, lanes, (tol, i));
    assert_eq!((tol, i), (Tolerances::default(), d));
}
