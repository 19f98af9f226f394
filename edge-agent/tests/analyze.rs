//! `edge-agent analyze`: the whole pipeline on simulator scans from disk, against their
//! declarations, through the real binary and ONNX Runtime.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use baylens_protocol::{BayId, ScanId};
use scanner_sim::write::{write_declaration, write_scan};
use scanner_sim::{Scenario, SimOptions, generate};

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/onnx")
}

fn analyze(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edge-agent"))
        .arg("analyze")
        .args(args)
        .arg("--models")
        .arg(models())
        .arg("--json")
        .output()
        .unwrap()
}

/// Writes the first scan of `scenario` (and `variant`, if given) and its declaration.
fn scan(dir: &Path, scenario: Scenario, variant: Option<&str>) -> (PathBuf, PathBuf) {
    for i in 0..50 {
        let g = generate(
            SimOptions::small(scenario),
            61,
            i,
            ScanId::parse(&format!("BAY01-an-{i}")).unwrap(),
            BayId::parse("BAY01").unwrap(),
            chrono::Utc::now(),
        );
        if variant.is_some() && g.truth.variant != variant {
            continue;
        }
        let files = write_scan(dir, &g.scan, &g.meta, false).unwrap();
        let declaration = write_declaration(&dir.join("declarations"), &g.declaration).unwrap();
        return (files.sidecar, declaration);
    }
    panic!("no {scenario:?} {variant:?} scan in 50 tries");
}

fn kinds(out: &Output) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    v[0]["report"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn an_under_declared_load_gets_a_mass_finding_and_an_honest_one_goes_green() {
    let dir = tempfile::tempdir().unwrap();
    let (sidecar, declaration) = scan(dir.path(), Scenario::Mismatch, Some("mass"));
    let out = analyze(&[&sidecar, Path::new("--declaration"), &declaration]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        kinds(&out).contains(&"mass_mismatch".to_owned()),
        "{:?}",
        kinds(&out)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v[0]["cargo"]["mass_kg"].as_f64().unwrap() > 500.0);

    let honest = tempfile::tempdir().unwrap();
    let (sidecar, declaration) = scan(honest.path(), Scenario::Honest, None);
    let out = analyze(&[&sidecar, Path::new("--declaration"), &declaration]);
    assert!(out.status.success());
    assert_eq!(kinds(&out), Vec::<String>::new());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["report"]["lane"], "green");
}

#[test]
fn without_a_declaration_the_load_is_undeclared() {
    let dir = tempfile::tempdir().unwrap();
    let (sidecar, _) = scan(dir.path(), Scenario::Honest, None);
    let out = analyze(&[&sidecar]);
    assert!(out.status.success());
    assert_eq!(kinds(&out), vec!["no_declaration".to_owned()]);
}

#[test]
fn bad_input_exits_2_with_a_message_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (sidecar, _) = scan(dir.path(), Scenario::Honest, None);
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{not json").unwrap();
    let out = analyze(&[&broken, &sidecar]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.json"));
    // The good scan is still analysed.
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v[0]["error"].is_string() && v[1]["report"].is_object());

    let bad_declaration = dir.path().join("decl.json");
    std::fs::write(&bad_declaration, r#"{"contract": "baylens.declaration/1"}"#).unwrap();
    let out = analyze(&[&sidecar, Path::new("--declaration"), &bad_declaration]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("decl.json"));
}

#[test]
fn undeclared_goods_at_the_doors_are_located_and_the_overlay_shows_them() {
    // The first undeclared-goods scan whose extra goods the volume checks see.
    let dir = tempfile::tempdir().unwrap();
    let overlay = dir.path().join("overlay");
    let mut found = None;
    for i in 0..30 {
        let g = generate(
            SimOptions::small(Scenario::Undeclared),
            71,
            i,
            ScanId::parse(&format!("BAY01-un-{i}")).unwrap(),
            BayId::parse("BAY01").unwrap(),
            chrono::Utc::now(),
        );
        let files = write_scan(dir.path(), &g.scan, &g.meta, false).unwrap();
        let declaration =
            write_declaration(&dir.path().join("declarations"), &g.declaration).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_edge-agent"))
            .args(["analyze", "--json", "--overlay"])
            .arg(&overlay)
            .arg("--models")
            .arg(models())
            .arg(&files.sidecar)
            .arg("--declaration")
            .arg(&declaration)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if kinds(&out).iter().any(|k| k == "undeclared_region") {
            found = Some(out);
            break;
        }
    }
    let out = found.expect("undeclared_region fires on one of 30 undeclared-goods scans");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let report = &v[0]["report"];
    let region = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "undeclared_region")
        .unwrap();
    assert!(region["region"]["width"].as_u64().unwrap() > 50, "{region}");
    // The risk says where it came from, and the shares add up to it.
    let breakdown = &report["breakdown"];
    let shares: f64 = breakdown["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["share"].as_f64().unwrap())
        .sum();
    assert!(
        (shares - report["risk"].as_f64().unwrap()).abs() < 1e-3,
        "{breakdown}"
    );
    // Every layer is a PNG of the scan's size; the vector JSON names the same primitives.
    let dir = Path::new(v[0]["overlay"]["dir"].as_str().unwrap());
    let (w, h) = (
        report["width"].as_u64().unwrap(),
        report["height"].as_u64().unwrap(),
    );
    for layer in ["scan", "material", "expected", "heat", "findings"] {
        let img = image::open(dir.join(format!("{layer}.png"))).unwrap();
        assert_eq!(
            (u64::from(img.width()), u64::from(img.height())),
            (w, h),
            "{layer}"
        );
    }
    let vector: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("overlay.json")).unwrap()).unwrap();
    assert_eq!(vector["contract"], "baylens.overlay/1");
    assert!(!vector["expected"].as_array().unwrap().is_empty());
    assert!(
        vector["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "undeclared_region")
    );
    assert!(vector["legend"].as_array().unwrap().len() >= 5);
    assert!(
        std::fs::read_to_string(dir.join("legend.svg"))
            .unwrap()
            .contains("Metal")
    );
}

