//! DICOS DX scans in: pydicom (pinned in scripts/test-requirements.txt) writes DICOS DX files
//! from simulator scans, in every transfer syntax BayLens reads; `edge-agent analyze`, the
//! push API and the drop folder take them, and refuse bad ones naming the attribute.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use baylens_protocol::{BayId, ScanId};
use edge_agent::ingest::dicos_drop::{DicosIntake, Intake};
use edge_agent::push::{PushState, new_token, serve};
use reqwest::multipart::{Form, Part};
use scanner_sim::write::{write_declaration, write_scan};
use scanner_sim::{Scenario, SimOptions, generate};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A simulator scan of `scenario` (and `variant`) on disk: (sidecar, declaration).
fn sim(dir: &Path, scenario: Scenario, variant: Option<&str>) -> (PathBuf, PathBuf) {
    for i in 0..50 {
        let g = generate(
            SimOptions::small(scenario),
            71,
            i,
            ScanId::parse(&format!("BAY01-dx-{i}")).unwrap(),
            BayId::parse("BAY01").unwrap(),
            chrono::Utc::now() - chrono::Duration::minutes(5),
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

/// pydicom writes the scan at `sidecar` as DICOS DX file(s) into `out`, with `options`
/// (see the fixture's usage); returns the files.
fn to_dicos(sidecar: &Path, out: &Path, options: &[&str]) -> Vec<PathBuf> {
    let python = root().join(".tools/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: ./baylens setup installs it",
        python.display()
    );
    let run = Command::new(python)
        .arg(root().join("edge-agent/tests/fixtures/dicos_dx_pydicom.py"))
        .arg(sidecar)
        .arg(out)
        .args(options)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| PathBuf::from(f.as_str().unwrap()))
        .collect()
}

fn analyze(args: &[&Path]) -> (Output, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_edge-agent"))
        .arg("analyze")
        .args(args)
        .arg("--models")
        .arg(root().join("models/onnx"))
        .args(["--bay", "BAY01", "--json"])
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out, v)
}

fn kinds(v: &serde_json::Value) -> Vec<String> {
    let mut k: Vec<String> = v["report"]["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no report: {v}"))
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_owned())
        .collect();
    k.sort();
    k
}

#[test]
fn dicos_dx_in_every_transfer_syntax_analyses_like_the_same_scan_as_png() {
    let dir = tempfile::tempdir().unwrap();
    let (sidecar, declaration) = sim(dir.path(), Scenario::Mismatch, Some("mass"));
    let dicos = dir.path().join("dicos");
    std::fs::create_dir_all(&dicos).unwrap();
    let mut args: Vec<PathBuf> = vec![sidecar.clone()];
    for syntax in ["explicit", "implicit", "big", "rle"] {
        args.extend(to_dicos(&sidecar, &dicos, &["--syntax", syntax]));
    }
    args.push("--declaration".into());
    args.push(declaration);
    let refs: Vec<&Path> = args.iter().map(PathBuf::as_path).collect();
    let (out, v) = analyze(&refs);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results = v.as_array().unwrap();
    assert_eq!(results.len(), 5, "one PNG scan and four DICOS pairs: {v:#}");
    let png = &results[0];
    assert!(
        kinds(png).contains(&"mass_mismatch".to_owned()),
        "{:?}",
        kinds(png)
    );
    let mass = png["cargo"]["mass_kg"].as_f64().unwrap();
    let sidecar_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&sidecar).unwrap()).unwrap();
    for dx in &results[1..] {
        assert_eq!(dx["dicos"].as_array().unwrap().len(), 2, "{dx}");
        let report = &dx["report"];
        let scan_id = report["scan_id"].as_str().unwrap();
        assert!(scan_id.starts_with("BAY01-DX-"), "{scan_id}");
        assert_eq!(kinds(dx), kinds(png), "{}", dx["dicos"]);
        // Only the 16-bit rescaling to the stored range differs from the PNG scan.
        let dx_mass = dx["cargo"]["mass_kg"].as_f64().unwrap();
        assert!(
            (dx_mass - mass).abs() / mass < 0.01,
            "{dx_mass} kg vs {mass} kg"
        );
        assert_eq!(
            report["container_code"], sidecar_json["container_code"],
            "OOI ID"
        );
    }
    // Explicit, implicit and big-endian files hold the same pixels: the same scan id would
    // differ (each pair is its own series), but the reports' findings and masses agree.
    let masses: Vec<f64> = results[1..]
        .iter()
        .map(|r| r["cargo"]["mass_kg"].as_f64().unwrap())
        .collect();
    assert!(
        masses.windows(2).all(|w| (w[0] - w[1]).abs() < 1e-6),
        "{masses:?}"
    );
}

