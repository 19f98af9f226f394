//! Threat image projection (TIP): threats from the simulator's library inserted into scans
//! that a site's officers cleared, so that the site's own stream of commerce, on its own
//! scanner, becomes labelled training data (`scanner-sim tip`).
//!
//! # Physics
//! By Beer–Lambert, attenuation adds along a ray. For each pixel the threat crosses, in both
//! energies:
//! 1. The scan's reading gives its attenuation `A' = −ln((I − dark) / (air − dark))`; the
//!    scanner's beam hardening (`A' = A / (1 + k·A)`, see [`crate::profile`]) is undone,
//!    `A = A' / (1 − k·A')`.
//! 2. The threat's ray sum `S` (fan beam, the scanner's effective coefficients and pitch,
//!    [`crate::render::Grid::ray_sums`]) is added; a package inside a load takes the place of
//!    host goods of its own shape, whose ray sum `D` is taken off (host coefficient estimated
//!    from the scan: the net attenuation over the package's footprint spread over the
//!    container's width, which underestimates a narrow stack's and so never takes off more
//!    than is there); a false wall built into a load takes the place of all the goods over its
//!    compartment's length (`D` is the scan's net attenuation there).
//! 3. Hardening is applied again; the change `Δ = A'_new − A'` multiplies the transmission,
//!    blurred with the scanner's point-spread function.
//! 4. **Noise added back.** The scan's reading already carries the photon noise of its own
//!    count `N`; scaled by `e^−Δ` its variance is `N'·e^−Δ`, short of the `N'` that
//!    `N' = N·e^−Δ` photons have. Gaussian noise of variance `N'·(1 − e^−Δ)` (in reading
//!    units, with the scanner's photons per unobstructed pixel) makes up the difference. Where
//!    a package is lighter than the goods it displaces (`Δ < 0`), the scan's noise is kept.
//!
//! Dead detector rows stay dark; pixels the threat does not cross keep their readings bit for
//! bit. The scanner's physics (hardening, spectrum, photons) is a [`ScannerProfile`]: a
//! simulated scanner's own, or one fitted from the site's phantom scan ([`fit`]).
//!
//! # Placement rules
//! Only inside the container's cargo space (found as the agent finds it), never in the truck,
//! the walls or the air:
//! - **Drug bricks, cigarette master cases, weapons, ammunition** sit inside a load: at least
//!   95 % of the package's footprint must show goods in the cleared scan (net attenuation above
//!   0.3), 50 mm clear of the cargo space's edges; the package takes the place of host goods,
//!   and must stand out from them as the simulator's own concealment does (net attenuation
//!   0.25–2.5 added on average over its mask; else another place is drawn).
//! - **False floor**: a 4 mm steel plate 120–250 mm above the real floor over 40–80 % of the
//!   length, contraband under it. What the load has on the floor there stays (projection adds;
//!   it cannot lift the load).
//! - **False ceiling**: a plate 250–450 mm under the roof over 30–60 % of the length,
//!   contraband above it, only where the scan shows no goods under the roof (≤ 5 %).
//! - **False wall**: a steel sheet 300–700 mm in from the front wall or the doors, contraband
//!   behind it. Where that end of the load shows goods (more than 5 %), the compartment is
//!   built into the load: it takes the place of all the goods between the end and the sheet
//!   (their net attenuation is taken off, as for a package), so the load seems to begin at
//!   the sheet, as in the simulator's own false walls, which have goods loaded right behind
//!   them. Where that end is free, the sheet stands in free space.
//!
//! A scan with no room for the kind drawn (no container found, no load big enough, no free
//! space under the roof) is skipped for that kind and the next scan is tried.

pub mod fit;
pub mod library;
pub mod place;
pub mod run;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use baylens_protocol::cargo_space::attenuation;
use baylens_protocol::{ScanId, ScanSidecar};
use image::ImageReader;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;

use crate::geometry::Solid;
use crate::profile::ScannerProfile;
use crate::render::{Defects, Detector, RaySums, SimulatedScan, blur_3tap};
use crate::scene::CONCEAL_CONTRAST;
use crate::write::ScanMeta;
use library::{Threat, ThreatKind};
use place::Room;

