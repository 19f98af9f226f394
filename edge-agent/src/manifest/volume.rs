//! The checks that compare the load's volume with the declared goods': fill, undeclared region
//! and stowage density (see the parent module's table).
//!
//! **Stowage density.** Goods of one kind stow within a density range (`assets/hs_chapters.csv`),
//! so a stretch of the load shows a mass per square metre of side view of `ρ·W` (see
//! [`crate::expected`]): textiles a few hundred kilograms, lead ingots several tonnes. The
//! check slides a window of [`STOWAGE_WINDOW_M`] (one pallet) along each block and flags a
//! stretch, of at least [`expected::MIN_BLOCK_M`] and [`Tolerances::region_min_kg`], that is
//! lighter or denser than every declared item of the block's class allows, by more than
//! [`Tolerances::stowage_relative`]. It finds what the class and volume checks cannot: goods of
//! the same class as those declared, added within the mass tolerance (a pallet of jewellery
//! behind rifle parts, hand tools behind lead ingots, instruments behind floor tiles). Where a
//! window holds opaque pixels its mass is a lower bound, and only "denser" counts.

use baylens_protocol::hs::{self, GoodsClass, Packing};
use baylens_protocol::{Declaration, Finding, FindingKind, Region};

use super::{Check, Tolerances, goods_allowances, region_of};
use crate::calibration::CargoEstimate;
use crate::expected::{self, Block};
use crate::material_map::MaterialClass;

/// Length of the window the stowage density is measured over, metres: one pallet.
pub const STOWAGE_WINDOW_M: f64 = 1.2;

/// The fill, undeclared-region and stowage checks.
pub(super) fn checks(
    decl: &Declaration,
    cargo: &CargoEstimate,
    width: usize,
    pitch_mm: [f64; 2],
    tol: Tolerances,
) -> Vec<(Check, Finding)> {
    let mut out = Vec::new();
    let blocks = expected::blocks(cargo, width, pitch_mm);
    let from_left = expected::starts_left(&blocks, cargo.space);
    let layout = expected::layout(decl, cargo.space, pitch_mm, from_left, 0.0);
    let [least, most] = layout.area_m2;
    let observed: f64 = blocks.iter().map(|b| b.area_m2).sum();
    let opaque = cargo.opaque_fraction > 0.0;
    let m = |px: usize| px as f64 * pitch_mm[0] / 1000.0;
    let load_region = || {
        let (x0, x1) = (
            blocks.iter().map(|b| b.x0).min()?,
            blocks.iter().map(|b| b.x1).max()?,
        );
        let (top, bottom) = (
            blocks.iter().map(|b| b.top).min()?,
            blocks.iter().map(|b| b.bottom).max()?,
        );
        Some(Region {
            x: x0 as u32,
            y: top as u32,
            width: (x1 - x0) as u32,
            height: bottom.saturating_sub(top) as u32,
        })
    };
    let upper = most * (1.0 + tol.fill_relative) + tol.fill_absolute_m2;
    let lower = least * (1.0 - tol.fill_relative) - tol.fill_absolute_m2;
    if most.is_finite() && observed > upper {
        out.push((
            Check::Fill,
            Finding {
                kind: FindingKind::FillMismatch,
                score: (0.35 + 0.5 * (observed / upper - 1.0)).min(0.9) as f32,
                region: load_region().or(Some(region_of(cargo))),
                message: format!(
                    "The load shows {observed:.1} m² in side view; the {:.1} t of goods declared \
                 would fill {least:.1} to {most:.1} m²: more volume than declared, look for \
                 undeclared goods or goods lighter than declared.",
                    decl.gross_mass_kg / 1_000.0
                ),
            },
        ));
    } else if !opaque && lower > 0.0 && observed < lower {
        out.push((
            Check::Fill,
            Finding {
                kind: FindingKind::FillMismatch,
                score: (0.35 + 0.5 * (1.0 - observed / lower)).min(0.9) as f32,
                region: load_region().or(Some(region_of(cargo))),
                message: format!(
                    "The load shows {observed:.1} m² in side view; the {:.1} t of goods declared \
                 would fill {least:.1} to {most:.1} m²: less volume than declared, look for \
                 goods denser than declared or goods missing.",
                    decl.gross_mass_kg / 1_000.0
                ),
            },
        ));
    }
    // Blocks from the end the load starts at: those past the most area the declared goods can
    // fill, or of a class nothing declared explains (dunnage explains no block of its own; the
    // mixed band is explained by organic or inorganic goods, which it cannot tell apart).
    let allow = goods_allowances(decl);
    let ordered: Vec<&expected::Block> = if from_left {
        blocks.iter().collect()
    } else {
        blocks.iter().rev().collect()
    };
    let mut before = 0.0;
    let mut flagged = Vec::new();
    for b in ordered {
        let beyond = most.is_finite() && before >= upper;
        before += b.area_m2;
        let goods = goods_class(b.class);
        let unexplained = match b.class {
            MaterialClass::Mixed => {
                allow[GoodsClass::Organic as usize] <= 0.0
                    && allow[GoodsClass::Inorganic as usize] <= 0.0
            }
            _ => goods.is_some_and(|g| allow[g as usize] <= 0.0),
        };
        if b.mass_kg < tol.region_min_kg || !(beyond || unexplained) {
            continue;
        }
        let what = goods.map_or("dense", GoodsClass::as_str);
        let end = end_of(cargo, from_left, b.x0, b.x1);
        let why = if beyond {
            "lie beyond the space the declared goods would take"
        } else {
            "are of a material none of the declared goods explains"
        };
        flagged.push(b.x0);
        out.push((
            Check::UndeclaredRegion,
            Finding {
                kind: FindingKind::UndeclaredRegion,
                score: if beyond && unexplained { 0.75 } else { 0.6 },
                region: Some(Region {
                    x: b.x0 as u32,
                    y: b.top as u32,
                    width: (b.x1 - b.x0) as u32,
                    height: b.bottom.saturating_sub(b.top) as u32,
                }),
                message: format!(
                    "About {:.1} t of {what} goods over {:.1} m toward the {end} end {why}: \
                 examine that part of the load.",
                    b.mass_kg / 1_000.0,
                    m(b.x1 - b.x0)
                ),
            },
        ));
    }
    for b in blocks.iter().filter(|b| !flagged.contains(&b.x0)) {
        out.extend(stowage(decl, cargo, b, width, pitch_mm, from_left, tol));
    }
    out
}

