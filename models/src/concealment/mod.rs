//! The X-ray concealment model, `xray-concealment`: a small U-Net trained on scanner-sim scans to
//! mark concealed goods: dense packages hidden inside otherwise homogeneous cargo, and goods
//! behind false walls, floors and ceilings. Card: `models/onnx/xray-concealment.md`.
//!
//! `preprocess` (attenuation, scaled, padded) -> engine, tile by tile -> `postprocess`
//! (threshold, connected regions, scores).
//!
//! # Pitch
//! The net learnt at [`PITCH_MM`]. A scan at any other pitch, in either direction, is
//! resampled to it first ([`resample`]) and the probabilities are resampled back, so findings
//! stay in the scan's own pixels; the least region is an area ([`OperatingPoint`]), not a pixel
//! count.
//!
//! # Tiling
//! A 40' container on a truck is about 2,000 columns at the simulator's 10 mm pitch. The net is
//! fully convolutional, so it could take the whole scan at once, but its activations grow with
//! the scan and an edge box has little memory. The scan is cut into column tiles
//! [`TILE_WIDTH`] wide that overlap by twice [`TILE_CONTEXT`]; each tile keeps only the columns
//! at least [`TILE_CONTEXT`] from its cut edges, so every kept pixel sees the context it was
//! trained with. Rows are never cut (scans are at most about 500 rows). Peak memory is then
//! fixed whatever the scan's length, and the Python reference (`models/train/golden.py`) tiles
//! the same way, which the parity test holds it to.

mod postprocess;
mod preprocess;
pub mod resample;

use std::path::Path;
use std::time::Instant;

use ndarray::{Array2, Array4, ArrayView2, s};

pub use postprocess::{Detection, regions};
pub use preprocess::{ATTENUATION_SCALE, T_MIN, attenuation_input, padded_size, transmission};

use crate::ModelError;
use crate::engine::{Engine, OrtEngine};

/// Name and version, as reported to the server.
pub const NAME: &str = "xray-concealment";
/// File name under `models/onnx/`.
pub const FILE: &str = "xray-concealment.onnx";
/// sha256 of the ONNX file; the card records the same value and a test keeps them equal.
pub const SHA256: &str = include_str!("../../onnx/xray-concealment.sha256").trim_ascii();
/// Pixel pitch the model was trained at, mm.
pub const PITCH_MM: f64 = 10.0;
/// Pixel probability above which a pixel counts as flagged: the operating threshold, chosen on
/// the validation seed as the lowest that keeps false alarms at or under 1 % of clean
/// containers (`cargo run --release -p baylens-models --example evaluate`; see the card).
pub const THRESHOLD: f32 = 0.97;
/// Regions smaller than this many pixels are not reported (a 250 x 250 mm package at 10 mm
/// pitch covers about 600 pixels); chosen with [`THRESHOLD`].
pub const MIN_REGION_PIXELS: usize = 300;
/// Least area of a reported region, m² ([`MIN_REGION_PIXELS`] at [`PITCH_MM`]).
pub const MIN_REGION_M2: f64 = MIN_REGION_PIXELS as f64 * (PITCH_MM / 1000.0) * (PITCH_MM / 1000.0);

/// Where the model's probabilities become findings: the pixel threshold and the least region.
/// A site sets its own from its cleared scans (`edge-agent calibrate --cleared`); the default is
/// the card's, chosen on scanner-sim.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OperatingPoint {
    /// Pixel probability above which a pixel counts as flagged.
    pub threshold: f32,
    /// Least area of a reported region at the container's mid-plane, m².
    pub min_region_m2: f64,
}

impl Default for OperatingPoint {
    fn default() -> Self {
        Self {
            threshold: THRESHOLD,
            min_region_m2: MIN_REGION_M2,
        }
    }
}

impl OperatingPoint {
    /// Checks that the threshold is a probability and the area positive.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.threshold > 0.0 && self.threshold < 1.0) {
            return Err(format!(
                "threshold must lie in (0, 1), got {}",
                self.threshold
            ));
        }
        if !(self.min_region_m2.is_finite() && self.min_region_m2 > 0.0) {
            return Err(format!(
                "min_region_m2 must be positive, got {}",
                self.min_region_m2
            ));
        }
        Ok(())
    }

    /// The least region in pixels of a scan with this pitch (horizontal, vertical), mm.
    pub fn min_pixels(&self, [px, py]: [f64; 2]) -> usize {
        ((self.min_region_m2 / (px / 1000.0 * py / 1000.0)).round() as usize).max(1)
    }

    /// Regions of a scan's heat map at this operating point, largest score first.
    pub fn regions(&self, heatmap: ArrayView2<'_, f32>, pitch_mm: [f64; 2]) -> Vec<Detection> {
        regions(heatmap, self.threshold, self.min_pixels(pitch_mm))
    }
}

