//! Scenes: a scenario turned into a truck, a container, the goods really loaded, the goods the
//! trader declared, and the ground truth that ties them together.

mod hide;
mod loader;

use rand::Rng;
use rand::seq::IndexedRandom;
use serde::Serialize;

use hide::conceal_in;
pub(crate) use hide::{CONCEAL_CONTRAST, contraband};
use loader::{Loader, random_profile, random_profile_of, round1};

use crate::geometry::{ContainerType, Layout, Solid};
use crate::hs::{self, Packing};

/// What the simulated truck carries, and how it relates to the declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// Cargo as declared, nothing hidden.
    Honest,
    /// Dense packages hidden inside homogeneous legitimate cargo.
    Concealment,
    /// A false wall, false floor or false ceiling with goods behind it.
    Compartment,
    /// Goods on board that the declaration does not list.
    Undeclared,
    /// The load's mass or material contradicts the declaration.
    Mismatch,
    /// Declared empty, but loaded.
    FalseEmpty,
    /// Declared empty, and empty.
    Empty,
}

impl Scenario {
    /// Every scenario, in the order of the CLI help.
    pub const ALL: [Scenario; 7] = [
        Self::Honest,
        Self::Concealment,
        Self::Compartment,
        Self::Undeclared,
        Self::Mismatch,
        Self::FalseEmpty,
        Self::Empty,
    ];

    /// The CLI and truth-file name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Honest => "honest",
            Self::Concealment => "concealment",
            Self::Compartment => "compartment",
            Self::Undeclared => "undeclared",
            Self::Mismatch => "mismatch",
            Self::FalseEmpty => "false_empty",
            Self::Empty => "empty",
        }
    }

    /// Parses the CLI name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|sc| sc.name() == s)
    }

    /// Whether something is hidden that the concealment model should mark.
    pub fn hides_goods(self) -> bool {
        matches!(self, Self::Concealment | Self::Compartment)
    }

    /// Share of each scenario in a `mixed` run, in per cent: the stream a busy bay might see,
    /// with the rare cases made common enough to train and test on.
    pub fn mixed_weight(self) -> u32 {
        match self {
            Self::Honest => 35,
            Self::Concealment => 20,
            Self::Compartment => 15,
            Self::Undeclared => 10,
            Self::Mismatch => 10,
            Self::FalseEmpty => 5,
            Self::Empty => 5,
        }
    }
}

/// One line of the contents list: goods really on board, or declared, or both.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TruthItem {
    /// Plain description.
    pub description: String,
    /// HS code of the goods really loaded.
    pub hs_code: String,
    /// Material they attenuate like.
    pub material: &'static str,
    /// Its dual-energy class.
    pub class: &'static str,
    /// How they are stowed.
    pub packing: Option<Packing>,
    /// True mass, kg.
    pub mass_kg: f64,
    /// Number of packages (pallets, drums; 1 for a bulk heap or a hidden package).
    pub packages: u32,
    /// The declaration lists these goods (possibly under another description or mass).
    pub declared: bool,
    /// Hidden from view (inside other cargo or behind a false structure).
    pub concealed: bool,
    /// Bounding box in the image, `[x, y, width, height]` pixels; filled in by the renderer.
    pub box_px: Option<[u32; 4]>,
}

/// One item as the trader declared it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeclaredLine {
    /// HS code.
    pub hs_code: String,
    /// Description.
    pub description: String,
    /// Number of packages.
    pub packages: u32,
    /// UN/ECE Rec. 21 package type.
    pub package_type: &'static str,
    /// Declared gross mass, kg.
    pub mass_kg: f64,
}

/// The ground truth of a scene.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Truth {
    /// The scenario that produced it.
    pub scenario: Scenario,
    /// Which kind, where the scenario has several (`false_wall`, `mass`, `material`, …).
    pub variant: Option<&'static str>,
    /// Container type.
    pub container: ContainerType,
    /// Tractor and trailer in the image.
    pub truck: bool,
    /// Everything really on board, and everything declared but missing.
    pub items: Vec<TruthItem>,
    /// Mass of all goods on board, kg.
    pub cargo_mass_kg: f64,
    /// Whether the declaration says the container is empty.
    pub declared_empty: bool,
    /// What the declaration lists.
    pub declared: Vec<DeclaredLine>,
    /// What an officer should find, in words (empty for honest loads).
    pub anomalies: Vec<String>,
}

