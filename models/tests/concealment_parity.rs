//! The Rust pipeline against the Python reference (golden values written by
//! `models/train/golden.py`) on the same scanner-sim scans, through the real ONNX Runtime.

use std::path::Path;

use baylens_models::ConcealmentModel;
use baylens_protocol::{BayId, ScanId};
use scanner_sim::{ScenarioChoice, generate};

fn models_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/onnx"))
}

#[test]
fn rust_preprocessing_and_onnx_output_match_the_python_reference() {
    let golden: Vec<serde_json::Value> =
        serde_json::from_str(include_str!("../onnx/concealment-v1.golden.json")).unwrap();
    let mut model = ConcealmentModel::load(models_dir(), 1).unwrap();
    for g in golden {
        let index = g["index"].as_u64().unwrap();
        let seed = g["seed"].as_u64().unwrap();
        let scan_id = ScanId::parse(&format!("BAY01-s{seed}-{index:06}")).unwrap();
        let sim = generate(
            ScenarioChoice::Mixed,
            seed,
            index,
            scan_id,
            BayId::parse("BAY01").unwrap(),
            chrono::Utc::now(),
        );
        let (w, h) = (sim.scan.width as usize, sim.scan.height as usize);
        let input =
            baylens_models::concealment::attenuation_input(&sim.scan.high, w, h, 60_000, 300)
                .unwrap();
        let input_sum: f64 = input.iter().map(|&v| f64::from(v)).sum();
        let expected = g["input_sum"].as_f64().unwrap();
        assert!(
            (input_sum - expected).abs() / expected < 1e-5,
            "scan {index}: input sum {input_sum} vs {expected}"
        );
        let at = f64::from(input[[0, 0, 100, 200]]);
        assert!((at - g["input_at_100_200"].as_f64().unwrap()).abs() < 1e-5);

        let out = model
            .analyse(&sim.scan.high, sim.scan.width, sim.scan.height, 60_000, 300)
            .unwrap();
        let out_sum: f64 = out.heatmap.iter().map(|&v| f64::from(v)).sum();
        let expected = g["output_sum"].as_f64().unwrap();
        assert!(
            (out_sum - expected).abs() < 1e-2 + 1e-4 * expected,
            "scan {index}: output sum {out_sum} vs {expected}"
        );
        let flagged = out.heatmap.iter().filter(|&&p| p > 0.5).count() as i64;
        assert!((flagged - g["flagged_pixels"].as_i64().unwrap()).abs() <= 1);
    }
}

#[test]
fn the_model_finds_concealed_packages_where_the_truth_puts_them_and_not_in_honest_loads() {
    let mut model = ConcealmentModel::load(models_dir(), 1).unwrap();
    let (mut hits, mut false_alarms) = (0, 0);
    for i in 0..20 {
        for choice in ["concealment", "honest"] {
            let sim = generate(
                ScenarioChoice::parse(choice).unwrap(),
                77,
                i,
                ScanId::parse("t").unwrap(),
                BayId::parse("B").unwrap(),
                chrono::Utc::now(),
            );
            let out = model
                .analyse(&sim.scan.high, sim.scan.width, sim.scan.height, 60_000, 300)
                .unwrap();
            if choice == "honest" {
                false_alarms += usize::from(!out.detections.is_empty());
                continue;
            }
            let [x, y, w, h] = sim.truth.concealed[0].package.pixel_box();
            let overlaps = out
                .detections
                .iter()
                .any(|d| d.x < x + w && x < d.x + d.width && d.y < y + h && y < d.y + d.height);
            hits += usize::from(overlaps);
        }
    }
    // Measured on the validation split: recall 1.0, clean false-alarm rate 7 %.
    assert!(hits >= 18, "found {hits} of 20 concealed packages");
    assert!(
        false_alarms <= 4,
        "{false_alarms} of 20 honest loads flagged"
    );
}

#[test]
fn a_tampered_model_file_is_refused() {
    let dir = tempfile_dir();
    std::fs::write(dir.join("concealment-v1.onnx"), b"not the model").unwrap();
    let err = ConcealmentModel::load(&dir, 1).unwrap_err().to_string();
    assert!(err.contains("refusing to load"), "{err}");
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("baylens-models-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
