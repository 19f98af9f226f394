//! Scenes: a scenario turned into a truck, a container, the goods really loaded, the goods the
//! trader declared, and the ground truth that ties them together.

use std::ops::RangeInclusive;

use rand::Rng;
use rand::seq::IndexedRandom;
use serde::Serialize;

use crate::geometry::{ContainerType, Layout, Shape, Solid, cuboid};
use crate::hs::{self, ChapterProfile, Packing};
use crate::materials::{CELLULOSE, DRUG, Material, STEEL, WATER};

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

/// The goods placed so far and the space left.
struct Loader<'a> {
    layout: Layout,
    solids: Vec<Solid>,
    items: Vec<TruthItem>,
    declared: Vec<DeclaredLine>,
    /// Next free x in the cargo space.
    cursor: f64,
    /// Floor the goods stand on (raised by a false floor).
    floor: f64,
    /// Ceiling (lowered by a false ceiling).
    ceiling: f64,
    rng: &'a mut dyn rand::RngCore,
}

const PALLET_BASE: f64 = 144.0;

impl Loader<'_> {
    fn space(&self) -> [[f64; 2]; 3] {
        self.layout.cargo_space()
    }

    fn mass(&self) -> f64 {
        self.items.iter().map(|i| i.mass_kg).sum()
    }

    fn payload_left(&self) -> f64 {
        self.layout.container.max_payload_kg() - self.mass()
    }

    /// Loads goods of `profile` over up to `length` mm from the cursor; returns the item index.
    fn load(
        &mut self,
        profile: &ChapterProfile,
        material: Material,
        length: f64,
        declared: bool,
    ) -> usize {
        let item = self.items.len();
        let bulk = self.rng.random_range(profile.bulk.0..=profile.bulk.1);
        let [[_, x_end], [y0, y1], _] = self.space();
        let x_end = x_end.min(self.cursor + length);
        let budget = self.payload_left() * 0.98;
        let mut packages = 0;
        let mut mass = 0.0;
        match profile.packing {
            Packing::Pallets => {
                // 1200 x 1000 pallets, two across the width, stacked to a random height.
                let full = self.ceiling - self.floor - PALLET_BASE - 50.0;
                let stack_max = self.rng.random_range(0.45..=1.0) * full;
                while self.cursor + 1_200.0 <= x_end {
                    let x = [self.cursor, self.cursor + 1_200.0];
                    let mut row = Vec::new();
                    for y in [[y0 + 76.0, -50.0], [50.0, y1 - 76.0]] {
                        let h = stack_max * self.rng.random_range(0.8..=1.0);
                        let goods_z = self.floor + PALLET_BASE;
                        row.push(cuboid(x, y, [self.floor, goods_z], CELLULOSE, 0.18));
                        let d = bulk * self.rng.random_range(0.95..=1.05);
                        row.push(cuboid(x, y, [goods_z, goods_z + h], material, d));
                    }
                    let row_mass: f64 = row.iter().map(Solid::mass_kg).sum();
                    if mass + row_mass > budget {
                        break;
                    }
                    mass += row_mass;
                    packages += 2;
                    self.solids.extend(row.into_iter().map(|s| s.of_item(item)));
                    self.cursor += 1_200.0 + self.rng.random_range(10.0..=120.0);
                }
            }
            Packing::Bulk => {
                let len = x_end - self.cursor;
                let full = self.ceiling - self.floor;
                let mut h = self.rng.random_range(0.35..=0.75) * full;
                let heap = |h: f64, cursor: f64, floor: f64| {
                    Solid::new(
                        Shape::Heap {
                            x: [cursor, cursor + len],
                            y: [y0, y1],
                            z: [floor, floor + h],
                            ramp: 600.0,
                        },
                        material,
                        bulk,
                    )
                };
                let m = heap(h, self.cursor, self.floor).mass_kg();
                if m > budget {
                    h *= budget / m;
                }
                if len > 1_500.0 && h > 150.0 {
                    let s = heap(h, self.cursor, self.floor);
                    mass = s.mass_kg();
                    packages = 1;
                    self.solids.push(s.of_item(item));
                    self.cursor += len;
                }
            }
            Packing::Drums => {
                // 200 l drums (585 mm across, 880 mm tall), four across, one tier, 95 % full of
                // liquid at `bulk` (its density), 1.2 mm steel shell.
                let (r, h) = (292.5, 880.0);
                while self.cursor + 2.0 * r <= x_end {
                    let xc = self.cursor + r;
                    let mut row = Vec::new();
                    for k in 0..4 {
                        let yc = y0 + r + 2.0 + f64::from(k) * (2.0 * r + 2.5);
                        let z = [self.floor, self.floor + h];
                        let drum = |r: f64, z: [f64; 2], m: Material, d: f64| {
                            Solid::new(Shape::DrumZ { xc, yc, r, z }, m, d)
                        };
                        row.push(drum(r, z, STEEL, STEEL.density));
                        row.push(drum(r - 1.2, z, STEEL, -STEEL.density));
                        row.push(drum(r - 1.2, [z[0], z[0] + 0.95 * h], material, bulk));
                    }
                    let row_mass: f64 = row.iter().map(Solid::mass_kg).sum();
                    if mass + row_mass > budget {
                        break;
                    }
                    mass += row_mass;
                    packages += 4;
                    self.solids.extend(row.into_iter().map(|s| s.of_item(item)));
                    self.cursor += 2.0 * r + self.rng.random_range(5.0..=40.0);
                }
            }
        }
        self.items.push(TruthItem {
            description: profile.description.clone(),
            hs_code: profile.hs_code.clone(),
            material: material.name,
            class: material.class().as_str(),
            packing: Some(profile.packing),
            mass_kg: round1(mass),
            packages,
            declared,
            concealed: false,
            box_px: None,
        });
        item
    }

    /// Declares item `item` as `profile`'s goods with `mass_kg`.
    fn declare(&mut self, profile: &ChapterProfile, packages: u32, packing: Packing, mass: f64) {
        if mass < 1.0 {
            return;
        }
        self.declared.push(DeclaredLine {
            hs_code: profile.hs_code.clone(),
            description: profile.description.clone(),
            packages: packages.max(1),
            package_type: match packing {
                Packing::Pallets => "PX",
                Packing::Bulk => "VR",
                Packing::Drums => "DR",
            },
            mass_kg: (mass / 10.0).round() * 10.0,
        });
    }

    /// Declares a loaded item truthfully, with the few per cent a weighbridge and a trader's
    /// paperwork differ by.
    fn declare_truthfully(&mut self, item: usize) {
        let i = self.items[item].clone();
        let profile = profile_of(&i.hs_code);
        let noise = self.rng.random_range(0.97..=1.03);
        self.declare(profile, i.packages, profile.packing, i.mass_kg * noise);
    }

    /// Adds a hidden item (index returned) made of `solids`: `solids[goods]` are the hidden
    /// goods, which give the item its mass; the others belong to the hiding place (a false
    /// wall's sheet, the host cargo the goods displace) and are marked hidden too.
    fn hide(
        &mut self,
        description: &str,
        material: Material,
        solids: Vec<Solid>,
        goods: usize,
    ) -> usize {
        let item = self.items.len();
        let mass = solids[goods].mass_kg();
        self.solids
            .extend(solids.into_iter().map(|s| s.of_item(item).hidden()));
        self.items.push(TruthItem {
            description: description.to_owned(),
            hs_code: String::new(),
            material: material.name,
            class: material.class().as_str(),
            packing: None,
            mass_kg: round1(mass),
            packages: 1,
            declared: false,
            concealed: true,
            box_px: None,
        });
        item
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn profile_of(hs_code: &str) -> &'static ChapterProfile {
    let chapter = hs_code[..2].parse().unwrap_or(1);
    hs::profile(chapter).expect("truth items carry table codes")
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
            let kind =
                ["false_wall", "false_floor", "false_ceiling"][l.rng.random_range(0..3usize)];
            variant = Some(kind);
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
                    let xs = plate_span(&mut l, [x0, x1], 0.4..=0.8);
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
                    let xs = plate_span(&mut l, [x0, x1], 0.3..=0.6);
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
            anomalies.push(format!("{what} behind a {}", kind.replace('_', " ")));
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

/// A random profile, weighted towards what fills containers most (pallets of goods).
fn random_profile(rng: &mut (impl Rng + ?Sized)) -> &'static ChapterProfile {
    let t = hs::table();
    &t[rng.random_range(0..t.len())]
}

fn random_profile_of(rng: &mut (impl Rng + ?Sized), packing: Packing) -> &'static ChapterProfile {
    loop {
        let p = random_profile(rng);
        if p.packing == packing {
            return p;
        }
    }
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
fn conceal_in(l: &mut Loader<'_>, host: usize) -> Option<&'static str> {
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
        if !(0.25..=2.5).contains(&contrast) {
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
