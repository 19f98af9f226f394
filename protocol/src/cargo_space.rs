//! Where a container's cargo space lies in a scan, from the high-energy attenuation: the
//! agent's calibration weighs what is inside it (`edge-agent`, module `calibration`), and the
//! simulator's threat image projection places threats only there (`scanner-sim tip`). One
//! definition, so that both agree on what "inside the cargo" means.
//!
//! The container's end walls are the outermost columns that are dark over most of their height
//! (the steel end wall lies along the ray for the full 2.35 m width); its floor is where the
//! rows stop being light (floor boards and underframe); its top likewise under the roof. Dead
//! detector channels are replaced by their neighbours first ([`patch_dead_rows`]).

/// Attenuation `−ln T` of 16-bit readings, with `T` clamped to `[1e-6, 1]`.
pub fn attenuation(readings: &[u16], air: u16, dark: u16) -> Vec<f32> {
    let span = f32::from(air.saturating_sub(dark)).max(1.0);
    let lut: Vec<f32> = (0..=u16::MAX)
        .map(|i| {
            -((f32::from(i) - f32::from(dark)) / span)
                .clamp(1e-6, 1.0)
                .ln()
        })
        .collect();
    readings.iter().map(|&r| lut[usize::from(r)]).collect()
}

/// Where the container's cargo space is in the scan, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CargoSpace {
    /// First column inside the front wall.
    pub x0: usize,
    /// One past the last column inside the doors.
    pub x1: usize,
    /// Topmost row of the cargo space (just under the roof).
    pub top: usize,
    /// One past the lowest row of the cargo space (the floor boards' top).
    pub floor: usize,
}

impl CargoSpace {
    /// Pixels in the cargo space.
    pub fn pixels(&self) -> usize {
        (self.x1 - self.x0) * (self.floor - self.top)
    }
}

/// Attenuation of a column that counts as "dark" when looking for end walls and the floor.
const DARK: f32 = 2.0;
/// Millimetres skipped inside each end wall (corner posts, door bars).
const WALL_MARGIN_MM: f64 = 180.0;
/// A row's structure is the attenuation that this share of its columns lie below.
pub const BASELINE_QUANTILE: f64 = 0.02;
/// Rows whose structure alone attenuates more than this are floor, underframe or roof.
const STRUCTURE: f32 = 0.45;

/// The value that `share` of `values` lie below (0.5: the median), without sorting them all.
pub fn quantile(values: &[f32], share: f64) -> f32 {
    let mut v = values.to_vec();
    let k = ((v.len() as f64 * share) as usize).min(v.len() - 1);
    *v.select_nth_unstable_by(k, f32::total_cmp).1
}

/// Whether row `r` is a dead detector channel: dark along its whole length, air included (its
/// median, `quantile(row, 0.5)`, above 10: counted rather than selected, no copy).
fn dead_row(att: &[f32], w: usize, r: usize) -> bool {
    let row = &att[r * w..(r + 1) * w];
    let k = (row.len() / 2).min(row.len().saturating_sub(1));
    // The k-th smallest exceeds 10 exactly when at most k values are 10 or less.
    row.iter().filter(|&&v| v <= 10.0).count() <= k
}

/// A copy of `att` with every dead row replaced by its nearest live neighbour above or below,
/// so that smoothing and sums do not spread a dead channel over its neighbours.
pub fn patch_dead_rows(att: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mut out = att.to_vec();
    let dead: Vec<bool> = (0..h).map(|r| dead_row(att, w, r)).collect();
    for r in (0..h).filter(|&r| dead[r]) {
        let live = (1..h).find_map(|d| {
            [r.checked_sub(d), Some(r + d).filter(|&x| x < h)]
                .into_iter()
                .flatten()
                .find(|&x| !dead[x])
        });
        if let Some(src) = live {
            out.copy_within(src * w..(src + 1) * w, r * w);
        }
    }
    out
}

/// Finds the container's cargo space from the high-energy attenuation (dead rows patched, see
/// [`patch_dead_rows`]), or `None` when no container is in the scan (two end walls and a floor
/// between them). `pitch_mm` turns the wall margin into pixels.
pub fn locate_cargo_space(
    att_high: &[f32],
    w: usize,
    h: usize,
    pitch_mm: f64,
) -> Option<CargoSpace> {
    let wall_margin = (WALL_MARGIN_MM / pitch_mm.max(1.0)).ceil() as usize;
    if w < 3 * wall_margin || h < 20 {
        return None;
    }
    // Row by row, in memory order.
    let mut dark_rows = vec![0usize; w];
    for row in att_high.chunks_exact(w) {
        for (n, &v) in dark_rows.iter_mut().zip(row) {
            *n += usize::from(v > DARK);
        }
    }
    let max = *dark_rows.iter().max()?;
    if max < h / 4 {
        return None;
    }
    let wall = |c: &usize| dark_rows[*c] * 100 >= max * 85;
    let left = (0..w).find(wall)?;
    let right = (0..w).rev().find(wall)?;
    if right < left + 3 * wall_margin {
        return None;
    }
    // The end walls' dark run gives the container's height. Under the cargo lie the floor
    // boards, cross-members and rails; over it the roof and top rails. In a fan beam their
    // projections smear over many rows, so the cargo space is the band of rows between them
    // where the structure alone (the 2nd percentile along the row) stays light.
    let wall_rows: Vec<usize> = (0..h)
        .filter(|&r| att_high[r * w + left] > DARK || att_high[r * w + right] > DARK)
        .collect();
    let (&wall_top, &wall_bottom) = (wall_rows.first()?, wall_rows.last()?);
    let (x0, x1) = (left + wall_margin, right.saturating_sub(wall_margin));
    let structure = |r: usize| quantile(&att_high[r * w + x0..r * w + x1], BASELINE_QUANTILE);
    let middle = (wall_top + wall_bottom) / 2;
    let light = |r: &usize| structure(*r) < STRUCTURE;
    let top = (wall_top..middle).find(light)?;
    let floor = (middle..=wall_bottom)
        .find(|r| !light(r))
        .unwrap_or(wall_bottom + 1);
    (floor > top + 10).then_some(CargoSpace { x0, x1, top, floor })
}
