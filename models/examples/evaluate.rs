//! Evaluates the X-ray concealment model on fresh scanner-sim containers, through the same Rust
//! pipeline the agent runs (preprocessing, tiling, ONNX Runtime, regions).
//!
//! ```text
//! cargo run --release -p baylens-models --example evaluate -- [--per-scenario 75] \
//!     [--seed 3000] [--val-seed 2000] [--threads 2] [--json FILE] [--model FILE]
//! ```
//!
//! `--model` evaluates a candidate file (its `.sha256` beside it) instead of the shipped one.
//!
//! 1. A validation set (`--val-seed`, the seed the training script validated on) picks the
//!    operating point: for each minimum region size, the lowest pixel threshold that keeps
//!    false alarms at or under 1 % of clean containers; the size with the best detection wins.
//! 2. A held-out test set from a different seed (`--seed`), stratified by scenario
//!    (`--per-scenario` containers of each of the seven), is scored at that operating point:
//!    per-container detection and false-alarm rates, ROC AUC, pixel IoU, per-scenario rates.
//!
//! A container is *detected* when a flagged region overlaps its truth mask; it is a *false
//! alarm* when a clean container (no hidden goods) has any flagged region. A container's score
//! for the ROC is the highest threshold (in steps of 0.05, then of 0.01 above 0.95) at which it
//! still has a region of the minimum size.

use std::collections::BTreeMap;
use std::path::Path;

use baylens_models::ConcealmentModel;
use baylens_models::concealment::regions;
use baylens_protocol::{BayId, ScanId};
use ndarray::Array2;
use scanner_sim::render::HIGH;
use scanner_sim::{Scenario, ScenarioChoice, SimOptions, generate};

const MIN_SIZES: [usize; 5] = [20, 40, 80, 150, 300];
const TARGET_FALSE_ALARM: f64 = 0.01;

struct Scored {
    scenario: Scenario,
    pixels: usize,
    inference_ms: f32,
    positive: bool,
    /// Per minimum size: the highest threshold (of 100 levels) with a region that large.
    score: Vec<f32>,
    /// Per minimum size and threshold level: a region that large overlaps the truth.
    hits: Vec<Vec<bool>>,
    heatmap: Array2<f32>,
    mask: Array2<bool>,
}

fn level(k: usize) -> f32 {
    k as f32 / 100.0
}

/// Threshold levels tried, in hundredths: every 0.05, then every 0.01 above 0.95.
const LEVELS: [usize; 23] = [
    5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85, 90, 95, 96, 97, 98, 99,
];

fn score(heatmap: &Array2<f32>, mask: &Array2<bool>) -> (Vec<f32>, Vec<Vec<bool>>) {
    let mut scores = vec![0.0; MIN_SIZES.len()];
    let mut hits = vec![vec![false; 100]; MIN_SIZES.len()];
    for k in LEVELS {
        let found = regions(heatmap.view(), level(k), 1);
        if found.is_empty() {
            break;
        }
        for (m, &size) in MIN_SIZES.iter().enumerate() {
            let big: Vec<_> = found.iter().filter(|d| d.pixels >= size).collect();
            if big.is_empty() {
                continue;
            }
            scores[m] = level(k);
            hits[m][k] = big.iter().any(|d| {
                (d.y..d.y + d.height).any(|r| {
                    (d.x..d.x + d.width).any(|c| {
                        let (r, c) = (r as usize, c as usize);
                        mask[[r, c]] && heatmap[[r, c]] > level(k)
                    })
                })
            });
        }
    }
    (scores, hits)
}

fn run_set(model: &mut ConcealmentModel, seed: u64, per_scenario: u64, label: &str) -> Vec<Scored> {
    let mut out = Vec::new();
    for scenario in Scenario::ALL {
        for i in 0..per_scenario {
            let options = SimOptions::new(ScenarioChoice::Fixed(scenario));
            let g = generate(
                options,
                seed,
                i,
                ScanId::parse("EVAL").expect("valid"),
                BayId::parse("BAY01").expect("valid"),
                chrono::Utc::now(),
            );
            let (w, h) = (g.scan.width, g.scan.height);
            let result = model
                .analyse(&g.scan.high, w, h, HIGH.air, HIGH.dark)
                .expect("the model runs on simulator scans");
            let mask = Array2::from_shape_fn((h as usize, w as usize), |(r, c)| {
                g.scan.concealment_mask[r * w as usize + c] == 1
            });
            let (score, hits) = score(&result.heatmap, &mask);
            out.push(Scored {
                scenario,
                pixels: (w * h) as usize,
                inference_ms: result.inference_ms,
                positive: mask.iter().any(|&m| m),
                score,
                hits,
                heatmap: result.heatmap,
                mask,
            });
        }
        eprintln!("{label}: {} done", scenario.name());
    }
    out
}

