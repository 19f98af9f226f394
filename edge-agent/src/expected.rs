//! The expected cargo: what the declared goods should look like in the scan, and the observed
//! load cut into blocks to compare with it. Pure functions over plain data.
//!
//! **Volume from mass.** Each declared item's chapter gives its stowed density range ρ
//! (`assets/hs_chapters.csv`) and its packing. Seen from the side, goods of mass `m` that fill a
//! width `W` of the container show an area `A = m / (ρ·W)`, whatever their stack height, so the
//! declaration predicts the side area of the load within the density range:
//!
//! | packing | width filled `W` | why |
//! |---|---|---|
//! | pallets | 2.0 m | two 1200 × 1000 mm pallets across a 2.35 m container |
//! | bulk | 2.35 m | wall to wall |
//! | drums | 1.73 m | four 200 l drums across: 0.88 m³ of liquid per 0.61 m row, 0.51 m² of side view |
//!
//! **Layout.** Containers are stuffed from the front wall towards the doors, so the expected
//! layout lays the declared items out in declaration order from the end of the cargo space the
//! load starts at, each as long as its area over the observed stack height, drawn with its
//! material class. The overlay shows it next to the observed material map.
//!
//! **Blocks.** The observed load is cut along its length into blocks of one dominant material
//! class (columns with material in at least [`OCCUPIED_SHARE`] of the cargo height; class runs
//! shorter than [`MIN_BLOCK_M`] join their neighbour), each with its mass and side area.

use baylens_protocol::Declaration;
use baylens_protocol::hs::{self, GoodsClass, Packing};

use crate::calibration::{CargoEstimate, CargoSpace};
use crate::material_map::MaterialClass;

/// A column holds part of the load when this share of the cargo height has material.
pub const OCCUPIED_SHARE: f64 = 0.08;
/// Shortest block, metres: shorter class runs are merged into a neighbour.
pub const MIN_BLOCK_M: f64 = 0.4;
/// Gaps up to this long, metres, do not split a block (gaps between pallets).
pub const MAX_GAP_M: f64 = 0.25;

/// Width of the container the goods fill, metres, by packing.
pub fn filled_width_m(packing: Packing) -> f64 {
    match packing {
        Packing::Pallets => 2.0,
        Packing::Bulk => 2.35,
        Packing::Drums => 1.73,
    }
}

/// One declared item as it should show.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedItem {
    /// Index in the declaration's items.
    pub index: usize,
    /// Description as declared.
    pub description: String,
    /// Expected dual-energy class (`None`: the chapter is not in the table).
    pub class: Option<GoodsClass>,
    /// Declared gross mass, kg.
    pub mass_kg: f64,
    /// Side area the goods should show, m²: least and most (over the density range).
    pub area_m2: [f64; 2],
    /// Where it is drawn: columns `x0..x1` and rows `top..floor` of the scan.
    pub x0: usize,
    /// One past the last column.
    pub x1: usize,
    /// Top row drawn.
    pub top: usize,
    /// One past the bottom row (the cargo floor).
    pub floor: usize,
}

/// The declared goods laid out over the cargo space.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedLayout {
    /// The items, in declaration order.
    pub items: Vec<ExpectedItem>,
    /// Total side area the declared goods should show, m²: least and most.
    pub area_m2: [f64; 2],
    /// Whether the load starts at the left end of the scan (else at the right).
    pub from_left: bool,
}

/// A stretch of the observed load with one dominant material class.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// First column (absolute).
    pub x0: usize,
    /// One past the last column.
    pub x1: usize,
    /// Topmost row with material.
    pub top: usize,
    /// One past the lowest row with material.
    pub bottom: usize,
    /// Dominant class.
    pub class: MaterialClass,
    /// Estimated mass, kg.
    pub mass_kg: f64,
    /// Side area with material, m².
    pub area_m2: f64,
}

/// Per column of the cargo space: whether it holds load, and its dominant class.
fn columns(cargo: &CargoEstimate, width: usize) -> Vec<Option<MaterialClass>> {
    let s = cargo.space;
    let height = (s.floor - s.top).max(1) as f64;
    (s.x0..s.x1)
        .map(|c| {
            if f64::from(cargo.column_filled[c - s.x0]) < OCCUPIED_SHARE * height {
                return None;
            }
            let mut counts = [0u32; 6];
            for r in s.top..s.floor {
                counts[usize::from(cargo.classes[r * width + c]).min(5)] += 1;
            }
            // Mixed counts with organic (the ratio cannot part them).
            counts[1] += counts[2];
            counts[2] = 0;
            let best = (1..6).max_by_key(|&k| counts[k]).unwrap_or(1);
            Some(MaterialClass::from_u8(best as u8))
        })
        .collect()
}