/// Largest image side accepted, pixels (a 40' container at 4 mm is about 4,500 columns).
pub const MAX_SIDE: u32 = 20_000;
/// Placements tried for a package that stands out before the scan is passed over.
const CONTRAST_TRIES: usize = 20;
/// Hardening is undone only up to `k·A' = 0.95`; beyond it the ray is all but opaque.
const MAX_HARDENED: f32 = 0.95;

/// A cleared scan as read from its files.
#[derive(Debug, Clone)]
pub struct Cleared {
    /// Its sidecar file.
    pub path: PathBuf,
    /// The sidecar.
    pub sidecar: ScanSidecar,
    /// Columns.
    pub w: usize,
    /// Rows.
    pub h: usize,
    /// High-energy readings, row-major.
    pub high: Vec<u16>,
    /// Low-energy readings.
    pub low: Vec<u16>,
}

/// Reads a cleared scan: its sidecar and both 16-bit images. Errors name the file and what is
/// wrong with it.
pub fn load(path: &Path) -> Result<Cleared, String> {
    let name = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("{name}: cannot read: {e}"))?;
    let sidecar = ScanSidecar::from_json(&bytes, chrono::Utc::now())
        .map_err(|e| format!("{name}: not a scan sidecar: {e}"))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let low_image = sidecar
        .low()
        .ok_or_else(|| format!("{name}: no low-energy image; projection needs both energies"))?;
    let image = |file: &str| -> Result<(u32, u32, Vec<u16>), String> {
        let p = dir.join(file);
        let mut reader = ImageReader::open(&p)
            .and_then(|r| r.with_guessed_format())
            .map_err(|e| format!("{}: cannot read: {e}", p.display()))?;
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(MAX_SIDE);
        limits.max_image_height = Some(MAX_SIDE);
        reader.limits(limits);
        let img = reader
            .decode()
            .map_err(|e| format!("{}: not a readable image: {e}", p.display()))?;
        let (w, h) = (img.width(), img.height());
        match img {
            image::DynamicImage::ImageLuma16(g) => Ok((w, h, g.into_raw())),
            other => Err(format!(
                "{}: {:?} pixels; a scan image is 16-bit greyscale",
                p.display(),
                other.color()
            )),
        }
    };
    let (w, h, high) = image(&sidecar.high().file)?;
    let (wl, hl, low) = image(&low_image.file)?;
    if (w, h) != (wl, hl) {
        return Err(format!(
            "{name}: the high-energy image is {w}x{h}, the low-energy one {wl}x{hl}"
        ));
    }
    Ok(Cleared {
        path: path.to_path_buf(),
        sidecar,
        w: w as usize,
        h: h as usize,
        high,
        low,
    })
}

/// What one projection did, as recorded in `truth.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// The projected scan's id.
    pub scan_id: String,
    /// `concealment` or `compartment`, as `scanner-sim generate` names them.
    pub scenario: &'static str,
    /// The threat kind.
    pub variant: &'static str,
    /// The cleared scan it was projected into.
    pub cleared_scan: String,
    /// What is hidden, in words.
    pub anomalies: Vec<String>,
    /// Mass of the hidden goods, kg.
    pub hidden_mass_kg: f64,
    /// Bounding box of the mask, `[x, y, width, height]`, pixels (one box, or none when the
    /// threat fell between pixels), as `scanner-sim generate` writes `concealed_boxes`.
    pub concealed_boxes: Vec<[u32; 4]>,
    /// Pixels of the mask.
    pub concealed_pixels: usize,
}

/// A cleared scan with a threat projected into it.
#[derive(Debug, Clone)]
pub struct Projected {
    /// The new scan, mask included.
    pub scan: SimulatedScan,
    /// Its sidecar's metadata.
    pub meta: ScanMeta,
    /// What was done.
    pub record: Record,
    /// The threat projected.
    pub threat: Threat,
}

/// Undoes `A' = A / (1 + k·A)`.
fn unharden(a: f32, k: f32) -> f32 {
    if k == 0.0 {
        return a;
    }
    let ka = (k * a).min(MAX_HARDENED);
    ka / k / (1.0 - ka)
}

fn harden(a: f32, k: f32) -> f32 {
    a / (1.0 + k * a)
}

