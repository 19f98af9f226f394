//! `scanner-sim tip` from the command line, and the site adaptation command's refusals
//! (`models/train/adapt_site.py`, which checks its folder before it needs PyTorch).

use std::path::{Path, PathBuf};
use std::process::Command;

fn sim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scanner-sim"))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn honest(out: &Path, count: &str) {
    let status = sim()
        .args([
            "generate",
            "--scenario",
            "honest",
            "--seed",
            "61",
            "--count",
            count,
        ])
        .args(["--container", "20", "--truck", "no", "--quiet"])
        .args(["--captured-at", "2026-11-26T08:00:00Z", "--out"])
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn tip_writes_masked_scans_truth_and_pictures_and_names_an_unreadable_scan() {
    let dir = tempfile::tempdir().unwrap();
    let (cleared, out) = (dir.path().join("cleared"), dir.path().join("tip"));
    honest(&cleared, "3");
    let run = sim()
        .args(["tip", "--cleared"])
        .arg(&cleared)
        .args([
            "--count",
            "4",
            "--kinds",
            "drug_bricks,false_floor",
            "--examples",
            "1",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let truth: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(out.join("truth.json")).unwrap()).unwrap();
    assert_eq!(truth.len(), 4);
    for t in &truth {
        let id = t["scan_id"].as_str().unwrap();
        for suffix in [".json", ".high.png", ".low.png", ".mask.png"] {
            assert!(out.join(format!("{id}{suffix}")).is_file(), "{id}{suffix}");
        }
        assert!(["drug_bricks", "false_floor"].contains(&t["variant"].as_str().unwrap()));
        assert!(!t["concealed_boxes"].as_array().unwrap().is_empty());
    }
    assert_eq!(std::fs::read_dir(out.join("examples")).unwrap().count(), 1);

    // A broken image stops the run before anything is written, naming the file.
    let victim = std::fs::read_dir(&cleared)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".low.png"))
        .unwrap();
    std::fs::write(&victim, b"not a png").unwrap();
    let again = dir.path().join("again");
    let run = sim()
        .args(["tip", "--cleared"])
        .arg(&cleared)
        .arg("--out")
        .arg(&again)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        err.contains(&name) && err.contains("not a readable image"),
        "{err}"
    );
    assert!(!again.exists());
    let run = sim()
        .args(["tip", "--cleared"])
        .arg(&cleared)
        .args(["--kinds", "rockets", "--out"])
        .arg(&again)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&run.stderr).contains("unknown threat kind \"rockets\""));
}

fn adapt(cleared: &Path, out: &Path) -> (i32, String) {
    let run = Command::new("python3")
        .arg(root().join("models/train/adapt_site.py"))
        .arg("--cleared")
        .arg(cleared)
        .args(["--profile", "portal-b", "--out"])
        .arg(out)
        .output()
        .unwrap();
    (
        run.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&run.stderr).into_owned(),
    )
}

#[test]
fn site_adaptation_refuses_a_folder_too_small_or_with_an_unreadable_scan() {
    let dir = tempfile::tempdir().unwrap();
    let (cleared, out) = (dir.path().join("cleared"), dir.path().join("site"));
    honest(&cleared, "3");
    let (code, err) = adapt(&cleared, &out);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("holds 3 cleared scans; adaptation needs at least 60"),
        "{err}"
    );
    // An 8-bit image where a 16-bit one belongs is named, whatever the count.
    let victim = std::fs::read_dir(&cleared)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".high.png"))
        .unwrap();
    image::GrayImage::new(8, 8).save(&victim).unwrap();
    let (code, err) = adapt(&cleared, &out);
    assert_eq!(code, 2, "{err}");
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        err.contains(&name) && err.contains("8-bit PNG") && err.contains("16-bit greyscale"),
        "{err}"
    );
    std::fs::write(&victim, b"garbage").unwrap();
    let (code, err) = adapt(&cleared, &out);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&name) && err.contains("not a PNG image"),
        "{err}"
    );
    assert!(!out.exists(), "nothing is written for a refused folder");
}
