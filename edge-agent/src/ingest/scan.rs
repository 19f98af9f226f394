//! Reading one scan from disk: the sidecar, then each image it names, size-checked and decoded.
//! Shared by the drop folder path of the agent and by `edge-agent analyze`.

use std::path::Path;

use baylens_protocol::{Energy, ScanImage, ScanSidecar};
use chrono::Utc;

use super::Rejection;
use super::decode::{Image16, decode_image16};

/// A scan read and decoded, every check passed.
#[derive(Debug, Clone)]
pub struct LoadedScan {
    /// The validated sidecar.
    pub sidecar: ScanSidecar,
    /// The raw files: `sidecar.json` first, then the images in sidecar order.
    pub files: Vec<(String, Vec<u8>)>,
    /// The decoded images, in sidecar order.
    pub images: Vec<Image16>,
}

impl LoadedScan {
    /// Index of the high-energy image (the first, on a single-energy scan).
    pub fn high_index(&self) -> usize {
        self.sidecar
            .images
            .iter()
            .position(|i| i.energy == Energy::High)
            .unwrap_or(0)
    }

    /// The high-energy image and its sidecar entry.
    pub fn high(&self) -> (&Image16, &ScanImage) {
        let i = self.high_index();
        (&self.images[i], &self.sidecar.images[i])
    }

    /// The low-energy image and its sidecar entry, on a dual-energy scan.
    pub fn low(&self) -> Option<(&Image16, &ScanImage)> {
        let i = self
            .sidecar
            .images
            .iter()
            .position(|i| i.energy == Energy::Low)?;
        Some((&self.images[i], &self.sidecar.images[i]))
    }
}

/// Reads the sidecar at `sidecar_path` and every image it names (each at most
/// `max_image_bytes`), decodes them, and checks that a dual-energy pair has one size.
pub fn load_scan(sidecar_path: &Path, max_image_bytes: u64) -> Result<LoadedScan, Rejection> {
    let sidecar_name = sidecar_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let sidecar_bytes = std::fs::read(sidecar_path)
        .map_err(|e| Rejection(format!("{sidecar_name}: cannot read: {e}")))?;
    let sidecar = ScanSidecar::from_json(&sidecar_bytes, Utc::now())
        .map_err(|e| Rejection(format!("{sidecar_name}: {e}")))?;
    let mut files = vec![("sidecar.json".to_owned(), sidecar_bytes)];
    let mut raw = Vec::new();
    for image in &sidecar.images {
        let path = sidecar_path.with_file_name(&image.file);
        let len = std::fs::metadata(&path)
            .map_err(|_| {
                Rejection(format!(
                    "{}: named in {sidecar_name} but not found",
                    image.file
                ))
            })?
            .len();
        if len > max_image_bytes {
            return Err(Rejection(format!(
                "{}: {len} bytes exceeds the limit of {max_image_bytes} bytes",
                image.file
            )));
        }
        let bytes = std::fs::read(&path)
            .map_err(|e| Rejection(format!("{}: cannot read: {e}", image.file)))?;
        raw.push((image.file.clone(), bytes));
    }
    // The two energies decode side by side (PNG inflate is most of the time).
    let images = std::thread::scope(|s| {
        let handles: Vec<_> = raw
            .iter()
            .map(|(name, bytes)| s.spawn(move || decode_image16(name, bytes)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Rejection("image decoder panicked".into())))
            })
            .collect::<Result<Vec<_>, Rejection>>()
    })?;
    files.extend(raw);
    if let [a, b] = images.as_slice()
        && (a.width, a.height) != (b.width, b.height)
    {
        return Err(Rejection(format!(
            "dual-energy images differ in size: {} is {}x{}, {} is {}x{}",
            sidecar.images[0].file, a.width, a.height, sidecar.images[1].file, b.width, b.height
        )));
    }
    Ok(LoadedScan {
        sidecar,
        files,
        images,
    })
}
