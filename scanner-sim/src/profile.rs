//! Scanner profiles: how one make of scanner differs from another, so that BayLens can be tried
//! on scanners it was never trained or tuned on.
//!
//! Real dual-energy portals differ in what matters to BayLens:
//! - **Spectrum.** Each linac's bremsstrahlung spectrum and filtration give its own effective
//!   mass attenuation coefficients, so the low/high ratio of a material is not the table value.
//!   A profile scales the low-energy coefficient and stretches the ratios about 1:
//!   `μ_low' = μ_low · ratio_scale · R^ratio_exponent`, with `R = μ_low / μ_high` of the
//!   material (organic goods and lead move apart or together).
//! - **Beam hardening.** A polychromatic beam loses its soft photons first, so thick material
//!   attenuates less than Beer–Lambert with one coefficient says, the low energy more so:
//!   `A' = A / (1 + hardening · A)` on each ray's attenuation. The ratio then falls with
//!   thickness, which is why a phantom has several thicknesses of each material.
//! - **Detector.** Photons per pixel (noise), the air and dark readings, channel gain spread,
//!   read-out noise and the point-spread function.
//! - **Pitch.** Horizontal (belt speed times line period) and vertical (detector element at the
//!   mid-plane), which need not be equal.
//!
//! The `scanner-sim` profile is the simulator as it always was (the models were trained on it);
//! its transforms are identities and are skipped, so its scans are bit for bit the same.
//! `mobile-d` was used while the calibration method was designed; `portal-b` and `gantry-c`
//! were held out from that work and are where BayLens's figures on unseen scanners come from.
//! `linac-e` was added after their first measurement and held back for measuring what changed
//! after it.

use serde::Serialize;

use crate::render::{Detector, GAIN_SPREAD, HIGH, LOW, READ_NOISE};

/// One make of scanner.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScannerProfile {
    /// Short name, as on the command line.
    pub name: &'static str,
    /// What it stands for.
    pub description: &'static str,
    /// High-energy beam and detector.
    pub high: Detector,
    /// Low-energy beam and detector.
    pub low: Detector,
    /// Overall scale of the low-energy coefficients against the table's.
    pub ratio_scale: f64,
    /// Exponent stretching (positive) or squeezing (negative) the materials' ratios.
    pub ratio_exponent: f64,
    /// Beam hardening at the high energy, per unit of attenuation.
    pub hardening_high: f64,
    /// Beam hardening at the low energy.
    pub hardening_low: f64,
    /// Centre weight of the 3-tap point-spread kernel `[(1 - c) / 2, c, (1 - c) / 2]`.
    pub psf_centre: f32,
    /// Times the kernel is applied in each direction (a wider spread for more).
    pub psf_passes: u32,
    /// Standard deviation of the per-channel gain.
    pub gain_spread: f64,
    /// Read-out noise, reading units.
    pub read_noise: f64,
    /// Default pitch `[horizontal, vertical]` at the mid-plane, mm.
    pub pitch_mm: [f64; 2],
}

/// The simulated portal everything was trained on.
pub const SCANNER_SIM: ScannerProfile = ScannerProfile {
    name: "scanner-sim",
    description: "scanner-sim's 4/6 MeV drive-through portal, 10 mm (the training scanner)",
    high: HIGH,
    low: LOW,
    ratio_scale: 1.0,
    ratio_exponent: 0.0,
    hardening_high: 0.0,
    hardening_low: 0.0,
    psf_centre: 0.5,
    psf_passes: 1,
    gain_spread: GAIN_SPREAD,
    read_noise: READ_NOISE,
    pitch_mm: [10.0, 10.0],
};

/// A mobile 3.5/6 MeV unit: the profile the calibration method was developed on.
pub const MOBILE_D: ScannerProfile = ScannerProfile {
    name: "mobile-d",
    description: "mobile 3.5/6 MeV gantry, 8 mm, noisier, stronger hardening (development profile)",
    high: Detector {
        energy_mev: 6.0,
        photons_in_air: 25_000.0,
        air: 50_000,
        dark: 500,
    },
    low: Detector {
        energy_mev: 3.5,
        photons_in_air: 15_000.0,
        air: 45_000,
        dark: 450,
    },
    ratio_scale: 1.03,
    ratio_exponent: 0.5,
    hardening_high: 0.006,
    hardening_low: 0.014,
    psf_centre: 0.4,
    psf_passes: 2,
    gain_spread: 0.007,
    read_noise: 3.0,
    pitch_mm: [8.0, 8.0],
};

/// A 6/9 MeV high-energy portal with fine pixels (held out).
pub const PORTAL_B: ScannerProfile = ScannerProfile {
    name: "portal-b",
    description: "6/9 MeV high-energy portal, 5 mm, more photons, squeezed ratios (held out)",
    high: Detector {
        energy_mev: 9.0,
        photons_in_air: 60_000.0,
        air: 64_000,
        dark: 200,
    },
    low: Detector {
        energy_mev: 6.0,
        photons_in_air: 35_000.0,
        air: 62_000,
        dark: 180,
    },
    ratio_scale: 0.97,
    ratio_exponent: -0.2,
    hardening_high: 0.004,
    hardening_low: 0.010,
    psf_centre: 0.34,
    psf_passes: 1,
    gain_spread: 0.004,
    read_noise: 1.5,
    pitch_mm: [5.0, 5.0],
};

