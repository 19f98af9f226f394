//! The live loop, on its own thread: read a frame, find the container, warp the latest scan's
//! layers onto it, encode it, publish it; hand a frame now and then to the OCR thread
//! ([`super::code_loop`]).
//!
//! A camera that cannot be opened, or stops giving frames, is logged, shown on the tablet as
//! unavailable with the time to the next attempt, and reopened with exponential backoff (1 s
//! doubling to `max_backoff_secs`). Scans are processed all the while: this thread shares
//! nothing with the scan loop but [`BayState`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use opencv::core::{Mat, Point, Scalar, Vector};
use opencv::prelude::*;
use opencv::{imgcodecs, imgproc};

use super::code_loop::{CodeReports, spawn_ocr};
use super::register::{self, Registration};
use super::{Frame, FrameSource, to_bgr_mat};
use crate::bay::{BayState, CameraStatus, LatestScan, LiveFrame};
use crate::config::CameraConfig;

/// The face assumed before any scan has been seen: a 40' container (metres).
const DEFAULT_FACE_M: [f64; 2] = [12.192, 2.591];
/// How long the last registration stands in for frames where the container is not found (a
/// person or a forklift passing in front of a parked container).
const HOLD_REGISTRATION: Duration = Duration::from_secs(5);
/// Wall, floor and roof between the scan's cargo space and the outside of the container (m).
const END_WALL_M: f64 = 0.08;
const ROOF_M: f64 = 0.05;
const FLOOR_M: f64 = 0.15;

/// The scan's layers composed into one overlay, and how scan pixels map to the face.
#[derive(Debug)]
pub struct Overlay {
    /// The scan.
    pub scan_id: String,
    /// BGRA, scan size.
    pub bgra: Mat,
    /// Face size (m).
    pub face_m: [f64; 2],
    /// Scan pixels to face metres.
    pub scan_to_face: [f64; 9],
}

/// Where the container's outside is in scan pixels, from the overlay's cargo space.
fn scan_geometry(scan: &LatestScan, mirror: bool) -> Option<([f64; 2], [f64; 9])> {
    let cs = scan.overlay.get("cargo_space")?;
    let p = scan.overlay.get("pixel_pitch_mm")?.as_f64()? / 1000.0;
    // Rows may be another size than columns (rectangular pixels); older overlays lack it.
    let pv = scan
        .overlay
        .get("pixel_pitch_vertical_mm")
        .and_then(|v| v.as_f64())
        .map_or(p, |v| v / 1000.0);
    let (x, y) = (cs.get("x")?.as_f64()?, cs.get("y")?.as_f64()?);
    let (w, h) = (cs.get("width")?.as_f64()?, cs.get("height")?.as_f64()?);
    let face = [w * p + 2.0 * END_WALL_M, h * pv + ROOF_M + FLOOR_M];
    // u = (x_scan - x) p + wall, v = (y_scan - y) pv + roof; mirrored when the camera looks at
    // the other side of the lane from the scanner's source.
    let (sx, tx) = if mirror {
        (-p, face[0] - END_WALL_M + x * p)
    } else {
        (p, END_WALL_M - x * p)
    };
    Some((face, [sx, 0.0, tx, 0.0, pv, ROOF_M - y * pv, 0.0, 0.0, 1.0]))
}

fn compose_layers(scan: &LatestScan) -> Option<Mat> {
    let (w, h) = (scan.report.width, scan.report.height);
    let mut acc = image::RgbaImage::new(w, h);
    for name in ["heat", "expected", "findings"] {
        let Some(png) = scan.layers.get(name) else {
            continue;
        };
        let Ok(layer) = image::load_from_memory(png) else {
            continue;
        };
        let layer = layer.into_rgba8();
        if layer.dimensions() != (w, h) {
            continue;
        }
        image::imageops::overlay(&mut acc, &layer, 0, 0);
    }
    // RGBA -> BGRA for OpenCV.
    let mut bgra = acc.into_raw();
    for px in bgra.chunks_exact_mut(4) {
        px.swap(0, 2);
    }
    let mut m = Mat::new_rows_cols_with_default(
        h as i32,
        w as i32,
        opencv::core::CV_8UC4,
        Scalar::all(0.0),
    )
    .ok()?;
    m.data_bytes_mut().ok()?.copy_from_slice(&bgra);
    Some(m)
}

