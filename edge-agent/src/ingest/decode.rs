//! Decoding scan images: 16-bit grayscale PNG or TIFF only, sizes checked from the header
//! before a single pixel is decoded, so a small file that claims to be 100,000 x 100,000 pixels
//! (a decompression bomb) costs nothing.

use std::io::Cursor;

use baylens_protocol::sidecar::{MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE};
use image::{ColorType, DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

use super::Rejection;

/// A decoded single-channel 16-bit image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image16 {
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Readings, row-major, exactly as stored in the file.
    pub samples: Vec<u16>,
}

/// Decodes `bytes` (the contents of `name`) as a 16-bit grayscale PNG or TIFF.
pub fn decode_image16(name: &str, bytes: &[u8]) -> Result<Image16, Rejection> {
    let reject = |why: String| Rejection(format!("{name}: {why}"));
    if bytes.is_empty() {
        return Err(reject("file is empty".into()));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| reject(format!("cannot read: {e}")))?;
    match reader.format() {
        Some(ImageFormat::Png | ImageFormat::Tiff) => {}
        Some(other) => {
            return Err(reject(format!(
                "{other:?} is not accepted; send 16-bit grayscale PNG or TIFF"
            )));
        }
        None => {
            return Err(reject(
                "not a PNG or TIFF file (unrecognised signature)".into(),
            ));
        }
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    // Room for the decoded samples plus the decoder's own buffers.
    limits.max_alloc = Some(MAX_IMAGE_PIXELS * 2 * 2);
    reader.limits(limits);
    let decoder = reader
        .into_decoder()
        .map_err(|e| reject(format!("corrupt or oversized header: {e}")))?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(reject(format!("image is {width} x {height} pixels")));
    }
    if width > MAX_IMAGE_SIDE
        || height > MAX_IMAGE_SIDE
        || u64::from(width) * u64::from(height) > MAX_IMAGE_PIXELS
    {
        return Err(reject(format!(
            "image is {width} x {height} pixels; the limit is {MAX_IMAGE_SIDE} per side and {MAX_IMAGE_PIXELS} in all"
        )));
    }
    match decoder.color_type() {
        ColorType::L16 => {}
        ColorType::L8 => {
            return Err(reject(
                "8-bit grayscale; raw detector readings must be 16-bit".into(),
            ));
        }
        other => {
            return Err(reject(format!(
                "colour type {other:?}; scans must be single-channel 16-bit grayscale"
            )));
        }
    }
    let image = DynamicImage::from_decoder(decoder)
        .map_err(|e| reject(format!("corrupt image data: {e}")))?;
    let DynamicImage::ImageLuma16(buffer) = image else {
        return Err(reject("decoder did not return 16-bit grayscale".into()));
    };
    Ok(Image16 {
        width,
        height,
        samples: buffer.into_raw(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Luma, Rgb};

    fn png<P: image::Pixel<Subpixel = S> + image::PixelWithColorType, S: image::Primitive>(
        img: &ImageBuffer<P, Vec<S>>,
    ) -> Vec<u8>
    where
        [S]: image::EncodableLayout,
    {
        let mut bytes = Vec::new();
        img.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .unwrap();
        bytes
    }

    #[test]
    fn sixteen_bit_png_and_tiff_decode_exactly() {
        let samples: Vec<u16> = (0..12u16).map(|i| i * 5000 + 7).collect();
        let img = ImageBuffer::<Luma<u16>, _>::from_raw(4, 3, samples.clone()).unwrap();
        let decoded = decode_image16("a.png", &png(&img)).unwrap();
        assert_eq!((decoded.width, decoded.height), (4, 3));
        assert_eq!(decoded.samples, samples);
        let mut tiff = Vec::new();
        img.write_to(&mut Cursor::new(&mut tiff), ImageFormat::Tiff)
            .unwrap();
        assert_eq!(decode_image16("a.tif", &tiff).unwrap().samples, samples);
    }

    #[test]
    fn eight_bit_and_rgb_are_refused_with_the_reason() {
        let gray8 = ImageBuffer::<Luma<u8>, _>::from_raw(2, 2, vec![0u8; 4]).unwrap();
        let err = decode_image16("g.png", &png(&gray8)).unwrap_err();
        assert!(err.0.contains("g.png: 8-bit grayscale"), "{err}");
        let rgb = ImageBuffer::<Rgb<u16>, _>::from_raw(2, 2, vec![0u16; 12]).unwrap();
        let err = decode_image16("c.png", &png(&rgb)).unwrap_err();
        assert!(err.0.contains("Rgb16"), "{err}");
    }

    #[test]
    fn corrupt_truncated_empty_and_foreign_files_are_refused() {
        let img = ImageBuffer::<Luma<u16>, _>::from_raw(64, 64, vec![1000u16; 4096]).unwrap();
        let good = png(&img);
        assert!(
            decode_image16("t.png", &good[..good.len() / 2])
                .unwrap_err()
                .0
                .contains("t.png")
        );
        assert!(
            decode_image16("e.png", &[])
                .unwrap_err()
                .0
                .contains("empty")
        );
        assert!(
            decode_image16("x.png", b"hello world, not an image")
                .unwrap_err()
                .0
                .contains("not a PNG or TIFF")
        );
        let mut bad_crc = good.clone();
        let n = bad_crc.len();
        bad_crc[n - 20] ^= 0xff;
        assert!(decode_image16("c.png", &bad_crc).is_err());
    }

    #[test]
    fn a_decompression_bomb_is_refused_from_its_header() {
        // A valid PNG header claiming 100,000 x 100,000 16-bit pixels, with no data behind it.
        let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&[16, 0, 0, 0, 0]);
        bytes.extend_from_slice(&13u32.to_be_bytes());
        bytes.extend_from_slice(&ihdr);
        bytes.extend_from_slice(&crc32fast::hash(&ihdr).to_be_bytes());
        let err = decode_image16("bomb.png", &bytes).unwrap_err();
        assert!(err.0.starts_with("bomb.png:"), "{err}");
        assert!(
            err.0.contains("oversized") || err.0.contains("limit"),
            "{err}"
        );
    }
}
