//! The images sent with each report, 8-bit PNGs a fraction of the size of the raw 16-bit scan
//! (which suits a weak bay uplink):
//!
//! - the **preview**: the scan as transmission in grey (air white, as officers are used to), with
//!   a square-root stretch that opens up the dense end where the interesting things are;
//! - the **heat layer**: the concealment probability as a transparent overlay (RGBA), so the
//!   review UI can switch it on and off over the scan. Its colour ramp runs from orange to
//!   yellow (luminance rising with probability), which reads under the common colour-vision
//!   deficiencies and stands apart from the grey scan.
//!
//! Finding boxes are not burnt in: the report carries them, and the UIs draw them as vectors.

use std::io::Cursor;

use baylens_models::ConcealmentOutput;
use image::{ImageBuffer, ImageFormat, Luma, Rgba};

/// Probability below which the heat layer is fully transparent.
pub const HEAT_FLOOR: f32 = 0.2;

/// Renders the preview PNG (grey transmission) from the high-energy readings.
pub fn render_preview(
    readings: &[u16],
    width: u32,
    height: u32,
    air: u16,
    dark: u16,
) -> Result<Vec<u8>, image::ImageError> {
    let span = f32::from(air.saturating_sub(dark)).max(1.0);
    let mut img = ImageBuffer::<Luma<u8>, Vec<u8>>::new(width, height);
    for (i, px) in img.pixels_mut().enumerate() {
        let t = ((f32::from(readings[i]) - f32::from(dark)) / span).clamp(0.0, 1.0);
        *px = Luma([(t.sqrt() * 255.0).round() as u8]);
    }
    let mut bytes = Vec::new();
    img.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)?;
    Ok(bytes)
}

/// Renders the concealment heat map as a transparent RGBA overlay of the scan's size.
pub fn render_heat_layer(
    width: u32,
    height: u32,
    output: &ConcealmentOutput,
) -> Result<Vec<u8>, image::ImageError> {
    let mut img = ImageBuffer::<Rgba<u8>, Vec<u8>>::new(width, height);
    for (i, px) in img.pixels_mut().enumerate() {
        let (r, c) = (i / width as usize, i % width as usize);
        let p = output.heatmap.get((r, c)).copied().unwrap_or(0.0);
        *px = if p < HEAT_FLOOR {
            Rgba([0, 0, 0, 0])
        } else {
            let t = ((p - HEAT_FLOOR) / (1.0 - HEAT_FLOOR)).clamp(0.0, 1.0);
            // Orange (230, 97, 0) to yellow (255, 230, 80); opacity grows with probability.
            let lerp = |a: f32, b: f32| (a + (b - a) * t).round() as u8;
            Rgba([
                lerp(230.0, 255.0),
                lerp(97.0, 230.0),
                lerp(0.0, 80.0),
                lerp(110.0, 200.0),
            ])
        };
    }
    let mut bytes = Vec::new();
    img.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn preview_shows_air_white_and_dense_dark() {
        let mut readings = vec![1000u16; 64];
        readings[9] = 0;
        let png = render_preview(&readings, 8, 8, 1000, 0).unwrap();
        let img = image::load_from_memory(&png).unwrap().into_luma8();
        assert_eq!(img.get_pixel(0, 0), &Luma([255]));
        assert_eq!(img.get_pixel(1, 1), &Luma([0]));
    }

    #[test]
    fn heat_layer_is_transparent_where_the_model_sees_nothing() {
        let mut heatmap = Array2::<f32>::zeros((8, 8));
        heatmap[[3, 3]] = 0.9;
        heatmap[[4, 4]] = 0.3;
        let output = ConcealmentOutput {
            heatmap,
            detections: vec![],
            max_probability: 0.9,
            flagged_fraction: 0.01,
            inference_ms: 1.0,
        };
        let png = render_heat_layer(8, 8, &output).unwrap();
        let img = image::load_from_memory(&png).unwrap().into_rgba8();
        assert_eq!(img.get_pixel(0, 0)[3], 0);
        let (hot, warm) = (img.get_pixel(3, 3), img.get_pixel(4, 4));
        assert!(hot[3] > warm[3] && warm[3] > 0, "{hot:?} {warm:?}");
        assert!(hot[1] > warm[1], "hotter is brighter");
    }
}
