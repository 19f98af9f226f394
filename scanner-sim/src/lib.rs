//! Physics-based synthetic X-ray scans of trucks and containers, with the declarations their
//! traders lodged, for the demo feed, test fixtures and model training.
//!
//! A scan is a side-view transmission radiograph from a vertical fan beam (see [`geometry`] for
//! why): 20', 40' and 40' high-cube containers with corrugated walls, door frames, floor
//! cross-members and locking bars, optionally on a trailer behind a tractor with wheels. Cargo
//! comes from the HS chapter → material table (`assets/hs_chapters.csv`), stowed on pallets, as
//! bulk heaps or in drums. Attenuation follows Beer–Lambert along each ray,
//! `I = I0 · exp(-Σ μ/ρ · ρ · t)`, with mass attenuation coefficients at the 4 and 6 MeV of a
//! dual-energy linac; the detector adds blur, Poisson photon noise, channel gain stripes,
//! read-out noise, air/dark offsets and occasional defects, and writes 16-bit readings.
//!
//! # Layout
//! - [`materials`]: the material table (density, Z_eff, μ/ρ at 4 and 6 MeV).
//! - [`hs`]: the HS chapter → material profile table.
//! - [`geometry`]: the fan beam, solids, container types, truck and container structure.
//! - [`scene`]: a scenario (honest, concealment, compartment, undeclared, mismatch, false empty,
//!   empty) turned into solids, a declared load and ground truth.
//! - [`profile`]: scanner profiles (spectrum, beam hardening, detector, pitch) for trying
//!   BayLens on scanners it was not trained on.
//! - [`phantom`]: the calibration step wedge and its `baylens.phantom/1` description.
//! - [`render`]: ray sums and the detector model: scene in, 16-bit images and a truth mask out.
//! - [`declare`]: the `baylens.declaration/1` document the trader lodged, truthful or false.
//! - [`camera`]: door and side views of the container for the bay cameras, with the code
//!   painted on and the ground truth of where the face is.
//! - [`ipcam`]: a simulated IP camera serving those views as MJPEG over HTTP.
//! - [`write`]: the files of the scan contract (`baylens.scan/1`), written atomically.

pub mod camera;
pub mod declare;
pub mod geometry;
pub mod grid;
pub mod hs;
pub mod ipcam;
pub mod lettering;
pub mod materials;
pub mod phantom;
pub mod profile;
pub mod render;
pub mod scene;
pub mod tip;
pub mod write;

pub use geometry::ContainerType;
pub use profile::ScannerProfile;
pub use render::{RenderOptions, SimulatedScan, render};
pub use scene::{Scenario, Scene, SceneOptions, Truth};
pub use write::{ScanFiles, write_scan};

use baylens_protocol::{BayId, ContainerCode, Declaration, ScanId};
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The random generator for scan number `index` of a run seeded with `seed`. Each scan has its
/// own stream, so scan 17 is the same whether or not scans 0..16 were generated first, and a run
/// spread over many threads is identical to a run on one.
pub fn scan_rng(seed: u64, index: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// One generated scan with everything known about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// Detector readings and truth mask.
    pub scan: SimulatedScan,
    /// What the scene really holds.
    pub truth: Truth,
    /// What the scanner writes into the sidecar.
    pub meta: write::ScanMeta,
    /// The declaration the trader lodged for this load.
    pub declaration: Declaration,
}

/// How to pick the scenario of each scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScenarioChoice {
    /// Always this one.
    Fixed(Scenario),
    /// Drawn from the scan's own random stream with [`Scenario::mixed_weight`].
    Mixed,
}

impl ScenarioChoice {
    /// Parses the CLI name: a scenario name or `mixed`.
    pub fn parse(s: &str) -> Option<Self> {
        if s == "mixed" {
            return Some(Self::Mixed);
        }
        Scenario::parse(s).map(Self::Fixed)
    }

    fn draw(self, rng: &mut impl Rng) -> Scenario {
        match self {
            Self::Fixed(s) => s,
            Self::Mixed => {
                let total: u32 = Scenario::ALL.iter().map(|s| s.mixed_weight()).sum();
                let mut pick = rng.random_range(0..total);
                for s in Scenario::ALL {
                    if pick < s.mixed_weight() {
                        return s;
                    }
                    pick -= s.mixed_weight();
                }
                Scenario::Honest
            }
        }
    }
}

/// Everything that shapes a run besides the seed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimOptions {
    /// Scenario choice.
    pub scenario: ScenarioChoice,
    /// Container type and truck.
    pub scene: SceneOptions,
    /// Pixel pitch and defects.
    pub render: RenderOptions,
}

impl SimOptions {
    /// Defaults for a scenario choice: any container, truck or not, 10 mm pitch, defects on.
    pub fn new(scenario: ScenarioChoice) -> Self {
        Self {
            scenario,
            scene: SceneOptions::default(),
            render: RenderOptions::default(),
        }
    }

    /// Small and quick scans for tests: a 20' container without the truck (about 660 x 300).
    pub fn small(scenario: Scenario) -> Self {
        Self {
            scenario: ScenarioChoice::Fixed(scenario),
            scene: SceneOptions {
                container: Some(ContainerType::Twenty),
                truck: Some(false),
            },
            render: RenderOptions::default(),
        }
    }
}

const OWNER_CODES: [&str; 6] = ["MSK", "CSQ", "TGH", "MSC", "CMA", "HLX"];

/// Generates scan number `index` of a run with `seed`. Same arguments, same scan, bit for bit.
pub fn generate(
    options: SimOptions,
    seed: u64,
    index: u64,
    scan_id: ScanId,
    bay: BayId,
    captured_at: DateTime<Utc>,
) -> Generated {
    let mut rng = scan_rng(seed, index);
    let scenario = options.scenario.draw(&mut rng);
    let built = scene::build(scenario, options.scene, &mut rng);
    let scan = render(&built, options.render, &mut rng);
    let owner = OWNER_CODES[rng.random_range(0..OWNER_CODES.len())];
    let container_code = ContainerCode::from_parts(owner, 'U', rng.random_range(0..1_000_000))
        .expect("owner codes and serials are valid");
    let mut truth = built.truth;
    for (item, b) in truth.items.iter_mut().zip(&scan.item_boxes) {
        item.box_px = *b;
    }
    let declaration = declare::declaration(
        &truth,
        &format!("SIM-{seed}-{index}"),
        &bay,
        &container_code,
        captured_at,
        &mut rng,
    );
    Generated {
        scan,
        truth,
        meta: write::ScanMeta {
            scan_id,
            bay,
            captured_at,
            container_code: Some(container_code),
            declaration_ref: None,
        },
        declaration,
    }
}
