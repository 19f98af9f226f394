//! Training crops for a container-code recogniser, cut by the reader itself.
//!
//! ```text
//! cargo run --release -p baylens-models --example ocr_crops -- --out DIR [--count 2500]
//!     [--seed 5100] [--fonts train] [--frames 1] [--vertical-share 0.5] [--threads 2]
//!     [--models tiny]
//! ```
//!
//! Each of `count` containers gets a random code (random owner letters, so a recogniser cannot
//! learn a list of owners), is painted in a face of the font set (container `i` in face
//! `i mod faces`), door end and side, and seen in `frames` frames of each: the door at full
//! difficulty (half of them stacked on the door post, twice the share the evaluation has, so
//! the rarer layout is learnt too), the side at half. Every frame goes through
//! the reader ([`OcrModel::read`] and, for a stacked code, [`OcrModel::read_vertical`]) with crop
//! recording on, so the crops are exactly what a recogniser is given at the bay: the detector's
//! boxes, straightened, or stacked cells laid side by side.
//!
//! Each crop is labelled from the simulator's truth: the letters and digits whose centres fall
//! inside the region it was cut from, in reading order (along the box, or top to bottom for a
//! stack). A crop is dropped when its label cannot be trusted: a hidden character inside
//! (behind an occluder or off the frame), a character cut by either end, or payload text.
//! Spaces are not labelled.
//!
//! Output: `DIR/crops.bin` (the crops as 8-bit RGB, 48 rows each, one after another) and
//! `DIR/crops.tsv` (byte offset, width, label, typeface, view, stacked).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use baylens_models::ocr::{self, Crop, OcrModel, OcrOptions, Rgb};
use baylens_protocol::ContainerCode;
use rand::Rng;
use scanner_sim::ContainerType;
use scanner_sim::camera::{self, CameraFrame, CameraOptions, View};
use scanner_sim::lettering::{FontSplit, Typeface};

/// The marking (code, then size/type code) comes first in a frame's glyphs; the payload text
/// after it is too small to matter and often too blurred to read.
const MARKING: usize = 15;

/// The label of a crop from the frame's glyph truth: `None` when it cannot be trusted (a
/// hidden glyph or payload text inside, or a glyph cut by the region's end).
fn label(crop: &Crop, frame: &CameraFrame) -> Option<String> {
    let b = &crop.region;
    let [ax, ay] = b.axis;
    // A glyph whose centre is this close to either end is half in, half out.
    let margin = 0.3 * b.half[1];
    let mut inside = Vec::new();
    for (i, g) in frame.glyphs.iter().enumerate() {
        let (dx, dy) = (g.at[0] as f32 - b.centre[0], g.at[1] as f32 - b.centre[1]);
        let (s, t) = (dx * ax + dy * ay, -dx * ay + dy * ax);
        if t.abs() > b.half[1] {
            continue;
        }
        if !crop.stacked && (s.abs() - b.half[0]).abs() < margin {
            return None;
        }
        if s.abs() <= b.half[0] {
            if g.hidden || i >= MARKING {
                return None;
            }
            let key = if crop.stacked { g.at[1] as f32 } else { s };
            inside.push((key, g.ch));
        }
    }
    inside.sort_by(|a, b| a.0.total_cmp(&b.0));
    Some(inside.into_iter().map(|(_, c)| c).collect())
}

/// A random container: code with random owner letters and category, and a type.
fn random_container(rng: &mut impl Rng) -> Result<(ContainerCode, ContainerType), String> {
    let owner: String = (0..3)
        .map(|_| char::from(b'A' + rng.random_range(0..26u8)))
        .collect();
    let category = ['U', 'U', 'U', 'J', 'Z'][rng.random_range(0..5)];
    let code = ContainerCode::from_parts(&owner, category, rng.random_range(0..1_000_000))
        .map_err(|e| e.to_string())?;
    let kind = [
        ContainerType::Twenty,
        ContainerType::Forty,
        ContainerType::FortyHighCube,
    ][rng.random_range(0..3)];
    Ok((code, kind))
}

struct Job {
    rec: (PathBuf, PathBuf),
    faces: Vec<Typeface>,
    seed: u64,
    frames: u32,
    vertical_share: f64,
}

