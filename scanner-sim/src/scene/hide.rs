//! Hiding places: a package inside a stack of the host goods, and false walls, floors and
//! ceilings with contraband behind them.

use std::ops::RangeInclusive;

use rand::Rng;
use rand::seq::IndexedRandom;

use super::loader::{Loader, round1};
use crate::geometry::{Shape, cuboid};
use crate::materials::{CELLULOSE, DRUG, Material, STEEL, WATER};

/// How much a package hidden inside a load must stand out from the goods it displaces:
/// `(μ_package − μ_host)·t` at the high energy, a margin that matters but is not trivial.
pub(crate) const CONCEAL_CONTRAST: RangeInclusive<f64> = 0.25..=2.5;

/// Builds a false wall, floor or ceiling (drawn at random) with contraband behind it into the
/// load; returns the kind and the anomaly, in words.
pub(super) fn false_structure(l: &mut Loader<'_>) -> (&'static str, String) {
    let kind = ["false_wall", "false_floor", "false_ceiling"][l.rng.random_range(0..3usize)];
    let (what, material, density) = contraband(l.rng);
    let [[x0, x1], [y0, y1], _] = l.space();
    let mut hidden = Vec::new();
    match kind {
        "false_wall" => {
            // A steel sheet wall 300–700 mm in from the front wall; goods behind it.
            let gap = l.rng.random_range(300.0..=700.0);
            let wall = x0 + gap;
            hidden.push(cuboid(
                [wall, wall + 40.0],
                [y0, y1],
                [l.floor, l.ceiling],
                STEEL,
                STEEL.density * 0.06,
            ));
            let h = l.rng.random_range(0.4..=0.9) * (l.ceiling - l.floor);
            hidden.push(cuboid(
                [x0 + 30.0, wall - 20.0],
                [y0 + 100.0, y1 - 100.0],
                [l.floor, l.floor + h],
                material,
                density,
            ));
            l.cursor = wall + 60.0;
        }
        "false_floor" => {
            // A 4 mm steel plate 120–250 mm above the real floor over part of the length.
            let h = l.rng.random_range(120.0..=250.0);
            let xs = plate_span(l, [x0, x1], 0.4..=0.8);
            hidden.push(cuboid(
                xs,
                [y0, y1],
                [l.floor + h - 4.0, l.floor + h],
                STEEL,
                STEEL.density,
            ));
            hidden.push(cuboid(
                [xs[0] + 50.0, xs[1] - 50.0],
                [y0 + 50.0, y1 - 50.0],
                [l.floor, l.floor + h - 10.0],
                material,
                density,
            ));
            l.floor += h;
        }
        _ => {
            // A false ceiling 250–450 mm under the roof, goods above it.
            let h = l.rng.random_range(250.0..=450.0);
            let xs = plate_span(l, [x0, x1], 0.3..=0.6);
            let plate = [l.ceiling - h, l.ceiling - h + 4.0];
            hidden.push(cuboid(xs, [y0, y1], plate, STEEL, STEEL.density));
            hidden.push(cuboid(
                [xs[0] + 50.0, xs[1] - 50.0],
                [y0 + 100.0, y1 - 100.0],
                [l.ceiling - h + 10.0, l.ceiling - 20.0],
                material,
                density,
            ));
            l.ceiling -= h;
        }
    }
    let goods = hidden.len() - 1; // the goods are pushed last
    l.hide(what, material, hidden, goods);
    (kind, format!("{what} behind a {}", kind.replace('_', " ")))
}

/// Where a false floor's or ceiling's 4 mm steel plate runs: a random share of the cargo
/// space's length `[x0, x1]`, at a random place in it.
fn plate_span(l: &mut Loader<'_>, [x0, x1]: [f64; 2], share: RangeInclusive<f64>) -> [f64; 2] {
    let span = l.rng.random_range(share) * (x1 - x0);
    let start = x0 + l.rng.random_range(0.0..=(x1 - x0 - span));
    [start, start + span]
}

/// Contraband that gets hidden: what it is, what it attenuates like, its packed density.
pub(crate) fn contraband(rng: &mut (impl Rng + ?Sized)) -> (&'static str, Material, f64) {
    match rng.random_range(0..4) {
        0 => (
            "cigarette cartons",
            CELLULOSE,
            rng.random_range(0.45..=0.75),
        ),
        1 => ("drug bricks", DRUG, rng.random_range(0.9..=1.25)),
        2 => ("weapon parts", STEEL, rng.random_range(0.4..=1.2)),
        _ => ("liquid in canisters", WATER, rng.random_range(0.8..=1.0)),
    }
}

/// Hides a package inside one of `host`'s stacks; returns what was hidden.
pub(super) fn conceal_in(l: &mut Loader<'_>, host: usize) -> Option<&'static str> {
    let stacks: Vec<(Shape, Material, f64)> = l
        .solids
        .iter()
        .filter(|s| s.item == Some(host) && s.density > 0.0)
        .filter_map(|s| match s.shape {
            Shape::Box { x, z, .. } if z[1] - z[0] > 700.0 && x[1] - x[0] > 700.0 => {
                Some((s.shape, Material::by_name(s.material)?, s.density))
            }
            _ => None,
        })
        .collect();
    let (host_shape, host_material, host_density) = *stacks.choose(l.rng)?;
    let Shape::Box { x, y, z } = host_shape else {
        return None;
    };
    // Dense goods hidden in lighter ones; resample until the package stands out from its host
    // by a margin that matters but is not trivial.
    for _ in 0..100 {
        let (what, m, dens) = contraband(l.rng);
        let w = l
            .rng
            .random_range(250.0..=650.0_f64)
            .min(x[1] - x[0] - 100.0);
        let h = l
            .rng
            .random_range(200.0..=550.0_f64)
            .min(z[1] - z[0] - 100.0);
        let t = l.rng.random_range(250.0..=(y[1] - y[0] - 100.0).min(900.0));
        let px = l.rng.random_range(x[0] + 50.0..=x[1] - w - 50.0);
        let pz = l.rng.random_range(z[0] + 50.0..=z[1] - h - 50.0);
        let py = l.rng.random_range(y[0] + 50.0..=y[1] - t - 50.0);
        let contrast = (m.mu_per_mm(true, dens) - host_material.mu_per_mm(true, host_density)) * t;
        if !CONCEAL_CONTRAST.contains(&contrast) {
            continue;
        }
        let bx = ([px, px + w], [py, py + t], [pz, pz + h]);
        let package = cuboid(bx.0, bx.1, bx.2, m, dens);
        let displaced = cuboid(bx.0, bx.1, bx.2, host_material, -host_density);
        // The package takes the place of host goods: they are not on board.
        l.items[host].mass_kg = round1(l.items[host].mass_kg + displaced.mass_kg());
        l.hide(what, m, vec![package, displaced], 0);
        return Some(what);
    }
    None
}