/// A 5/7.5 MeV gantry with rectangular pixels (held out).
pub const GANTRY_C: ScannerProfile = ScannerProfile {
    name: "gantry-c",
    description: "5/7.5 MeV relocatable gantry, 12 mm x 8 mm pixels, few photons (held out)",
    high: Detector {
        energy_mev: 7.5,
        photons_in_air: 20_000.0,
        air: 40_000,
        dark: 800,
    },
    low: Detector {
        energy_mev: 5.0,
        photons_in_air: 12_000.0,
        air: 38_000,
        dark: 760,
    },
    ratio_scale: 1.06,
    ratio_exponent: 0.4,
    hardening_high: 0.008,
    hardening_low: 0.016,
    psf_centre: 0.5,
    psf_passes: 2,
    gain_spread: 0.008,
    read_noise: 4.0,
    pitch_mm: [12.0, 8.0],
};

/// A 4/8 MeV cargo linac with 6 mm pixels, defined after the first measurements on portal-b
/// and gantry-c and kept back for measuring what was changed after them (held out).
pub const LINAC_E: ScannerProfile = ScannerProfile {
    name: "linac-e",
    description: "4/8 MeV interlaced linac, 6 mm, stretched ratios, sharp detector (held out)",
    high: Detector {
        energy_mev: 8.0,
        photons_in_air: 30_000.0,
        air: 58_000,
        dark: 400,
    },
    low: Detector {
        energy_mev: 4.0,
        photons_in_air: 18_000.0,
        air: 55_000,
        dark: 380,
    },
    ratio_scale: 0.94,
    ratio_exponent: 0.8,
    hardening_high: 0.005,
    hardening_low: 0.018,
    psf_centre: 0.6,
    psf_passes: 1,
    gain_spread: 0.006,
    read_noise: 2.5,
    pitch_mm: [6.0, 6.0],
};

/// Every profile, the training scanner first.
pub const ALL: [ScannerProfile; 5] = [SCANNER_SIM, MOBILE_D, PORTAL_B, GANTRY_C, LINAC_E];

/// What a truth file records of the profile.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileRecord {
    /// Profile name.
    pub name: &'static str,
    /// Its description.
    pub description: &'static str,
}

impl ScannerProfile {
    /// Looks a profile up by name.
    pub fn by_name(name: &str) -> Option<Self> {
        ALL.iter().copied().find(|p| p.name == name)
    }

    /// Names of every profile, for error messages.
    pub fn names() -> String {
        ALL.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
    }

    /// Whether the spectrum transform is the identity (the training scanner).
    fn plain_spectrum(&self) -> bool {
        self.ratio_scale == 1.0 && self.ratio_exponent == 0.0
    }

    /// A solid's linear coefficients (high, low) per mm as this scanner sees them.
    pub fn effective_mu(&self, (high, low): (f64, f64)) -> (f64, f64) {
        if self.plain_spectrum() || high == 0.0 {
            return (high, low);
        }
        let ratio = low / high;
        (
            high,
            low * self.ratio_scale * ratio.powf(self.ratio_exponent),
        )
    }

    /// Applies beam hardening to one energy's ray attenuations.
    pub fn harden(&self, attenuation: &mut [f32], high: bool) {
        let k = if high {
            self.hardening_high
        } else {
            self.hardening_low
        } as f32;
        if k == 0.0 {
            return;
        }
        for a in attenuation {
            *a /= 1.0 + k * *a;
        }
    }

    /// The record for truth files.
    pub fn record(&self) -> ProfileRecord {
        ProfileRecord {
            name: self.name,
            description: self.description,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::materials::{LEAD, WATER};

    #[test]
    fn the_training_profile_changes_nothing() {
        let mu = (0.123, 0.456);
        assert_eq!(SCANNER_SIM.effective_mu(mu), mu);
        let mut a = vec![0.5f32, 3.0];
        SCANNER_SIM.harden(&mut a, false);
        assert_eq!(a, [0.5, 3.0]);
    }

    #[test]
    fn other_profiles_move_the_ratios_and_harden_thick_material() {
        let ratio = |p: &ScannerProfile, m: crate::materials::Material| {
            let (h, l) = p.effective_mu((m.mu_rho_high, m.mu_rho_low));
            l / h
        };
        for p in &ALL[1..] {
            let (water, lead) = (ratio(p, WATER), ratio(p, LEAD));
            assert!(water > lead, "{}: organic above lead", p.name);
            assert!(
                (water - WATER.energy_ratio()).abs() > 0.01,
                "{}: the ratio moved",
                p.name
            );
            let mut thick = [1.0f32, 5.0];
            let mut low = thick;
            p.harden(&mut thick, true);
            p.harden(&mut low, false);
            // The low energy loses more, and more so the thicker the material.
            assert!(
                low[1] / 5.0 < thick[1] / 5.0 && low[1] / 5.0 < low[0],
                "{}",
                p.name
            );
        }
        assert_eq!(ScannerProfile::by_name("portal-b"), Some(PORTAL_B));
        assert!(ScannerProfile::by_name("nope").is_none());
    }
}
