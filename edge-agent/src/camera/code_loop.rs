//! The OCR thread: reads the container code on frames the camera thread hands it, votes them
//! into one reading per truck pass (`baylens_protocol::code_pass`) until enough frames agree,
//! and shows the pass result on the tablet.
//!
//! When a pass's code is accepted for the bay's latest scan, the reading goes to the server's
//! case with the best frames that read it (`baylens_protocol::camera_code`), through the
//! agent's durable queue ([`crate::annotations`]). The server compares it with the scanner's
//! code and the declaration's. A reading is reported only for a scan that came in less than
//! [`CODE_WINDOW`] before: a camera that could not read the last container must not pin the
//! next truck's code on it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::time::{Duration, Instant};

use base64::Engine as _;
use baylens_models::ocr::{OcrModel, OcrOptions, Rgb};
use baylens_protocol::ScanId;
use baylens_protocol::camera_code::{CameraCode, MAX_EVIDENCE_FRAMES};
use baylens_protocol::code_pass::{PassReading, PassVote};
use baylens_protocol::code_read::CodeReading;

use super::Frame;
use crate::annotations::AnnotationStore;
use crate::bay::{BayState, CodeStatus, LatestScan};
use crate::config::CameraConfig;

/// Nothing code-shaped for this long ends a truck pass that has no accepted code yet.
const PASS_GAP: Duration = Duration::from_secs(30);
/// Frames agreeing on an accepted code after which a pass stops reading.
const SETTLED_FRAMES: usize = 5;
/// A code accepted this long after the latest scan came in is not reported for it.
pub const CODE_WINDOW: Duration = Duration::from_secs(600);
/// Largest evidence frame sent, JPEG bytes (the server takes up to 2 MiB).
const MAX_FRAME_JPEG: usize = 2 * 1024 * 1024;

/// Where the camera's accepted readings go: the agent's durable queue to the server, written
/// from the OCR thread through the agent's runtime.
#[derive(Debug, Clone)]
pub struct CodeReports {
    /// The agent's runtime.
    pub runtime: tokio::runtime::Handle,
    /// The queue.
    pub store: AnnotationStore,
}

/// The best frames of a pass whose own reading passed its check digit, as JPEG: the evidence
/// sent with the pass's code.
#[derive(Debug, Default)]
struct Evidence {
    /// (the frame's own code, its confidence, the JPEG), best first.
    frames: Vec<(String, f32, Vec<u8>)>,
}

/// Frames kept per pass (a few per code, should two codes be seen).
const KEPT_FRAMES: usize = 2 * MAX_EVIDENCE_FRAMES;

impl Evidence {
    /// Keeps `frame` if its reading passed its check digit and is among the best so far.
    fn offer(&mut self, reading: &CodeReading, frame: &Frame) {
        let Some(code) = reading.code.as_ref().filter(|_| reading.check.accepted()) else {
            return;
        };
        let worst = self.frames.last().map_or(f32::MIN, |f| f.1);
        if self.frames.len() >= KEPT_FRAMES && reading.confidence <= worst {
            return;
        }
        let Some(jpeg) = jpeg(frame).filter(|j| j.len() <= MAX_FRAME_JPEG) else {
            return;
        };
        self.frames
            .push((code.as_str().to_owned(), reading.confidence, jpeg));
        self.frames.sort_by(|a, b| b.1.total_cmp(&a.1));
        self.frames.truncate(KEPT_FRAMES);
    }

    /// The best frames that read `code`, base64.
    fn of(&self, code: &str) -> Vec<String> {
        self.frames
            .iter()
            .filter(|f| f.0 == code)
            .take(MAX_EVIDENCE_FRAMES)
            .map(|f| base64::engine::general_purpose::STANDARD.encode(&f.2))
            .collect()
    }
}

fn jpeg(frame: &Frame) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode(
            &frame.rgb,
            frame.width,
            frame.height,
            image::ExtendedColorType::Rgb8,
        )
        .ok()?;
    Some(out)
}

/// The reading to report for `scan`, if its code was accepted and the scan is recent.
fn report_for(scan: &LatestScan, result: &PassReading, evidence: &Evidence) -> Option<CameraCode> {
    let code = result.reading.code.clone()?;
    if !result.reading.check.accepted() || scan.arrived.elapsed() > CODE_WINDOW {
        return None;
    }
    Some(CameraCode {
        reading_id: uuid::Uuid::new_v4().to_string(),
        scan_id: scan.report.scan_id.clone(),
        read_at: chrono::Utc::now(),
        frames_jpeg_base64: evidence.of(code.as_str()),
        code,
        confidence: result.reading.confidence.clamp(0.0, 1.0),
        frames: u32::try_from(result.frames).unwrap_or(u32::MAX),
        agreeing: u32::try_from(result.agreeing).unwrap_or(u32::MAX),
        size_type: result.reading.size_type.as_ref().map(|s| s.code.clone()),
    })
}