/// Width of a column tile (a multiple of 8).
pub const TILE_WIDTH: usize = 512;
/// Columns of context each tile discards at a cut edge (a multiple of 8).
pub const TILE_CONTEXT: usize = 64;

/// Column tiles over a padded width: `(start, keep_from, keep_to)`. The tile covers
/// `start..start + TILE_WIDTH` (or the whole width if narrower) and contributes its output
/// columns `keep_from..keep_to`; the kept ranges cover `0..width` exactly once.
pub fn tiles(width: usize) -> Vec<(usize, usize, usize)> {
    if width <= TILE_WIDTH {
        return vec![(0, 0, width)];
    }
    let mut out = Vec::new();
    let mut keep_from: usize = 0;
    loop {
        let start = keep_from
            .saturating_sub(TILE_CONTEXT)
            .min(width - TILE_WIDTH);
        let end = start + TILE_WIDTH;
        let keep_to = if end == width {
            width
        } else {
            end - TILE_CONTEXT
        };
        out.push((start, keep_from, keep_to));
        if keep_to == width {
            return out;
        }
        keep_from = keep_to;
    }
}

/// What the model says about one scan.
#[derive(Debug, Clone, PartialEq)]
pub struct ConcealmentOutput {
    /// Per-pixel probability, the scan's size (rows x columns).
    pub heatmap: Array2<f32>,
    /// Regions above the threshold, largest score first.
    pub detections: Vec<Detection>,
    /// Highest pixel probability in the scan.
    pub max_probability: f32,
    /// Fraction of pixels above the threshold.
    pub flagged_fraction: f32,
    /// Time spent in the engine (and resampling, at another pitch), milliseconds.
    pub inference_ms: f32,
}

/// The concealment model over some engine.
#[derive(Debug)]
pub struct ConcealmentModel<E = OrtEngine> {
    engine: E,
    sha256: String,
}

impl ConcealmentModel<OrtEngine> {
    /// Loads `xray-concealment.onnx` from `models_dir`, verifies it, and warms it up so the first
    /// real scan is not slow.
    pub fn load(models_dir: &Path, threads: usize) -> Result<Self, ModelError> {
        Self::load_file(&models_dir.join(FILE), SHA256, threads)
    }

    /// Loads a model file that is not the shipped one (a site's adapted model, before it is
    /// published): its sha256 must be in the file beside it, `<name>.sha256`, as
    /// `models/train/adapt_site.py` writes it.
    pub fn load_beside_sha256(path: &Path, threads: usize) -> Result<Self, ModelError> {
        let sha_file = path.with_extension("sha256");
        let sha256 = std::fs::read_to_string(&sha_file).map_err(|e| ModelError::Read {
            path: sha_file.clone(),
            source: e,
        })?;
        Self::load_file(path, sha256.trim(), threads)
    }

    /// Loads a model file whose sha256 must be `sha256` (a signed release's, see
    /// `baylens_protocol::release`), and warms it up.
    pub fn load_file(path: &Path, sha256: &str, threads: usize) -> Result<Self, ModelError> {
        let engine = OrtEngine::load(path, sha256, threads)?;
        let sha256 = engine.sha256().to_owned();
        let mut model = Self { engine, sha256 };
        let warm = vec![0u16; 64 * 64];
        model.analyse(&warm, 64, 64, 1000, 0)?;
        Ok(model)
    }
}

impl<E: Engine> ConcealmentModel<E> {
    /// Wraps any engine (tests use canned outputs); `sha256` is what gets reported.
    pub fn with_engine(engine: E, sha256: String) -> Self {
        Self { engine, sha256 }
    }

    /// sha256 of the model in use.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Runs the model on one high-energy image (`width` x `height` raw readings, row-major) at
    /// the model's own pitch, with the default operating point.
    pub fn analyse(
        &mut self,
        readings: &[u16],
        width: u32,
        height: u32,
        air: u16,
        dark: u16,
    ) -> Result<ConcealmentOutput, ModelError> {
        let scan = HighEnergyScan {
            readings,
            width,
            height,
            air,
            dark,
            pitch_mm: [PITCH_MM; 2],
        };
        self.analyse_scan(&scan, OperatingPoint::default())
    }

