//! Materials and their X-ray attenuation.
//!
//! Mass attenuation coefficients μ/ρ (cm²/g) are NIST XCOM total values with coherent scattering,
//! read at the nominal end-point energies of a dual-energy linac (6 and 4 MeV). Elements and
//! water are XCOM table values; compounds marked "mixture" are weighted sums of their elements'
//! values (the mixture rule) and are good to about 1 %. Treating the bremsstrahlung beam as
//! monoenergetic is the main simplification of the simulator; it keeps the ordering that
//! dual-energy material discrimination relies on: the low/high ratio falls as the effective atomic
//! number rises (organic > light inorganic > iron > lead), because pair production, which grows
//! with Z², takes a larger share at 6 MeV than at 4 MeV.

use serde::Serialize;

/// The four classes a dual-energy scanner tells apart, by effective atomic number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MaterialClass {
    /// Z_eff below 8: food, textiles, paper, wood, plastics, drugs.
    Organic,
    /// Z_eff 8 to 11: mixtures of organic and inorganic matter.
    Mixed,
    /// Z_eff 11 to 18: aluminium, glass, ceramics, stone, salts.
    Inorganic,
    /// Z_eff above 18: iron, copper, lead.
    Metal,
}

impl MaterialClass {
    /// The class of a material with this effective atomic number.
    pub fn of_zeff(zeff: f64) -> Self {
        match zeff {
            z if z < 8.0 => Self::Organic,
            z if z < 11.0 => Self::Mixed,
            z if z < 18.0 => Self::Inorganic,
            _ => Self::Metal,
        }
    }

    /// Name as used in the HS table and the truth files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Organic => "organic",
            Self::Mixed => "mixed",
            Self::Inorganic => "inorganic",
            Self::Metal => "metal",
        }
    }
}

/// One material.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Material {
    /// Name, as used in `assets/hs_chapters.csv` and the truth files.
    pub name: &'static str,
    /// Density of the solid material, g/cm³.
    pub density: f64,
    /// Effective atomic number (power-law, exponent 2.94).
    pub zeff: f64,
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

    /// Low/high attenuation ratio, the quantity dual-energy discrimination reads.
    pub fn energy_ratio(&self) -> f64 {
        self.mu_rho_low / self.mu_rho_high
    }

    /// The material's class.
    pub fn class(&self) -> MaterialClass {
        MaterialClass::of_zeff(self.zeff)
    }

    /// Looks a material up by name.
    pub fn by_name(name: &str) -> Option<Material> {
        ALL.iter().copied().find(|m| m.name == name)
    }
}

/// Water: food, beverages, fruit, liquids (XCOM).
pub const WATER: Material = Material {
    name: "water",
    density: 1.0,
    zeff: 7.4,
    mu_rho_high: 0.02770,
    mu_rho_low: 0.03403,
};

/// Cellulose (C6H10O5): textiles, paper, wood, tobacco (mixture).
pub const CELLULOSE: Material = Material {
    name: "cellulose",
    density: 1.5,
    zeff: 6.9,
    mu_rho_high: 0.02668,
    mu_rho_low: 0.03275,
};

/// Polyethylene (C2H4): plastics, rubber, footwear (mixture).
pub const PLASTIC: Material = Material {
    name: "plastic",
    density: 0.94,
    zeff: 5.4,
    mu_rho_high: 0.02820,
    mu_rho_low: 0.03490,
};

/// Cocaine base (C17H21NO4), standing for pressed drug bricks (mixture).
pub const DRUG: Material = Material {
    name: "drug",
    density: 1.3,
    zeff: 6.6,
    mu_rho_high: 0.02655,
    mu_rho_low: 0.03260,
};

/// Silica glass (SiO2): glass, ceramics, stone, sand (mixture).
pub const GLASS: Material = Material {
    name: "glass",
    density: 2.5,
    zeff: 11.6,
    mu_rho_high: 0.02541,
    mu_rho_low: 0.03110,
};

/// Aluminium (XCOM): profiles, cans, kitchenware.
pub const ALUMINIUM: Material = Material {
    name: "aluminium",
    density: 2.70,
    zeff: 13.0,
    mu_rho_high: 0.02552,
    mu_rho_low: 0.03102,
};

/// Iron (XCOM): steel structure, machinery, tools, weapons.
pub const STEEL: Material = Material {
    name: "steel",
    density: 7.85,
    zeff: 26.0,
    mu_rho_high: 0.03050,
    mu_rho_low: 0.03373,
};

/// Copper (XCOM): wire, cable, scrap.
pub const COPPER: Material = Material {
    name: "copper",
    density: 8.96,
    zeff: 29.0,
    mu_rho_high: 0.03090,
    mu_rho_low: 0.03375,
};

/// Lead (XCOM): shielding, batteries, the densest thing one meets in cargo.
pub const LEAD: Material = Material {
    name: "lead",
    density: 11.35,
    zeff: 82.0,
    mu_rho_high: 0.04272,
    mu_rho_low: 0.04197,
};

/// Consumer electronics: 50 % plastic, 30 % glass, 20 % copper by mass (mixture; Z_eff by the
/// electron-weighted power law).
pub const ELECTRONICS: Material = Material {
    name: "electronics",
    density: 1.6,
    zeff: 16.5,
    mu_rho_high: 0.02790,
    mu_rho_low: 0.03353,
};

/// Every material, lightest Z first.
pub const ALL: [Material; 10] = [
    PLASTIC,
    DRUG,
    CELLULOSE,
    WATER,
    GLASS,
    ALUMINIUM,
    ELECTRONICS,
    STEEL,
    COPPER,
    LEAD,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_high_ratio_falls_as_the_effective_atomic_number_rises() {
        let mut by_z = ALL.to_vec();
        by_z.sort_by(|a, b| a.zeff.total_cmp(&b.zeff));
        // The organic materials sit within 1 % of each other (what XCOM gives); beyond them the
        // ratio must fall strictly with every step in Z_eff.
        for pair in by_z.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if a.class() == MaterialClass::Organic && b.class() == MaterialClass::Organic {
                assert!((a.energy_ratio() / b.energy_ratio() - 1.0).abs() < 0.01);
            } else {
                assert!(
                    a.energy_ratio() > b.energy_ratio(),
                    "{} ({}) vs {} ({})",
                    a.name,
                    a.energy_ratio(),
                    b.name,
                    b.energy_ratio()
                );
            }
        }
        assert!(WATER.energy_ratio() > ALUMINIUM.energy_ratio());
        assert!(ALUMINIUM.energy_ratio() > STEEL.energy_ratio());
        assert!(STEEL.energy_ratio() > LEAD.energy_ratio());
        // Lead is the one material whose attenuation rises from 4 to 6 MeV.
        assert!(LEAD.energy_ratio() < 1.0 && STEEL.energy_ratio() > 1.0);
    }

    #[test]
    fn attenuation_grows_with_density_and_classes_follow_zeff() {
        assert!(WATER.mu_per_mm(true, 0.6) > WATER.mu_per_mm(true, 0.3));
        assert_eq!(WATER.class(), MaterialClass::Organic);
        assert_eq!(GLASS.class(), MaterialClass::Inorganic);
        assert_eq!(STEEL.class(), MaterialClass::Metal);
        assert_eq!(MaterialClass::of_zeff(9.5), MaterialClass::Mixed);
        assert_eq!(Material::by_name("copper"), Some(COPPER));
    }
}
