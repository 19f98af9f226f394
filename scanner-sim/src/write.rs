//! Writing a simulated scan as the files of the scan contract (`baylens.scan/1`).
//!
//! Every file is written under a temporary name starting with `.` and renamed into place, images
//! first and the sidecar last, so an agent watching the folder never sees a half-written scan.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use baylens_protocol::sidecar::SCAN_CONTRACT;
use baylens_protocol::{BayId, ContainerCode, Energy, ScanId, ScanImage, ScanSidecar};
use chrono::{DateTime, Utc};
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ImageBuffer, Luma};

use crate::render::SimulatedScan;

/// Paths of the files written for one scan.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanFiles {
    /// The sidecar JSON.
    pub sidecar: PathBuf,
    /// High-energy image.
    pub high: PathBuf,
    /// Low-energy image.
    pub low: PathBuf,
    /// Truth mask (8-bit, 255 = concealed), when asked for.
    pub mask: Option<PathBuf>,
}

/// What the scanner knows about the scan besides the pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanMeta {
    /// Scan id, also the file-name stem.
    pub scan_id: ScanId,
    /// Bay.
    pub bay: BayId,
    /// Capture time.
    pub captured_at: DateTime<Utc>,
    /// Container code as the gate OCR read it.
    pub container_code: Option<ContainerCode>,
    /// Declaration reference.
    pub declaration_ref: Option<String>,
}

/// Writes a scan into `dir`: both images, optionally the truth mask, then the sidecar.
pub fn write_scan(
    dir: &Path,
    scan: &SimulatedScan,
    meta: &ScanMeta,
    with_mask: bool,
) -> std::io::Result<ScanFiles> {
    fs::create_dir_all(dir)?;
    let stem = meta.scan_id.as_str();
    let high_name = format!("{stem}.high.png");
    let low_name = format!("{stem}.low.png");
    let high = write_png16(dir, &high_name, scan.width, scan.height, &scan.high)?;
    let low = write_png16(dir, &low_name, scan.width, scan.height, &scan.low)?;
    let mask = if with_mask {
        let pixels: Vec<u8> = scan.concealment_mask.iter().map(|&m| m * 255).collect();
        let img = ImageBuffer::<Luma<u8>, _>::from_raw(scan.width, scan.height, pixels)
            .ok_or_else(|| std::io::Error::other("mask size does not match the scan"))?;
        Some(write_atomic(
            dir,
            &format!("{stem}.mask.png"),
            &encode_png(&img)?,
        )?)
    } else {
        None
    };
    let sidecar = ScanSidecar {
        contract: SCAN_CONTRACT.to_owned(),
        scan_id: meta.scan_id.clone(),
        bay: meta.bay.clone(),
        captured_at: meta.captured_at,
        images: vec![
            ScanImage {
                file: high_name,
                energy: Energy::High,
                energy_mev: scan.high_detector.energy_mev,
                air: scan.high_detector.air,
                dark: scan.high_detector.dark,
            },
            ScanImage {
                file: low_name,
                energy: Energy::Low,
                energy_mev: scan.low_detector.energy_mev,
                air: scan.low_detector.air,
                dark: scan.low_detector.dark,
            },
        ],
        pixel_pitch_mm: scan.pitch_mm,
        pixel_pitch_vertical_mm: (scan.pitch_vertical_mm != scan.pitch_mm)
            .then_some(scan.pitch_vertical_mm),
        container_code: meta.container_code.clone(),
        declaration_ref: meta.declaration_ref.clone(),
        unreadable_container_code: None,
    };
    let json = serde_json::to_vec_pretty(&sidecar).map_err(std::io::Error::other)?;
    let sidecar = write_atomic(dir, &format!("{stem}.json"), &json)?;
    Ok(ScanFiles {
        sidecar,
        high,
        low,
        mask,
    })
}

/// Writes the trader's declaration as `dir/<reference>.json` (what a trader would lodge with
/// `POST /api/v1/declarations`).
pub fn write_declaration(
    dir: &Path,
    declaration: &baylens_protocol::Declaration,
) -> std::io::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    let json = serde_json::to_vec_pretty(declaration).map_err(std::io::Error::other)?;
    write_atomic(dir, &format!("{}.json", declaration.reference), &json)
}

/// Encodes 16-bit grayscale samples as PNG.
pub fn encode_png16(width: u32, height: u32, samples: &[u16]) -> std::io::Result<Vec<u8>> {
    let img = ImageBuffer::<Luma<u16>, _>::from_raw(width, height, samples.to_vec())
        .ok_or_else(|| std::io::Error::other("sample count does not match the image size"))?;
    encode_png(&img)
}

/// Encodes an image buffer as PNG (fast compression).
pub fn encode_png<P>(img: &ImageBuffer<P, Vec<P::Subpixel>>) -> std::io::Result<Vec<u8>>
where
    P: image::Pixel + image::PixelWithColorType,
    [P::Subpixel]: image::EncodableLayout,
{
    // Fast compression: scans are large and written often; PNG stays lossless either way.
    let mut bytes = Vec::new();
    let encoder = PngEncoder::new_with_quality(&mut bytes, CompressionType::Fast, FilterType::Sub);
    img.write_with_encoder(encoder)
        .map_err(std::io::Error::other)?;
    Ok(bytes)
}

fn write_png16(
    dir: &Path,
    name: &str,
    width: u32,
    height: u32,
    samples: &[u16],
) -> std::io::Result<PathBuf> {
    write_atomic(dir, name, &encode_png16(width, height, samples)?)
}

/// Writes `bytes` to `dir/name` through a hidden temporary file, fsynced, then renamed.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let dest = dir.join(name);
    let mut f = fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, &dest)?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{render, scan_rng, scene};

    #[test]
    fn written_scan_round_trips_16_bit_and_its_sidecar_validates() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = scan_rng(9, 0);
        let scene = scene::build(
            scene::Scenario::Concealment,
            scene::SceneOptions::default(),
            &mut rng,
        );
        let scan = render(&scene, crate::RenderOptions::default(), &mut rng);
        let meta = ScanMeta {
            scan_id: ScanId::parse("T-1").unwrap(),
            bay: BayId::parse("BAY01").unwrap(),
            captured_at: Utc::now(),
            container_code: Some(ContainerCode::parse("CSQU3054383").unwrap()),
            declaration_ref: None,
        };
        let files = write_scan(dir.path(), &scan, &meta, true).unwrap();
        let decoded = image::open(&files.high).unwrap().into_luma16();
        assert_eq!(decoded.into_raw(), scan.high);
        let sidecar =
            ScanSidecar::from_json(&fs::read(&files.sidecar).unwrap(), Utc::now()).unwrap();
        assert_eq!(sidecar.scan_id.as_str(), "T-1");
        assert!(files.mask.is_some());
        // No temporary files are left behind.
        let hidden = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with('.')
            })
            .count();
        assert_eq!(hidden, 0);
    }
}
