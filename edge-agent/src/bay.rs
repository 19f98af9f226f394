//! What the bay looks like now, shared by the scan loop, the camera loop and the tablet page:
//! the latest scan with its layers and declaration, the live frame with its registration, the
//! container code read by the camera, and the camera's health.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use baylens_protocol::code_read::CodeReading;
use baylens_protocol::{Declaration, ScanReport};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::watch;

/// The latest scan accepted at this bay.
#[derive(Debug)]
pub struct LatestScan {
    /// Its report.
    pub report: ScanReport,
    /// `overlay.json`: the vector overlay in scan pixels.
    pub overlay: Value,
    /// The PNG layers by name (`scan`, `material`, `expected`, `heat`, `findings`).
    pub layers: HashMap<String, Vec<u8>>,
    /// The declaration it was matched to.
    pub declaration: Option<Declaration>,
    /// When the agent took it.
    pub arrived: std::time::Instant,
}

/// One processed camera frame.
#[derive(Debug)]
pub struct LiveFrame {
    /// Frame counter since the agent started.
    pub seq: u64,
    /// The frame with the overlay drawn in, JPEG.
    pub jpeg: Vec<u8>,
    /// Frame size.
    pub width: u32,
    /// Frame size.
    pub height: u32,
    /// Scan pixels to frame pixels, row-major, when the container was found and a scan is loaded.
    pub homography: Option<[f64; 9]>,
    /// The container face's corners in the frame, when found.
    pub corners: Option<[[f64; 2]; 4]>,
    /// The scan the overlay comes from.
    pub scan_id: Option<String>,
    /// When the frame was read.
    pub captured_at: DateTime<Utc>,
    /// Time from frame read to JPEG ready, milliseconds.
    pub process_ms: f64,
}

/// The camera's container-code reading: the truck pass so far, frames voted into one.
#[derive(Debug, Clone, Serialize)]
pub struct CodeStatus {
    /// The reading (code, check-digit status, confidence, best guess, size/type).
    pub reading: CodeReading,
    /// When it was read.
    pub read_at: DateTime<Utc>,
    /// Frames read since the container arrived.
    pub frames_tried: u32,
    /// Frames whose own reading is the pass's code.
    pub frames_agreeing: u32,
    /// Whether the accepted code is the one the scanner's sidecar gave (`None`: nothing to
    /// compare).
    pub matches_scan: Option<bool>,
    /// The scan it was read for.
    pub scan_id: Option<String>,
}

/// The camera's health, as the tablet shows it.
#[derive(Debug, Clone, Serialize, Default)]
pub struct CameraStatus {
    /// `off` (no camera configured or built), `connecting`, `live` or `unavailable`.
    pub state: String,
    /// The configured source.
    pub source: Option<String>,
    /// The last error, when not live.
    pub error: Option<String>,
    /// Seconds until the next attempt, when unavailable.
    pub retry_in_secs: Option<u64>,
    /// How often the camera was lost and reopened.
    pub reconnects: u32,
}

/// Shared bay state.
#[derive(Debug)]
pub struct BayState {
    latest: RwLock<Option<Arc<LatestScan>>>,
    live: watch::Sender<Option<Arc<LiveFrame>>>,
    code: RwLock<Option<CodeStatus>>,
    camera: RwLock<CameraStatus>,
    scans: watch::Sender<u64>,
}

impl Default for BayState {
    fn default() -> Self {
        Self {
            latest: RwLock::default(),
            live: watch::channel(None).0,
            code: RwLock::default(),
            camera: RwLock::new(CameraStatus {
                state: "off".into(),
                ..CameraStatus::default()
            }),
            scans: watch::channel(0).0,
        }
    }
}

impl BayState {
    /// A new, empty state.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Publishes a newly accepted scan; the code reading starts over for the new container.
    pub fn publish_scan(&self, scan: LatestScan) {
        if let Ok(mut slot) = self.latest.write() {
            *slot = Some(Arc::new(scan));
        }
        if let Ok(mut code) = self.code.write() {
            *code = None;
        }
        self.scans.send_modify(|n| *n += 1);
    }

    /// The latest scan.
    pub fn latest(&self) -> Option<Arc<LatestScan>> {
        self.latest.read().ok().and_then(|s| s.clone())
    }

    /// Changes whenever a scan is published.
    pub fn scan_changes(&self) -> watch::Receiver<u64> {
        self.scans.subscribe()
    }

    /// Publishes a processed frame.
    pub fn publish_frame(&self, frame: LiveFrame) {
        self.live.send_replace(Some(Arc::new(frame)));
    }

    /// The latest frame.
    pub fn frame(&self) -> Option<Arc<LiveFrame>> {
        self.live.borrow().clone()
    }

    /// Changes with every frame.
    pub fn frames(&self) -> watch::Receiver<Option<Arc<LiveFrame>>> {
        self.live.subscribe()
    }

    /// Records a code reading.
    pub fn set_code(&self, status: CodeStatus) {
        if let Ok(mut code) = self.code.write() {
            *code = Some(status);
        }
    }

    /// The code reading for the current container.
    pub fn code(&self) -> Option<CodeStatus> {
        self.code.read().ok().and_then(|c| c.clone())
    }

    /// Updates the camera's health.
    pub fn set_camera(&self, status: CameraStatus) {
        if let Ok(mut c) = self.camera.write() {
            *c = status;
        }
    }

    /// The camera's health.
    pub fn camera(&self) -> CameraStatus {
        self.camera.read().map(|c| c.clone()).unwrap_or_default()
    }
}
