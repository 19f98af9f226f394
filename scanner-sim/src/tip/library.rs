//! The threat library: what `scanner-sim` can conceal, as solids placed in the scan's own
//! frame (x along the container, y across the lane, z up, mm), so that the fan-beam ray sums
//! of [`crate::render::Grid`] give each threat's attenuation in both energies, for the
//! target scanner's spectrum and pitch.
//!
//! Every threat's solids are marked hidden: its mask is where they are crossed.

use rand::Rng;
use rand::seq::IndexedRandom;

use crate::geometry::{Solid, cuboid};
use crate::materials::{CELLULOSE, COPPER, DRUG, Material, STEEL};
use crate::scene::contraband;

/// Kinds of threat, as named on the command line and in `truth.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThreatKind {
    /// Pressed drug bricks, stacked, inside a load.
    DrugBricks,
    /// Cigarette master cases inside a load.
    CigaretteCases,
    /// A bundle of rifles and their parts in random orientation inside a load.
    Weapons,
    /// Ammunition cans (brass in steel) inside a load.
    Ammunition,
    /// A steel sheet across the container near one end, goods behind it.
    FalseWall,
    /// A steel plate above the real floor, goods under it.
    FalseFloor,
    /// A steel plate under the roof, goods above it.
    FalseCeiling,
}

impl ThreatKind {
    /// Every kind.
    pub const ALL: [Self; 7] = [
        Self::DrugBricks,
        Self::CigaretteCases,
        Self::Weapons,
        Self::Ammunition,
        Self::FalseWall,
        Self::FalseFloor,
        Self::FalseCeiling,
    ];

    /// The kind's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::DrugBricks => "drug_bricks",
            Self::CigaretteCases => "cigarette_cases",
            Self::Weapons => "weapons",
            Self::Ammunition => "ammunition",
            Self::FalseWall => "false_wall",
            Self::FalseFloor => "false_floor",
            Self::FalseCeiling => "false_ceiling",
        }
    }

    /// A kind by name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether the threat is hidden inside a load (it takes the place of goods), rather than
    /// in a built hiding place (a false structure).
    pub fn inside_load(self) -> bool {
        !self.structure()
    }

    /// Whether the threat is a false structure with goods behind it.
    pub fn structure(self) -> bool {
        matches!(
            self,
            Self::FalseWall | Self::FalseFloor | Self::FalseCeiling
        )
    }

    /// The scenario a scan with this threat belongs to (`concealment` inside a load,
    /// `compartment` behind a false structure), as in `scanner-sim generate`.
    pub fn scenario(self) -> &'static str {
        if self.structure() {
            "compartment"
        } else {
            "concealment"
        }
    }

    /// The footprint (length along x, height, depth across the lane, mm) of a package of this
    /// kind hidden inside a load.
    pub fn package_size(self, rng: &mut impl Rng) -> [f64; 3] {
        match self {
            Self::DrugBricks => [
                rng.random_range(250.0..=650.0),
                rng.random_range(150.0..=450.0),
                rng.random_range(250.0..=700.0),
            ],
            Self::CigaretteCases => {
                // Master cases of 50 cartons, about 600 x 300 x 450 mm, one to four.
                let n: u32 = rng.random_range(1..=4);
                [
                    600.0 * f64::from(n.min(2)),
                    300.0 * f64::from(n.div_ceil(2)),
                    450.0,
                ]
            }
            Self::Weapons => [
                rng.random_range(700.0..=1_000.0),
                rng.random_range(300.0..=700.0),
                rng.random_range(250.0..=600.0),
            ],
            Self::Ammunition => {
                let n: u32 = rng.random_range(1..=4);
                [300.0 * f64::from(n), 200.0, 200.0]
            }
            _ => [0.0; 3],
        }
    }
}