/// The overlay of a scan (none without a cargo space or layers).
pub fn overlay_for(scan: &LatestScan, mirror: bool) -> Option<Overlay> {
    let (face_m, scan_to_face) = scan_geometry(scan, mirror)?;
    Some(Overlay {
        scan_id: scan.report.scan_id.to_string(),
        bgra: compose_layers(scan)?,
        face_m,
        scan_to_face,
    })
}

fn to_mat(h: &[f64; 9]) -> opencv::Result<Mat> {
    let rows: Vec<Vec<f64>> = h.chunks(3).map(<[f64]>::to_vec).collect();
    Mat::from_slice_2d(&rows)
}

/// Draws the scan's overlay onto the frame through `scan_to_frame`, and the face's outline.
pub fn draw(
    bgr: &mut Mat,
    overlay_bgra: Option<&Mat>,
    scan_to_frame: Option<&[f64; 9]>,
    corners: Option<&[[f64; 2]; 4]>,
) -> opencv::Result<()> {
    let size = bgr.size()?;
    if let (Some(ov), Some(h)) = (overlay_bgra, scan_to_frame) {
        let mut warped = Mat::default();
        imgproc::warp_perspective(
            ov,
            &mut warped,
            &to_mat(h)?,
            size,
            imgproc::INTER_LINEAR,
            opencv::core::BORDER_CONSTANT,
            Scalar::all(0.0),
        )?;
        // Alpha-blend only where the face is.
        let (x0, y0, x1, y1) = corners.map_or((0, 0, size.width, size.height), |c| {
            let xs = c.map(|p| p[0]);
            let ys = c.map(|p| p[1]);
            let clamp = |v: f64, hi: i32| (v as i32).clamp(0, hi);
            (
                clamp(xs.iter().copied().fold(f64::MAX, f64::min), size.width),
                clamp(ys.iter().copied().fold(f64::MAX, f64::min), size.height),
                clamp(
                    xs.iter().copied().fold(f64::MIN, f64::max) + 1.0,
                    size.width,
                ),
                clamp(
                    ys.iter().copied().fold(f64::MIN, f64::max) + 1.0,
                    size.height,
                ),
            )
        });
        let width = size.width as usize;
        let src = warped.data_bytes()?.to_vec();
        let dst = bgr.data_bytes_mut()?;
        for y in y0 as usize..y1 as usize {
            for x in x0 as usize..x1 as usize {
                let i = y * width + x;
                let a = u32::from(src[i * 4 + 3]) * 217 / 255; // at most 85 % opaque
                if a == 0 {
                    continue;
                }
                for k in 0..3 {
                    let d = u32::from(dst[i * 3 + k]);
                    let s = u32::from(src[i * 4 + k]);
                    dst[i * 3 + k] = ((d * (255 - a) + s * a) / 255) as u8;
                }
            }
        }
    }
    if let Some(c) = corners {
        let pts: Vector<Point> = c
            .iter()
            .map(|p| Point::new(p[0] as i32, p[1] as i32))
            .collect();
        let mut polys: Vector<Vector<Point>> = Vector::new();
        polys.push(pts);
        imgproc::polylines(
            bgr,
            &polys,
            true,
            Scalar::new(60.0, 220.0, 60.0, 0.0),
            3,
            imgproc::LINE_AA,
            0,
        )?;
    }
    Ok(())
}

/// Steadies the registration of a fixed camera from frame to frame. A new position of the
/// container is believed only when two frames in a row agree on it (one odd frame, such as a
/// post taken for the container's end, would otherwise throw the overlay across the picture for
/// a frame); the last believed one stands in for up to [`HOLD_REGISTRATION`] while the container
/// is not found (a person or a forklift passing in front of it).
#[derive(Debug, Default)]
pub struct Steady {
    held: Option<(Instant, Registration)>,
    candidate: Option<Registration>,
}

/// Two registrations agree when no corner moved more than this share of the frame's width.
const AGREE: f64 = 0.02;

fn agree(a: &Registration, b: &Registration, width: f64) -> bool {
    a.corners
        .iter()
        .zip(&b.corners)
        .all(|(p, q)| ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt() < AGREE * width)
}

