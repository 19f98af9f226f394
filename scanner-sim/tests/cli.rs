//! The `scanner-sim` binary: every scenario with its truth and declaration, deterministic output,
//! and clear errors for bad arguments.

use std::path::Path;
use std::process::Command;

fn sim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scanner-sim"))
}

fn generate(out: &Path, scenario: &str, seed: &str, count: &str) {
    let status = sim()
        .args([
            "generate",
            "--scenario",
            scenario,
            "--seed",
            seed,
            "--count",
            count,
        ])
        .args(["--container", "20", "--truck", "no", "--masks", "--quiet"])
        .args(["--captured-at", "2026-11-26T08:00:00Z", "--out"])
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn generate_writes_every_scenario_with_truth_masks_and_declarations() {
    let dir = tempfile::tempdir().unwrap();
    for scenario in [
        "honest",
        "concealment",
        "compartment",
        "undeclared",
        "mismatch",
        "false_empty",
        "empty",
    ] {
        let out = dir.path().join(scenario);
        generate(&out, scenario, "5", "3");
        let truth: Vec<serde_json::Value> =
            serde_json::from_slice(&std::fs::read(out.join("truth.json")).unwrap()).unwrap();
        assert_eq!(truth.len(), 3);
        for t in &truth {
            assert_eq!(t["scenario"], scenario);
            let id = t["scan_id"].as_str().unwrap();
            for suffix in ["json", "high.png", "low.png", "mask.png"] {
                assert!(out.join(format!("{id}.{suffix}")).exists(), "{id}.{suffix}");
            }
            let reference = t["declaration_ref"].as_str().unwrap();
            let declaration = out.join("declarations").join(format!("{reference}.json"));
            let text = std::fs::read_to_string(&declaration).unwrap();
            baylens_protocol::Declaration::from_json(&text, chrono::Utc::now()).unwrap();
            let hidden = t["concealed_pixels"].as_u64().unwrap() > 0;
            assert_eq!(
                hidden,
                matches!(scenario, "concealment" | "compartment"),
                "{id}"
            );
            assert_eq!(
                t["anomalies"].as_array().unwrap().is_empty(),
                matches!(scenario, "honest" | "empty")
            );
        }
    }
}

#[test]
fn the_same_seed_writes_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    generate(&a, "mixed", "9", "4");
    generate(&b, "mixed", "9", "4");
    let mut names: Vec<_> = std::fs::read_dir(&a)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert!(names.len() > 4 * 4);
    for name in names {
        if a.join(&name).is_dir() {
            continue;
        }
        assert_eq!(
            std::fs::read(a.join(&name)).unwrap(),
            std::fs::read(b.join(&name)).unwrap(),
            "{name:?}"
        );
    }
}

#[test]
fn bad_arguments_get_a_clear_error() {
    let out = sim()
        .args(["generate", "--scenario", "smuggling", "--out", "/tmp/x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown scenario \"smuggling\""));
    let out = sim()
        .args(["generate", "--container", "45", "--out", "/tmp/x"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("use 20, 40, 40hc or any"));
}