/// Cuts the observed load into blocks (see the module docs).
pub fn blocks(cargo: &CargoEstimate, width: usize, pitch_mm: [f64; 2]) -> Vec<Block> {
    let s = cargo.space;
    let mut cols = columns(cargo, width);
    let px = |m: f64| ((m * 1000.0 / pitch_mm[0]).round() as usize).max(1);
    // Bridge short gaps inside a run of one class.
    let max_gap = px(MAX_GAP_M);
    let mut last: Option<(usize, MaterialClass)> = None;
    for i in 0..cols.len() {
        if let Some(c) = cols[i] {
            if let Some((j, prev)) = last
                && i - j - 1 <= max_gap
                && i - j > 1
            {
                let fill = if prev == c { Some(c) } else { None };
                if fill.is_some() {
                    for slot in &mut cols[j + 1..i] {
                        *slot = fill;
                    }
                }
            }
            last = Some((i, c));
        }
    }
    // Runs of one state.
    let mut runs: Vec<(usize, usize, Option<MaterialClass>)> = Vec::new();
    for (i, c) in cols.iter().enumerate() {
        match runs.last_mut() {
            Some(r) if r.2 == *c => r.1 = i + 1,
            _ => runs.push((i, i + 1, *c)),
        }
    }
    // Short class runs take the class of the longer neighbouring load run.
    let min_block = px(MIN_BLOCK_M);
    for k in 0..runs.len() {
        let (a, b, c) = runs[k];
        if c.is_some() && b - a < min_block {
            let left = k
                .checked_sub(1)
                .and_then(|j| runs[j].2.map(|x| (runs[j].1 - runs[j].0, x)));
            let right = runs.get(k + 1).and_then(|r| r.2.map(|x| (r.1 - r.0, x)));
            if let Some((_, x)) = match (left, right) {
                (Some(l), Some(r)) => Some(if l.0 >= r.0 { l } else { r }),
                (l, r) => l.or(r),
            } {
                runs[k].2 = Some(x);
            }
        }
    }
    let mut merged: Vec<(usize, usize, MaterialClass)> = Vec::new();
    for (a, b, c) in runs {
        let Some(c) = c else { continue };
        match merged.last_mut() {
            Some(m) if m.2 == c && m.1 == a => m.1 = b,
            _ => merged.push((a, b, c)),
        }
    }
    let pixel_m2 = pitch_mm[0] / 1000.0 * pitch_mm[1] / 1000.0;
    merged
        .into_iter()
        .filter(|(a, b, _)| b - a >= min_block.min(3))
        .map(|(a, b, class)| {
            let (mut top, mut bottom) = (s.floor, s.top);
            for c in s.x0 + a..s.x0 + b {
                for r in s.top..s.floor {
                    if cargo.classes[r * width + c] != MaterialClass::None as u8 {
                        top = top.min(r);
                        bottom = bottom.max(r + 1);
                    }
                }
            }
            Block {
                x0: s.x0 + a,
                x1: s.x0 + b,
                top: top.min(bottom),
                bottom: bottom.max(top),
                class,
                mass_kg: cargo.column_kg[a..b].iter().sum(),
                area_m2: cargo.column_filled[a..b]
                    .iter()
                    .map(|&n| f64::from(n))
                    .sum::<f64>()
                    * pixel_m2,
            }
        })
        .collect()
}

/// Whether the load starts at the left end of the cargo space (the end with the smaller gap).
pub fn starts_left(blocks: &[Block], space: CargoSpace) -> bool {
    match (blocks.first(), blocks.last()) {
        (Some(first), Some(last)) => first.x0 - space.x0 <= space.x1 - last.x1,
        _ => true,
    }
}

/// Side area an item of `mass_kg` should show, m²: least and most.
fn item_area(mass_kg: f64, packing: Packing, bulk: (f64, f64)) -> [f64; 2] {
    let w = filled_width_m(packing);
    // Density in g/cm³ is t/m³.
    [
        mass_kg / 1000.0 / (bulk.1 * w),
        mass_kg / 1000.0 / (bulk.0 * w),
    ]
}

