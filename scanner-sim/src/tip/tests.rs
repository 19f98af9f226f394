use super::library::ThreatKind;
use super::*;
use crate::profile::PORTAL_B;
use crate::render::{RenderOptions, render};
use crate::scene::{Scenario, SceneOptions, build};
use crate::write::write_scan;
use crate::{ContainerType, scan_rng};

/// A 20' container without the truck for `profile`, no defects: the scene and its scan
/// written into `dir` and read back as a cleared scan.
fn cleared(
    scenario: Scenario,
    profile: ScannerProfile,
    seed: u64,
    dir: &Path,
) -> (crate::Scene, Cleared, RenderOptions) {
    let mut rng = scan_rng(seed, 0);
    let scene = build(
        scenario,
        SceneOptions {
            container: Some(ContainerType::Twenty),
            truck: Some(false),
        },
        &mut rng,
    );
    let mut opts = RenderOptions::for_profile(profile);
    opts.defects = false;
    let scan = render(&scene, opts, &mut rng);
    let meta = ScanMeta {
        scan_id: ScanId::parse(&format!("BAY01-c{seed}")).unwrap(),
        bay: baylens_protocol::BayId::parse("BAY01").unwrap(),
        captured_at: chrono::Utc::now(),
        container_code: None,
        declaration_ref: None,
    };
    let files = write_scan(dir, &scan, &meta, false).unwrap();
    (scene, load(&files.sidecar).unwrap(), opts)
}

fn att(readings: &[u16], d: &Detector) -> Vec<f32> {
    attenuation(readings, d.air, d.dark)
}

#[test]
fn every_kind_lands_inside_the_cargo_and_changes_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (_, c, _) = cleared(Scenario::Honest, PORTAL_B, 11, dir.path());
    let mut rng = scan_rng(5, 0);
    let mut landed = 0;
    for kind in ThreatKind::ALL {
        let id = ScanId::parse("BAY01-t1").unwrap();
        let Some(p) = project(&c, kind, &PORTAL_B, id, &mut rng) else {
            // A false ceiling needs free space under the roof; a false wall goes in anywhere.
            assert_eq!(kind, ThreatKind::FalseCeiling);
            continue;
        };
        landed += 1;
        let [x, y, bw, bh] = p.record.concealed_boxes[0];
        let room = Room::new(
            &[
                att(&c.high, &p.scan.high_detector),
                att(&c.low, &p.scan.low_detector),
            ],
            c.w,
            c.h,
            c.sidecar.pitch_mm(),
        )
        .unwrap();
        let s = room.space;
        assert!(
            x as usize + 2 >= s.x0 && (x + bw) as usize <= s.x1 + 2,
            "{kind:?}: {x}+{bw} in {}..{}",
            s.x0,
            s.x1
        );
        // Rows: the fan beam magnifies what is nearer the source, so a sheet across the whole
        // width projects beyond the centre plane's rows (as the simulator's own false walls
        // do); its middle stays inside.
        let middle = (y + bh / 2) as usize;
        assert!((s.top..s.floor).contains(&middle), "{kind:?}: row {middle}");
        // The blur spreads the change by at most psf_passes pixels beyond the mask's box.
        let m = PORTAL_B.psf_passes as usize + 1;
        for (i, (a, b)) in c.high.iter().zip(&p.scan.high).enumerate() {
            let (col, row) = (i % c.w, i / c.w);
            let inside = col + m >= x as usize
                && col <= (x + bw) as usize + m
                && row + m >= y as usize
                && row <= (y + bh) as usize + m;
            assert!(inside || a == b, "{kind:?}: pixel {col},{row} changed");
        }
        assert_eq!(p.record.scenario, kind.scenario());
        assert!(p.record.hidden_mass_kg > 0.0, "{kind:?}");
    }
    assert!(landed >= 5, "{landed}");
}

