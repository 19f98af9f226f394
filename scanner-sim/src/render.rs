//! From a scene to detector readings: ray sums through the container structure and cargo, then
//! the detector (blur, Poisson photon noise, per-channel gain, air and dark offsets).

use rand::Rng;
use rand_distr::{Distribution, Normal, Poisson};

use crate::materials::{ORGANIC, STEEL};
use crate::scene::{
    CONTAINER_BOTTOM, CONTAINER_LEFT, EXT_HEIGHT, EXT_LENGTH, FLOOR_TOP, HEIGHT, INNER_HEIGHT,
    INNER_WIDTH, PITCH_MM, Scene, WIDTH,
};

/// Detector settings for one beam energy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detector {
    /// Nominal beam energy, MeV.
    pub energy_mev: f64,
    /// Photons reaching an unobstructed pixel; sets the noise level.
    pub photons_in_air: f64,
    /// Reading with nothing in the beam.
    pub air: u16,
    /// Reading with the beam off.
    pub dark: u16,
}

/// The high-energy beam of the simulated linac.
pub const HIGH: Detector = Detector {
    energy_mev: 6.0,
    photons_in_air: 40_000.0,
    air: 60_000,
    dark: 300,
};

/// The low-energy beam: fewer photons, so noisier.
pub const LOW: Detector = Detector {
    energy_mev: 4.0,
    photons_in_air: 25_000.0,
    air: 52_000,
    dark: 280,
};

/// A rendered scan: readings of both energies and the truth mask, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedScan {
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// High-energy readings.
    pub high: Vec<u16>,
    /// Low-energy readings.
    pub low: Vec<u16>,
    /// 1 where a concealed package is, else 0.
    pub concealment_mask: Vec<u8>,
}

/// Attenuation `Σ μ t` (high, low) of the container and chassis structure along the ray at (x, z).
fn structure_attenuation(x: f64, z: f64) -> (f64, f64) {
    let steel = |mm: f64| {
        (
            STEEL.mu_per_mm(true, STEEL.density) * mm,
            STEEL.mu_per_mm(false, STEEL.density) * mm,
        )
    };
    let wood = |mm: f64| {
        (
            ORGANIC.mu_per_mm(true, 0.7) * mm,
            ORGANIC.mu_per_mm(false, 0.7) * mm,
        )
    };
    let mut total = (0.0, 0.0);
    let mut add = |(h, l): (f64, f64)| {
        total.0 += h;
        total.1 += l;
    };
    let left = CONTAINER_LEFT;
    let right = CONTAINER_LEFT + EXT_LENGTH;
    let top = CONTAINER_BOTTOM + EXT_HEIGHT;
    // Chassis: two longitudinal I-beams under the container, their webs crossed by the ray.
    if (CONTAINER_BOTTOM - 300.0..CONTAINER_BOTTOM).contains(&z)
        && (left - 250.0..right + 100.0).contains(&x)
    {
        add(steel(2.0 * 12.0));
    }
    if !(left..right).contains(&x) || !(CONTAINER_BOTTOM..top).contains(&z) {
        return total;
    }
    // Corrugated side walls: 1.6 mm sheet, twice, longer path where the ray meets the slopes.
    let corrugation = 1.0 + 0.8 * ((x - left) * std::f64::consts::PI / 140.0).sin().abs();
    add(steel(2.0 * 1.6 * corrugation));
    if z < FLOOR_TOP - 28.0 {
        // Bottom side rails, and cross-members every 300 mm whose C-section the ray runs along.
        add(steel(2.0 * 6.0));
        if (x - left) % 300.0 < 60.0 {
            add(steel(45.0));
        }
    } else if z < FLOOR_TOP {
        // 28 mm floor boards: the ray runs along them across the whole width.
        add(wood(INNER_WIDTH));
    } else if z >= FLOOR_TOP + INNER_HEIGHT {
        add(steel(14.0)); // roof sheet and top rails
    }
    if x < left + 80.0 {
        add(steel(35.0)); // front end wall, corrugated, and corner posts
    } else if x >= right - 120.0 {
        add(steel(55.0)); // doors, door frame and locking bars
    }
    total
}

/// Renders a scene into noisy 16-bit detector readings. Deterministic for a given `rng` state.
pub fn render(scene: &Scene, rng: &mut impl Rng) -> SimulatedScan {
    let (w, h) = (WIDTH as usize, HEIGHT as usize);
    let mut att_high = vec![0.0f64; w * h];
    let mut att_low = vec![0.0f64; w * h];
    let mut mask = vec![0u8; w * h];
    for row in 0..h {
        let z = (h - row) as f64 * PITCH_MM - PITCH_MM / 2.0;
        for col in 0..w {
            let x = col as f64 * PITCH_MM + PITCH_MM / 2.0;
            let (mut a_h, mut a_l) = structure_attenuation(x, z);
            for block in &scene.truth.cargo {
                let (bh, bl) = block.attenuation_at(x, z);
                a_h += bh;
                a_l += bl;
            }
            for c in &scene.truth.concealed {
                let (ch, cl) = c.attenuation_at(x, z);
                if ch != 0.0 || cl != 0.0 {
                    mask[row * w + col] = 1;
                }
                a_h += ch;
                a_l += cl;
            }
            att_high[row * w + col] = a_h;
            att_low[row * w + col] = a_l;
        }
    }
    let high = detect(&att_high, w, h, HIGH, rng);
    let low = detect(&att_low, w, h, LOW, rng);
    SimulatedScan {
        width: WIDTH,
        height: HEIGHT,
        high,
        low,
        concealment_mask: mask,
    }
}