#[test]
fn a_dicos_file_breaking_a_rule_is_refused_naming_the_attribute() {
    let dir = tempfile::tempdir().unwrap();
    let (sidecar, _) = sim(dir.path(), Scenario::Honest, None);
    let cases: [(&[&str], &str); 6] = [
        (&["--omit", "KVP"], "KVP (0018,0060) is missing"),
        (&["--syntax", "jpeg"], "JPEG Baseline"),
        (
            &["--only", "high"],
            "needs its HIGH ENERGY and LOW ENERGY images",
        ),
        (
            &["--sop-class", "1.2.840.10008.5.1.4.1.1.2"],
            "not a DICOS DX image",
        ),
        (
            &["--omit", "PixelSpacing", "--omit", "ImagerPixelSpacing"],
            "Pixel Spacing (0028,0030) is missing",
        ),
        (&["--omit", "ImageType"], "the image's energy is not given"),
    ];
    let mut args = Vec::new();
    for (i, (options, _)) in cases.iter().enumerate() {
        let out = dir.path().join(format!("case{i}"));
        std::fs::create_dir_all(&out).unwrap();
        let files = to_dicos(&sidecar, &out, options);
        args.extend(files);
    }
    let refs: Vec<&Path> = args.iter().map(PathBuf::as_path).collect();
    let (out, v) = analyze(&refs);
    assert_eq!(out.status.code(), Some(2));
    let results = v.as_array().unwrap();
    assert_eq!(results.len(), cases.len(), "{v:#}");
    for (r, (options, expected)) in results.iter().zip(cases) {
        let error = r["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{options:?}: {r}"));
        assert!(error.contains(expected), "{options:?}: {error}");
        assert!(error.contains(".dcs"), "names the file: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_push_api_takes_a_dicos_pair_and_refuses_a_bad_one_with_422() {
    let dir = tempfile::tempdir().unwrap();
    let drop = dir.path().join("drop");
    std::fs::create_dir_all(&drop).unwrap();
    let (token, hash) = new_token();
    let state = PushState {
        drop_dir: drop.clone(),
        bay: BayId::parse("BAY01").unwrap(),
        max_image_bytes: 64 * 1024 * 1024,
        token_hashes: Arc::new(vec![hash]),
        upload_timeout: Duration::from_secs(30),
        full: Arc::new(|| Box::pin(async { None })),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/v1/scans", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, state, std::future::pending()));

    let (sidecar, _) = sim(dir.path(), Scenario::Honest, None);
    let out = dir.path().join("dicos");
    std::fs::create_dir_all(&out).unwrap();
    let push = |files: Vec<PathBuf>| {
        let (url, token) = (url.clone(), token.clone());
        async move {
            let mut form = Form::new();
            for f in files {
                let name = f.file_name().unwrap().to_string_lossy().into_owned();
                form = form.part(
                    name.clone(),
                    Part::bytes(std::fs::read(&f).unwrap()).file_name(name),
                );
            }
            let r = reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .multipart(form)
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    let (status, body) = push(to_dicos(
        &sidecar,
        &out,
        &["--syntax", "rle", "--itinerary", "26KE0001234"],
    ))
    .await;
    assert_eq!(status, 202, "{body}");
    let scan_id = body["scan_id"].as_str().unwrap();
    assert!(scan_id.starts_with("BAY01-DX-"), "{scan_id}");
    let converted: serde_json::Value =
        serde_json::from_slice(&std::fs::read(drop.join(format!("{scan_id}.json"))).unwrap())
            .unwrap();
    let original: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&sidecar).unwrap()).unwrap();
    assert_eq!(
        converted["container_code"], original["container_code"],
        "OOI ID"
    );
    assert_eq!(converted["declaration_ref"], "26KE0001234", "Itinerary ID");
    assert_eq!(converted["images"][0]["air"], 65535);
    assert_eq!(
        converted["images"][0]["energy_mev"],
        original["images"][0]["energy_mev"]
    );
    assert_eq!(converted["pixel_pitch_mm"], original["pixel_pitch_mm"]);
    for f in [
        format!("{scan_id}.json"),
        format!("{scan_id}.high.png"),
        format!("{scan_id}.low.png"),
    ] {
        assert!(drop.join(&f).exists(), "{f} waits in the drop folder");
    }
    let kept = std::fs::read_dir(drop.join("done")).unwrap().count();
    assert_eq!(kept, 2, "the two DICOS originals are kept in done/");

    let names = |dir: &Path| -> Vec<String> {
        let mut n: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    };
    let before = (names(&drop), names(&drop.join("done")));
    let (status, body) = push(to_dicos(&sidecar, &out, &["--omit", "Rows"])).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("Rows (0028,0010) is missing"),
        "{body}"
    );
    // Refused: nothing of it is left, in the drop folder (staging included) or in done/.
    assert_eq!((names(&drop), names(&drop.join("done"))), before);
}

#[test]
fn the_drop_folder_waits_for_both_energies_then_converts_and_keeps_the_originals() {
    let dir = tempfile::tempdir().unwrap();
    let drop = dir.path().join("drop");
    // Opening the drop folder makes its done/ and rejected/.
    edge_agent::ingest::drop_folder::DropFolder::open(&drop).unwrap();
    let (sidecar, _) = sim(dir.path(), Scenario::Honest, None);
    let staged = dir.path().join("staged");
    std::fs::create_dir_all(&staged).unwrap();
    let files = to_dicos(&sidecar, &staged, &[]);
    let bay = BayId::parse("BAY01").unwrap();
    let mut intake = DicosIntake::new(&drop);

    // The high-energy image alone: stable, read, and waiting for its partner.
    let high = drop.join(files[0].file_name().unwrap());
    std::fs::copy(&files[0], &high).unwrap();
    for _ in 0..3 {
        assert!(intake.poll(&bay, 1 << 30).unwrap().is_empty());
    }
    assert!(high.exists());
    let low = drop.join(files[1].file_name().unwrap());
    std::fs::copy(&files[1], &low).unwrap();
    assert!(
        intake.poll(&bay, 1 << 30).unwrap().is_empty(),
        "not stable yet"
    );
    let taken = intake.poll(&bay, 1 << 30).unwrap();
    let [Intake::Converted { scan_id, .. }] = taken.as_slice() else {
        panic!("{taken:?}");
    };
    assert!(drop.join(format!("{scan_id}.json")).exists());
    assert!(drop.join("done").join(high.file_name().unwrap()).exists());
    assert!(drop.join("done").join(low.file_name().unwrap()).exists());

    // Not DICOM at all: refused at once with the reason beside it.
    std::fs::write(drop.join("junk.dcs"), b"not a dicom file").unwrap();
    intake.poll(&bay, 1 << 30).unwrap();
    let taken = intake.poll(&bay, 1 << 30).unwrap();
    assert!(
        matches!(taken.as_slice(), [Intake::Rejected { .. }]),
        "{taken:?}"
    );
    let reason = std::fs::read_to_string(drop.join("rejected/junk.dcs.reason")).unwrap();
    assert!(reason.starts_with("junk.dcs: not a DICOM file"), "{reason}");
}