/// Projection agrees with the simulator: a false floor projected into an empty container
/// reads, over its mask, as the same scene rendered with the false floor in it (mean
/// attenuation, and the noise of neighbouring pixels), on a scanner with hardening.
#[test]
fn a_projected_false_floor_reads_like_a_rendered_one() {
    let dir = tempfile::tempdir().unwrap();
    let (scene, c, opts) = cleared(Scenario::Empty, PORTAL_B, 3, dir.path());
    let mut rng = scan_rng(9, 0);
    let id = ScanId::parse("BAY01-t2").unwrap();
    let p = project(&c, ThreatKind::FalseFloor, &PORTAL_B, id, &mut rng).expect("room");
    let mut with = scene.clone();
    with.solids.extend(p.threat.solids.iter().copied());
    let direct = render(&with, opts, &mut scan_rng(10, 0));
    assert_eq!((direct.width, direct.height), (p.scan.width, p.scan.height));
    let w = c.w;
    // Interior pixels of the mask: the goods' band, away from its edges.
    let mask = &p.scan.concealment_mask;
    let interior: Vec<usize> = (0..mask.len())
        .filter(|&i| {
            let (col, row) = (i % w, i / w);
            col > 2
                && row > 2
                && col + 3 < w
                && row + 3 < c.h
                && (0..=6).all(|d| mask[i - 3 + d] != 0 && mask[(row - 3 + d) * w + col] != 0)
        })
        .collect();
    assert!(interior.len() > 200, "{}", interior.len());
    for (energy, tip, sim) in [
        ("high", &p.scan.high, &direct.high),
        ("low", &p.scan.low, &direct.low),
    ] {
        let d = if energy == "high" {
            p.scan.high_detector
        } else {
            p.scan.low_detector
        };
        let (a, b) = (att(tip, &d), att(sim, &d));
        let mean = |v: &[f32]| {
            interior.iter().map(|&i| f64::from(v[i])).sum::<f64>() / interior.len() as f64
        };
        let (ma, mb) = (mean(&a), mean(&b));
        assert!(
            (ma - mb).abs() < 0.03 * mb.max(0.1),
            "{energy}: projected {ma:.3}, rendered {mb:.3}"
        );
        // Noise: mean squared difference of horizontal neighbours.
        let noise = |v: &[f32]| {
            interior
                .iter()
                .map(|&i| f64::from(v[i + 1] - v[i]).powi(2))
                .sum::<f64>()
                / interior.len() as f64
        };
        let (na, nb) = (noise(&a), noise(&b));
        assert!(
            (0.7..=1.3).contains(&(na / nb)),
            "{energy}: neighbour noise projected {na:.2e}, rendered {nb:.2e}"
        );
    }
}

#[test]
fn an_unreadable_scan_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (_, c, _) = cleared(Scenario::Honest, PORTAL_B, 12, dir.path());
    std::fs::write(dir.path().join(&c.sidecar.high().file), b"not a png").unwrap();
    let err = load(&c.path).unwrap_err();
    assert!(
        err.contains(".high.png") && err.contains("not a readable image"),
        "{err}"
    );
}

/// A false wall at an end the load fills is built into the load (it takes the place of all the
/// goods over its compartment, and of nothing else); in an empty container it never is.
#[test]
fn a_false_wall_at_a_loaded_end_is_built_into_the_load() {
    let dir = tempfile::tempdir().unwrap();
    let room = |c: &Cleared| {
        let plain = [att(&c.high, &PORTAL_B.high), att(&c.low, &PORTAL_B.low)];
        Room::new(&plain, c.w, c.h, c.sidecar.pitch_mm()).unwrap()
    };
    let mut rng = scan_rng(7, 0);
    let (_, c, _) = cleared(Scenario::Empty, PORTAL_B, 12, dir.path());
    let empty = room(&c);
    for _ in 0..20 {
        let at = empty.structure(ThreatKind::FalseWall, &mut rng).unwrap();
        assert!(at.built_into.is_none(), "{at:?}");
    }
    let (_, c, _) = cleared(Scenario::Honest, PORTAL_B, 11, dir.path());
    let r = room(&c);
    let built: Vec<_> = (0..20)
        .filter_map(|_| r.structure(ThreatKind::FalseWall, &mut rng)?.built_into)
        .collect();
    assert!(!built.is_empty(), "no wall built into the load");
    for x in built {
        let gone = r.goods_over(x);
        let cols = (x[0] / r.pitch[0]).floor() as usize..(x[1] / r.pitch[0]).floor() as usize;
        let mut taken = 0.0;
        for (i, (&g, &net)) in gone[0].iter().zip(&r.net[0]).enumerate() {
            if cols.contains(&(i % r.w)) {
                assert_eq!(g, net);
                taken += g;
            } else {
                assert_eq!(g, 0.0, "pixel {} outside {x:?}", i % r.w);
            }
        }
        assert!(taken > 0.0, "{x:?}: no goods taken off");
    }
}
