//! The dual-energy material map: organic, mixed, inorganic or metal for each pixel of the cargo.
//!
//! At MeV energies Compton scattering dominates both beams, so attenuation alone says how much
//! matter a ray crossed, not what it was. Pair production grows with Z², and takes a larger share
//! at 6 MeV than at 4 MeV, so the ratio `R = A_low / A_high` falls as the effective atomic number
//! rises: about 1.23 for organic goods, 1.22 for glass and aluminium, 1.10 for iron, 0.98 for
//! lead (NIST XCOM). The ratio is taken on the cargo alone (each energy's container baseline
//! subtracted, see [`crate::calibration`]) and on 7 × 7 averages, because per pixel its noise
//! (about 1 %) is larger than the gap between organic and light inorganic matter (0.5–1 %).
//! The class boundaries are calibration constants ([`Calibration`]); "mixed" is the band where
//! organic and light inorganic matter cannot be told apart, as on real dual-energy portals.

use crate::calibration::Calibration;

/// A pixel's material class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MaterialClass {
    /// Too little material to say, or outside the cargo space.
    None = 0,
    /// Z_eff below about 10: food, textiles, paper, wood, plastics, drugs.
    Organic = 1,
    /// Organic and light inorganic matter that the ratio cannot separate.
    Mixed = 2,
    /// Light inorganic: glass, ceramics, aluminium, electronics.
    Inorganic = 3,
    /// Iron and heavier.
    Metal = 4,
    /// So dense the detector is starved: no class, mass a lower bound.
    Opaque = 5,
}

impl MaterialClass {
    /// Every class, in `u8` order.
    pub const ALL: [MaterialClass; 6] = [
        Self::None,
        Self::Organic,
        Self::Mixed,
        Self::Inorganic,
        Self::Metal,
        Self::Opaque,
    ];

    /// The class stored as `u8` in a map.
    pub fn from_u8(v: u8) -> Self {
        Self::ALL.get(usize::from(v)).copied().unwrap_or(Self::None)
    }

    /// Slot in per-class tallies (organic, mixed, inorganic, metal, opaque).
    pub fn index(self) -> Option<usize> {
        (self != Self::None).then(|| self as usize - 1)
    }

    /// Name for reports and legends.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Organic => "organic",
            Self::Mixed => "mixed",
            Self::Inorganic => "inorganic",
            Self::Metal => "metal",
            Self::Opaque => "opaque",
        }
    }
}

/// Classifies one pixel from the cargo's net (baseline-subtracted, smoothed) attenuation at
/// both energies and the smoothed total high-energy attenuation.
pub fn classify(net_high: f64, net_low: f64, total_high: f64, cal: &Calibration) -> MaterialClass {
    if total_high >= cal.opaque_attenuation {
        return MaterialClass::Opaque;
    }
    if net_high < cal.min_net_attenuation {
        return MaterialClass::None;
    }
    let ratio = net_low / net_high;
    let [organic_min, mixed_min, inorganic_min] = cal.ratio_bounds(net_high);
    if ratio >= organic_min {
        MaterialClass::Organic
    } else if ratio >= mixed_min {
        MaterialClass::Mixed
    } else if ratio >= inorganic_min {
        MaterialClass::Inorganic
    } else {
        MaterialClass::Metal
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calibration::tests::{estimate, simulated};
    use scanner_sim::Scenario;
    use scanner_sim::materials::Material;

    #[test]
    fn ratio_bands_give_the_classes_in_order() {
        let c = Calibration::scanner_sim();
        let at = |r: f64| classify(1.0, r, 1.0, &c);
        assert_eq!(at(1.235), MaterialClass::Organic);
        assert_eq!(at(1.222), MaterialClass::Mixed);
        assert_eq!(at(1.205), MaterialClass::Inorganic);
        assert_eq!(at(1.10), MaterialClass::Metal);
        assert_eq!(classify(0.1, 0.12, 0.5, &c), MaterialClass::None);
        assert_eq!(classify(3.0, 3.0, 9.0, &c), MaterialClass::Opaque);
    }

    /// Accepted classes for a simulator material: its own, or the neighbouring band the noise
    /// can push it into.
    fn accepted(m: Material) -> &'static [MaterialClass] {
        use MaterialClass::*;
        match m.name {
            "water" | "cellulose" | "plastic" | "drug" => &[Organic, Mixed],
            "glass" => &[Mixed, Inorganic],
            "aluminium" | "electronics" => &[Inorganic],
            _ => &[Metal, Opaque],
        }
    }

    #[test]
    fn single_kind_loads_map_to_their_material_class() {
        let mut checked = 0;
        let mut confusion = std::collections::BTreeMap::new();
        for i in 0..90 {
            let g = simulated(Scenario::Honest, 47, i);
            // Pallets and bulk only: drums add their steel shells to the liquid, which is what a
            // real scanner sees too (mixed or inorganic).
            let [item] = g.truth.items.as_slice() else {
                continue;
            };
            if item.packing == Some(scanner_sim::hs::Packing::Drums) {
                continue;
            }
            let Some([x, y, bw, bh]) = item.box_px else {
                continue;
            };
            let e = estimate(&g).expect("a container is found");
            let w = g.scan.width as usize;
            let mut counts = [0usize; 6];
            for r in y as usize..(y + bh) as usize {
                for c in x as usize..(x + bw) as usize {
                    counts[usize::from(e.classes[r * w + c])] += 1;
                }
            }
            // Dense loads (cement, steel) starve the detector: no class to check.
            if counts[MaterialClass::Opaque as usize] * 2 > counts.iter().skip(1).sum::<usize>() {
                continue;
            }
            let (dominant, _) = counts
                .iter()
                .enumerate()
                .skip(1)
                .take(4)
                .max_by_key(|(_, n)| **n)
                .unwrap();
            let dominant = MaterialClass::from_u8(dominant as u8);
            let material = Material::by_name(item.material).unwrap();
            *confusion
                .entry((item.material, dominant.as_str()))
                .or_insert(0) += 1;
            assert!(
                accepted(material).contains(&dominant),
                "scan {i}: {} mapped as {dominant:?} ({counts:?})",
                item.material
            );
            checked += 1;
        }
        println!("material -> dominant class: {confusion:?}");
        assert!(checked >= 15, "only {checked} single-kind loads");
    }
}