/// Starts the OCR thread (see the module's documentation). Off (with a warning) when the
/// models are missing.
pub fn spawn_ocr(
    config: &CameraConfig,
    bay: Arc<BayState>,
    stop: Arc<AtomicBool>,
    reports: Option<CodeReports>,
) -> std::io::Result<Option<SyncSender<Frame>>> {
    if !config.ocr {
        return Ok(None);
    }
    let (det, rec) = baylens_models::ocr::model_paths(&config.ocr_dir(), &config.ocr_models);
    let mut model = match OcrModel::load(
        &det,
        &rec,
        OcrOptions {
            det_limit: 1280,
            ..OcrOptions::default()
        },
    ) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!("container-code OCR is off: {e} (run ./baylens setup for the models)");
            return Ok(None);
        }
    };
    let (tx, rx) = sync_channel::<Frame>(1);
    let mut scans = bay.scan_changes();
    std::thread::Builder::new().name("ocr".into()).spawn(move || {
        let mut tried = 0u32;
        let mut pass = PassVote::default();
        let mut evidence = Evidence::default();
        let mut reported: Option<ScanId> = None;
        let mut last_seen = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let Ok(frame) = rx.recv_timeout(Duration::from_millis(500)) else {
                continue;
            };
            // A new pass: the next container's scan came in, or, before any code was
            // accepted, nothing code-shaped was seen for a while (the truck has gone). An
            // accepted code stays until the next scan, however long the container is examined.
            let new_scan = scans.has_changed().unwrap_or(false);
            let mut settled = pass.result();
            let accepted = settled.reading.check.accepted();
            if new_scan || (!accepted && pass.frames() > 0 && last_seen.elapsed() >= PASS_GAP) {
                scans.mark_unchanged();
                tried = 0;
                pass = PassVote::default();
                evidence = Evidence::default();
                settled = pass.result();
            }
            // Settled: enough frames agree on an accepted code; spare the CPU until the next.
            if settled.reading.check.accepted() && settled.agreeing >= SETTLED_FRAMES {
                continue;
            }
            tried += 1;
            let img = Rgb {
                data: &frame.rgb,
                width: frame.width as usize,
                height: frame.height as usize,
            };
            let reading = match model.read_code(img) {
                Ok((r, _)) => r,
                Err(e) => {
                    tracing::warn!("OCR failed on a frame: {e}");
                    continue;
                }
            };
            if reading.best_guess.len() == 11 {
                last_seen = Instant::now();
            }
            let was_accepted = settled.reading.check.accepted();
            pass.add(&reading);
            evidence.offer(&reading, &frame);
            let result = pass.result();
            let latest = bay.latest();
            let sidecar_code = latest.as_ref().and_then(|s| s.report.container_code.clone());
            let matches_scan = match (&result.reading.code, &sidecar_code) {
                (Some(read), Some(expected)) => Some(read == expected),
                _ => None,
            };
            if result.reading.check.accepted() && !was_accepted {
                tracing::info!(code = ?result.reading.code.as_ref().map(|c| c.to_string()), confidence = result.reading.confidence, frames = result.frames, agreeing = result.agreeing, matches_scan, "container code read by the camera");
                // To the scan's case on the server, once per scan.
                if let (Some(out), Some(scan)) = (&reports, &latest)
                    && reported.as_ref() != Some(&scan.report.scan_id)
                    && let Some(c) = report_for(scan, &result, &evidence)
                {
                    match out.runtime.block_on(out.store.add_camera_code(&c)) {
                        Ok(()) => reported = Some(c.scan_id),
                        Err(e) => tracing::error!(
                            "the camera's reading of {} is not stored for the server: {e}",
                            c.scan_id
                        ),
                    }
                }
            }
            bay.set_code(CodeStatus {
                reading: result.reading,
                read_at: chrono::Utc::now(),
                frames_tried: tried,
                frames_agreeing: u32::try_from(result.agreeing).unwrap_or(u32::MAX),
                matches_scan,
                scan_id: latest.map(|s| s.report.scan_id.to_string()),
            });
        }
    })?;
    Ok(Some(tx))
}
