//! Preprocessing: raw 16-bit readings to the model's input tensor. Mirrors `preprocess` in
//! `models/train/train_xray_concealment.py`; the golden test holds the two together.

use ndarray::Array4;

use crate::ModelError;

/// Attenuation is multiplied by this before it enters the net (keeps inputs near [0, 2]).
pub const ATTENUATION_SCALE: f32 = 0.25;
/// Transmission is clamped here so that fully opaque pixels give a finite attenuation (13.8).
pub const T_MIN: f32 = 1e-6;

/// The net halves the image three times (a stride-2 stem and two poolings), so both sides are
/// padded up to a multiple of 8.
pub fn padded_size(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// `[1, 1, H', W']` tensor of `-ln(T) * ATTENUATION_SCALE`, with `T = (I - dark) / (air - dark)`
/// clamped to `[T_MIN, 1]`. Padding repeats the last row and column so that no artificial edge
/// appears at the border.
pub fn attenuation_input(
    readings: &[u16],
    width: usize,
    height: usize,
    air: u16,
    dark: u16,
) -> Result<Array4<f32>, ModelError> {
    check(readings, width, height, air, dark)?;
    // A lookup table over all 65,536 readings is cheaper than a logarithm per pixel for any scan
    // larger than 256 x 256, and gives bit-identical results.
    let span = f32::from(air) - f32::from(dark);
    let lut: Vec<f32> = (0..=u16::MAX)
        .map(|i| {
            let t = ((f32::from(i) - f32::from(dark)) / span).clamp(T_MIN, 1.0);
            -t.ln() * ATTENUATION_SCALE
        })
        .collect();
    let (ph, pw) = (padded_size(height), padded_size(width));
    let mut input = Array4::<f32>::zeros((1, 1, ph, pw));
    for r in 0..ph {
        let src = &readings[r.min(height - 1) * width..][..width];
        for c in 0..pw {
            input[[0, 0, r, c]] = lut[usize::from(src[c.min(width - 1)])];
        }
    }
    Ok(input)
}

/// Transmission `T = (I - dark) / (air - dark)`, clamped to `[T_MIN, 1]`, unpadded: what is
/// resampled when a scan's pitch differs from the model's (a coarser detector element averages
/// photons, that is transmission, not attenuation).
pub fn transmission(
    readings: &[u16],
    width: usize,
    height: usize,
    air: u16,
    dark: u16,
) -> Result<Vec<f32>, ModelError> {
    check(readings, width, height, air, dark)?;
    let span = f32::from(air) - f32::from(dark);
    let lut: Vec<f32> = (0..=u16::MAX)
        .map(|i| ((f32::from(i) - f32::from(dark)) / span).clamp(T_MIN, 1.0))
        .collect();
    Ok(readings.iter().map(|&r| lut[usize::from(r)]).collect())
}

/// The model's input from transmission (see [`attenuation_input`] for the scaling and padding).
pub fn attenuation_from_transmission(t: &[f32], width: usize, height: usize) -> Array4<f32> {
    let (ph, pw) = (padded_size(height), padded_size(width));
    let mut input = Array4::<f32>::zeros((1, 1, ph, pw));
    for r in 0..ph {
        let src = &t[r.min(height - 1) * width..][..width];
        for c in 0..pw {
            input[[0, 0, r, c]] = -src[c.min(width - 1)].clamp(T_MIN, 1.0).ln() * ATTENUATION_SCALE;
        }
    }
    input
}

fn check(
    readings: &[u16],
    width: usize,
    height: usize,
    air: u16,
    dark: u16,
) -> Result<(), ModelError> {
    if width == 0 || height == 0 || readings.len() != width * height {
        return Err(ModelError::Input(format!(
            "{} readings do not make a {width} x {height} image",
            readings.len()
        )));
    }
    if air <= dark {
        return Err(ModelError::Input(format!(
            "air {air} must exceed dark {dark}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn air_is_zero_and_dark_is_the_clamp() {
        let x = attenuation_input(&[1000, 100, 550, 1000], 2, 2, 1000, 100).unwrap();
        assert_eq!(x.shape(), &[1, 1, 8, 8]);
        assert_eq!(x[[0, 0, 0, 0]], 0.0);
        let opaque = -T_MIN.ln() * ATTENUATION_SCALE;
        assert!((x[[0, 0, 0, 1]] - opaque).abs() < 1e-5);
        assert!((x[[0, 0, 1, 0]] - 0.5f32.ln().abs() * ATTENUATION_SCALE).abs() < 1e-6);
        // Padding repeats the edge.
        assert_eq!(x[[0, 0, 7, 7]], x[[0, 0, 1, 1]]);
        assert_eq!(x[[0, 0, 0, 7]], x[[0, 0, 0, 1]]);
    }

    #[test]
    fn readings_above_air_clamp_to_zero_attenuation() {
        let x = attenuation_input(&[2000; 16], 4, 4, 1000, 100).unwrap();
        assert!(x.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn the_transmission_path_gives_the_same_input_as_the_direct_one() {
        let readings: Vec<u16> = (0..35).map(|i| 100 + i * 27).collect();
        let direct = attenuation_input(&readings, 7, 5, 1000, 100).unwrap();
        let t = transmission(&readings, 7, 5, 1000, 100).unwrap();
        let via = attenuation_from_transmission(&t, 7, 5);
        assert_eq!(direct.shape(), via.shape());
        assert!(
            direct
                .iter()
                .zip(via.iter())
                .all(|(a, b)| (a - b).abs() < 1e-6)
        );
        assert!(transmission(&readings, 7, 4, 1000, 100).is_err());
    }

    #[test]
    fn size_mismatch_is_an_error() {
        assert!(attenuation_input(&[0; 5], 2, 2, 1000, 0).is_err());
        assert!(attenuation_input(&[], 0, 0, 1000, 0).is_err());
        assert!(attenuation_input(&[0; 4], 2, 2, 100, 100).is_err());
    }
}
