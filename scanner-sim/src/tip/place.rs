//! Where a threat may go in one cleared scan: the container's cargo space (the agent's own
//! [`baylens_protocol::cargo_space::locate_cargo_space`]), and within it where the scan shows
//! goods (a package hidden inside a load) or free space (behind a false wall, over a false
//! ceiling). The placement rules are in the module documentation of [`super`].

use baylens_protocol::cargo_space::{
    BASELINE_QUANTILE, CargoSpace, locate_cargo_space, patch_dead_rows, quantile,
};
use rand::Rng;

use super::library::{Bounds, Hiding, ThreatKind};
use crate::geometry::ContainerType;
use crate::render::Grid;

/// Net high-energy attenuation (over the container's own) above which a pixel shows goods:
/// the calibration's `min_net_attenuation`.
pub const GOODS: f32 = 0.3;
/// Share of a package's footprint that must show goods for it to sit inside a load.
const INSIDE_SHARE: f64 = 0.95;
/// Share of a hiding place that may show goods for it to count as free.
const FREE_SHARE: f64 = 0.05;
/// Distance kept from the cargo space's edges, mm.
const EDGE_MM: f64 = 50.0;
/// Tries per placement before the scan is declared to have no room for the kind.
const TRIES: usize = 200;

/// One cleared scan, read for placement.
#[derive(Debug, Clone)]
pub struct Room {
    /// Columns and rows.
    pub w: usize,
    /// Rows.
    pub h: usize,
    /// The scan's grid in scene coordinates.
    pub grid: Grid,
    /// Pitch `[horizontal, vertical]`, mm.
    pub pitch: [f64; 2],
    /// The cargo space, in pixels.
    pub space: CargoSpace,
    /// Net attenuation (over each row's container baseline; dead rows patched, hardening
    /// undone) inside the cargo space, high and low energy; 0 elsewhere.
    pub net: [Vec<f32>; 2],
}

impl Room {
    /// Reads the cargo space and its goods from the scan's attenuation with the hardening
    /// undone (`plain`, high and low energy); `None` when no container is found.
    pub fn new(plain: &[Vec<f32>; 2], w: usize, h: usize, pitch: [f64; 2]) -> Option<Self> {
        let patched = plain.each_ref().map(|a| patch_dead_rows(a, w, h));
        let space = locate_cargo_space(&patched[0], w, h, pitch[0])?;
        let net = patched.map(|a| {
            let mut net = vec![0.0f32; w * h];
            for r in space.top..space.floor {
                let row = &a[r * w + space.x0..r * w + space.x1];
                let base = quantile(row, BASELINE_QUANTILE);
                for (c, &v) in (space.x0..).zip(row) {
                    net[r * w + c] = (v - base).max(0.0);
                }
            }
            net
        });
        Some(Self {
            w,
            h,
            grid: Grid::uniform(w, h, pitch),
            pitch,
            space,
            net,
        })
    }

    /// Columns `[c0, c1)` covering x range `[a, b]` (mm).
    fn cols(&self, [a, b]: [f64; 2]) -> (usize, usize) {
        let c = |x: f64| ((x / self.pitch[0]).floor().max(0.0) as usize).min(self.w);
        (c(a), c(b).max(c(a) + 1).min(self.w))
    }

    /// Rows `[r0, r1)` covering heights `[z0, z1]` (mm, at the centre plane).
    fn rows(&self, [z0, z1]: [f64; 2]) -> (usize, usize) {
        let r = |z: f64| self.grid.row_of(z).clamp(0.0, self.h as f64) as usize;
        let (r0, r1) = (r(z1), r(z0));
        (r0, r1.max(r0 + 1).min(self.h))
    }

    /// Share of the pixels of the box (x and z ranges, mm) that show goods.
    pub fn goods_share(&self, x: [f64; 2], z: [f64; 2]) -> f64 {
        let ((c0, c1), (r0, r1)) = (self.cols(x), self.rows(z));
        let mut n = 0usize;
        for r in r0..r1 {
            n += self.net[0][r * self.w + c0..r * self.w + c1]
                .iter()
                .filter(|&&v| v > GOODS)
                .count();
        }
        n as f64 / ((c1 - c0) * (r1 - r0)).max(1) as f64
    }

    /// Mean net attenuation per mm across the lane of the goods in the box (x and z ranges,
    /// mm), were they to fill the container's width: an estimate, from below, of the host
    /// goods' linear attenuation.
    pub fn host_mu(&self, x: [f64; 2], z: [f64; 2]) -> f64 {
        let ((c0, c1), (r0, r1)) = (self.cols(x), self.rows(z));
        let mut sum = 0.0f64;
        for r in r0..r1 {
            sum += self.net[0][r * self.w + c0..r * self.w + c1]
                .iter()
                .map(|&v| f64::from(v))
                .sum::<f64>();
        }
        sum / ((c1 - c0) * (r1 - r0)).max(1) as f64 / inner_width()
    }

    /// The ray sums, per energy, of all the goods the scan shows over the length `x` (mm):
    /// what a structure built into the load takes the place of.
    pub fn goods_over(&self, x: [f64; 2]) -> [Vec<f32>; 2] {
        let (c0, c1) = self.cols(x);
        self.net.each_ref().map(|net| {
            let mut out = vec![0.0f32; self.w * self.h];
            for r in 0..self.h {
                let row = r * self.w;
                out[row + c0..row + c1].copy_from_slice(&net[row + c0..row + c1]);
            }
            out
        })
    }

