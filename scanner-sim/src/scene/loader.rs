//! Loading goods into the container: pallets, bulk heaps and drums of an HS chapter's goods,
//! from a cursor along the cargo space, and what the trader declares of them.

use rand::Rng;

use super::{DeclaredLine, TruthItem};
use crate::geometry::{Layout, Shape, Solid, cuboid};
use crate::hs::{self, ChapterProfile, Packing};
use crate::materials::{CELLULOSE, Material, STEEL};

/// The goods placed so far and the space left.
pub(super) struct Loader<'a> {
    pub(super) layout: Layout,
    pub(super) solids: Vec<Solid>,
    pub(super) items: Vec<TruthItem>,
    pub(super) declared: Vec<DeclaredLine>,
    /// Next free x in the cargo space.
    pub(super) cursor: f64,
    /// Floor the goods stand on (raised by a false floor).
    pub(super) floor: f64,
    /// Ceiling (lowered by a false ceiling).
    pub(super) ceiling: f64,
    pub(super) rng: &'a mut dyn rand::RngCore,
}

const PALLET_BASE: f64 = 144.0;

impl Loader<'_> {
    pub(super) fn space(&self) -> [[f64; 2]; 3] {
        self.layout.cargo_space()
    }

    pub(super) fn mass(&self) -> f64 {
        self.items.iter().map(|i| i.mass_kg).sum()
    }

    pub(super) fn payload_left(&self) -> f64 {
        self.layout.container.max_payload_kg() - self.mass()
    }

    /// Loads goods of `profile` over up to `length` mm from the cursor; returns the item index.
    pub(super) fn load(
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
    pub(super) fn declare(
        &mut self,
        profile: &ChapterProfile,
        packages: u32,
        packing: Packing,
        mass: f64,
    ) {
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
    pub(super) fn declare_truthfully(&mut self, item: usize) {
        let i = self.items[item].clone();
        let profile = profile_of(&i.hs_code);
        let noise = self.rng.random_range(0.97..=1.03);
        self.declare(profile, i.packages, profile.packing, i.mass_kg * noise);
    }

    /// Adds a hidden item (index returned) made of `solids`: `solids[goods]` are the hidden
    /// goods, which give the item its mass; the others belong to the hiding place (a false
    /// wall's sheet, the host cargo the goods displace) and are marked hidden too.
    pub(super) fn hide(
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

pub(super) fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

pub(super) fn profile_of(hs_code: &str) -> &'static ChapterProfile {
    let chapter = hs_code[..2].parse().unwrap_or(1);
    hs::profile(chapter).expect("truth items carry table codes")
}

/// A random profile, weighted towards what fills containers most (pallets of goods).
pub(super) fn random_profile(rng: &mut (impl Rng + ?Sized)) -> &'static ChapterProfile {
    let t = hs::table();
    &t[rng.random_range(0..t.len())]
}

pub(super) fn random_profile_of(
    rng: &mut (impl Rng + ?Sized),
    packing: Packing,
) -> &'static ChapterProfile {
    loop {
        let p = random_profile(rng);
        if p.packing == packing {
            return p;
        }
    }
}
