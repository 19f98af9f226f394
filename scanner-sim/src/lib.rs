//! Physics-based synthetic X-ray scans of containers, for the demo feed, test fixtures and
//! model training.
//!
//! The scanner is modelled as a parallel-beam side-view transmission radiograph: every detector
//! pixel sees one horizontal ray across the container's width. (Real portals are fan beams; at
//! this stage parallel rays keep the geometry exact and cheap, and the concealment model only
//! needs local contrast.) Attenuation follows Beer–Lambert, `I = I0 · exp(-Σ μ/ρ · ρ · t)`, with
//! mass attenuation coefficients at the two beam energies, then the detector adds blur, Poisson
//! photon noise, per-channel gain stripes, and air/dark offsets, and writes 16-bit readings.
//!
//! # Layout
//! - [`materials`]: the material table (density, μ/ρ at 4 and 6 MeV).
//! - [`scene`]: a scenario (honest cargo, concealment) turned into a container and cargo blocks, with
//!   ground truth.
//! - [`render`]: ray sums and the detector model: scene in, 16-bit images and a truth mask out.
//! - [`write`]: the files of the scan contract (`baylens.scan/1`), written atomically.

pub mod materials;
pub mod render;
pub mod scene;
pub mod write;

pub use render::{SimulatedScan, render};
pub use scene::{Scenario, Scene, Truth};
pub use write::{ScanFiles, write_scan};

use rand::SeedableRng;
use rand::rngs::StdRng;

/// The random generator for scan number `index` of a run seeded with `seed`. Each scan has its
/// own stream, so scan 17 is the same whether or not scans 0..16 were generated first.
pub fn scan_rng(seed: u64, index: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

use baylens_protocol::{BayId, ContainerCode, ScanId};
use chrono::{DateTime, Utc};
use rand::Rng;

/// One generated scan with everything known about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// Detector readings and truth mask.
    pub scan: SimulatedScan,
    /// What the scene really holds.
    pub truth: Truth,
    /// What the scanner writes into the sidecar.
    pub meta: write::ScanMeta,
}

/// How to pick the scenario of each scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScenarioChoice {
    /// Always this one.
    Fixed(Scenario),
    /// Honest or concealment, even odds, drawn from the scan's own random stream.
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
}

const OWNER_CODES: [&str; 6] = ["MSK", "CSQ", "TGH", "MSC", "CMA", "HLX"];

/// Generates scan number `index` of a run with `seed`. Same arguments, same scan, bit for bit.
pub fn generate(
    choice: ScenarioChoice,
    seed: u64,
    index: u64,
    scan_id: ScanId,
    bay: BayId,
    captured_at: DateTime<Utc>,
) -> Generated {
    let mut rng = scan_rng(seed, index);
    let scenario = match choice {
        ScenarioChoice::Fixed(s) => s,
        ScenarioChoice::Mixed if rng.random_bool(0.5) => Scenario::Concealment,
        ScenarioChoice::Mixed => Scenario::Honest,
    };
    let built = scene::build(scenario, &mut rng);
    let scan = render(&built, &mut rng);
    let owner = OWNER_CODES[rng.random_range(0..OWNER_CODES.len())];
    let container_code = ContainerCode::from_parts(owner, 'U', rng.random_range(0..1_000_000)).ok();
    Generated {
        scan,
        truth: built.truth,
        meta: write::ScanMeta {
            scan_id,
            bay,
            captured_at,
            container_code,
            declaration_ref: None,
        },
    }
}
