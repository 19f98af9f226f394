//! The preview image sent with each report: the scan as transmission in grey (air white, as
//! officers are used to), the concealment heat map in red, and each finding boxed. It is an
//! 8-bit PNG a fraction of the size of the raw 16-bit scan, which suits a weak bay uplink.

use std::io::Cursor;

use baylens_models::ConcealmentOutput;
use image::{ImageBuffer, ImageFormat, Rgb};

/// Renders the preview PNG from the high-energy readings and the model output.
pub fn render_preview(
    readings: &[u16],
    width: u32,
    height: u32,
    air: u16,
    dark: u16,
    output: &ConcealmentOutput,
) -> Result<Vec<u8>, image::ImageError> {
    let span = f32::from(air.saturating_sub(dark)).max(1.0);
    let mut img = ImageBuffer::<Rgb<u8>, Vec<u8>>::new(width, height);
    for (i, px) in img.pixels_mut().enumerate() {
        let t = ((f32::from(readings[i]) - f32::from(dark)) / span).clamp(0.0, 1.0);
        // Square root stretches the dark, dense end where the interesting things are.
        let grey = t.sqrt() * 255.0;
        let (r, c) = (i / width as usize, i % width as usize);
        let heat = output.heatmap.get((r, c)).copied().unwrap_or(0.0);
        let alpha = if heat > 0.2 { heat * 0.6 } else { 0.0 };
        let blend = |base: f32, over: f32| (base * (1.0 - alpha) + over * alpha).round() as u8;
        *px = Rgb([blend(grey, 255.0), blend(grey, 30.0), blend(grey, 30.0)]);
    }
    for d in &output.detections {
        let (x0, y0) = (d.x, d.y);
        let (x1, y1) = (
            (d.x + d.width).min(width) - 1,
            (d.y + d.height).min(height) - 1,
        );
        let yellow = Rgb([255u8, 220, 0]);
        for x in x0..=x1 {
            img.put_pixel(x, y0, yellow);
            img.put_pixel(x, y1, yellow);
        }
        for y in y0..=y1 {
            img.put_pixel(x0, y, yellow);
            img.put_pixel(x1, y, yellow);
        }
    }
    let mut bytes = Vec::new();
    img.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use baylens_models::Detection;
    use ndarray::Array2;

    #[test]
    fn preview_shows_air_white_and_boxes_findings() {
        let mut heatmap = Array2::<f32>::zeros((8, 8));
        heatmap[[3, 3]] = 0.9;
        let output = ConcealmentOutput {
            heatmap,
            detections: vec![Detection {
                x: 2,
                y: 2,
                width: 4,
                height: 4,
                score: 0.9,
                pixels: 16,
            }],
            max_probability: 0.9,
            flagged_fraction: 0.01,
            inference_ms: 1.0,
        };
        let readings = vec![1000u16; 64];
        let png = render_preview(&readings, 8, 8, 1000, 0, &output).unwrap();
        let img = image::load_from_memory(&png).unwrap().into_rgb8();
        assert_eq!(img.get_pixel(0, 0), &Rgb([255, 255, 255]));
        assert_eq!(img.get_pixel(2, 2), &Rgb([255, 220, 0]));
        let hot = img.get_pixel(3, 3);
        assert!(hot[0] > hot[1] + 50, "{hot:?}");
    }
}
