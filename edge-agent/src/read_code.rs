//! `edge-agent read-code INPUT...`: the bay's container-code reader on an operator's own
//! photos, video files or a camera, outside the agent.
//!
//! Every input adds frames to one truck pass (`baylens_protocol::code_pass`): a photo (PNG,
//! JPEG, TIFF, BMP) is one frame; a video file or camera address (`rtsp://`, `http://`,
//! `v4l2:N`) gives up to `frames` frames, every `every`-th one. A single photo is accepted on
//! its own; a pass of several frames needs two that vote. The JSON printed:
//!
//! ```json
//! {"code": "CSQU3054383", "best_guess": "CSQU3054383", "check": "valid", "confidence": 0.93,
//!  "size_type": {"code": "45G1", "length": "40 ft", ...},
//!  "frames_used": 10, "frames_voting": 9, "frames_agreeing": 7,
//!  "frames": [{"source": "gate.mp4", "index": 0, "width": 1280, "height": 720,
//!              "reading": {"code": ..., "best_guess": ..., "check": ..., "confidence": ...},
//!              "lines": [{"text": "CSQU 305438 3", "confidence": 0.97, "vertical": false,
//!                         "box": [x0, y0, x1, y1], "corners": [[x, y], ...]}]}]}
//! ```
//!
//! `code` is `null` unless the pass accepted one. Exit status: 0 with a code, 1 without one
//! (unreadable: `check` says why and `best_guess` what was read), 2 for input that cannot be
//! read (a missing or corrupt file, a camera that does not answer), with a message naming it.

use std::path::{Path, PathBuf};

use baylens_models::ocr::{OcrModel, OcrOptions, Rgb, TextLine};
use baylens_protocol::code_pass::PassVote;
use baylens_protocol::code_read::CodeReading;
use serde_json::{Value, json};

/// Largest photo read, bytes.
pub const MAX_PHOTO_BYTES: u64 = 64 * 1024 * 1024;
/// Largest side of a photo, pixels.
pub const MAX_PHOTO_SIDE: u32 = 8192;

/// What to read and how.
#[derive(Debug, Clone)]
pub struct ReadCodeOptions {
    /// Frames to take from each video or camera.
    pub frames: usize,
    /// Take every `every`-th frame of a video or camera.
    pub every: usize,
    /// Folder with `PP-OCRv6_det_<set>.onnx` and `PP-OCRv6_rec_<set>.onnx`.
    pub models_dir: PathBuf,
    /// The model set, `tiny` (the agent's default) or `small`.
    pub set: String,
}

/// Input that cannot be read at all (exit 2).
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_photo(input: &str) -> bool {
    let lower = input.to_ascii_lowercase();
    [".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"]
        .iter()
        .any(|e| lower.ends_with(e))
}

/// One RGB frame and where it came from.
struct Shot {
    source: String,
    index: usize,
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

fn photo(path: &str) -> Result<Shot, BadInput> {
    let bad = |why: String| BadInput(format!("{path}: {why}"));
    let len = std::fs::metadata(path)
        .map_err(|e| bad(format!("cannot read: {e}")))?
        .len();
    if len > MAX_PHOTO_BYTES {
        return Err(bad(format!(
            "{len} bytes exceeds the limit of {MAX_PHOTO_BYTES}"
        )));
    }
    let mut reader = image::ImageReader::open(Path::new(path))
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| bad(format!("cannot read: {e}")))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_PHOTO_SIDE);
    limits.max_image_height = Some(MAX_PHOTO_SIDE);
    limits.max_alloc = Some(u64::from(MAX_PHOTO_SIDE) * u64::from(MAX_PHOTO_SIDE) * 4);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| bad(format!("not a readable image: {e}")))?
        .into_rgb8();
    Ok(Shot {
        source: path.to_owned(),
        index: 0,
        width: img.width(),
        height: img.height(),
        rgb: img.into_raw(),
    })
}

#[cfg(feature = "camera")]
fn stream(address: &str, frames: usize, every: usize) -> Result<Vec<Shot>, BadInput> {
    let mut source = crate::camera::open(address).map_err(|e| BadInput(e.to_string()))?;
    let name = source.name().to_owned();
    let mut out = Vec::new();
    let mut index = 0usize;
    while out.len() < frames {
        match source.next_frame() {
            Ok(f) => {
                if index % every.max(1) == 0 {
                    out.push(Shot {
                        source: name.clone(),
                        index,
                        width: f.width,
                        height: f.height,
                        rgb: f.rgb,
                    });
                }
                index += 1;
            }
            // A video file that ends early still gives what it had.
            Err(e) if out.is_empty() => return Err(BadInput(e.to_string())),
            Err(_) => break,
        }
    }
    Ok(out)
}

#[cfg(not(feature = "camera"))]
fn stream(address: &str, _frames: usize, _every: usize) -> Result<Vec<Shot>, BadInput> {
    Err(BadInput(format!(
        "{address}: videos and cameras need the agent built with the `camera` feature"
    )))
}

fn line_json(l: &TextLine) -> Value {
    json!({
        "text": l.text,
        "confidence": l.confidence,
        "vertical": l.vertical,
        "box": l.text_box.bounds().map(|v| v.round()),
        "corners": l.text_box.corners().map(|p| p.map(|v| v.round())),
    })
}

fn reading_json(r: &CodeReading) -> Value {
    json!({
        "code": r.code.as_ref().map(|c| c.as_str()),
        "best_guess": r.best_guess,
        "check": r.check,
        "confidence": r.confidence,
    })
}

/// Reads `inputs` as one pass. `Ok((json, accepted))`, or the input that could not be read.
pub fn read_code(inputs: &[String], options: &ReadCodeOptions) -> Result<(Value, bool), BadInput> {
    let (det, rec) = baylens_models::ocr::model_paths(&options.models_dir, &options.set);
    let mut model = OcrModel::load(
        &det,
        &rec,
        OcrOptions {
            det_limit: 1280,
            ..OcrOptions::default()
        },
    )
    .map_err(|e| BadInput(format!("the OCR models: {e}")))?;
    let mut shots = Vec::new();
    for input in inputs {
        if is_photo(input) {
            shots.push(photo(input)?);
        } else {
            shots.extend(stream(input, options.frames, options.every)?);
        }
    }
    let mut pass = PassVote::new(if shots.len() == 1 { 1 } else { 2 });
    let mut frames = Vec::new();
    for shot in &shots {
        let img = Rgb {
            data: &shot.rgb,
            width: shot.width as usize,
            height: shot.height as usize,
        };
        let (reading, lines) = model
            .read_code(img)
            .map_err(|e| BadInput(format!("{}: {e}", shot.source)))?;
        pass.add(&reading);
        frames.push(json!({
            "source": shot.source,
            "index": shot.index,
            "width": shot.width,
            "height": shot.height,
            "reading": reading_json(&reading),
            "lines": lines.iter().map(line_json).collect::<Vec<_>>(),
        }));
    }
    let result = pass.result();
    let r = &result.reading;
    let accepted = r.code.is_some();
    Ok((
        json!({
            "code": r.code.as_ref().map(|c| c.as_str()),
            "best_guess": r.best_guess,
            "check": r.check,
            "confidence": r.confidence,
            "size_type": r.size_type,
            "frames_used": result.frames,
            "frames_voting": result.voting,
            "frames_agreeing": result.agreeing,
            "frames": frames,
        }),
        accepted,
    ))
}