fn auc(set: &[Scored], m: usize) -> f64 {
    let pos: Vec<f32> = set
        .iter()
        .filter(|s| s.positive)
        .map(|s| s.score[m])
        .collect();
    let neg: Vec<f32> = set
        .iter()
        .filter(|s| !s.positive)
        .map(|s| s.score[m])
        .collect();
    let mut wins = 0.0;
    for p in &pos {
        for n in &neg {
            wins += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (pos.len() * neg.len()).max(1) as f64
}

/// Detection and false-alarm rates at size index `m` and threshold level `k`.
fn rates(set: &[Scored], m: usize, k: usize) -> (f64, f64, usize, usize) {
    let pos: Vec<&Scored> = set.iter().filter(|s| s.positive).collect();
    let neg: Vec<&Scored> = set.iter().filter(|s| !s.positive).collect();
    let detected = pos
        .iter()
        .filter(|s| s.score[m] >= level(k) && s.hits[m][k])
        .count();
    let alarms = neg.iter().filter(|s| s.score[m] >= level(k)).count();
    (
        detected as f64 / pos.len().max(1) as f64,
        alarms as f64 / neg.len().max(1) as f64,
        pos.len(),
        neg.len(),
    )
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let per_scenario: u64 = arg(&args, "--per-scenario", 75);
    let seed: u64 = arg(&args, "--seed", 3000);
    let val_seed: u64 = arg(&args, "--val-seed", 2000);
    let threads: usize = arg(&args, "--threads", 2);
    let json_out: String = arg(&args, "--json", String::new());
    let candidate: String = arg(&args, "--model", String::new());
    let mut model = if candidate.is_empty() {
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("onnx");
        ConcealmentModel::load(&models, threads)
    } else {
        ConcealmentModel::load_beside_sha256(Path::new(&candidate), threads)
    }
    .expect("the model loads");

    // 1. Operating point on the validation seed.
    let val = run_set(
        &mut model,
        val_seed,
        per_scenario.div_ceil(2).max(20),
        "validation",
    );
    // Per size, the lowest level within the target; the size with the best detection wins.
    let mut best: Option<(usize, usize, f64, f64)> = None;
    for m in 0..MIN_SIZES.len() {
        if let Some(k) = LEVELS
            .into_iter()
            .find(|&k| rates(&val, m, k).1 <= TARGET_FALSE_ALARM)
        {
            let (det, fa, ..) = rates(&val, m, k);
            if best.is_none_or(|b| det > b.2) {
                best = Some((m, k, det, fa));
            }
        }
    }
    for (m, size) in MIN_SIZES.iter().enumerate() {
        let at: Vec<String> = [90, 95, 97, 99]
            .iter()
            .map(|&k| {
                let (det, fa, ..) = rates(&val, m, k);
                format!("{:.2}: {det:.3}/{fa:.3}", level(k))
            })
            .collect();
        println!(
            "validation, min region {size} px (detection/false alarms): {}",
            at.join(", ")
        );
    }
    let Some((m, k, val_det, val_fa)) = best else {
        eprintln!(
            "no threshold up to {:.2} keeps validation false alarms at or under {TARGET_FALSE_ALARM}: \
             no operating point to measure the test set at",
            level(LEVELS[LEVELS.len() - 1])
        );
        std::process::exit(2);
    };
    println!(
        "operating point (validation, seed {val_seed}, {} containers): threshold {:.2}, \
         min region {} px -> detection {:.3}, false alarms {:.3}",
        val.len(),
        level(k),
        MIN_SIZES[m],
        val_det,
        val_fa
    );

    // 2. Held-out test set.
    let test = run_set(&mut model, seed, per_scenario, "test");
    let (det, fa, npos, nneg) = rates(&test, m, k);
    let (mut inter, mut union) = (0usize, 0usize);
    for s in &test {
        for (p, t) in s.heatmap.iter().zip(s.mask.iter()) {
            let p = *p > level(k);
            inter += usize::from(p && *t);
            union += usize::from(p || *t);
        }
    }
    let iou = inter as f64 / union.max(1) as f64;
    let area_under = auc(&test, m);
    println!(
        "held-out test (seed {seed}, {} containers: {npos} with hidden goods, {nneg} clean):",
        test.len()
    );
    println!("  detection rate      {det:.3}");
    println!("  false-alarm rate    {fa:.3}");
    println!("  ROC AUC             {area_under:.4}");
    println!("  pixel IoU           {iou:.3}");
    println!("  per scenario (share flagged; for hidden goods, flagged where they are):");
    let mut per: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for s in &test {
        let e = per.entry(s.scenario.name()).or_default();
        e.1 += 1;
        let flagged = s.score[m] >= level(k) && (!s.positive || s.hits[m][k]);
        e.0 += usize::from(flagged);
    }
    for (name, (flagged, n)) in &per {
        println!(
            "    {name:<12} {flagged:>4}/{n:<4} {:.3}",
            *flagged as f64 / *n as f64
        );
    }
    let median_ms = |small: bool| {
        let mut ms: Vec<f32> = test
            .iter()
            .filter(|s| (s.pixels < 300_000) == small)
            .map(|s| s.inference_ms)
            .collect();
        ms.sort_by(f32::total_cmp);
        ms.get(ms.len() / 2).copied().unwrap_or(0.0)
    };
    println!(
        "  inference (ONNX Runtime, {threads} threads): median {:.0} ms for scans under 0.3 Mpixel \
         (20' without truck), {:.0} ms for larger ones (trucks, 40')",
        median_ms(true),
        median_ms(false)
    );
    if !json_out.is_empty() {
        let report = serde_json::json!({
            "validation": {"seed": val_seed, "containers": val.len(), "threshold": level(k),
                           "min_region_pixels": MIN_SIZES[m], "detection": val_det, "false_alarm": val_fa},
            "test": {"seed": seed, "containers": test.len(), "positives": npos, "negatives": nneg,
                     "detection": det, "false_alarm": fa, "roc_auc": area_under, "pixel_iou": iou,
                     "per_scenario": per.iter().map(|(k, (f, n))| (k.to_string(), serde_json::json!({"flagged": f, "of": n}))).collect::<serde_json::Map<_, _>>()},
        });
        std::fs::write(
            &json_out,
            serde_json::to_vec_pretty(&report).expect("serialisable"),
        )
        .expect("the report can be written");
    }
}