impl Steady {
    /// The registration to draw with, given what this frame (`width` pixels wide) gave.
    pub fn settle(&mut self, found: Option<Registration>, width: f64) -> Option<Registration> {
        let now = Instant::now();
        let held = self
            .held
            .as_ref()
            .filter(|(at, _)| at.elapsed() < HOLD_REGISTRATION)
            .map(|(_, r)| r.clone());
        let Some(found) = found else {
            self.candidate = None;
            return held;
        };
        let confirmed = held.as_ref().is_some_and(|h| agree(h, &found, width))
            || self
                .candidate
                .as_ref()
                .is_some_and(|c| agree(c, &found, width));
        if confirmed {
            self.candidate = None;
            self.held = Some((now, found.clone()));
            Some(found)
        } else {
            self.candidate = Some(found);
            held
        }
    }
}

/// A processed frame: the JPEG, the registration, and scan pixels to frame pixels.
pub type Processed = (Vec<u8>, Option<Registration>, Option<[f64; 9]>);

/// Registers one frame and draws the overlay: the overlay path the frame-rate bench measures.
///
/// `steady` carries the registration over from frame to frame (see [`Steady`]).
pub fn process(
    frame: &Frame,
    overlay: Option<(&Mat, [f64; 2], &[f64; 9])>,
    steady: &mut Steady,
    jpeg_quality: i32,
) -> opencv::Result<Processed> {
    let mut bgr = to_bgr_mat(&frame.rgb, frame.width, frame.height)?;
    let face_m = overlay.map_or(DEFAULT_FACE_M, |o| o.1);
    let reg = steady.settle(register::register(&bgr, face_m)?, f64::from(frame.width));
    let scan_to_frame = match (&reg, overlay) {
        (Some(r), Some((_, _, scan_to_face))) => {
            Some(register::compose(&r.homography, scan_to_face))
        }
        _ => None,
    };
    draw(
        &mut bgr,
        overlay.map(|o| o.0),
        scan_to_frame.as_ref(),
        reg.as_ref().map(|r| &r.corners),
    )?;
    let mut jpeg: Vector<u8> = Vector::new();
    let params = Vector::<i32>::from_slice(&[imgcodecs::IMWRITE_JPEG_QUALITY, jpeg_quality]);
    imgcodecs::imencode(".jpg", &bgr, &mut jpeg, &params)?;
    Ok((jpeg.to_vec(), reg, scan_to_frame))
}

/// Starts the camera thread (and its OCR thread, whose accepted readings go to `reports`). It
/// runs until `stop` is set.
pub fn spawn(
    config: CameraConfig,
    bay: Arc<BayState>,
    stop: Arc<AtomicBool>,
    reports: Option<CodeReports>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let ocr = spawn_ocr(&config, bay.clone(), stop.clone(), reports)?;
    std::thread::Builder::new()
        .name("camera".into())
        .spawn(move || run(&config, &bay, &stop, ocr))
}

fn sleep_unless_stopped(stop: &AtomicBool, d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100).min(until - Instant::now()));
    }
}

