//! The concealment heat layer, one of the overlay layers ([`crate::overlay`] renders the others
//! and the contrast-enhanced scan that serves as the preview):
//!
//! - the **heat layer**: the concealment probability as a transparent overlay (RGBA), so the
//!   review UI can switch it on and off over the scan. Its colour ramp runs from orange to
//!   yellow (luminance rising with probability), which reads under the common colour-vision
//!   deficiencies and stands apart from the grey scan.
//!
//! The UIs draw finding boxes as vectors from the report; the findings layer burns them in for
//! clients that only stack images.

use std::io::Cursor;

use baylens_models::ConcealmentOutput;
use image::{ImageBuffer, ImageFormat, Rgba};

/// Probability below which the heat layer is fully transparent.
pub const HEAT_FLOOR: f32 = 0.2;

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