/// A threat ready to project: its solids, what it is, its mass.
#[derive(Debug, Clone)]
pub struct Threat {
    /// Kind.
    pub kind: ThreatKind,
    /// What is hidden, in words ("drug bricks inside the load", "weapon parts behind a false
    /// wall").
    pub description: String,
    /// The solids, all hidden.
    pub solids: Vec<Solid>,
    /// Mass of the hidden goods, kg.
    pub mass_kg: f64,
    /// For a threat inside a load: the box it was placed in, `[x, y, z]` ranges (mm), over
    /// whose footprint the host goods are read.
    pub displaces: Option<[[f64; 2]; 3]>,
}

/// A box `[x, y, z]` of ranges, mm.
pub type Bounds = [[f64; 2]; 3];

/// A threat of `kind` filling the box `b` inside a load.
pub fn inside(kind: ThreatKind, b: Bounds, rng: &mut impl Rng) -> Threat {
    let [x, y, z] = b;
    let mut solids = Vec::new();
    let what = match kind {
        ThreatKind::DrugBricks => {
            // 1 kg bricks, about 200 x 60 x 120 mm (x, z, y), stacked with 10 mm gaps.
            let density = rng.random_range(0.9..=1.25);
            solids = stack(b, [200.0, 60.0], 10.0, DRUG, density);
            "drug bricks"
        }
        ThreatKind::CigaretteCases => {
            let density = rng.random_range(0.45..=0.75);
            solids = stack(b, [600.0, 300.0], 5.0, CELLULOSE, density);
            "cigarette master cases"
        }
        ThreatKind::Weapons => {
            // A bundle: one rifle alone is smaller than the least region any operating point
            // reports (0.03 m²), and weapons are smuggled by the crate.
            let n = rng.random_range(3..=8);
            for _ in 0..n {
                solids.extend(rifle(b, rng));
            }
            "weapons"
        }
        ThreatKind::Ammunition => {
            for bx in steps(x, 300.0, 10.0) {
                solids.extend(ammo_can([bx, y, z]));
            }
            "ammunition"
        }
        _ => unreachable!("structures are built by `structure`"),
    };
    let solids: Vec<Solid> = solids.into_iter().map(Solid::hidden).collect();
    let mass = solids.iter().map(Solid::mass_kg).sum::<f64>();
    Threat {
        kind,
        description: format!("{what} inside the load"),
        solids,
        mass_kg: mass,
        displaces: Some(b),
    }
}

/// Where a false structure goes: the plate or sheet, and the goods' box behind it.
#[derive(Debug, Clone, Copy)]
pub struct Hiding {
    /// The steel plate or sheet.
    pub plate: Bounds,
    /// The hidden goods.
    pub goods: Bounds,
    /// Where the structure is built into the load: the length (x, mm) whose goods it takes
    /// the place of, all of them, from the floor to the roof.
    pub built_into: Option<[f64; 2]>,
}

/// A false structure of `kind` with goods behind it.
pub fn structure(kind: ThreatKind, at: Hiding, rng: &mut impl Rng) -> Threat {
    let (what, material, density) = contraband(rng);
    let sheet_fill = if kind == ThreatKind::FalseWall {
        0.06 // a 40 mm wall of sheet and framing: 2.4 mm of steel
    } else {
        1.0 // a solid 4 mm plate
    };
    let [px, py, pz] = at.plate;
    let [gx, gy, gz] = at.goods;
    let plate = cuboid(px, py, pz, STEEL, STEEL.density * sheet_fill).hidden();
    let goods = cuboid(gx, gy, gz, material, density).hidden();
    let mass = goods.mass_kg();
    Threat {
        kind,
        description: format!("{what} behind a {}", kind.name().replace('_', " ")),
        solids: vec![plate, goods],
        mass_kg: mass,
        displaces: None,
    }
}

/// Boxes of `[length, height]` stacked with `gap` between them over the box `b`, each across
/// its whole depth.
fn stack(b: Bounds, [len, height]: [f64; 2], gap: f64, m: Material, density: f64) -> Vec<Solid> {
    let [x, y, z] = b;
    steps(x, len, gap)
        .into_iter()
        .flat_map(|bx| steps(z, height, gap).into_iter().map(move |bz| (bx, bz)))
        .map(|(bx, bz)| cuboid(bx, y, bz, m, density))
        .collect()
}

