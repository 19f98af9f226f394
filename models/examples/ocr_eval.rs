//! Container-code OCR on simulated door views: exact-read rate and wrong codes accepted.
//!
//! ```text
//! cargo run --release -p baylens-models --example ocr_eval -- [--count 200] [--seed 6346]
//!     [--models code|tiny|small] [--failures DIR] [--view side]
//!     [--pass FRAMES [--pass-views door]] [--fonts train|heldout [--font-split FILE]]
//!     [--vertical-share P] [--only I]
//! ```
//!
//! `--only I` reads view `I` alone and prints its text boxes and, when it is unreadable, every
//! line with its characters' candidates (for looking into one failure).
//!
//! With `--fonts`, the markings are painted in the typefaces of that set of the font split
//! (`models/train/ocr-fonts.txt`; container `i` in face `i mod faces`), and the figures are
//! given per face too; without it, in the simulator's bundled DejaVu Sans Condensed Bold.
//! `--vertical-share` sets the share of door views with the code stacked on the door post
//! (default 0.25, as the simulator paints them).
//!
//! With `--pass FRAMES`, each of the `count` containers is a truck pass: its side and its door
//! are painted once (a quarter with the code stacked on the door post) and seen in FRAMES
//! frames, side and door in turn (`--pass-views door`: the door alone), each from its own pose,
//! light, blur and noise; the frames are voted into one reading (`baylens_protocol::code_pass`),
//! as the agent does.
//!
//! Each image is a door view from `scanner_sim::camera` (random perspective, light, blur, dirt,
//! occlusion; a quarter with the code stacked on the door post) of a container with a random
//! valid code. A read is *exact* when the accepted code is the painted one, *wrong* when an
//! accepted code is not (the number that must stay at 0), and *unreadable* otherwise.

use std::path::PathBuf;
use std::time::Instant;

use baylens_models::ocr::{self, OcrModel, OcrOptions, Rgb};
use baylens_protocol::ContainerCode;
use rand::Rng;
use scanner_sim::ContainerType;
use scanner_sim::camera::{self, CameraOptions, View};
use scanner_sim::lettering::{FontSplit, Typeface};

/// Exact reads per typeface: (face, seen, exact).
#[derive(Default)]
struct PerFace(Vec<(String, u32, u32)>);

impl PerFace {
    fn add(&mut self, face: &Typeface, exact: bool) {
        let i = match self.0.iter().position(|f| f.0 == face.name()) {
            Some(i) => i,
            None => {
                self.0.push((face.name().to_owned(), 0, 0));
                self.0.len() - 1
            }
        };
        self.0[i].1 += 1;
        self.0[i].2 += u32::from(exact);
    }

    fn print(&self, what: &str) {
        if self.0.len() < 2 {
            return;
        }
        for (name, n, exact) in &self.0 {
            println!(
                "  {name}: {exact} of {n} {what} exact ({:.1} %)",
                100.0 * f64::from(*exact) / f64::from((*n).max(1))
            );
        }
    }
}