/// Projects a threat of `kind` into `cleared`, as seen by a scanner of `profile`, under the
/// id `scan_id`. `None` when the scan has no room for the kind (see the placement rules).
pub fn project(
    cleared: &Cleared,
    kind: ThreatKind,
    profile: &ScannerProfile,
    scan_id: ScanId,
    rng: &mut impl Rng,
) -> Option<Projected> {
    let (w, h) = (cleared.w, cleared.h);
    let sc = &cleared.sidecar;
    let pitch = sc.pitch_mm();
    let hi = sc.high();
    let lo = sc.low()?;
    let k = [profile.hardening_high as f32, profile.hardening_low as f32];
    let measured = [
        attenuation(&cleared.high, hi.air, hi.dark),
        attenuation(&cleared.low, lo.air, lo.dark),
    ];
    let plain: [Vec<f32>; 2] =
        [0, 1].map(|e| measured[e].iter().map(|&a| unharden(a, k[e])).collect());
    let room = Room::new(&plain, w, h, pitch)?;
    let (threat, sums, displaced) = (0..CONTRAST_TRIES).find_map(|_| {
        if kind.inside_load() {
            let threat = library::inside(kind, room.inside_load(kind, rng)?, rng);
            let sums = room.grid.ray_sums(&threat.solids, 0, profile);
            let displaced = displaced(&threat, &room, profile);
            visible(&sums, displaced.as_ref()).then_some((threat, sums, displaced))
        } else {
            let at = room.structure(kind, rng)?;
            let threat = library::structure(kind, at, rng);
            let sums = room.grid.ray_sums(&threat.solids, 0, profile);
            Some((threat, sums, at.built_into.map(|x| room.goods_over(x))))
        }
    })?;
    // The change in measured attenuation, per energy, as a transmission factor.
    let mut factor = [vec![1.0f32; w * h], vec![1.0f32; w * h]];
    for e in 0..2 {
        let add = if e == 0 { &sums.high } else { &sums.low };
        for i in 0..w * h {
            let d = displaced.as_ref().map_or(0.0, |d| d[e][i]);
            if add[i] == 0.0 && d == 0.0 {
                continue;
            }
            let before = measured[e][i];
            let after = harden((plain[e][i] + add[i] - d).max(0.0), k[e]);
            factor[e][i] = (-(after - before)).exp();
        }
        for _ in 0..profile.psf_passes {
            factor[e] = blur_3tap(&factor[e], w, h, profile.psf_centre);
        }
        // The blur of untouched pixels is 1 up to rounding: keep them exactly as they were.
        for f in &mut factor[e] {
            if (*f - 1.0).abs() < 1e-6 {
                *f = 1.0;
            }
        }
    }
    let detectors = [
        detector(hi.energy_mev, hi.air, hi.dark, profile.high),
        detector(lo.energy_mev, lo.air, lo.dark, profile.low),
    ];
    let readings = [&cleared.high, &cleared.low];
    let [high, low] = [0, 1].map(|e| {
        let det = detectors[e];
        let span = f64::from(det.air.saturating_sub(det.dark)).max(1.0);
        readings[e]
            .iter()
            .zip(&factor[e])
            .map(|(&r, &f)| {
                if f == 1.0 {
                    return r;
                }
                let f = f64::from(f);
                let signal = (f64::from(r) - f64::from(det.dark)).max(0.0);
                let t_new = signal / span * f;
                let var = (span * span * t_new * (1.0 - f) / det.photons_in_air).max(0.0);
                let z: f64 = StandardNormal.sample(rng);
                let v = f64::from(det.dark) + signal * f + var.sqrt() * z;
                v.round().clamp(0.0, 65535.0) as u16
            })
            .collect::<Vec<u16>>()
    });
    let mask = sums.mask;
    let concealed_boxes: Vec<[u32; 4]> = mask_box(&mask, w).into_iter().collect();
    let concealed_pixels = mask.iter().filter(|&&m| m != 0).count();
    let scan = SimulatedScan {
        width: w as u32,
        height: h as u32,
        pitch_mm: pitch[0],
        pitch_vertical_mm: pitch[1],
        high_detector: detectors[0],
        low_detector: detectors[1],
        high,
        low,
        concealment_mask: mask,
        item_boxes: Vec::new(),
        defects: Defects::default(),
    };
    let meta = ScanMeta {
        scan_id: scan_id.clone(),
        bay: sc.bay.clone(),
        captured_at: sc.captured_at,
        container_code: sc.container_code.clone(),
        declaration_ref: sc.declaration_ref.clone(),
    };
    let record = Record {
        scan_id: scan_id.as_str().to_owned(),
        scenario: kind.scenario(),
        variant: kind.name(),
        cleared_scan: sc.scan_id.as_str().to_owned(),
        anomalies: vec![threat.description.clone()],
        hidden_mass_kg: (threat.mass_kg * 10.0).round() / 10.0,
        concealed_boxes,
        concealed_pixels,
    };
    Some(Projected {
        scan,
        meta,
        record,
        threat,
    })
}

