//! The image grid of a scan in scene coordinates, and the fan-beam ray sums of solids on it:
//! what [`crate::render`] turns into detector readings, and what threat image projection
//! ([`crate::tip`]) adds to a cleared scan.

use crate::geometry::{BEAM, Solid};
use crate::profile::ScannerProfile;

/// The image grid of a scan in scene coordinates: each column's x position and width (mm), and
/// per row the height where its ray crosses the centre plane, with the ray's slope and secant.
#[derive(Debug, Clone)]
pub struct Grid {
    xs: Vec<f64>,
    col_width: Vec<f64>,
    h: usize,
    pitch_v: f64,
    slope: Vec<f64>,
    sec: Vec<f64>,
}

/// Ray sums of a set of solids on a grid, before beam hardening, row-major.
#[derive(Debug, Clone)]
pub struct RaySums {
    /// High-energy attenuation.
    pub high: Vec<f32>,
    /// Low-energy attenuation.
    pub low: Vec<f32>,
    /// 1 where a hidden solid is crossed.
    pub mask: Vec<u8>,
    /// Bounding box `[x0, y0, x1, y1]` (inclusive) of each truth item, by item index.
    pub item_boxes: Vec<Option<[u32; 4]>>,
}

impl Grid {
    /// A grid from its columns (centre and width, mm), rows and vertical pitch.
    pub fn new(xs: Vec<f64>, col_width: Vec<f64>, h: usize, pitch_v: f64) -> Self {
        let z_mid: Vec<f64> = (0..h)
            .map(|r| (h - r) as f64 * pitch_v - pitch_v / 2.0)
            .collect();
        let slope: Vec<f64> = z_mid.iter().map(|&z| BEAM.slope(z)).collect();
        let sec = slope.iter().map(|k| (1.0 + k * k).sqrt()).collect();
        Self {
            xs,
            col_width,
            h,
            pitch_v,
            slope,
            sec,
        }
    }

    /// A uniform grid of `w` × `h` pixels at the given pitches.
    pub fn uniform(w: usize, h: usize, [pitch, pitch_v]: [f64; 2]) -> Self {
        let xs = (0..w).map(|c| (c as f64 + 0.5) * pitch).collect();
        Self::new(xs, vec![pitch; w], h, pitch_v)
    }

    /// Columns.
    pub fn width(&self) -> usize {
        self.xs.len()
    }

    /// The height (mm) where row `r`'s ray crosses the centre plane.
    pub fn z_mid(&self, r: usize) -> f64 {
        (self.h - r) as f64 * self.pitch_v - self.pitch_v / 2.0
    }

    /// The row whose ray crosses the centre plane at height `z` (mm), unclamped.
    pub fn row_of(&self, z: f64) -> f64 {
        ((self.h as f64 * self.pitch_v - z) / self.pitch_v).floor()
    }

    /// Fan-beam ray sums of `solids` (each with the scanner's effective coefficients), with
    /// the mask of hidden solids and the box of each of `items` truth items.
    pub fn ray_sums(&self, solids: &[Solid], items: usize, profile: &ScannerProfile) -> RaySums {
        let (w, h) = (self.width(), self.h);
        let (xs, col_width, slope, sec) = (&self.xs, &self.col_width, &self.slope, &self.sec);
        let pitch = col_width.iter().copied().fold(0.0, f64::max);
        let row_of = |z: f64| self.row_of(z);
        let mut att_high = vec![0.0f32; w * h];
        let mut att_low = vec![0.0f32; w * h];
        let mut mask = vec![0u8; w * h];
        let mut boxes: Vec<Option<[u32; 4]>> = vec![None; items];
        for solid in solids {
            let [xa, xb] = solid.shape.x_range();
            let c0 = xs.partition_point(|&x| x < xa - pitch);
            let c1 = xs.partition_point(|&x| x < xb + pitch);
            let [y0, y1, z0, z1] = solid.shape.bounds_yz();
            let corners = [
                BEAM.project(y0, z0),
                BEAM.project(y0, z1),
                BEAM.project(y1, z0),
                BEAM.project(y1, z1),
            ];
            let top = corners.iter().copied().fold(f64::MIN, f64::max);
            let bottom = corners.iter().copied().fold(f64::MAX, f64::min);
            let r0 = row_of(top).clamp(0.0, h as f64 - 1.0) as usize;
            let r1 = (row_of(bottom) + 1.0).clamp(0.0, h as f64 - 1.0) as usize;
            let mut bbox: Option<[u32; 4]> = None;
            for c in c0..c1 {
                let Some((section, cover)) = solid.shape.section(xs[c], col_width[c]) else {
                    continue;
                };
                let scale = cover * solid.corrugation(xs[c]);
                let mu = profile.effective_mu(solid.mu);
                let (mh, ml) = (mu.0 * scale, mu.1 * scale);
                for r in r0..=r1 {
                    let len = BEAM.path_mm(slope[r], sec[r], section);
                    if len <= 0.0 {
                        continue;
                    }
                    let i = r * w + c;
                    att_high[i] += (mh * len) as f32;
                    att_low[i] += (ml * len) as f32;
                    if solid.concealed {
                        mask[i] = 1;
                    }
                    if solid.item.is_some() && solid.density > 0.0 {
                        let (c, r) = (c as u32, r as u32);
                        bbox = Some(match bbox {
                            None => [c, r, c, r],
                            Some([a, b, d, e]) => [a.min(c), b.min(r), d.max(c), e.max(r)],
                        });
                    }
                }
            }
            if let (Some(item), Some([a, b, d, e])) = (solid.item, bbox) {
                let merged = match boxes[item] {
                    None => [a, b, d, e],
                    Some([pa, pb, pd, pe]) => [pa.min(a), pb.min(b), pd.max(d), pe.max(e)],
                };
                boxes[item] = Some(merged);
            }
        }
        RaySums {
            high: att_high,
            low: att_low,
            mask,
            item_boxes: boxes,
        }
    }
}