/// The typefaces to paint in: a set of the font split, or the bundled face.
fn typefaces(set: Option<String>, split: Option<String>) -> Result<Vec<Typeface>, String> {
    let Some(set) = set else {
        return Ok(vec![Typeface::bundled()]);
    };
    let path = split
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/train/ocr-fonts.txt").to_owned());
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let faces = FontSplit::parse(&text)
        .map_err(|e| format!("{path}: {e}"))?
        .load(&set)?;
    let names: Vec<&str> = faces.iter().map(Typeface::name).collect();
    println!("fonts ({set}): {}", names.join(", "));
    Ok(faces)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let count: u64 = arg("--count").map_or(Ok(200), |v| v.parse())?;
    let seed: u64 = arg("--seed").map_or(Ok(6346), |v| v.parse())?;
    let which = arg("--models").unwrap_or_else(|| "small".into());
    let failures = arg("--failures").map(PathBuf::from);
    // Side views are what the bay's AR camera sees (a fixed camera, moderate difficulty).
    let (view, cam_options) = match arg("--view").as_deref() {
        Some("side") => (
            View::Side,
            CameraOptions {
                difficulty: 0.5,
                vertical_share: 0.0,
                ..CameraOptions::default()
            },
        ),
        _ => (
            View::Door,
            CameraOptions {
                vertical_share: arg("--vertical-share").map_or(Ok(0.25), |v| v.parse())?,
                ..CameraOptions::default()
            },
        ),
    };
    let (det, rec) = ocr::checkout_model_paths(&which)?;
    let mut options = OcrOptions::default();
    if let Some(v) = arg("--det-thresh") {
        options.det_thresh = v.parse()?;
    }
    if let Some(v) = arg("--box-thresh") {
        options.box_thresh = v.parse()?;
    }
    if let Some(v) = arg("--det-limit") {
        options.det_limit = v.parse()?;
    }
    let mut model = OcrModel::load(&det, &rec, options)?;
    let faces = typefaces(arg("--fonts"), arg("--font-split"))?;
    if let Some(path) = arg("--image") {
        // One image from disk (a camera snapshot): its lines and the reading.
        let img = image::open(&path)?.into_rgb8();
        let rgb = Rgb {
            data: img.as_raw(),
            width: img.width() as usize,
            height: img.height() as usize,
        };
        let (reading, lines) = model.read_code(rgb)?;
        for l in &lines {
            println!(
                "line {:?} vertical {} confidence {:.2} at {:?}",
                l.text,
                l.vertical,
                l.confidence,
                l.text_box.bounds().map(|v| v.round())
            );
        }
        println!("{reading:?}");
        return Ok(());
    }
    if let Some(dir) = &failures {
        std::fs::create_dir_all(dir)?;
    }
    if let Some(frames) = arg("--pass") {
        let door_only = arg("--pass-views").as_deref() == Some("door");
        return passes(&mut model, &faces, count, seed, frames.parse()?, door_only);
    }
    let (mut exact, mut wrong, mut unreadable) = (0u32, 0u32, 0u32);
    let (mut vertical, mut vertical_exact) = (0u32, 0u32);
    let mut corrected = 0u32;
    let mut seconds = Vec::new();
    let mut exact_conf: Vec<f32> = Vec::new();
    let only: Option<u64> = arg("--only").map(|v| v.parse()).transpose()?;
    let mut per_face = PerFace::default();
    for i in 0..count {
        if only.is_some_and(|o| o != i) {
            continue;
        }
        let mut rng = scanner_sim::scan_rng(seed, i);
        let (code, container) = random_container(&mut rng)?;
        let face = &faces[i as usize % faces.len()];
        let frame = camera::paint_in(view, container, &code, face, &cam_options, &mut rng)
            .frame(&cam_options, &mut rng);
        let img = Rgb {
            data: frame.image.as_raw(),
            width: frame.image.width() as usize,
            height: frame.image.height() as usize,
        };
        if only.is_some() {
            for b in model.detect(img)? {
                println!(
                    "box {:?} score {:.2}",
                    b.bounds().map(|v| v.round()),
                    b.score
                );
            }
        }
        let t = Instant::now();
        let (reading, lines) = model.read_code(img)?;
        seconds.push(t.elapsed().as_secs_f64());
        if frame.vertical {
            vertical += 1;
        }
        per_face.add(face, reading.code.as_ref() == Some(&code));
        match &reading.code {
            Some(c) if *c == code => {
                exact += 1;
                exact_conf.push(reading.confidence);
                if frame.vertical {
                    vertical_exact += 1;
                }
                if reading.check == baylens_protocol::code_read::CheckStatus::Corrected {
                    corrected += 1;
                }
            }
            Some(c) => {
                wrong += 1;
                let texts: Vec<(&str, bool)> = lines
                    .iter()
                    .map(|l| (l.text.as_str(), l.vertical))
                    .collect();
                eprintln!(
                    "WRONG {i}: painted {code}, accepted {c} ({:?}, confidence {:.3}); lines {texts:?}",
                    reading.check, reading.confidence
                );
            }
            None => {
                unreadable += 1;
                if only.is_some() {
                    for l in &lines {
                        let probs: Vec<String> = l
                            .chars
                            .iter()
                            .map(|c| {
                                c.iter()
                                    .map(|(ch, p)| format!("{ch}{p:.2}"))
                                    .collect::<Vec<_>>()
                                    .join("/")
                            })
                            .collect();
                        println!("line {:?}: {}", l.text, probs.join(" "));
                    }
                }
                if let Some(dir) = &failures {
                    frame.image.save(dir.join(format!("{i:04}-{code}.png")))?;
                    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
                    eprintln!(
                        "unreadable {i} ({}{}): painted {code}, guess {:?} ({:?}); lines {texts:?}",
                        if frame.vertical {
                            "vertical"
                        } else {
                            "horizontal"
                        },
                        if frame.occluded { ", occluded" } else { "" },
                        reading.best_guess,
                        reading.check
                    );
                }
            }
        }
    }
    seconds.sort_by(f64::total_cmp);
    exact_conf.sort_by(f32::total_cmp);
    if !exact_conf.is_empty() {
        println!(
            "confidence of exact reads: min {:.3}, p10 {:.3}, median {:.3}",
            exact_conf[0],
            exact_conf[exact_conf.len() / 10],
            exact_conf[exact_conf.len() / 2]
        );
    }
    let n = count as f64;
    println!("models: {which} ({} / {})", det.display(), rec.display());
    println!(
        "images {count}: exact {exact} ({:.1} %), wrong accepted {wrong}, unreadable {unreadable}, corrected by the check digit {corrected}",
        100.0 * f64::from(exact) / n
    );
    per_face.print("images");
    println!("vertical codes: {vertical_exact} of {vertical} exact");
    println!(
        "time per image (detect + read, 1 thread): median {:.0} ms, p90 {:.0} ms",
        1e3 * seconds[seconds.len() / 2],
        1e3 * seconds[seconds.len() * 9 / 10]
    );
    Ok(())
}