/// Whether a package inside a load stands out from the goods it displaced by a margin that
/// matters but is not trivial, as the simulator's own concealment requires: the mean net
/// high-energy attenuation it adds over its mask lies in [`CONCEAL_CONTRAST`]. (Cigarettes in paper
/// goods are invisible to any X-ray: projecting them would teach a model to flag paper.)
fn visible(sums: &RaySums, displaced: Option<&[Vec<f32>; 2]>) -> bool {
    let (mut sum, mut n) = (0.0f64, 0usize);
    for (i, _) in sums.mask.iter().enumerate().filter(|(_, m)| **m != 0) {
        sum += f64::from(sums.high[i] - displaced.map_or(0.0, |d| d[0][i]));
        n += 1;
    }
    n > 0 && CONCEAL_CONTRAST.contains(&(sum / n as f64))
}

/// The ray sums, per energy, of the host goods a package inside a load takes the place of.
fn displaced(threat: &Threat, room: &Room, profile: &ScannerProfile) -> Option<[Vec<f32>; 2]> {
    let [x, _, z] = threat.displaces?;
    let mu_high = room.host_mu(x, z);
    if mu_high <= 0.0 {
        return None;
    }
    // Path lengths through the threat's solids: the same shapes with a unit coefficient at
    // the high energy (which no profile rescales).
    let unit: Vec<_> = threat
        .solids
        .iter()
        .map(|&s| Solid {
            mu: (1.0, 1.0),
            ..s
        })
        .collect();
    let len = room.grid.ray_sums(&unit, 0, profile).high;
    // The host's low/high ratio: that of the net attenuation over the footprint.
    let (mut net_h, mut net_l) = (0.0f64, 0.0f64);
    for (i, _) in len.iter().enumerate().filter(|(_, l)| **l > 0.0) {
        net_h += f64::from(room.net[0][i]);
        net_l += f64::from(room.net[1][i]);
    }
    let ratio = if net_h > 0.0 { net_l / net_h } else { 1.0 };
    let mu = [mu_high as f32, (mu_high * ratio) as f32];
    // Never more than the goods there: the net attenuation in that energy.
    Some([0, 1].map(|e| {
        len.iter()
            .zip(&room.net[e])
            .map(|(&l, &net)| if l > 0.0 { (mu[e] * l).min(net) } else { 0.0 })
            .collect()
    }))
}

/// The scan's detector as its sidecar gives it, with the profile's photons per pixel.
fn detector(energy_mev: f64, air: u16, dark: u16, profile: Detector) -> Detector {
    Detector {
        energy_mev,
        photons_in_air: profile.photons_in_air,
        air,
        dark,
    }
}

/// `[x, y, width, height]` of the set pixels of a mask.
fn mask_box(mask: &[u8], w: usize) -> Option<[u32; 4]> {
    let mut b: Option<[usize; 4]> = None;
    for (i, _) in mask.iter().enumerate().filter(|(_, m)| **m != 0) {
        let (c, r) = (i % w, i / w);
        b = Some(match b {
            None => [c, r, c, r],
            Some([a, bb, d, e]) => [a.min(c), bb.min(r), d.max(c), e.max(r)],
        });
    }
    b.map(|[a, bb, d, e]| [a as u32, bb as u32, (d - a + 1) as u32, (e - bb + 1) as u32])
}