/// The goods class a block's material class stands for (the mixed band counts as organic).
fn goods_class(class: MaterialClass) -> Option<GoodsClass> {
    match class {
        MaterialClass::Organic | MaterialClass::Mixed => Some(GoodsClass::Organic),
        MaterialClass::Inorganic => Some(GoodsClass::Inorganic),
        MaterialClass::Metal => Some(GoodsClass::Metal),
        _ => None,
    }
}

/// Which end of the container the columns `x0..x1` lie toward.
fn end_of(cargo: &CargoEstimate, from_left: bool, x0: usize, x1: usize) -> &'static str {
    if from_left == (x0 - cargo.space.x0 < cargo.space.x1 - x1) {
        "front"
    } else {
        "door"
    }
}

/// Whether goods of chapter profile `p` show as `class` (glass shows as organic too).
fn shows_as(p: &hs::ChapterProfile, class: GoodsClass) -> bool {
    p.class == class || (p.material == "glass" && class == GoodsClass::Organic)
}

/// Mass per square metre of side view, t/m², that the declared goods of class `class` may
/// show: least and most over their items (`ρ·W`, see [`crate::expected`]). `None` when none of
/// them is of that class (the undeclared-region check covers it) or any mass may show in it: a
/// chapter not in the table, or drums, whose steel shells show as inorganic and metal.
fn stowage_range(decl: &Declaration, class: GoodsClass) -> Option<[f64; 2]> {
    let mut range: Option<[f64; 2]> = None;
    for item in &decl.items {
        let p = hs::profile(item.chapter())?;
        if !shows_as(p, class) {
            if p.packing == Packing::Drums && class != GoodsClass::Organic {
                return None;
            }
            continue;
        }
        let w = expected::filled_width_m(p.packing);
        let [lo, hi] = [p.bulk.0 * w, p.bulk.1 * w];
        range = Some(range.map_or([lo, hi], |[a, b]| [a.min(lo), b.max(hi)]));
    }
    range
}