/// Truck passes of `frames` frames each, side and door views in turn, voted into one reading.
fn passes(
    model: &mut OcrModel,
    faces: &[Typeface],
    count: u64,
    seed: u64,
    frames: usize,
    door_only: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    use baylens_protocol::code_pass::PassVote;
    let side_opts = CameraOptions {
        difficulty: 0.5,
        vertical_share: 0.0,
        ..CameraOptions::default()
    };
    let door_opts = CameraOptions::default();
    let (mut exact, mut wrong, mut unreadable) = (0u32, 0u32, 0u32);
    let (mut vertical, mut vertical_exact) = (0u32, 0u32);
    let mut frame_exact = 0u32;
    let mut per_face = PerFace::default();
    let t = Instant::now();
    for i in 0..count {
        let mut rng = scanner_sim::scan_rng(seed, i);
        let (code, container) = random_container(&mut rng)?;
        let typeface = &faces[i as usize % faces.len()];
        let side = camera::paint_in(View::Side, container, &code, typeface, &side_opts, &mut rng);
        let door = camera::paint_in(View::Door, container, &code, typeface, &door_opts, &mut rng);
        let mut pass = PassVote::default();
        for k in 0..frames {
            let (face, opts) = if k % 2 == 0 && !door_only {
                (&side, &side_opts)
            } else {
                (&door, &door_opts)
            };
            let frame = face.frame(opts, &mut rng);
            let img = Rgb {
                data: frame.image.as_raw(),
                width: frame.image.width() as usize,
                height: frame.image.height() as usize,
            };
            let (reading, _) = model.read_code(img)?;
            if reading.code.as_ref() == Some(&code) {
                frame_exact += 1;
            }
            pass.add(&reading);
        }
        let result = pass.result();
        if door.vertical() {
            vertical += 1;
        }
        per_face.add(typeface, result.reading.code.as_ref() == Some(&code));
        match &result.reading.code {
            Some(c) if *c == code => {
                exact += 1;
                if door.vertical() {
                    vertical_exact += 1;
                }
            }
            Some(c) => {
                wrong += 1;
                eprintln!("WRONG pass {i}: painted {code}, accepted {c}: {result:?}");
            }
            None => {
                unreadable += 1;
                eprintln!(
                    "unreadable pass {i}: painted {code}, guess {:?} ({:?}), {} of {} frames voted",
                    result.reading.best_guess, result.reading.check, result.voting, result.frames
                );
            }
        }
    }
    let n = count as f64;
    println!(
        "passes {count} of {frames} frames ({}): exact {exact} ({:.1} %), wrong accepted {wrong}, unreadable {unreadable}",
        if door_only {
            "door only"
        } else {
            "side and door in turn"
        },
        100.0 * f64::from(exact) / n
    );
    per_face.print("passes");
    println!(
        "single frames of those passes read exactly: {frame_exact} of {} ({:.1} %)",
        count * frames as u64,
        100.0 * f64::from(frame_exact) / (n * frames as f64)
    );
    println!("passes with the code stacked on the door post: {vertical_exact} of {vertical} exact");
    println!(
        "time per pass: {:.2} s",
        t.elapsed().as_secs_f64() / n.max(1.0)
    );
    Ok(())
}

/// A container with a random valid code, as the views of seed `seed` draw them.
fn random_container(
    rng: &mut impl Rng,
) -> Result<(ContainerCode, ContainerType), Box<dyn std::error::Error>> {
    let owner = ["MSK", "CSQ", "TGH", "MSC", "CMA", "HLX", "OOL", "ZIM"][rng.random_range(0..8)];
    let code = ContainerCode::from_parts(owner, 'U', rng.random_range(0..1_000_000))?;
    let container = [
        ContainerType::Twenty,
        ContainerType::Forty,
        ContainerType::FortyHighCube,
    ][rng.random_range(0..3)];
    Ok((code, container))
}
