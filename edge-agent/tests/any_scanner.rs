//! Any scanner: honest loads stay green at every pitch, and `edge-agent calibrate` commissions
//! a scanner it has never seen from a phantom scan and cleared scans, through the real binary,
//! ONNX Runtime and simulator files on disk.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use baylens_models::ConcealmentModel;
use baylens_protocol::risk::{LaneThresholds, PreArrival};
use baylens_protocol::{BayId, Lane, ScanId};
use edge_agent::analyze::{MAX_IMAGE_BYTES, analyse};
use edge_agent::calibration::Calibration;
use edge_agent::ingest::scan::load_scan;
use scanner_sim::profile::{PORTAL_B, ScannerProfile};
use scanner_sim::write::{write_declaration, write_scan};
use scanner_sim::{RenderOptions, Scenario, ScenarioChoice, SimOptions, generate};

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/onnx")
}

fn edge_agent(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edge-agent"))
        .args(args)
        .arg("--models")
        .arg(models())
        .output()
        .unwrap()
}

/// Writes `count` scans of `scenario` from `profile` at `pitch` into `dir`, with declarations.
fn write(
    dir: &Path,
    scenario: Scenario,
    profile: ScannerProfile,
    pitch: Option<f64>,
    (seed, count): (u64, u64),
) {
    let mut render = RenderOptions::for_profile(profile);
    if let Some(p) = pitch {
        render.pitch_mm = p;
        render.pitch_vertical_mm = None;
    }
    let options = SimOptions {
        render,
        ..SimOptions::new(ScenarioChoice::Fixed(scenario))
    };
    for i in 0..count {
        let g = generate(
            options,
            seed,
            i,
            ScanId::parse(&format!("BAY01-{}-s{seed}-{i}", scenario.name())).unwrap(),
            BayId::parse("BAY01").unwrap(),
            chrono::Utc::now(),
        );
        write_scan(dir, &g.scan, &g.meta, false).unwrap();
        write_declaration(&dir.join("declarations"), &g.declaration).unwrap();
    }
}

#[test]
fn honest_loads_stay_green_at_every_pitch_from_5_to_12_5_mm() {
    let mut model = ConcealmentModel::load(&models(), 2).unwrap();
    let cal = Calibration::scanner_sim();
    for pitch in [5.0, 7.5, 10.0, 12.5] {
        let dir = tempfile::tempdir().unwrap();
        let mut green = 0;
        for i in 0..8 {
            let g = generate(
                SimOptions {
                    render: RenderOptions {
                        pitch_mm: pitch,
                        ..RenderOptions::default()
                    },
                    ..SimOptions::new(ScenarioChoice::Fixed(Scenario::Honest))
                },
                31,
                i,
                ScanId::parse(&format!("BAY01-p-{i}")).unwrap(),
                BayId::parse("BAY01").unwrap(),
                chrono::Utc::now(),
            );
            let files = write_scan(dir.path(), &g.scan, &g.meta, false).unwrap();
            let loaded = load_scan(&files.sidecar, MAX_IMAGE_BYTES).unwrap();
            let a = analyse(
                &loaded,
                &mut model,
                &cal,
                Some(&g.declaration),
                &PreArrival::Unscored,
                LaneThresholds::default(),
            )
            .unwrap();
            // Boxes stay in the scan's own pixels.
            for f in &a.report.findings {
                if let Some(r) = f.region {
                    assert!(r.x + r.width <= g.scan.width && r.y + r.height <= g.scan.height);
                }
            }
            assert_eq!(
                a.output.heatmap.dim(),
                (g.scan.height as usize, g.scan.width as usize)
            );
            green += usize::from(a.report.lane == Lane::Green);
        }
        assert!(green >= 7, "{green} of 8 honest loads green at {pitch} mm");
    }
}

#[test]
fn a_new_scanner_is_commissioned_from_a_phantom_and_cleared_scans() {
    let root = tempfile::tempdir().unwrap();
    let (phantom_dir, cleared, anomalies) = (
        root.path().join("phantom"),
        root.path().join("cleared"),
        root.path().join("anomalies"),
    );
    let sidecar = {
        let (scan, d) = scanner_sim::phantom::phantom(
            RenderOptions::for_profile(PORTAL_B),
            &mut scanner_sim::scan_rng(3, 0),
        );
        let meta = scanner_sim::write::ScanMeta {
            scan_id: ScanId::parse("BAY01-phantom").unwrap(),
            bay: BayId::parse("BAY01").unwrap(),
            captured_at: chrono::Utc::now(),
            container_code: None,
            declaration_ref: None,
        };
        let files = write_scan(&phantom_dir, &scan, &meta, false).unwrap();
        std::fs::write(
            phantom_dir.join("BAY01-phantom.phantom.json"),
            serde_json::to_vec(&d).unwrap(),
        )
        .unwrap();
        files.sidecar
    };
    let scanner_toml = root.path().join("portal-b.toml");
    let out = edge_agent(&[
        "calibrate",
        "--phantom",
        sidecar.to_str().unwrap(),
        "--scanner",
        "portal-b",
        "--out",
        scanner_toml.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("steps[0] (polyethylene 100 mm)"));
    Calibration::load(&scanner_toml).unwrap();

    write(&cleared, Scenario::Honest, PORTAL_B, None, (41, 10));
    write(&cleared, Scenario::Empty, PORTAL_B, None, (42, 2));
    write(&anomalies, Scenario::Mismatch, PORTAL_B, None, (43, 4));
    std::fs::write(anomalies.join("truth.json"), b"[]").unwrap();
    let site_toml = root.path().join("site.toml");
    let out = edge_agent(&[
        "calibrate",
        "--cleared",
        cleared.to_str().unwrap(),
        "--calibration",
        scanner_toml.to_str().unwrap(),
        "--anomalies",
        anomalies.to_str().unwrap(),
        "--out",
        site_toml.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("12 cleared loads") && stdout.contains("mass_relative"),
        "{stdout}"
    );
    assert!(stdout.contains("flagged per scenario"), "{stdout}");
    let site = Calibration::load(&site_toml).unwrap();
    assert!(site.tolerances.is_some() && site.concealment.is_some());
    // The fitted file still carries the phantom's curves.
    assert_eq!(
        site.mu_rho_organic,
        Calibration::load(&scanner_toml).unwrap().mu_rho_organic
    );

    // A cleared scan without its declaration is refused, naming the file.
    std::fs::remove_dir_all(cleared.join("declarations")).unwrap();
    let out = edge_agent(&[
        "calibrate",
        "--cleared",
        cleared.to_str().unwrap(),
        "--out",
        site_toml.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("BAY01-empty-s42-0.json") && stderr.contains("no declaration"),
        "{stderr}"
    );

    // A phantom file naming a step outside the image is refused, naming the step.
    let description = edge_agent::commission::description_path(&sidecar);
    let mut d: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&description).unwrap()).unwrap();
    d["steps"][4]["box_px"][1] = 100_000.into();
    std::fs::write(&description, d.to_string()).unwrap();
    let out = edge_agent(&[
        "calibrate",
        "--phantom",
        sidecar.to_str().unwrap(),
        "--out",
        scanner_toml.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("steps[4]") && stderr.contains("outside"),
        "{stderr}"
    );
}