fn run(config: &CameraConfig, bay: &BayState, stop: &AtomicBool, ocr: Option<SyncSender<Frame>>) {
    let max_backoff = Duration::from_secs(config.max_backoff_secs.max(1));
    let mut backoff = Duration::from_secs(1);
    let mut reconnects = 0u32;
    let mut seq = 0u64;
    let mut overlay: Option<Overlay> = None;
    let mut steady = Steady::default();
    let mut had_camera = false;
    let min_period = config
        .max_fps
        .filter(|f| *f > 0.0)
        .map(|f| Duration::from_secs_f64(1.0 / f));
    // Shown on the tablet until the next attempt, which comes after `backoff`.
    let unavailable = |e: &super::CameraError, backoff: Duration, reconnects: u32| {
        bay.set_camera(CameraStatus {
            state: "unavailable".into(),
            source: Some(crate::config::redact_address(&config.source)),
            error: Some(e.to_string()),
            retry_in_secs: Some(backoff.as_secs()),
            reconnects,
        });
        sleep_unless_stopped(stop, backoff);
    };
    while !stop.load(Ordering::Relaxed) {
        bay.set_camera(CameraStatus {
            state: "connecting".into(),
            source: Some(crate::config::redact_address(&config.source)),
            reconnects,
            ..CameraStatus::default()
        });
        let mut source: Box<dyn FrameSource> = match super::open(&config.source) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(
                    retry_in_secs = backoff.as_secs(),
                    "{e}; the agent goes on processing scans"
                );
                unavailable(&e, backoff, reconnects);
                backoff = (backoff * 2).min(max_backoff);
                continue;
            }
        };
        if had_camera {
            reconnects += 1;
        }
        had_camera = true;
        tracing::info!(source = source.name(), "camera live");
        bay.set_camera(CameraStatus {
            state: "live".into(),
            source: Some(crate::config::redact_address(&config.source)),
            reconnects,
            ..CameraStatus::default()
        });
        let mut last: Option<Instant> = None;
        while !stop.load(Ordering::Relaxed) {
            let frame = match source.next_frame() {
                // A camera that opens but gives no frame keeps backing off; one that gives
                // frames starts over from a short wait the next time it is lost.
                Ok(f) => {
                    backoff = Duration::from_secs(1);
                    f
                }
                Err(e) => {
                    tracing::warn!(retry_in_secs = backoff.as_secs(), "{e}; reopening it");
                    unavailable(&e, backoff, reconnects);
                    backoff = (backoff * 2).min(max_backoff);
                    break;
                }
            };
            if let (Some(p), Some(l)) = (min_period, last)
                && l.elapsed() < p
            {
                continue;
            }
            last = Some(Instant::now());
            seq += 1;
            let latest = bay.latest();
            if let Some(scan) = &latest
                && overlay
                    .as_ref()
                    .is_none_or(|o| o.scan_id != scan.report.scan_id.to_string())
            {
                overlay = overlay_for(scan, config.mirror);
            }
            let ov = overlay
                .as_ref()
                .map(|o| (&o.bgra, o.face_m, &o.scan_to_face));
            match process(&frame, ov, &mut steady, config.jpeg_quality) {
                Ok((jpeg, reg, scan_to_frame)) => bay.publish_frame(LiveFrame {
                    seq,
                    jpeg,
                    width: frame.width,
                    height: frame.height,
                    homography: scan_to_frame,
                    corners: reg.map(|r| r.corners),
                    scan_id: overlay.as_ref().map(|o| o.scan_id.clone()),
                    captured_at: chrono::Utc::now(),
                    process_ms: frame.at.elapsed().as_secs_f64() * 1e3,
                }),
                Err(e) => tracing::warn!("frame {seq} not processed: {e}"),
            }
            let needs_code = bay.code().is_none_or(|c| !c.reading.check.accepted());
            if let Some(tx) = &ocr
                && needs_code
                && seq % u64::from(config.ocr_every_frames.max(1)) == 0
            {
                // Busy reading the last one: this frame is skipped, the next one will do.
                let _ = tx.try_send(frame);
            }
        }
    }
    bay.set_camera(CameraStatus {
        state: "off".into(),
        source: Some(crate::config::redact_address(&config.source)),
        reconnects,
        ..CameraStatus::default()
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(dx: f64) -> Registration {
        Registration {
            homography: [1.0, 0.0, dx, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
            corners: [
                [100.0 + dx, 100.0],
                [900.0 + dx, 100.0],
                [900.0 + dx, 400.0],
                [100.0 + dx, 400.0],
            ],
            inliers: 100,
            points: 100,
        }
    }

    #[test]
    fn a_new_position_needs_two_frames_that_agree_and_a_lost_one_is_held() {
        let mut s = Steady::default();
        assert_eq!(
            s.settle(Some(reg(0.0)), 1280.0),
            None,
            "one frame is not believed yet"
        );
        assert_eq!(
            s.settle(Some(reg(3.0)), 1280.0),
            Some(reg(3.0)),
            "two that agree are"
        );
        // One odd frame far away: the believed one stays.
        assert_eq!(s.settle(Some(reg(400.0)), 1280.0), Some(reg(3.0)));
        // Small shake: followed at once.
        assert_eq!(s.settle(Some(reg(5.0)), 1280.0), Some(reg(5.0)));
        // Not found (someone in front): held.
        assert_eq!(s.settle(None, 1280.0), Some(reg(5.0)));
        // The container really moved: believed on the second frame.
        assert_eq!(s.settle(Some(reg(300.0)), 1280.0), Some(reg(5.0)));
        assert_eq!(s.settle(Some(reg(301.0)), 1280.0), Some(reg(301.0)));
    }
}