impl Truth {
    /// Total declared mass, kg.
    pub fn declared_mass_kg(&self) -> f64 {
        self.declared.iter().map(|d| d.mass_kg).sum()
    }
}

/// A complete scene ready to render.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// Where the container sits and the image extent.
    pub layout: Layout,
    /// Everything in the beam.
    pub solids: Vec<Solid>,
    /// What is where.
    pub truth: Truth,
}

/// Choices a run can pin; `None` lets each scan draw its own.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SceneOptions {
    /// Container type.
    pub container: Option<ContainerType>,
    /// With tractor and trailer.
    pub truck: Option<bool>,
}

/// Goods a trader would declare for a homogeneous load that can hide a package: pallets of
/// light organic goods (textiles, fruit, furniture, paper, plastics, shoes).
const COVER_CHAPTERS: [u8; 8] = [8, 52, 94, 48, 39, 64, 19, 95];

/// Builds a random scene of the given scenario.
pub fn build(scenario: Scenario, options: SceneOptions, rng: &mut impl Rng) -> Scene {
    let container = options.container.unwrap_or_else(|| {
        *[
            ContainerType::Twenty,
            ContainerType::Forty,
            ContainerType::FortyHighCube,
        ]
        .choose(rng)
        .expect("non-empty")
    });
    let truck = options.truck.unwrap_or_else(|| rng.random_bool(0.7));
    let layout = Layout::new(container, truck);
    let [[x0, x1], _, [floor, ceiling]] = layout.cargo_space();
    let mut variant = None;
    let mut anomalies = Vec::new();
    let mut declared_empty = false;
    let mut l = Loader {
        layout,
        solids: layout.structure(),
        items: Vec::new(),
        declared: Vec::new(),
        cursor: x0 + rng.random_range(0.0..=200.0),
        floor,
        ceiling,
        rng,
    };
    let length = x1 - x0;
    match scenario {
        Scenario::Honest => {
            // One to three kinds of goods, any chapter, filling 40–95 % of the length.
            let kinds = l.rng.random_range(1..=3);
            let fill = l.rng.random_range(0.4..=0.95) * length;
            for _ in 0..kinds {
                let p = random_profile(l.rng);
                let item = l.load(p, p.material, fill / f64::from(kinds), true);
                l.declare_truthfully(item);
            }
        }
        Scenario::Concealment => {
            let p = hs::profile(*COVER_CHAPTERS.choose(l.rng).expect("non-empty"))
                .expect("cover chapters are in the table");
            let fill = l.rng.random_range(0.6..=0.95) * length;
            let host = l.load(p, p.material, fill, true);
            l.declare_truthfully(host);
            let count = if l.rng.random_bool(0.25) { 2 } else { 1 };
            for _ in 0..count {
                if let Some(what) = conceal_in(&mut l, host) {
                    anomalies.push(format!("{what} hidden inside the {}", p.description));
                }
            }
        }
        Scenario::Compartment => {
            let (kind, anomaly) = hide::false_structure(&mut l);
            variant = Some(kind);
            anomalies.push(anomaly);
            let p = random_profile_of(l.rng, Packing::Pallets);
            let fill = l.rng.random_range(0.5..=0.95) * (x1 - l.cursor);
            let item = l.load(p, p.material, fill, true);
            l.declare_truthfully(item);
        }
        Scenario::Undeclared => {
            let p = random_profile(l.rng);
            let fill = l.rng.random_range(0.4..=0.75) * length;
            let item = l.load(p, p.material, fill, true);
            l.declare_truthfully(item);
            // Then, at the doors, goods of another chapter that the declaration does not list.
            let extra = loop {
                let e = random_profile_of(l.rng, Packing::Pallets);
                if e.hs_code[..2] != p.hs_code[..2] {
                    break e;
                }
            };
            let room = x1 - l.cursor;
            let len = room.min(l.rng.random_range(1_300.0..=3_800.0));
            let undeclared = l.load(extra, extra.material, len, false);
            if l.items[undeclared].packages > 0 {
                anomalies.push(format!(
                    "{} {} not on the declaration",
                    l.items[undeclared].packages, extra.description
                ));
            }
        }
        Scenario::Mismatch => {
            let kind = if l.rng.random_bool(0.5) {
                "mass"
            } else {
                "material"
            };
            variant = Some(kind);
            let fill = l.rng.random_range(0.5..=0.95) * length;
            if kind == "mass" {
                // Declared at 35–65 % of what is really loaded (undervaluation by weight).
                let p = random_profile(l.rng);
                let item = l.load(p, p.material, fill, true);
                let share = l.rng.random_range(0.35..=0.65);
                let i = l.items[item].clone();
                l.declare(p, i.packages, p.packing, i.mass_kg * share);
                anomalies.push(format!(
                    "{:.0} kg on board, {:.0} kg declared",
                    i.mass_kg,
                    i.mass_kg * share
                ));
            } else {
                // Light organic goods declared, metal or glass loaded, mass about as declared.
                let declared = hs::profile(*COVER_CHAPTERS.choose(l.rng).expect("non-empty"))
                    .expect("cover chapters are in the table");
                let loaded = *[72u8, 74, 82, 84, 68, 76].choose(l.rng).expect("non-empty");
                let real = hs::profile(loaded).expect("in the table");
                let item = l.load(real, real.material, fill, false);
                let i = l.items[item].clone();
                let noise = l.rng.random_range(0.95..=1.05);
                l.declare(declared, i.packages, declared.packing, i.mass_kg * noise);
                anomalies.push(format!(
                    "{} ({}) on board, declared as {} ({})",
                    real.description,
                    real.material.class().as_str(),
                    declared.description,
                    declared.material.class().as_str()
                ));
            }
        }
        Scenario::FalseEmpty => {
            declared_empty = true;
            let p = random_profile(l.rng);
            let len = l.rng.random_range(1_300.0..=0.6 * length);
            let item = l.load(p, p.material, len, false);
            anomalies.push(format!(
                "declared empty, but {:.0} kg of {} on board",
                l.items[item].mass_kg, p.description
            ));
        }
        Scenario::Empty => declared_empty = true,
    }
    let Loader {
        solids,
        items,
        declared,
        ..
    } = l;
    let cargo_mass_kg = round1(items.iter().map(|i| i.mass_kg).sum());
    Scene {
        layout,
        solids,
        truth: Truth {
            scenario,
            variant,
            container,
            truck,
            items,
            cargo_mass_kg,
            declared_empty,
            declared,
            anomalies,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan_rng;

    #[test]
    fn every_scenario_builds_with_truth_that_matches_its_story() {
        for scenario in Scenario::ALL {
            for i in 0..60 {
                let scene = build(scenario, SceneOptions::default(), &mut scan_rng(7, i));
                let t = &scene.truth;
                let hidden = t.items.iter().filter(|i| i.concealed).count();
                let undeclared = t
                    .items
                    .iter()
                    .filter(|i| !i.declared && !i.concealed)
                    .count();
                let on_board = t.items.iter().filter(|i| i.packages > 0).count();
                let payload = t.container.max_payload_kg();
                assert!(
                    t.cargo_mass_kg <= payload,
                    "{scenario:?} {i}: {}",
                    t.cargo_mass_kg
                );
                match scenario {
                    Scenario::Honest => {
                        assert_eq!(hidden + undeclared, 0);
                        let ratio = t.declared_mass_kg() / t.cargo_mass_kg.max(1.0);
                        assert!((0.95..=1.05).contains(&ratio) || t.cargo_mass_kg < 100.0);
                    }
                    Scenario::Concealment => assert!(hidden >= 1, "{i}"),
                    Scenario::Compartment => {
                        assert_eq!(hidden, 1);
                        assert!(t.variant.is_some());
                    }
                    Scenario::Undeclared => assert!(t.items.iter().any(|i| !i.declared)),
                    Scenario::Mismatch => assert!(!t.anomalies.is_empty()),
                    Scenario::FalseEmpty => {
                        assert!(t.declared_empty && on_board >= 1 && t.declared.is_empty());
                    }
                    Scenario::Empty => assert!(t.declared_empty && t.items.is_empty()),
                }
                assert_eq!(scenario.hides_goods(), hidden > 0, "{scenario:?} {i}");
                let [[x0, x1], [y0, y1], [z0, z1]] = scene.layout.cargo_space();
                for s in scene.solids.iter().filter(|s| s.item.is_some()) {
                    let [a, b] = s.shape.x_range();
                    let [c, d, e, f] = s.shape.bounds_yz();
                    assert!(a >= x0 - 1e-6 && b <= x1 + 1e-6, "{scenario:?} {i}: {s:?}");
                    assert!(
                        c >= y0 - 1e-6 && d <= y1 + 1e-6 && e >= z0 - 1e-6 && f <= z1 + 1e-6,
                        "{scenario:?} {i}: {s:?}"
                    );
                }
            }
        }
    }
}
