//! The Rust pipeline against the Python reference (golden values written by
//! `models/train/golden.py`) on the same scanner-sim scans, through the real ONNX Runtime.

use std::path::Path;

use baylens_models::ConcealmentModel;
use baylens_models::concealment::{FILE, SHA256, attenuation_input};
use baylens_protocol::{BayId, ScanId};
use scanner_sim::render::HIGH;
use scanner_sim::{ContainerType, Scenario, ScenarioChoice, SceneOptions, SimOptions, generate};

fn models_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/onnx"))
}

fn golden() -> Vec<serde_json::Value> {
    serde_json::from_str(include_str!("../onnx/xray-concealment.golden.json")).unwrap()
}

/// Regenerates a golden scan exactly as `scanner-sim generate` wrote it for golden.py.
fn regenerate(g: &serde_json::Value) -> scanner_sim::Generated {
    let scenario = Scenario::parse(g["scenario"].as_str().unwrap()).unwrap();
    let options = SimOptions {
        scenario: ScenarioChoice::Fixed(scenario),
        scene: SceneOptions {
            container: ContainerType::parse(g["container"].as_str().unwrap()),
            truck: g["truck"].as_bool(),
        },
        render: Default::default(),
    };
    generate(
        options,
        g["seed"].as_u64().unwrap(),
        g["index"].as_u64().unwrap(),
        ScanId::parse(g["scan_id"].as_str().unwrap()).unwrap(),
        BayId::parse("BAY01").unwrap(),
        chrono::Utc::now(),
    )
}

#[test]
fn rust_preprocessing_tiling_and_onnx_output_match_the_python_reference_within_1e4() {
    let mut model = ConcealmentModel::load(models_dir(), 1).unwrap();
    let golden = golden();
    assert!(golden.len() >= 4);
    // At least one golden scan is long enough to be cut into several tiles.
    assert!(golden.iter().any(|g| g["width"].as_u64().unwrap() > 1_000));
    for g in golden {
        let sim = regenerate(&g);
        let id = g["scan_id"].as_str().unwrap();
        let (w, h) = (sim.scan.width as usize, sim.scan.height as usize);
        assert_eq!(
            (w as u64, h as u64),
            (g["width"].as_u64().unwrap(), g["height"].as_u64().unwrap())
        );
        let input = attenuation_input(&sim.scan.high, w, h, HIGH.air, HIGH.dark).unwrap();
        let input_sum: f64 = input.iter().map(|&v| f64::from(v)).sum();
        let expected = g["input_sum"].as_f64().unwrap();
        assert!(
            (input_sum - expected).abs() / expected < 1e-6,
            "{id}: input sum {input_sum} vs {expected}"
        );
        let out = model
            .analyse(
                &sim.scan.high,
                sim.scan.width,
                sim.scan.height,
                HIGH.air,
                HIGH.dark,
            )
            .unwrap();
        for s in g["samples"].as_array().unwrap() {
            let (r, c) = (
                s[0].as_u64().unwrap() as usize,
                s[1].as_u64().unwrap() as usize,
            );
            let x = f64::from(input[[0, 0, r, c]]);
            assert!(
                (x - s[2].as_f64().unwrap()).abs() < 1e-4,
                "{id} input at ({r}, {c})"
            );
            let p = f64::from(out.heatmap[[r, c]]);
            let want = s[3].as_f64().unwrap();
            assert!(
                (p - want).abs() < 1e-4,
                "{id}: output at ({r}, {c}) {p} vs {want}"
            );
        }
        let out_sum: f64 = out.heatmap.iter().map(|&v| f64::from(v)).sum();
        let expected = g["output_sum"].as_f64().unwrap();
        assert!(
            (out_sum - expected).abs() <= 1e-4 * (w * h) as f64,
            "{id}: output sum {out_sum} vs {expected}"
        );
        let max = f64::from(out.max_probability);
        assert!(
            (max - g["output_max"].as_f64().unwrap()).abs() < 1e-4,
            "{id}: max {max}"
        );
        let flagged = out.heatmap.iter().filter(|&&p| p > 0.5).count() as i64;
        assert!(
            (flagged - g["flagged_pixels"].as_i64().unwrap()).abs() <= 2,
            "{id}"
        );
    }
}

#[test]
fn the_model_finds_hidden_goods_where_the_truth_puts_them_and_passes_clean_loads() {
    let mut model = ConcealmentModel::load(models_dir(), 2).unwrap();
    let (mut hits, mut false_alarms) = (0u64, 0u64);
    let n = 12;
    for i in 0..n {
        for scenario in [
            Scenario::Concealment,
            Scenario::Compartment,
            Scenario::Honest,
        ] {
            let sim = generate(
                SimOptions::small(scenario),
                77,
                i,
                ScanId::parse("t").unwrap(),
                BayId::parse("B").unwrap(),
                chrono::Utc::now(),
            );
            let out = model
                .analyse(
                    &sim.scan.high,
                    sim.scan.width,
                    sim.scan.height,
                    HIGH.air,
                    HIGH.dark,
                )
                .unwrap();
            if scenario == Scenario::Honest {
                false_alarms += u64::from(!out.detections.is_empty());
                continue;
            }
            let w = sim.scan.width as usize;
            let overlaps = out.detections.iter().any(|d| {
                (d.y..d.y + d.height).any(|r| {
                    (d.x..d.x + d.width)
                        .any(|c| sim.scan.concealment_mask[r as usize * w + c as usize] == 1)
                })
            });
            hits += u64::from(overlaps);
        }
    }
    // The card's held-out figures are far stronger; this only guards against a broken pipeline.
    assert!(hits >= 2 * n - 4, "found {hits} of {} hidden loads", 2 * n);
    assert!(
        false_alarms <= 2,
        "{false_alarms} of {n} honest loads flagged"
    );
}

#[test]
fn a_tampered_model_file_is_refused_and_the_card_names_the_right_hash() {
    let dir = tempfile_dir();
    std::fs::write(dir.join(FILE), b"not the model").unwrap();
    let err = ConcealmentModel::load(&dir, 1).unwrap_err().to_string();
    assert!(err.contains("refusing to load"), "{err}");
    let card = include_str!("../onnx/xray-concealment.md");
    assert!(card.contains(SHA256), "the card's sha256 is stale");
    let bytes = std::fs::read(models_dir().join(FILE)).unwrap();
    assert_eq!(baylens_models::engine::sha256_hex(&bytes), SHA256);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("baylens-models-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
