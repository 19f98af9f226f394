//! The phantom calibration on simulated scanners: the fitted file classes materials right
//! where the shipped one does not, and unusable phantom scans are refused naming the step.

use super::phantom::{PhantomScan, fit, measure};
use crate::calibration::{Calibration, CargoEstimate, attenuation, estimate_cargo};
use crate::material_map::MaterialClass;
use scanner_sim::geometry::{ContainerType, cuboid};
use scanner_sim::materials::{ALUMINIUM, CELLULOSE, LEAD, Material, STEEL};
use scanner_sim::profile::{GANTRY_C, MOBILE_D, PORTAL_B, SCANNER_SIM, ScannerProfile};
use scanner_sim::{RenderOptions, Scenario, SceneOptions, render, scan_rng, scene};

/// A profile's phantom scan as attenuation, with its description.
struct Rendered {
    d: baylens_protocol::phantom::PhantomDescription,
    ah: Vec<f32>,
    al: Vec<f32>,
    size: (usize, usize),
    pitch: [f64; 2],
}

impl Rendered {
    fn of(profile: ScannerProfile) -> Self {
        let options = RenderOptions::for_profile(profile);
        let (scan, d) = scanner_sim::phantom::phantom(options, &mut scan_rng(7, 0));
        let (hd, ld) = (scan.high_detector, scan.low_detector);
        Self {
            d,
            ah: attenuation(&scan.high, hd.air, hd.dark),
            al: attenuation(&scan.low, ld.air, ld.dark),
            size: (scan.width as usize, scan.height as usize),
            pitch: [scan.pitch_mm, scan.pitch_vertical_mm],
        }
    }

    fn scan(&self) -> PhantomScan<'_> {
        PhantomScan {
            att_high: &self.ah,
            att_low: &self.al,
            width: self.size.0,
            height: self.size.1,
            pitch_mm: self.pitch,
        }
    }
}

fn fitted(profile: ScannerProfile) -> Calibration {
    let r = Rendered::of(profile);
    let (steps, photons) = measure(&r.scan(), &r.d).unwrap();
    fit(&steps, photons, r.pitch, profile.name, &r.d.name)
        .unwrap()
        .calibration
}

/// Slabs of four materials in an empty 20' container, each about 1.6 in high-energy
/// attenuation; the dominant class in the middle of each under `cal`.
fn slab_classes(profile: ScannerProfile, cal: &Calibration, seed: u64) -> Vec<MaterialClass> {
    let mut rng = scan_rng(seed, 0);
    let opts = SceneOptions {
        container: Some(ContainerType::Twenty),
        truck: Some(false),
    };
    let mut sc = scene::build(Scenario::Empty, opts, &mut rng);
    let [[x0, _], _, [z0, _]] = sc.layout.cargo_space();
    let slabs: [(Material, f64); 4] = [
        (CELLULOSE, 380.0),
        (ALUMINIUM, 220.0),
        (STEEL, 70.0),
        (LEAD, 30.0),
    ];
    for (k, (m, depth)) in slabs.iter().enumerate() {
        let x = x0 + 300.0 + 1_400.0 * k as f64;
        sc.solids.push(cuboid(
            [x, x + 900.0],
            [-depth / 2.0, depth / 2.0],
            [z0, z0 + 1_600.0],
            *m,
            m.density,
        ));
    }
    let options = RenderOptions {
        defects: false,
        ..RenderOptions::for_profile(profile)
    };
    let scan = render(&sc, options, &mut rng);
    let (hd, ld) = (scan.high_detector, scan.low_detector);
    let (w, h) = (scan.width as usize, scan.height as usize);
    let pitch = [scan.pitch_mm, scan.pitch_vertical_mm];
    let e: CargoEstimate = estimate_cargo(
        &attenuation(&scan.high, hd.air, hd.dark),
        &attenuation(&scan.low, ld.air, ld.dark),
        w,
        h,
        pitch,
        cal,
    )
    .expect("a container");
    let row = |z: f64| ((sc.layout.height_mm - z) / pitch[1]) as usize;
    (0..slabs.len())
        .map(|k| {
            let x = x0 + 300.0 + 1_400.0 * k as f64;
            let (c0, c1) = (
                ((x + 250.0) / pitch[0]) as usize,
                ((x + 650.0) / pitch[0]) as usize,
            );
            let mut counts = [0usize; 6];
            for r in row(z0 + 1_100.0)..row(z0 + 400.0) {
                for c in c0..c1 {
                    counts[usize::from(e.classes[r * w + c])] += 1;
                }
            }
            let best = (1..6).max_by_key(|&i| counts[i]).unwrap();
            MaterialClass::from_u8(best as u8)
        })
        .collect()
}

fn right(classes: &[MaterialClass]) -> bool {
    use MaterialClass::*;
    matches!(classes[0], Organic | Mixed)
        && classes[1] == Inorganic
        && classes[2] == Metal
        && classes[3] == Metal
}

#[test]
fn a_scanner_calibrated_on_its_own_phantom_classes_materials_right() {
    // The training scanner with its shipped file, as a control.
    let shipped = Calibration::scanner_sim();
    let control = slab_classes(SCANNER_SIM, &shipped, 3);
    assert!(right(&control), "scanner-sim, shipped: {control:?}");
    for profile in [MOBILE_D, PORTAL_B, GANTRY_C] {
        let cal = fitted(profile);
        let classes = slab_classes(profile, &cal, 3);
        assert!(right(&classes), "{}, calibrated: {classes:?}", profile.name);
        let out_of_the_box = slab_classes(profile, &shipped, 3);
        assert!(
            !right(&out_of_the_box),
            "{}: the shipped calibration should not fit: {out_of_the_box:?}",
            profile.name
        );
    }
}

#[test]
fn an_unusable_phantom_scan_is_refused_naming_the_step() {
    let r = Rendered::of(PORTAL_B);
    let (s, d, width) = (r.scan(), &r.d, r.size.0 as u32);
    // A box outside the image.
    let mut outside = d.clone();
    outside.steps[3].box_px[0] = width;
    let e = measure(&s, &outside).unwrap_err();
    assert!(e.contains("steps[3]") && e.contains("outside"), "{e}");
    // A box over air: the step is missing.
    let mut missing = d.clone();
    missing.steps[5].box_px = d.air_box_px.unwrap();
    let e = measure(&s, &missing).unwrap_err();
    assert!(e.contains("steps[5]") && e.contains("missing"), "{e}");
    // A box across a plate's edge.
    let mut edge = d.clone();
    edge.steps[12].box_px[0] += edge.steps[12].box_px[2] / 2;
    let e = measure(&s, &edge).unwrap_err();
    assert!(e.contains("steps[12]") && e.contains("edge"), "{e}");
    // A starved step: the reading at the dark level.
    let mut dark = r.ah.clone();
    let [x, y, w, h] = d.steps[2].box_px;
    for row in y..y + h {
        for c in x..x + w {
            dark[(row * width + c) as usize] = 13.8;
        }
    }
    let e = measure(
        &PhantomScan {
            att_high: &dark,
            ..s
        },
        d,
    )
    .unwrap_err();
    assert!(e.contains("steps[2]") && e.contains("saturated"), "{e}");
}
