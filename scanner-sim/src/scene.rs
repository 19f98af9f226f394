//! Scenes: a container on a chassis with cargo, built from a scenario and a random stream.
//!
//! All lengths are millimetres in the scan plane: `x` along the truck (0 at the left edge of the
//! image), `z` up from the bottom edge of the image. The beam runs across the container's width,
//! so each block also has a `depth`: the length of the ray's path through it.

use rand::Rng;
use serde::Serialize;

use crate::materials::{ALUMINIUM, Material, ORGANIC, STEEL};

/// Image size in pixels (columns along the truck, rows from the top).
pub const WIDTH: u32 = 416;
/// See [`WIDTH`].
pub const HEIGHT: u32 = 208;
/// Pixel pitch at the container mid-plane.
pub const PITCH_MM: f64 = 16.0;

/// 20' ISO container, exterior and interior dimensions (mm).
pub const EXT_LENGTH: f64 = 6058.0;
/// Exterior height of a standard 20' container.
pub const EXT_HEIGHT: f64 = 2591.0;
/// Interior length.
pub const INNER_LENGTH: f64 = 5898.0;
/// Interior height.
pub const INNER_HEIGHT: f64 = 2393.0;
/// Interior width: the longest path a ray can take through cargo.
pub const INNER_WIDTH: f64 = 2352.0;

/// Height of the container's underside above the image's bottom edge (chassis below it).
pub const CONTAINER_BOTTOM: f64 = 450.0;
/// Height of the top of the floor boards.
pub const FLOOR_TOP: f64 = CONTAINER_BOTTOM + 160.0;
/// Left end of the container's exterior.
pub const CONTAINER_LEFT: f64 = (WIDTH as f64 * PITCH_MM - EXT_LENGTH) / 2.0;

/// What the simulated truck carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// Cargo as declared, nothing hidden.
    Honest,
    /// A dense package hidden inside otherwise homogeneous cargo.
    Concealment,
}

impl Scenario {
    /// Parses the CLI name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "honest" => Some(Self::Honest),
            "concealment" => Some(Self::Concealment),
            _ => None,
        }
    }
}

/// An axis-aligned block of material in the scan plane.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Block {
    /// Material name (see [`crate::materials`]).
    pub material: &'static str,
    /// Left edge, mm.
    pub x0: f64,
    /// Right edge, mm.
    pub x1: f64,
    /// Bottom edge, mm.
    pub z0: f64,
    /// Top edge, mm.
    pub z1: f64,
    /// Path length of the ray through the block, mm.
    pub depth: f64,
    /// Bulk density of the packed goods, g/cm³.
    pub bulk_density: f64,
    /// μ/ρ high and low, copied from the material so the block is self-contained.
    #[serde(skip)]
    pub mu_rho: (f64, f64),
}

impl Block {
    fn new(m: Material, x0: f64, x1: f64, z0: f64, z1: f64, depth: f64, bulk: f64) -> Self {
        Self {
            material: m.name,
            x0,
            x1,
            z0,
            z1,
            depth,
            bulk_density: bulk,
            mu_rho: (m.mu_rho_high, m.mu_rho_low),
        }
    }

    /// Attenuation `Σ μ t` this block adds to a ray through (x, z), high and low energy.
    pub fn attenuation_at(&self, x: f64, z: f64) -> (f64, f64) {
        if x < self.x0 || x >= self.x1 || z < self.z0 || z >= self.z1 {
            return (0.0, 0.0);
        }
        let t_cm = self.depth / 10.0;
        (
            self.mu_rho.0 * self.bulk_density * t_cm,
            self.mu_rho.1 * self.bulk_density * t_cm,
        )
    }

    /// The block's pixel rectangle (x, y, width, height) in image coordinates.
    pub fn pixel_box(&self) -> [u32; 4] {
        let col0 = (self.x0 / PITCH_MM).floor().max(0.0) as u32;
        let col1 = (self.x1 / PITCH_MM).ceil().min(f64::from(WIDTH)) as u32;
        let row0 = (f64::from(HEIGHT) - self.z1 / PITCH_MM).floor().max(0.0) as u32;
        let row1 = (f64::from(HEIGHT) - self.z0 / PITCH_MM)
            .ceil()
            .min(f64::from(HEIGHT)) as u32;
        [col0, row0, col1 - col0, row1 - row0]
    }
}

/// A hidden package and the cargo block it displaces.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Concealed {
    /// The package itself; its depth is the part of the ray it takes from the host cargo.
    pub package: Block,
    /// Bulk density of the cargo around it, whose attenuation it replaces.
    pub host_density: f64,
    /// μ/ρ (high, low) of the host cargo.
    #[serde(skip)]
    pub host_mu_rho: (f64, f64),
}

impl Concealed {
    /// Extra attenuation over the host cargo at (x, z).
    pub fn attenuation_at(&self, x: f64, z: f64) -> (f64, f64) {
        let (h, l) = self.package.attenuation_at(x, z);
        if h == 0.0 && l == 0.0 {
            return (0.0, 0.0);
        }
        let t_cm = self.package.depth / 10.0;
        (
            h - self.host_mu_rho.0 * self.host_density * t_cm,
            l - self.host_mu_rho.1 * self.host_density * t_cm,
        )
    }