    /// The cargo space in mm: `[x0, x1]`, `[floor, roof]`.
    pub fn space_mm(&self) -> ([f64; 2], [f64; 2]) {
        let s = self.space;
        let x = [s.x0 as f64 * self.pitch[0], s.x1 as f64 * self.pitch[0]];
        let half = self.pitch[1] / 2.0;
        let z = [
            self.grid.z_mid(s.floor.saturating_sub(1)) - half,
            self.grid.z_mid(s.top) + half,
        ];
        (x, z)
    }

    /// A place for a package of `kind` inside a load, or `None` when none of [`TRIES`] random
    /// places lies in goods.
    pub fn inside_load(&self, kind: ThreatKind, rng: &mut impl Rng) -> Option<Bounds> {
        let ([x0, x1], [z0, z1]) = self.space_mm();
        let half_w = inner_width() / 2.0;
        for _ in 0..TRIES {
            let [len, height, depth] = kind.package_size(rng);
            let (lo_x, hi_x) = (x0 + EDGE_MM, x1 - EDGE_MM - len);
            let (lo_z, hi_z) = (z0 + EDGE_MM, z1 - EDGE_MM - height);
            if hi_x <= lo_x || hi_z <= lo_z {
                continue;
            }
            let px = rng.random_range(lo_x..hi_x);
            let pz = rng.random_range(lo_z..hi_z);
            let (x, z) = ([px, px + len], [pz, pz + height]);
            if self.goods_share(x, z) < INSIDE_SHARE {
                continue;
            }
            let depth = depth.min(2.0 * half_w - 2.0 * EDGE_MM);
            let py = rng.random_range(-half_w + EDGE_MM..=half_w - EDGE_MM - depth);
            return Some([x, [py, py + depth], z]);
        }
        None
    }

    /// A hiding place for a false structure of `kind`, or `None` when the scan has no room for
    /// it (a false wall or ceiling needs free space where it would stand).
    pub fn structure(&self, kind: ThreatKind, rng: &mut impl Rng) -> Option<Hiding> {
        let ([x0, x1], [floor, roof]) = self.space_mm();
        let half_w = inner_width() / 2.0;
        let (y, y_goods) = ([-half_w, half_w], [-half_w + 100.0, half_w - 100.0]);
        let length = x1 - x0;
        for _ in 0..TRIES {
            match kind {
                ThreatKind::FalseFloor => {
                    // A 4 mm plate 120-250 mm above the real floor over 40-80 % of the length;
                    // goods in the space under it. Whatever the load has on the floor there is
                    // left as it is: projection adds, it cannot lift the load.
                    let h = rng.random_range(120.0..=250.0);
                    let span = rng.random_range(0.4..=0.8) * length;
                    let start = x0 + rng.random_range(0.0..=(length - span));
                    return Some(Hiding {
                        plate: [[start, start + span], y, [floor + h - 4.0, floor + h]],
                        goods: [
                            [start + 50.0, start + span - 50.0],
                            [-half_w + 50.0, half_w - 50.0],
                            [floor, floor + h - 10.0],
                        ],
                        built_into: None,
                    });
                }
                ThreatKind::FalseCeiling => {
                    // A plate 250-450 mm under the roof over 30-60 % of the length, goods
                    // above it; only where the scan shows nothing under the roof.
                    let h = rng.random_range(250.0..=450.0);
                    let span = rng.random_range(0.3..=0.6) * length;
                    let start = x0 + rng.random_range(0.0..=(length - span));
                    let xs = [start, start + span];
                    if self.goods_share(xs, [roof - h, roof]) > FREE_SHARE {
                        continue;
                    }
                    return Some(Hiding {
                        plate: [xs, y, [roof - h, roof - h + 4.0]],
                        goods: [
                            [start + 50.0, start + span - 50.0],
                            y_goods,
                            [roof - h + 10.0, roof - 20.0],
                        ],
                        built_into: None,
                    });
                }
                ThreatKind::FalseWall => {
                    // A sheet 300-700 mm in from the front wall or the doors, goods between
                    // it and that end. Where the scan shows goods at that end, the
                    // compartment is built into the load: it takes the place of the goods
                    // from the end to the sheet, and the load then seems to begin at the
                    // sheet, as the simulator builds its own (it loads goods right behind
                    // the wall). Where that end is free, the sheet stands in free space.
                    let gap = rng.random_range(300.0..=700.0);
                    let front = rng.random_bool(0.5);
                    let (wall, goods_x) = if front {
                        ([x0 + gap, x0 + gap + 40.0], [x0 + 30.0, x0 + gap - 20.0])
                    } else {
                        ([x1 - gap - 40.0, x1 - gap], [x1 - gap + 20.0, x1 - 30.0])
                    };
                    let compartment = if front {
                        [goods_x[0], wall[1]]
                    } else {
                        [wall[0], goods_x[1]]
                    };
                    let loaded = self.goods_share(compartment, [floor, roof]) > FREE_SHARE;
                    let h = rng.random_range(0.4..=0.9) * (roof - floor);
                    return Some(Hiding {
                        plate: [wall, y, [floor, roof]],
                        goods: [goods_x, y_goods, [floor, floor + h]],
                        built_into: loaded.then_some(compartment),
                    });
                }
                _ => return None,
            }
        }
        None
    }
}

/// The inner width of an ISO container, mm (the same for every type here).
pub fn inner_width() -> f64 {
    ContainerType::Forty.interior()[1]
}