/// The stowage check on one block (see the module docs): its heaviest stretch that stows
/// outside what the declared goods of its class allow, if that is a finding.
fn stowage(
    decl: &Declaration,
    cargo: &CargoEstimate,
    b: &Block,
    width: usize,
    pitch_mm: [f64; 2],
    from_left: bool,
    tol: Tolerances,
) -> Option<(Check, Finding)> {
    let class = goods_class(b.class)?;
    let [least, most] = stowage_range(decl, class)?;
    let (lo, hi) = (
        least / (1.0 + tol.stowage_relative),
        most * (1.0 + tol.stowage_relative),
    );
    let s = cargo.space;
    let (a, z) = (b.x0 - s.x0, b.x1 - s.x0);
    let px = |m: f64| ((m * 1000.0 / pitch_mm[0]).round() as usize).max(1);
    let half = px(STOWAGE_WINDOW_M) / 2;
    let pixel_m2 = pitch_mm[0] / 1000.0 * pitch_mm[1] / 1000.0;
    let opaque: Vec<bool> = (b.x0..b.x1)
        .map(|c| {
            (s.top..s.floor).any(|r| cargo.classes[r * width + c] == MaterialClass::Opaque as u8)
        })
        .collect();
    // t/m² of the window around each column of the block, clipped to the block.
    let density = |c: usize| {
        let (w0, w1) = (c.saturating_sub(half).max(a), (c + half + 1).min(z));
        let kg: f64 = cargo.column_kg[w0..w1].iter().sum();
        let filled: f64 = cargo.column_filled[w0..w1]
            .iter()
            .map(|&n| f64::from(n))
            .sum();
        let lower_bound = opaque[w0 - a..w1 - a].iter().any(|&o| o);
        (filled > 0.0).then(|| (kg / 1000.0 / (filled * pixel_m2), lower_bound))
    };
    let side: Vec<i8> = (a..z)
        .map(|c| match density(c) {
            Some((d, _)) if d > hi => 1,
            Some((d, false)) if d < lo => -1,
            _ => 0,
        })
        .collect();
    // Runs of one side; the heaviest long enough.
    let mut best: Option<(usize, usize, f64)> = None;
    let mut i = 0;
    while i < side.len() {
        let j = (i..side.len())
            .find(|&j| side[j] != side[i])
            .unwrap_or(side.len());
        let kg: f64 = cargo.column_kg[a + i..a + j].iter().sum();
        if side[i] != 0
            && j - i >= px(expected::MIN_BLOCK_M)
            && kg >= tol.region_min_kg
            && best.is_none_or(|(_, _, m)| kg > m)
        {
            best = Some((i, j, kg));
        }
        i = j;
    }
    let (i, j, kg) = best?;
    let filled: f64 = cargo.column_filled[a + i..a + j]
        .iter()
        .map(|&n| f64::from(n))
        .sum();
    let d = kg / 1000.0 / (filled * pixel_m2);
    let (x0, x1) = (b.x0 + i, b.x0 + j);
    let lighter = side[i] < 0;
    let names: Vec<&str> = decl
        .items
        .iter()
        .filter(|item| hs::profile(item.chapter()).is_some_and(|p| shows_as(p, class)))
        .map(|item| item.description.as_str())
        .collect();
    let declared = if names.is_empty() {
        class.as_str().to_owned()
    } else {
        names.join(", ")
    };
    Some((
        Check::Stowage,
        Finding {
            kind: FindingKind::UndeclaredRegion,
            score: 0.6,
            region: Some(Region {
                x: x0 as u32,
                y: b.top as u32,
                width: (x1 - x0) as u32,
                height: b.bottom.saturating_sub(b.top) as u32,
            }),
            message: format!(
                "About {:.1} t of {} goods over {:.1} m toward the {} end weigh {d:.2} t per m² \
                 of side view; the declared {declared} would weigh {least:.2} to {most:.2}: \
                 {} goods than declared, examine that part of the load.",
                kg / 1000.0,
                class.as_str(),
                (x1 - x0) as f64 * pitch_mm[0] / 1000.0,
                end_of(cargo, from_left, x0, x1),
                if lighter { "lighter" } else { "denser" }
            ),
        },
    ))
}
