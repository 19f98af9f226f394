//! A calibration phantom: a step wedge of polyethylene, aluminium, steel and lead plates on a
//! cart, rendered by any scanner profile, with its `baylens.phantom/1` description (where each
//! step lies in the scan). What a site would build from plates it can buy; see
//! `baylens_protocol::phantom`.

use baylens_protocol::phantom::{PHANTOM_CONTRACT, PhantomDescription, PhantomStep};
use rand::Rng;

use crate::geometry::{ContainerType, Layout, cuboid};
use crate::materials::{ALUMINIUM, LEAD, Material, PLASTIC, STEEL};
use crate::render::{RenderOptions, SimulatedScan, render};
use crate::scene::{Scenario, Scene, Truth};

/// Each step's length along the truck's travel, mm.
const STEP_MM: f64 = 400.0;
/// Gap between steps, mm (the scan of air between them shows each step's edges).
const GAP_MM: f64 = 200.0;
/// Margin before the first and after the last step, mm.
const MARGIN_MM: f64 = 600.0;
/// The plates' height band, mm above the road: around the source height, where the rays are
/// almost level, so the path through a plate is its thickness.
const BAND_MM: [f64; 2] = [1_000.0, 1_600.0];
/// Height of the scan, mm.
const HEIGHT_MM: f64 = 2_600.0;

/// The steps: material, its name in the phantom file, thicknesses along the beam (mm).
fn wedge() -> Vec<(Material, &'static str, f64)> {
    let mut steps = Vec::new();
    for t in [100.0, 200.0, 400.0, 800.0, 1_200.0] {
        steps.push((PLASTIC, "polyethylene", t));
    }
    for t in [25.0, 50.0, 100.0, 200.0, 300.0] {
        steps.push((ALUMINIUM, "aluminium", t));
    }
    for t in [10.0, 25.0, 50.0, 100.0, 150.0] {
        steps.push((STEEL, "steel", t));
    }
    for t in [5.0, 10.0, 20.0, 40.0] {
        steps.push((LEAD, "lead", t));
    }
    steps
}

/// Renders the phantom with `options` (defects are switched off: a site scans its phantom on a
/// good day, and a bad one is refused by the calibration) and describes it.
pub fn phantom(options: RenderOptions, rng: &mut impl Rng) -> (SimulatedScan, PhantomDescription) {
    let steps = wedge();
    let length = 2.0 * MARGIN_MM + steps.len() as f64 * (STEP_MM + GAP_MM) - GAP_MM;
    let layout = Layout {
        container: ContainerType::Twenty,
        truck: false,
        length_mm: length,
        height_mm: HEIGHT_MM,
        container_x: 0.0,
        container_z: 0.0,
    };
    let x_of = |k: usize| MARGIN_MM + k as f64 * (STEP_MM + GAP_MM);
    let solids = steps
        .iter()
        .enumerate()
        .map(|(k, (m, _, t))| {
            cuboid(
                [x_of(k), x_of(k) + STEP_MM],
                [-t / 2.0, t / 2.0],
                BAND_MM,
                *m,
                m.density,
            )
        })
        .collect();
    let scene = Scene {
        layout,
        solids,
        truth: Truth {
            scenario: Scenario::Empty,
            variant: Some("phantom"),
            container: ContainerType::Twenty,
            truck: false,
            items: Vec::new(),
            cargo_mass_kg: 0.0,
            declared_empty: true,
            declared: Vec::new(),
            anomalies: Vec::new(),
        },
    };
    let options = RenderOptions {
        defects: false,
        ..options
    };
    let scan = render(&scene, options, rng);
    let (px, py) = (scan.pitch_mm, scan.pitch_vertical_mm);
    let row = |z: f64| ((HEIGHT_MM - z) / py).round() as u32;
    let (top, bottom) = (row(BAND_MM[1]), row(BAND_MM[0]));
    let described = steps
        .iter()
        .enumerate()
        .map(|(k, (_, name, t))| {
            let (x0, x1) = (
                (x_of(k) / px).round() as u32,
                ((x_of(k) + STEP_MM) / px).round() as u32,
            );
            PhantomStep {
                material: (*name).to_owned(),
                thickness_mm: *t,
                density_g_cm3: None,
                box_px: [x0, top, x1 - x0, bottom - top],
            }
        })
        .collect();
    let air_w = ((MARGIN_MM - 100.0) / px) as u32;
    let description = PhantomDescription {
        contract: PHANTOM_CONTRACT.to_owned(),
        name: format!(
            "scanner-sim step wedge, {} steps of polyethylene, aluminium, steel and lead",
            steps.len()
        ),
        air_box_px: Some([(50.0 / px).ceil() as u32, top, air_w.max(3), bottom - top]),
        steps: described,
    };
    (scan, description)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{ALL, GANTRY_C};
    use crate::scan_rng;

    #[test]
    fn every_step_lies_where_its_description_says() {
        for profile in ALL {
            let (scan, d) = phantom(RenderOptions::for_profile(profile), &mut scan_rng(1, 0));
            let det = scan.high_detector;
            let att = |x: u32, y: u32| {
                let r = scan.high[(y * scan.width + x) as usize];
                let t = (f64::from(r) - f64::from(det.dark)) / f64::from(det.air - det.dark);
                -t.max(1e-6).ln()
            };
            for s in &d.steps {
                let [x, y, w, h] = s.box_px;
                assert!(
                    x + w <= scan.width && y + h <= scan.height,
                    "{}",
                    profile.name
                );
                let (cx, cy) = (x + w / 2, y + h / 2);
                assert!(
                    att(cx, cy) > 0.1,
                    "{} {} {}",
                    profile.name,
                    s.material,
                    s.thickness_mm
                );
                // Just outside the step, air.
                assert!(att(x + w + 3, cy) < 0.05, "{}", profile.name);
            }
            let [ax, ay, aw, ah] = d.air_box_px.unwrap();
            assert!(att(ax + aw / 2, ay + ah / 2) < 0.05);
        }
        // Rectangular pixels: the box follows the vertical pitch.
        let (scan, d) = phantom(RenderOptions::for_profile(GANTRY_C), &mut scan_rng(1, 0));
        assert_eq!(scan.pitch_vertical_mm, 8.0);
        assert_eq!(d.steps[0].box_px[3], 75);
    }
}