    /// Contrast at the high energy, the quantity that makes the package visible.
    pub fn contrast(&self) -> f64 {
        let c = self.package;
        self.attenuation_at((c.x0 + c.x1) / 2.0, (c.z0 + c.z1) / 2.0)
            .0
    }
}

/// The ground truth of a scene.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Truth {
    /// The scenario that produced it.
    pub scenario: Scenario,
    /// Cargo as loaded (which may differ from what is declared in later scenarios).
    pub cargo: Vec<Block>,
    /// Hidden packages.
    pub concealed: Vec<Concealed>,
}

/// A complete scene ready to render.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// What is where.
    pub truth: Truth,
}

/// Builds a random scene of the given scenario.
pub fn build(scenario: Scenario, rng: &mut impl Rng) -> Scene {
    let inner_left = CONTAINER_LEFT + (EXT_LENGTH - INNER_LENGTH) / 2.0;
    let inner_right = inner_left + INNER_LENGTH;
    // One kind of goods per load, the common case for consolidated-free FCL shipments.
    let (material, bulk_range) = match rng.random_range(0..10) {
        0..=5 => (ORGANIC, 0.15..0.55),  // textiles, food, paper
        6..=7 => (ALUMINIUM, 0.08..0.3), // kitchenware, profiles
        _ => (STEEL, 0.03..0.12),        // machinery parts, tools
    };
    let bulk = rng.random_range(bulk_range);
    let depth = rng.random_range(1400.0..INNER_WIDTH);
    let mut cargo = Vec::new();
    let mut x = inner_left + rng.random_range(0.0..300.0);
    let pallets = rng.random_range(2..=5);
    for _ in 0..pallets {
        let length = rng.random_range(900.0..1250.0);
        if x + length > inner_right {
            break;
        }
        let height = rng.random_range(900.0..(INNER_HEIGHT - 144.0 - 50.0));
        // Pallet base: wooden slats, about a quarter solid.
        cargo.push(Block::new(
            ORGANIC,
            x,
            x + length,
            FLOOR_TOP,
            FLOOR_TOP + 144.0,
            depth,
            0.18,
        ));
        let goods_bulk = bulk * rng.random_range(0.92..1.08);
        cargo.push(Block::new(
            material,
            x,
            x + length,
            FLOOR_TOP + 144.0,
            FLOOR_TOP + 144.0 + height,
            depth,
            goods_bulk,
        ));
        x += length + rng.random_range(20.0..250.0);
    }

    let mut concealed = Vec::new();
    if scenario == Scenario::Concealment {
        let hosts: Vec<&Block> = cargo
            .iter()
            .filter(|b| b.z1 - b.z0 > 700.0 && b.x1 - b.x0 > 700.0)
            .collect();
        let host = *hosts[rng.random_range(0..hosts.len())];
        // Dense goods hidden in lighter ones: cigarettes in textiles, drug bricks in fruit, metal
        // parts in furniture. Resample until the package is dense enough to matter but not so
        // contrasted that it is trivial.
        loop {
            let (m, dens) = match rng.random_range(0..3) {
                0 => (ORGANIC, rng.random_range(0.6..0.85)), // cigarettes
                1 => (ORGANIC, rng.random_range(1.0..1.3)),  // drug bricks
                _ => (STEEL, rng.random_range(0.3..1.2)),    // weapon or engine parts
            };
            let w = rng.random_range(200.0..650.0);
            let h = rng.random_range(200.0..550.0);
            let x0 = rng.random_range(host.x0 + 50.0..host.x1 - w - 50.0);
            let z0 = rng.random_range(host.z0 + 50.0..host.z1 - h - 50.0);
            let t = rng.random_range(250.0..host.depth.min(900.0));
            let c = Concealed {
                package: Block::new(m, x0, x0 + w, z0, z0 + h, t, dens),
                host_density: host.bulk_density,
                host_mu_rho: host.mu_rho,
            };
            if (0.3..2.5).contains(&c.contrast()) {
                concealed.push(c);
                break;
            }
        }
    }
    Scene {
        truth: Truth {
            scenario,
            cargo,
            concealed,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan_rng;

    #[test]
    fn concealed_packages_lie_inside_their_host_cargo_with_enough_contrast() {
        for i in 0..200 {
            let scene = build(Scenario::Concealment, &mut scan_rng(7, i));
            let [c] = scene.truth.concealed.as_slice() else {
                panic!("scene {i} has {} packages", scene.truth.concealed.len())
            };
            let host = scene.truth.cargo.iter().find(|b| {
                b.x0 <= c.package.x0
                    && c.package.x1 <= b.x1
                    && b.z0 <= c.package.z0
                    && c.package.z1 <= b.z1
            });
            assert!(host.is_some(), "scene {i}: package outside cargo");
            assert!(c.contrast() >= 0.3);
        }
    }

    #[test]
    fn honest_scenes_hide_nothing_and_fit_the_container() {
        for i in 0..200 {
            let scene = build(Scenario::Honest, &mut scan_rng(3, i));
            assert!(scene.truth.concealed.is_empty());
            for b in &scene.truth.cargo {
                assert!(b.x0 >= CONTAINER_LEFT && b.x1 <= CONTAINER_LEFT + EXT_LENGTH);
                assert!(b.z1 <= FLOOR_TOP + INNER_HEIGHT);
                assert!(b.depth <= INNER_WIDTH);
            }
        }
    }
}