/// Consecutive spans of `size` with `gap` between them, covering `[a, b]` (the last one cut).
fn steps([a, b]: [f64; 2], size: f64, gap: f64) -> Vec<[f64; 2]> {
    let mut out = Vec::new();
    let mut x = a;
    while x + 0.5 * size <= b {
        out.push([x, (x + size).min(b)]);
        x += size + gap;
    }
    if out.is_empty() {
        out.push([a, b]);
    }
    out
}

/// One rifle (or its parts) at a random orientation inside `b`: a barrel, a receiver and a
/// magazine, each a chain of short boxes along its axis. The axis has a random angle in the
/// image plane and a random tilt out of it (the part is then foreshortened and crosses more
/// of the lane).
fn rifle(b: Bounds, rng: &mut impl Rng) -> Vec<Solid> {
    let [x, y, z] = b;
    let theta: f64 = rng.random_range(0.0..std::f64::consts::PI);
    let tilt: f64 = rng.random_range(0.0..=1.1);
    let (dx, dz) = (theta.cos() * tilt.cos(), theta.sin() * tilt.cos());
    let dy = tilt.sin();
    let centre = [
        rng.random_range(x[0]..=x[1]),
        0.5 * (y[0] + y[1]),
        rng.random_range(z[0]..=z[1]),
    ];
    // (offset along the axis from the centre, length, thickness, steel fill): barrel (a tube),
    // receiver, magazine.
    let parts: [(f64, f64, f64, f64); 3] = [
        (250.0, 550.0, 28.0, 0.45),
        (-150.0, 260.0, 60.0, 0.55),
        (-120.0, 180.0, 35.0, 0.35),
    ];
    let mut out = Vec::new();
    for (offset, length, thick, fill) in parts {
        let segments = (length / 40.0).ceil() as usize;
        for k in 0..segments {
            let s = offset - length / 2.0 + (k as f64 + 0.5) * length / segments as f64;
            let c = [centre[0] + s * dx, centre[1] + s * dy, centre[2] + s * dz];
            let seg = length / segments as f64;
            let half = [
                0.5 * (seg * dx.abs() + thick),
                0.5 * (seg * dy.abs() + thick),
                0.5 * (seg * dz.abs() + thick),
            ];
            let range = |i: usize, lim: [f64; 2]| {
                [
                    (c[i] - half[i]).clamp(lim[0], lim[1]),
                    (c[i] + half[i]).clamp(lim[0], lim[1]),
                ]
            };
            let (sx, sy, sz) = (range(0, x), range(1, y), range(2, z));
            if sx[1] > sx[0] && sy[1] > sy[0] && sz[1] > sz[0] {
                // The box of a segment is fuller than the part: thin its steel to keep the mass.
                let volume_ratio =
                    (seg * thick * thick) / ((sx[1] - sx[0]) * (sy[1] - sy[0]) * (sz[1] - sz[0]));
                out.push(cuboid(
                    sx,
                    sy,
                    sz,
                    STEEL,
                    STEEL.density * fill * volume_ratio.min(1.0),
                ));
            }
        }
    }
    out
}

/// An ammunition can: 1.2 mm steel walls (as their share of the box) and brass cartridges
/// packed at 2.5 g/cm³.
fn ammo_can(b: Bounds) -> [Solid; 2] {
    let [x, y, z] = b;
    let wall = cuboid(x, y, z, STEEL, STEEL.density * 0.02);
    let brass: Material = COPPER;
    let inner = |[a, c]: [f64; 2]| [a + 10.0, c - 10.0];
    [wall, cuboid(inner(x), inner(y), inner(z), brass, 2.5)]
}

/// A kind drawn at random from `kinds`.
pub fn draw(kinds: &[ThreatKind], rng: &mut impl Rng) -> ThreatKind {
    *kinds.choose(rng).expect("at least one kind")
}