/// Crops of containers `first, first + step, ...` below `count`: (crop, label, face, view).
fn cut(
    job: &Job,
    first: u64,
    step: u64,
    count: u64,
) -> Result<Vec<(Crop, String, String, &'static str)>, String> {
    let mut model =
        OcrModel::load(&job.rec.0, &job.rec.1, OcrOptions::default()).map_err(|e| e.to_string())?;
    model.record_crops(true);
    let door_opts = CameraOptions {
        vertical_share: job.vertical_share,
        ..CameraOptions::default()
    };
    let side_opts = CameraOptions {
        difficulty: 0.5,
        vertical_share: 0.0,
        ..CameraOptions::default()
    };
    let mut out = Vec::new();
    for i in (first..count).step_by(step as usize) {
        let mut rng = scanner_sim::scan_rng(job.seed, i);
        let (code, kind) = random_container(&mut rng)?;
        let face = &job.faces[i as usize % job.faces.len()];
        for (view, opts, name) in [
            (View::Door, &door_opts, "door"),
            (View::Side, &side_opts, "side"),
        ] {
            let painted = camera::paint_in(view, kind, &code, face, opts, &mut rng);
            for _ in 0..job.frames {
                let frame = painted.frame(opts, &mut rng);
                let img = Rgb {
                    data: frame.image.as_raw(),
                    width: frame.image.width() as usize,
                    height: frame.image.height() as usize,
                };
                model.read(img).map_err(|e| e.to_string())?;
                if painted.vertical() {
                    model.read_vertical(img).map_err(|e| e.to_string())?;
                }
                for crop in model.take_crops() {
                    if let Some(l) = label(&crop, &frame) {
                        out.push((crop, l, face.name().to_owned(), name));
                    }
                }
            }
        }
    }
    Ok(out)
}

fn write(dir: &Path, crops: &[(Crop, String, String, &str)]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut bin = BufWriter::new(File::create(dir.join("crops.bin"))?);
    let mut tsv = BufWriter::new(File::create(dir.join("crops.tsv"))?);
    writeln!(tsv, "offset\twidth\tlabel\tface\tview\tstacked")?;
    let mut offset = 0usize;
    for (crop, label, face, view) in crops {
        let bytes: Vec<u8> = crop
            .pixels
            .iter()
            .map(|v| v.round().clamp(0.0, 255.0) as u8)
            .collect();
        bin.write_all(&bytes)?;
        writeln!(
            tsv,
            "{offset}\t{}\t{label}\t{face}\t{view}\t{}",
            crop.width(),
            crop.stacked
        )?;
        offset += bytes.len();
    }
    bin.flush()?;
    tsv.flush()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let out = PathBuf::from(arg("--out").ok_or("--out DIR is required")?);
    let count: u64 = arg("--count").map_or(Ok(2500), |v| v.parse())?;
    let seed: u64 = arg("--seed").map_or(Ok(5100), |v| v.parse())?;
    let frames: u32 = arg("--frames").map_or(Ok(1), |v| v.parse())?;
    let threads: u64 = arg("--threads").map_or(Ok(2), |v| v.parse())?;
    let set = arg("--fonts").unwrap_or_else(|| "train".into());
    let split = arg("--font-split")
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/train/ocr-fonts.txt").into());
    let text = std::fs::read_to_string(&split).map_err(|e| format!("{split}: {e}"))?;
    let faces = FontSplit::parse(&text)
        .map_err(|e| format!("{split}: {e}"))?
        .load(&set)?;
    let job = Job {
        rec: ocr::checkout_model_paths(&arg("--models").unwrap_or_else(|| "tiny".into()))?,
        faces,
        seed,
        frames,
        vertical_share: arg("--vertical-share").map_or(Ok(0.5), |v| v.parse())?,
    };
    let threads = threads.max(1);
    let parts: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                let job = &job;
                s.spawn(move || cut(job, k, threads, count))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a crop worker panicked"))
            .collect()
    });
    let mut crops = Vec::new();
    for part in parts {
        crops.extend(part?);
    }
    write(&out, &crops)?;
    let labelled = crops.iter().filter(|c| !c.1.is_empty()).count();
    println!(
        "{} crops ({labelled} with text) from {count} containers, fonts {set}, seed {seed}: {}",
        crops.len(),
        out.display()
    );
    Ok(())
}