#[test]
fn a_misread_container_code_is_a_finding_not_a_lost_scan() {
    let dir = tempfile::tempdir().unwrap();
    let (sidecar, declaration) = scan(dir.path(), Scenario::Honest, None);
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&sidecar).unwrap()).unwrap();
    let code = v["container_code"].as_str().unwrap().to_owned();
    let last = code.chars().last().unwrap().to_digit(10).unwrap();
    let misread = format!("{}{}", &code[..10], (last + 1) % 10);
    v["container_code"] = serde_json::json!(misread);
    std::fs::write(&sidecar, serde_json::to_vec(&v).unwrap()).unwrap();
    let out = analyze(&[&sidecar, Path::new("--declaration"), &declaration]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(kinds(&out), vec!["container_code_invalid".to_owned()]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = v[0]["report"]["findings"][0]["message"].as_str().unwrap();
    assert!(
        message.contains(&misread) && message.contains("check digit"),
        "{message}"
    );
}

#[test]
fn tdr_writes_each_report_as_a_dicos_threat_detection_report_pydicom_and_pydicos_read() {
    let dir = tempfile::tempdir().unwrap();
    let (sidecar, _) = scan(dir.path(), Scenario::Concealment, None);
    let tdr_dir = dir.path().join("tdr");
    let out = analyze(&[&sidecar, Path::new("--tdr"), &tdr_dir]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let report = &reports[0]["report"];
    let scan_id = report["scan_id"].as_str().unwrap();
    let file = tdr_dir.join(format!("{scan_id}.tdr.dcm"));
    // The independent reader: pydicom (pinned in scripts/test-requirements.txt).
    let tdr = python_reading("tdr_pydicom.py", &file);
    let findings = report["findings"].as_array().unwrap();
    assert!(!findings.is_empty(), "the hidden goods are found: {report}");
    assert_eq!(tdr["sop_class"], "1.2.840.10008.5.1.4.1.1.501.3");
    assert_eq!(tdr["total"], findings.len());
    assert_eq!(tdr["threats"].as_array().unwrap().len(), findings.len());
    let alarm = if report["lane"] == "green" {
        "CLEAR"
    } else {
        "ALARM"
    };
    assert_eq!(tdr["alarm"], alarm);
    for (t, f) in tdr["threats"].as_array().unwrap().iter().zip(findings) {
        let kind = f["kind"].as_str().unwrap();
        assert!(
            t["description"]
                .as_str()
                .unwrap()
                .starts_with(&format!("BayLens {kind}: ")),
            "{t}"
        );
        assert!((t["probability"].as_f64().unwrap() - f["score"].as_f64().unwrap()).abs() < 1e-6);
        if let Some(r) = f.get("region") {
            let (x, y) = (r["x"].as_f64().unwrap(), r["y"].as_f64().unwrap());
            assert_eq!(t["polygon"][0], x);
            assert_eq!(t["polygon"][1], y);
            assert_eq!(t["polygon"][3], x + r["width"].as_f64().unwrap());
        }
    }

    // The second reader: pyDICOS, the DICOS toolkit's binding, which checks every attribute
    // DICOS requires and refuses the file otherwise.
    let toolkit = python_reading("tdr_pydicos.py", &file);
    assert_eq!(toolkit["alarm"], alarm);
    assert_eq!(toolkit["tdr_type"], "MACHINE");
    assert_eq!(toolkit["ooi_id"], report["container_code"]);
    let threats = toolkit["threats"].as_array().unwrap();
    assert_eq!(threats.len(), findings.len());
    for (t, f) in threats.iter().zip(findings) {
        assert!((t["probability"].as_f64().unwrap() - f["score"].as_f64().unwrap()).abs() < 1e-6);
        let kind = f["kind"].as_str().unwrap();
        let description = t["description"].as_str().unwrap();
        assert!(description.starts_with(&format!("BayLens {kind}: ")), "{t}");
        assert!(["CONTRABAND", "ANOMALY"].contains(&t["category"].as_str().unwrap()));
    }
}

/// What the reader `script` (in server/tests/fixtures, run by the pinned test venv) prints
/// about `file`, as JSON; the test fails with the reader's message if it refuses the file.
fn python_reading(script: &str, file: &Path) -> serde_json::Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".tools/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: ./baylens setup installs it",
        python.display()
    );
    let read = Command::new(python)
        .arg(root.join("server/tests/fixtures").join(script))
        .arg(file)
        .output()
        .unwrap();
    assert!(
        read.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&read.stderr)
    );
    serde_json::from_slice(&read.stdout).unwrap()
}

#[test]
fn a_reader_that_goes_away_ends_the_command_without_a_panic() {
    // `edge-agent analyze ... | head -1`: the reader closes the pipe before the report is
    // written. The command must end as a Unix tool killed by SIGPIPE does (141), not panic.
    let dir = tempfile::tempdir().unwrap();
    let (sidecar, declaration) = scan(dir.path(), Scenario::Honest, None);
    let mut child = Command::new(env!("CARGO_BIN_EXE_edge-agent"))
        .arg("analyze")
        .arg(&sidecar)
        .arg("--declaration")
        .arg(&declaration)
        .arg("--models")
        .arg(models())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(141), "{stderr}");
}
