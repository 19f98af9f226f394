//! Materials and their X-ray attenuation.
//!
//! Mass attenuation coefficients μ/ρ (cm²/g) are NIST XCOM total values with coherent scattering,
//! taken at the nominal end-point energies of a dual-energy linac (6 and 4 MeV). Treating the
//! bremsstrahlung beam as monoenergetic is the main simplification of the simulator; it keeps the
//! ordering that dual-energy material discrimination relies on: the low/high ratio falls as the
//! atomic number rises (organic > light inorganic > iron > lead).

/// One material.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Material {
    /// Name for ground truth and debugging.
    pub name: &'static str,
    /// Density of the solid material, g/cm³.
    pub density: f64,
    /// μ/ρ at the high energy (6 MeV), cm²/g.
    pub mu_rho_high: f64,
    /// μ/ρ at the low energy (4 MeV), cm²/g.
    pub mu_rho_low: f64,
}

impl Material {
    /// Linear attenuation coefficient at the given energy for a bulk density (g/cm³), per mm.
    pub fn mu_per_mm(&self, high: bool, bulk_density: f64) -> f64 {
        let mu_rho = if high {
            self.mu_rho_high
        } else {
            self.mu_rho_low
        };
        mu_rho * bulk_density / 10.0
    }
}

/// Organic matter (textiles, food, paper, wood, drugs): water-like attenuation.
pub const ORGANIC: Material = Material {
    name: "organic",
    density: 1.0,
    mu_rho_high: 0.02770,
    mu_rho_low: 0.03403,
};

/// Light inorganic (aluminium, glass, ceramics).
pub const ALUMINIUM: Material = Material {
    name: "aluminium",
    density: 2.70,
    mu_rho_high: 0.02552,
    mu_rho_low: 0.03102,
};

/// Steel: container structure, machinery.
pub const STEEL: Material = Material {
    name: "steel",
    density: 7.85,
    mu_rho_high: 0.03050,
    mu_rho_low: 0.03373,
};

/// Lead: shielding, the densest thing one meets in cargo.
pub const LEAD: Material = Material {
    name: "lead",
    density: 11.35,
    mu_rho_high: 0.04272,
    mu_rho_low: 0.04197,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_high_ratio_falls_with_atomic_number() {
        let ratio = |m: Material| m.mu_rho_low / m.mu_rho_high;
        assert!(ratio(ORGANIC) > ratio(ALUMINIUM));
        assert!(ratio(ALUMINIUM) > ratio(STEEL));
        assert!(ratio(STEEL) > ratio(LEAD));
    }

    #[test]
    fn attenuation_grows_with_density() {
        assert!(ORGANIC.mu_per_mm(true, 0.6) > ORGANIC.mu_per_mm(true, 0.3));
    }
}