    /// Runs the model on one high-energy image at any pitch: the scan is resampled to
    /// [`PITCH_MM`] in both directions (transmission averaged, as a coarser detector would), the
    /// net runs there, and its probabilities are resampled back to the scan's own pixels. A scan
    /// already at [`PITCH_MM`] is not resampled at all.
    pub fn analyse_scan(
        &mut self,
        scan: &HighEnergyScan<'_>,
        op: OperatingPoint,
    ) -> Result<ConcealmentOutput, ModelError> {
        let (w, h) = (scan.width as usize, scan.height as usize);
        let [px, py] = scan.pitch_mm;
        if !(px.is_finite() && py.is_finite() && px > 0.0 && py > 0.0) {
            return Err(ModelError::Input(format!(
                "pixel pitch must be positive, got {px} x {py} mm"
            )));
        }
        let native = px == PITCH_MM && py == PITCH_MM;
        let started = Instant::now();
        let heatmap = if native {
            let input = attenuation_input(scan.readings, w, h, scan.air, scan.dark)?;
            self.run_tiles(&input)?.slice(s![0, 0, ..h, ..w]).to_owned()
        } else {
            let t = transmission(scan.readings, w, h, scan.air, scan.dark)?;
            let (mw, mh) = (
                resample::resampled_len(w, px, PITCH_MM),
                resample::resampled_len(h, py, PITCH_MM),
            );
            let t = resample::resample(&t, w, h, mw, mh);
            let input = preprocess::attenuation_from_transmission(&t, mw, mh);
            let prob = self.run_tiles(&input)?;
            let prob: Vec<f32> = prob.slice(s![0, 0, ..mh, ..mw]).iter().copied().collect();
            let back = resample::resample(&prob, mw, mh, w, h);
            Array2::from_shape_vec((h, w), back).map_err(|e| ModelError::Output(e.to_string()))?
        };
        let inference_ms = started.elapsed().as_secs_f32() * 1000.0;
        let max_probability = heatmap.iter().copied().fold(0.0f32, f32::max);
        let flagged = heatmap.iter().filter(|&&p| p > op.threshold).count();
        let detections = op.regions(heatmap.view(), scan.pitch_mm);
        Ok(ConcealmentOutput {
            flagged_fraction: flagged as f32 / (w * h).max(1) as f32,
            heatmap,
            detections,
            max_probability,
            inference_ms,
        })
    }

    /// The net over a padded input, tile by tile (see the module docs).
    fn run_tiles(&mut self, input: &Array4<f32>) -> Result<Array4<f32>, ModelError> {
        let (ph, pw) = (input.shape()[2], input.shape()[3]);
        let mut output = Array4::<f32>::zeros((1, 1, ph, pw));
        for (start, keep_from, keep_to) in tiles(pw) {
            let end = (start + TILE_WIDTH).min(pw);
            // ONNX Runtime needs a contiguous tensor: copy the tile out (cheap next to the net).
            let tile = input.slice(s![.., .., .., start..end]).to_owned();
            let out = self.engine.run(tile.view())?;
            if out.shape() != tile.shape() {
                return Err(ModelError::Output(format!(
                    "output shape {:?} differs from input shape {:?}",
                    out.shape(),
                    tile.shape()
                )));
            }
            output
                .slice_mut(s![.., .., .., keep_from..keep_to])
                .assign(&out.slice(s![.., .., .., keep_from - start..keep_to - start]));
        }
        Ok(output)
    }
}

/// One high-energy image as the scanner delivered it.
#[derive(Debug, Clone, Copy)]
pub struct HighEnergyScan<'a> {
    /// Raw readings, row-major.
    pub readings: &'a [u16],
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Reading with nothing in the beam.
    pub air: u16,
    /// Reading with the beam off.
    pub dark: u16,
    /// Pixel pitch at the container's mid-plane, mm: horizontal (along the truck), vertical.
    pub pitch_mm: [f64; 2],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_every_column_once_with_context_at_every_cut() {
        for width in [8, 504, 512, 520, 1000, 1024, 2040, 4096] {
            let t = tiles(width);
            let mut next = 0;
            for &(start, from, to) in &t {
                assert_eq!(from, next, "width {width}: {t:?}");
                assert!(start <= from && to <= (start + TILE_WIDTH).min(width));
                assert_eq!(start % 8, 0);
                if from > 0 {
                    assert!(from - start >= TILE_CONTEXT, "width {width}: {t:?}");
                }
                if to < width {
                    assert!(start + TILE_WIDTH - to >= TILE_CONTEXT);
                }
                next = to;
            }
            assert_eq!(next, width);
        }
        assert_eq!(
            tiles(1000),
            vec![(0, 0, 448), (384, 448, 832), (488, 832, 1000)]
        );
    }
}
