//! The bay pipeline stage by stage, timed: the Rust side of `bench/compare/run.sh`, which runs it
//! against the Python reference (`bench/reference/pipeline.py`) on the same scans.
//!
//! ```sh
//! cargo run --release -p edge-agent --example pipeline_stages -- --models models/onnx \
//!     --threads 2 --declarations DIR/declarations --rounds 1 DIR/*.json
//! ```
//!
//! Prints one JSON object per scan and round, as the Python reference does: per-stage times in
//! ms (`decode`, `model` with `ort_run` the ONNX Runtime part of it, `calibrate`, `manifest`,
//! `overlay`, `total`) and the findings (kind, score, region).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use baylens_protocol::risk::{LaneThresholds, PreArrival};
use edge_agent::analysis::finish_report;
use edge_agent::analyze::{MAX_IMAGE_BYTES, model_report, scan_cargo};
use edge_agent::calibration::Calibration;
use edge_agent::commission::cleared::{declaration_for, declarations_in};
use edge_agent::expected;
use edge_agent::ingest::scan::load_scan;
use edge_agent::manifest::{ManifestInput, Tolerances, verify};
use edge_agent::overlay;
use serde_json::json;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut models, mut threads, mut decl_dir, mut rounds, mut warmup) =
        (PathBuf::from("models/onnx"), 2usize, None, 1usize, 2usize);
    let mut sidecars = Vec::new();
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| anyhow::anyhow!("{a} needs a value"))
        };
        match a.as_str() {
            "--models" => models = PathBuf::from(value()?),
            "--threads" => threads = value()?.parse()?,
            "--declarations" => decl_dir = Some(PathBuf::from(value()?)),
            "--rounds" => rounds = value()?.parse()?,
            "--warmup" => warmup = value()?.parse()?,
            _ => sidecars.push(PathBuf::from(a)),
        }
    }
    let declarations = match decl_dir {
        Some(dir) => declarations_in(&dir).map_err(|e| anyhow::anyhow!(e))?,
        None => HashMap::new(),
    };
    let mut model = baylens_models::ConcealmentModel::load(&models, threads)?;
    let calibration = Calibration::scanner_sim();
    let warm: Vec<PathBuf> = sidecars.iter().take(warmup).cloned().collect();
    for (round, list) in std::iter::once(&warm)
        .chain(std::iter::repeat_n(&sidecars, rounds))
        .enumerate()
    {
        for path in list {
            let t0 = Instant::now();
            let loaded = load_scan(path, MAX_IMAGE_BYTES).map_err(|e| anyhow::anyhow!("{e}"))?;
            let t1 = Instant::now();
            let (output, mut report) =
                model_report(&loaded, &mut model, calibration.operating_point())
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            let t2 = Instant::now();
            let (high, hm) = loaded.high();
            let w = high.width as usize;
            let pitch = loaded.sidecar.pitch_mm();
            let cargo = scan_cargo(&loaded, &calibration);
            let t3 = Instant::now();
            let decl = declaration_for(&loaded.sidecar, &declarations);
            let findings = verify(
                ManifestInput {
                    declaration: decl,
                    container_code: loaded.sidecar.container_code.as_ref(),
                    cargo: cargo.as_ref(),
                    unreadable_code: None,
                    pitch_mm: pitch,
                },
                w,
                Tolerances::default(),
            );
            let pre = if decl.is_some() {
                PreArrival::Unscored
            } else {
                PreArrival::Undeclared
            };
            finish_report(&mut report, findings, &pre, LaneThresholds::default());
            let blocks = cargo
                .as_ref()
                .map(|c| expected::blocks(c, w, pitch))
                .unwrap_or_default();
            let layout = match (decl, &cargo) {
                (Some(d), Some(c)) => expected::layout_over(d, c, &blocks, pitch),
                _ => None,
            };
            let t4 = Instant::now();
            // The same files the agent stores (the thumbnail aside).
            let (files, _) = overlay::render_layers(
                (&high.samples, high.width, high.height, hm.air, hm.dark),
                cargo.as_ref(),
                layout.as_ref(),
                &output,
                &report.findings,
            )?;
            let mut bytes: usize = files.iter().map(|f| f.1.len()).sum();
            let vector = overlay::vector(
                &report,
                pitch,
                cargo.as_ref(),
                layout.as_ref(),
                &blocks,
                &[],
            );
            bytes += serde_json::to_vec(&vector)?.len();
            let t5 = Instant::now();
            if round == 0 {
                continue;
            }
            let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
            let findings: Vec<_> = report
                .findings
                .iter()
                .map(|f| json!({"kind": f.kind, "score": f.score, "region": f.region}))
                .collect();
            println!(
                "{}",
                json!({
                    "scan_id": report.scan_id,
                    "ms": {"decode": ms(t0, t1), "model": ms(t1, t2),
                           "ort_run": f64::from(output.inference_ms),
                           "calibrate": ms(t2, t3), "manifest": ms(t3, t4),
                           "overlay": ms(t4, t5), "total": ms(t0, t5)},
                    "overlay_bytes": bytes,
                    "findings": findings,
                })
            );
        }
    }
    Ok(())
}
