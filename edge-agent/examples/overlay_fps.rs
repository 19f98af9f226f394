//! Frame rate of the live overlay path at 1280 x 720: for each camera frame, find the container
//! (AR registration), warp the latest scan's layers onto it, blend, and encode the JPEG the
//! tablet shows. OCR runs on its own thread on a share of the frames and is timed separately.
//!
//! ```text
//! cargo run --release -p edge-agent --example overlay_fps -- [--frames 200]
//! ```
//!
//! The scan is a simulated 20' container with concealed goods, analysed by the real pipeline
//! (concealment model through ONNX Runtime, calibration, manifest check against its
//! declaration); the frames are scanner-sim's camera views of that container from five fixed
//! bay cameras, 60 frames each with a pixel or two of shake, JPEG-decoded as an IP camera's
//! would be. One thread, like the agent's camera thread.

use std::collections::HashMap;
use std::time::Instant;

use baylens_protocol::risk::{LaneThresholds, PreArrival};
use edge_agent::analyze::{MAX_IMAGE_BYTES, analyse};
use edge_agent::bay::LatestScan;
use edge_agent::calibration::Calibration;
use edge_agent::camera::Frame;
use edge_agent::camera::live::{Steady, overlay_for, process};
use edge_agent::ingest::scan::load_scan;
use scanner_sim::camera::{self, CameraOptions, View};
use scanner_sim::{Scenario, SimOptions};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let frames: usize = args
        .iter()
        .position(|a| a == "--frames")
        .and_then(|i| args.get(i + 1))
        .map_or(Ok(200), |v| v.parse())?;
    let dir = tempfile::tempdir()?;
    let g = scanner_sim::generate(
        SimOptions::small(Scenario::Concealment),
        42,
        1,
        baylens_protocol::ScanId::parse("BAY01-fps-1")?,
        baylens_protocol::BayId::parse("BAY01")?,
        chrono::Utc::now(),
    );
    let files = scanner_sim::write_scan(dir.path(), &g.scan, &g.meta, false)?;
    let loaded = load_scan(&files.sidecar, MAX_IMAGE_BYTES).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut model = baylens_models::ConcealmentModel::load(std::path::Path::new("models/onnx"), 1)?;
    let analysis = analyse(
        &loaded,
        &mut model,
        &Calibration::scanner_sim(),
        Some(&g.declaration),
        &PreArrival::Undeclared,
        LaneThresholds::default(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut layers = HashMap::new();
    let mut overlay_json = serde_json::Value::Null;
    for (name, bytes) in analysis
        .overlay_files(&loaded)
        .map_err(|e| anyhow::anyhow!("{e}"))?
    {
        if name == "overlay.json" {
            overlay_json = serde_json::from_slice(&bytes)?;
        } else if let Some(l) = name.strip_suffix(".png") {
            layers.insert(l.to_owned(), bytes);
        }
    }
    let scan = LatestScan {
        report: analysis.report,
        overlay: overlay_json,
        layers,
        declaration: Some(g.declaration.clone()),
        arrived: std::time::Instant::now(),
    };
    let overlay = overlay_for(&scan, false).ok_or_else(|| anyhow::anyhow!("no overlay"))?;
    // Camera frames of that container from fixed bay cameras: five bays (poses), each frame a
    // pixel or two of shake from the last, JPEG round trip as from an IP camera.
    let code = g
        .meta
        .container_code
        .clone()
        .expect("simulated scans carry a code");
    let opts = CameraOptions {
        difficulty: 0.5,
        vertical_share: 0.0,
        ..CameraOptions::default()
    };
    let mut camera_frames = Vec::new();
    for bay in 0..5u64 {
        let pose = camera::render(
            View::Side,
            g.truth.container,
            &code,
            &opts,
            &mut scanner_sim::scan_rng(9, bay),
        );
        for (dx, dy) in [(0i64, 0i64), (1, 0), (2, 1), (1, -1), (-1, 0), (-2, 1)] {
            let mut shaken = image::RgbImage::new(pose.image.width(), pose.image.height());
            image::imageops::overlay(&mut shaken, &pose.image, dx, dy);
            let mut jpeg = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85)
                .encode_image(&shaken)?;
            let rgb = image::load_from_memory(&jpeg)?.into_rgb8();
            camera_frames.push(Frame {
                width: rgb.width(),
                height: rgb.height(),
                rgb: rgb.into_raw(),
                at: Instant::now(),
            });
        }
    }
    let mut times = Vec::new();
    let mut steady = Steady::default();
    let (mut registered, mut drawn) = (0, 0);
    for i in 0..frames + 10 {
        // 60 frames from each bay in turn, shaking.
        let frame = &camera_frames[((i / 60) % 5) * 6 + i % 6];
        let t = Instant::now();
        let (jpeg, reg, h) = process(
            frame,
            Some((&overlay.bgra, overlay.face_m, &overlay.scan_to_face)),
            &mut steady,
            80,
        )?;
        let dt = t.elapsed().as_secs_f64();
        if i >= 10 {
            times.push(dt);
            registered += usize::from(reg.is_some());
            drawn += usize::from(h.is_some());
        }
        std::hint::black_box(jpeg);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let p95 = times[times.len() * 95 / 100];
    println!(
        "frames {frames} at 1280x720: registered (or held) {registered}, overlay drawn {drawn}"
    );
    println!(
        "overlay path (register + warp + blend + JPEG): median {:.1} ms, p95 {:.1} ms -> {:.1} frames/s on one thread",
        1e3 * median,
        1e3 * p95,
        1.0 / median
    );
    // OCR, for comparison: it runs on its own thread on every Nth frame until the code is read.
    let (det, rec) = baylens_models::ocr::checkout_model_paths("tiny")?;
    let mut ocr = baylens_models::OcrModel::load(
        &det,
        &rec,
        baylens_models::OcrOptions {
            det_limit: 1280,
            ..Default::default()
        },
    )?;
    let mut ocr_times = Vec::new();
    for f in camera_frames.iter().step_by(6) {
        let t = Instant::now();
        let _ = ocr.read_code(baylens_models::ocr::Rgb {
            data: &f.rgb,
            width: f.width as usize,
            height: f.height as usize,
        })?;
        ocr_times.push(t.elapsed().as_secs_f64());
    }
    ocr_times.sort_by(f64::total_cmp);
    println!(
        "OCR (tiny models, 1 thread): median {:.0} ms per frame",
        1e3 * ocr_times[ocr_times.len() / 2]
    );
    Ok(())
}