/// The detector: expected photon counts, a [1 2 1]/4 point-spread blur in both directions,
/// Poisson noise, a gain per detector channel (row) and the air/dark scaling to 16 bits.
fn detect(attenuation: &[f64], w: usize, h: usize, det: Detector, rng: &mut impl Rng) -> Vec<u16> {
    let expected: Vec<f64> = attenuation
        .iter()
        .map(|a| det.photons_in_air * (-a).exp())
        .collect();
    let blurred = blur_121(&expected, w, h);
    let gain_noise = Normal::new(1.0, 0.004).expect("constant, valid deviation");
    let gains: Vec<f64> = (0..h).map(|_| gain_noise.sample(rng)).collect();
    let span = f64::from(det.air - det.dark);
    blurred
        .iter()
        .enumerate()
        .map(|(i, &lambda)| {
            let photons = if lambda > 0.0 {
                Poisson::new(lambda).map(|p| p.sample(rng)).unwrap_or(0.0)
            } else {
                0.0
            };
            let reading = f64::from(det.dark) + span * gains[i / w] * photons / det.photons_in_air;
            reading.round().clamp(0.0, 65535.0) as u16
        })
        .collect()
}

fn blur_121(values: &[f64], w: usize, h: usize) -> Vec<f64> {
    let mut horizontal = vec![0.0; values.len()];
    for r in 0..h {
        for c in 0..w {
            let at = |cc: usize| values[r * w + cc];
            let left = at(c.saturating_sub(1));
            let right = at((c + 1).min(w - 1));
            horizontal[r * w + c] = 0.25 * left + 0.5 * at(c) + 0.25 * right;
        }
    }
    let mut out = vec![0.0; values.len()];
    for r in 0..h {
        for c in 0..w {
            let at = |rr: usize| horizontal[rr * w + c];
            out[r * w + c] =
                0.25 * at(r.saturating_sub(1)) + 0.5 * at(r) + 0.25 * at((r + 1).min(h - 1));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan_rng;
    use crate::scene::{Scenario, build};

    fn transmission(reading: u16, det: Detector) -> f64 {
        (f64::from(reading) - f64::from(det.dark)) / f64::from(det.air - det.dark)
    }

    #[test]
    fn open_air_reads_the_air_value_within_photon_noise() {
        let scene = build(Scenario::Honest, &mut scan_rng(1, 0));
        let scan = render(&scene, &mut scan_rng(1, 1));
        // Row 0 lies above the container: only air.
        let row: Vec<f64> = scan.high[..WIDTH as usize]
            .iter()
            .map(|&r| transmission(r, HIGH))
            .collect();
        let mean = row.iter().sum::<f64>() / row.len() as f64;
        let var = row.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / row.len() as f64;
        assert!((mean - 1.0).abs() < 0.02, "mean transmission in air {mean}");
        // Poisson: relative sd ≈ 1/sqrt(N0) ≈ 0.005, blurred down a little, plus 0.4 % gain.
        let sd = var.sqrt();
        assert!((0.001..0.02).contains(&sd), "sd {sd}");
    }

    #[test]
    fn concealed_package_darkens_the_scan_where_the_mask_says() {
        let scene = build(Scenario::Concealment, &mut scan_rng(5, 0));
        let scan = render(&scene, &mut scan_rng(5, 1));
        let inside: Vec<usize> = (0..scan.concealment_mask.len())
            .filter(|&i| scan.concealment_mask[i] == 1)
            .collect();
        assert!(!inside.is_empty());
        let c = scene.truth.concealed[0].package;
        let [x, y, bw, bh] = c.pixel_box();
        let w = WIDTH as usize;
        // Compare with the host cargo just left of the package, same rows.
        let mean = |cols: std::ops::Range<u32>| {
            let mut s = 0.0;
            let mut n = 0.0;
            for r in y + 2..y + bh - 2 {
                for col in cols.clone() {
                    s += -transmission(scan.high[r as usize * w + col as usize], HIGH)
                        .max(1e-6)
                        .ln();
                    n += 1.0;
                }
            }
            s / n
        };
        let package = mean(x + 2..x + bw - 2);
        let host = mean(x.saturating_sub(3)..x.saturating_sub(1));
        assert!(package > host + 0.15, "package {package} host {host}");
    }

    #[test]
    fn same_seed_same_scan_different_seed_different_scan() {
        let make = |seed| {
            let mut rng = scan_rng(seed, 0);
            let scene = build(Scenario::Concealment, &mut rng);
            render(&scene, &mut rng)
        };
        assert_eq!(make(11), make(11));
        assert_ne!(make(11).high, make(12).high);
    }

    #[test]
    fn thicker_and_denser_cargo_attenuates_more() {
        use crate::materials::ORGANIC;
        let a = |depth: f64, dens: f64| ORGANIC.mu_per_mm(true, dens) * depth;
        assert!(a(2000.0, 0.3) > a(1000.0, 0.3));
        assert!(a(1000.0, 0.6) > a(1000.0, 0.3));
        // And the structure alone attenuates where the floor is, not above the container.
        let floor = structure_attenuation(CONTAINER_LEFT + 1000.0, FLOOR_TOP - 10.0).0;
        let above = structure_attenuation(
            CONTAINER_LEFT + 1000.0,
            CONTAINER_BOTTOM + EXT_HEIGHT + 100.0,
        )
        .0;
        assert!(floor > 2.0 && above == 0.0, "floor {floor} above {above}");
    }
}