/// Lays the declared goods out over the cargo space (see the module docs). `stack_m` is the
/// observed mean stack height, metres (the cargo height when nothing was observed).
pub fn layout(
    decl: &Declaration,
    space: CargoSpace,
    pitch_mm: [f64; 2],
    from_left: bool,
    stack_m: f64,
) -> ExpectedLayout {
    // Metres per column and per row (they differ on scanners with rectangular pixels).
    let (m_per_px, m_per_row) = (pitch_mm[0] / 1000.0, pitch_mm[1] / 1000.0);
    let space_h = (space.floor - space.top) as f64 * m_per_row;
    let stack_m = if stack_m > 0.2 {
        stack_m.min(space_h)
    } else {
        space_h
    };
    let top = space.floor - ((stack_m / m_per_row).round() as usize).min(space.floor - space.top);
    let mut cursor = 0.0f64; // metres from the start end
    let mut total = [0.0, 0.0];
    let mut items = Vec::new();
    for (index, item) in decl.items.iter().enumerate() {
        let profile = hs::profile(item.chapter());
        let area = profile.map_or([0.0, f64::INFINITY], |p| {
            item_area(item.gross_mass_kg, p.packing, p.bulk)
        });
        total[0] += area[0];
        total[1] += area[1];
        let mid = if area[1].is_finite() {
            (area[0] + area[1]) / 2.0
        } else {
            area[0]
        };
        let len = (mid / stack_m).max(0.0);
        let (a, b) = (cursor, cursor + len);
        cursor = b;
        let span = (space.x1 - space.x0) as f64 * m_per_px;
        let (a, b) = (a.min(span), b.min(span));
        let to_px = |m: f64| (m / m_per_px).round() as usize;
        let (x0, x1) = if from_left {
            (space.x0 + to_px(a), space.x0 + to_px(b))
        } else {
            (space.x1 - to_px(b), space.x1 - to_px(a))
        };
        items.push(ExpectedItem {
            index,
            description: item.description.clone(),
            class: profile.map(|p| p.class),
            mass_kg: item.gross_mass_kg,
            area_m2: area,
            x0,
            x1,
            top,
            floor: space.floor,
        });
    }
    ExpectedLayout {
        items,
        area_m2: total,
        from_left,
    }
}

/// The declared goods laid out over an observed load: at the load's mean stack height, from
/// the end it starts at. `None` for a container declared empty.
pub fn layout_over(
    decl: &Declaration,
    cargo: &CargoEstimate,
    blocks: &[Block],
    pitch_mm: [f64; 2],
) -> Option<ExpectedLayout> {
    if decl.declared_empty {
        return None;
    }
    let len: usize = blocks.iter().map(|b| b.x1 - b.x0).sum();
    let stack_px = blocks
        .iter()
        .map(|b| (b.bottom - b.top) * (b.x1 - b.x0))
        .sum::<usize>()
        / len.max(1);
    Some(layout(
        decl,
        cargo.space,
        pitch_mm,
        starts_left(blocks, cargo.space),
        stack_px as f64 * pitch_mm[1] / 1000.0,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calibration::tests::{estimate, simulated};
    use scanner_sim::Scenario;

    #[test]
    fn an_honest_load_shows_the_area_its_declaration_predicts() {
        let mut inside = 0;
        for i in 0..12 {
            let g = simulated(Scenario::Honest, 61, i);
            let cargo = estimate(&g).unwrap();
            let w = g.scan.width as usize;
            let b = blocks(&cargo, w, [g.scan.pitch_mm, g.scan.pitch_vertical_mm]);
            if b.is_empty() {
                println!(
                    "scan {i}: no blocks; {:?} fill {}",
                    g.truth.items, cargo.fill_fraction
                );
                continue;
            }
            let area: f64 = b.iter().map(|b| b.area_m2).sum();
            let l = layout(
                &g.declaration,
                cargo.space,
                [g.scan.pitch_mm, g.scan.pitch_vertical_mm],
                true,
                1.5,
            );
            println!(
                "scan {i}: observed {area:.1} m2, expected {:.1}..{:.1} m2",
                l.area_m2[0], l.area_m2[1]
            );
            inside += usize::from(area >= 0.75 * l.area_m2[0] && area <= 1.25 * l.area_m2[1]);
        }
        assert!(inside >= 11, "{inside} of 12 inside the predicted range");
    }

    #[test]
    fn an_empty_container_has_no_blocks() {
        let g = simulated(Scenario::Empty, 62, 0);
        let cargo = estimate(&g).unwrap();
        assert!(
            blocks(
                &cargo,
                g.scan.width as usize,
                [g.scan.pitch_mm, g.scan.pitch_vertical_mm]
            )
            .is_empty()
        );
    }
}
