//! `scanner-sim tip`: a folder of cleared scans in, projected scans with their masks,
//! `truth.json` and a few before/after pictures out.

use std::path::{Path, PathBuf};

use baylens_protocol::ScanId;
use image::{Rgb, RgbImage};
use rayon::prelude::*;

use super::library::ThreatKind;
use super::{Cleared, Projected, Record, load, project};
use crate::profile::ScannerProfile;
use crate::scan_rng;
use crate::write::{encode_png, write_atomic, write_scan};

/// What `scanner-sim tip` is asked to do.
#[derive(Debug, Clone)]
pub struct TipOptions {
    /// The folder of cleared scans (sidecars and images; other JSON files are skipped).
    pub cleared: PathBuf,
    /// The scanner the threats are rendered for.
    pub profile: ScannerProfile,
    /// Kinds to project, in turn.
    pub kinds: Vec<ThreatKind>,
    /// Projected scans to write.
    pub count: usize,
    /// Seed; the same seed and folder give the same scans.
    pub seed: u64,
    /// Output folder.
    pub out: PathBuf,
    /// Before/after pictures to write into `OUT/examples`.
    pub examples: usize,
}

/// What a run wrote.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Cleared scans read.
    pub cleared: usize,
    /// Projections written, by kind name.
    pub written: Vec<(&'static str, usize)>,
    /// Projections that found no room in any cleared scan.
    pub no_room: usize,
}

/// Runs a projection: reads (and checks) every cleared scan first, so that an unreadable one
/// stops the run before anything is written, naming it.
pub fn run(opts: &TipOptions) -> Result<Summary, String> {
    let paths = baylens_protocol::sidecar::sidecars_in(&opts.cleared)?;
    if paths.is_empty() {
        return Err(format!("{}: no scan sidecars", opts.cleared.display()));
    }
    paths
        .par_iter()
        .map(|p| load(p).map(drop))
        .collect::<Result<Vec<()>, String>>()?;
    std::fs::create_dir_all(&opts.out)
        .map_err(|e| format!("cannot create {}: {e}", opts.out.display()))?;
    let done: Vec<Result<Option<Record>, String>> = (0..opts.count)
        .into_par_iter()
        .map(|i| {
            let kind = opts.kinds[i % opts.kinds.len()];
            let mut rng = scan_rng(opts.seed, i as u64);
            // Start at a scan of its own and move on until one has room for the kind.
            for k in 0..paths.len() {
                let path = &paths[(i + k * 7919) % paths.len()];
                let cleared = load(path)?;
                let id = format!("{}-T{}-{i:05}", cleared.sidecar.bay.as_str(), opts.seed);
                let id = ScanId::parse(&id).map_err(|e| format!("scan id {id}: {e}"))?;
                if let Some(p) = project(&cleared, kind, &opts.profile, id, &mut rng) {
                    write_scan(&opts.out, &p.scan, &p.meta, true)
                        .map_err(|e| format!("cannot write into {}: {e}", opts.out.display()))?;
                    if i < opts.examples {
                        example(&opts.out, &cleared, &p)?;
                    }
                    return Ok(Some(p.record));
                }
            }
            Ok(None)
        })
        .collect();
    let mut records = Vec::new();
    let mut summary = Summary {
        cleared: paths.len(),
        ..Summary::default()
    };
    for r in done {
        match r? {
            Some(rec) => records.push(rec),
            None => summary.no_room += 1,
        }
    }
    for kind in &opts.kinds {
        let n = records.iter().filter(|r| r.variant == kind.name()).count();
        summary.written.push((kind.name(), n));
    }
    let json = serde_json::to_vec_pretty(&records).map_err(|e| e.to_string())?;
    write_atomic(&opts.out, "truth.json", &json)
        .map_err(|e| format!("cannot write truth.json: {e}"))?;
    Ok(summary)
}

/// Margin around the threat in an example picture, pixels.
const EXAMPLE_MARGIN: u32 = 80;

/// `OUT/examples/<scan id>.png`: the cleared scan's high energy around the threat (its box and
/// a margin) on top, the projected scan below, the threat's mask outlined in red in both.
fn example(out: &Path, cleared: &Cleared, p: &Projected) -> Result<(), String> {
    let (w, h) = (cleared.w as u32, cleared.h as u32);
    let Some(&[bx, by, bw, bh]) = p.record.concealed_boxes.first() else {
        return Ok(());
    };
    let (x0, y0) = (
        bx.saturating_sub(EXAMPLE_MARGIN),
        by.saturating_sub(EXAMPLE_MARGIN),
    );
    let (x1, y1) = (
        (bx + bw + EXAMPLE_MARGIN).min(w),
        (by + bh + EXAMPLE_MARGIN).min(h),
    );
    let hi = cleared.sidecar.high();
    let grey = |r: u16| {
        let t = (f64::from(r) - f64::from(hi.dark)) / f64::from(hi.air.saturating_sub(hi.dark));
        // Attenuation 0..6 onto 255..0, with a square root for the dense end.
        let a = -t.clamp(1e-6, 1.0).ln();
        (255.0 * (1.0 - (a / 6.0).clamp(0.0, 1.0).sqrt())) as u8
    };
    let mask = &p.scan.concealment_mask;
    let at = |x: i64, y: i64| {
        x >= 0
            && y >= 0
            && x < i64::from(w)
            && y < i64::from(h)
            && mask[(y * i64::from(w) + x) as usize] != 0
    };
    let edge = |x: u32, y: u32| {
        let (x, y) = (i64::from(x), i64::from(y));
        at(x, y) && !(at(x - 1, y) && at(x + 1, y) && at(x, y - 1) && at(x, y + 1))
    };
    let (cw, ch) = (x1 - x0, y1 - y0);
    let mut img = RgbImage::from_pixel(cw, 2 * ch + 6, Rgb([255, 255, 255]));
    for y in y0..y1 {
        for x in x0..x1 {
            let i = (y * w + x) as usize;
            let (a, b) = (grey(cleared.high[i]), grey(p.scan.high[i]));
            let (ca, cb) = if edge(x, y) {
                (Rgb([255, 0, 0]), Rgb([255, 0, 0]))
            } else {
                (Rgb([a, a, a]), Rgb([b, b, b]))
            };
            img.put_pixel(x - x0, y - y0, ca);
            img.put_pixel(x - x0, ch + 6 + y - y0, cb);
        }
    }
    let dir = out.join("examples");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let bytes = encode_png(&img).map_err(|e| e.to_string())?;
    write_atomic(&dir, &format!("{}.png", p.meta.scan_id.as_str()), &bytes)
        .map_err(|e| format!("cannot write an example: {e}"))?;
    Ok(())
}
