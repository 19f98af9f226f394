//! DICOS DX scans in (see `baylens_dicos::dx` for what is read from which attribute).
//!
//! A DICOS scan, one file or a high- and low-energy pair of one series, is turned into the
//! files of a `baylens.scan/1` scan (16-bit PNG images and a sidecar) without changing a
//! pixel, and from there follows the path of every other scan. The drop folder, the push API
//! and `edge-agent analyze` all convert here, so they accept and refuse the same files.
//!
//! - `scan_id` is `<bay>-DX-` and 16 hex digits of the sha256 of the Series Instance UID, so
//!   the same scan always gets the same id;
//! - the readings are taken as flat-field corrected, linear in the X-ray intensity: `air` is
//!   the largest value Bits Stored allows and `dark` is 0;
//! - `energy_mev` is KVP / 1000; the pitch comes from the pixel spacing (columns along the
//!   truck, rows vertical);
//! - a time without Timezone Offset From UTC is the agent's local time;
//! - OOI ID becomes `container_code` (an unreadable one becomes a finding, as in any scan)
//!   and Itinerary ID becomes `declaration_ref`.

use std::path::Path;

use baylens_dicos::dx::{self, DxImage, Energy};
use baylens_protocol::BayId;
use chrono::{DateTime, FixedOffset, Local, TimeZone};
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::Rejection;

/// Whether a file name is a DICOS file's (`.dcs`, the DICOS extension, or `.dcm`).
pub fn is_dicos_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !name.starts_with('.') && (lower.ends_with(".dcs") || lower.ends_with(".dcm"))
}

/// A converted scan: the files of a `baylens.scan/1` scan, images first and the sidecar last.
#[derive(Debug, Clone)]
pub struct Converted {
    /// The scan id given to it.
    pub scan_id: String,
    /// `(file name, bytes)`: the PNG image(s), then `<scan_id>.json`.
    pub files: Vec<(String, Vec<u8>)>,
    /// Things in the DICOS files that were left out, for the log.
    pub notes: Vec<String>,
}

impl Converted {
    /// The sidecar's file name.
    pub fn sidecar_name(&self) -> String {
        format!("{}.json", self.scan_id)
    }
}

fn png16(image: &DxImage) -> Result<Vec<u8>, Rejection> {
    let (w, h) = image.header.size;
    let bytes: Vec<u8> = image.pixels.iter().flat_map(|v| v.to_ne_bytes()).collect();
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive)
        .write_image(&bytes, w, h, ExtendedColorType::L16)
        .map_err(|e| Rejection(format!("cannot encode the image: {e}")))?;
    Ok(out)
}

/// Converts the DICOS files of one scan (`(name, bytes)`) into a `baylens.scan/1` scan of
/// `bay`. Every refusal names the file and the attribute.
pub fn convert(inputs: &[(String, Vec<u8>)], bay: &BayId) -> Result<Converted, Rejection> {
    let mut images = Vec::new();
    for (name, bytes) in inputs {
        let image = dx::read(bytes).map_err(|e| Rejection(format!("{name}: {e}")))?;
        images.push((name.as_str(), image));
    }
    let Some((first_name, first)) = images.first() else {
        return Err(Rejection("no DICOS file was given".into()));
    };
    let series = first.header.series_uid.clone();
    if let Some((name, _)) = images.iter().find(|(_, i)| i.header.series_uid != series) {
        return Err(Rejection(format!(
            "{name}: Series Instance UID (0020,000E) differs from {first_name}'s: the files are not one scan"
        )));
    }
    let expected = first.header.images_in_scan as usize;
    let high: Vec<_> = images
        .iter()
        .filter(|(_, i)| i.header.energy == Energy::High)
        .collect();
    let low: Vec<_> = images
        .iter()
        .filter(|(_, i)| i.header.energy == Energy::Low)
        .collect();
    if high.len() > 1 || low.len() > 1 {
        let names: Vec<&str> = images.iter().map(|(n, _)| *n).collect();
        return Err(Rejection(format!(
            "{}: two images of the same energy in series {series} (Image Type (0008,0008) value 3)",
            names.join(", ")
        )));
    }
    let names: Vec<&str> = images.iter().map(|(n, _)| *n).collect();
    let Some(&&(high_name, ref high)) = high.first() else {
        return Err(Rejection(format!(
            "{}: no HIGH ENERGY image in series {series} (Image Type (0008,0008) value 3)",
            names.join(", ")
        )));
    };
    if images.len() != expected {
        let why = if expected == 2 {
            "a dual-energy scan (Images in Acquisition (0020,1002), or both High and Low Energy \
             Detectors (4010,0002/0001)) needs its HIGH ENERGY and LOW ENERGY images"
        } else {
            "Images in Acquisition (0020,1002) says one image"
        };
        return Err(Rejection(format!(
            "{}: {} file(s) of series {series} given; {why}",
            names.join(", "),
            images.len()
        )));
    }
    let low = low.first().map(|&&(name, ref image)| (name, image));
    if let Some((low_name, low)) = low
        && low.header.size != high.header.size
    {
        return Err(Rejection(format!(
            "{low_name}: {}x{} pixels, {high_name} is {}x{}: the two energies must have one size",
            low.header.size.0, low.header.size.1, high.header.size.0, high.header.size.1
        )));
    }
    let hex = hex::encode(Sha256::digest(series.as_bytes()));
    let scan_id = format!("{bay}-DX-{}", &hex[..16]);
    let h = &high.header;
    let captured_at = captured_at(h.acquired, h.utc_offset);
    let mut notes = Vec::new();
    let mut files = Vec::new();
    let mut entries = Vec::new();
    for (energy, image) in std::iter::once(("high", high)).chain(low.map(|(_, i)| ("low", i))) {
        let file = format!("{scan_id}.{energy}.png");
        // Flat-field corrected readings: air is the top of the stored range.
        let air = (1u32 << image.header.bits_stored) - 1;
        entries.push(json!({
            "file": file, "energy": energy, "energy_mev": image.header.kvp / 1000.0,
            "air": air, "dark": 0,
        }));
        files.push((file, png16(image)?));
    }
    let (row_mm, col_mm) = h.spacing_mm;
    let mut sidecar = json!({
        "contract": baylens_protocol::sidecar::SCAN_CONTRACT,
        "scan_id": scan_id,
        "bay": bay.as_str(),
        "captured_at": captured_at.to_rfc3339(),
        "images": entries,
        "pixel_pitch_mm": col_mm,
    });
    if (row_mm - col_mm).abs() > 1e-9 {
        sidecar["pixel_pitch_vertical_mm"] = json!(row_mm);
    }
    match &h.ooi_id {
        Some(id) if id.len() <= baylens_protocol::sidecar::MAX_RAW_CONTAINER_CODE => {
            sidecar["container_code"] = json!(id);
        }
        Some(id) => notes.push(format!(
            "OOI ID (0010,0020) {id:?} is too long for a container code; left out"
        )),
        None => {}
    }
    match &h.itinerary_id {
        Some(id) if id.chars().count() <= 64 && id.chars().all(|c| !c.is_control()) => {
            sidecar["declaration_ref"] = json!(id);
        }
        Some(id) => notes.push(format!("Itinerary ID (4010,1051) {id:?} is not a declaration reference (1-64 printable characters); left out")),
        None => {}
    }
    let sidecar_bytes = serde_json::to_vec_pretty(&sidecar)
        .map_err(|e| Rejection(format!("cannot write the sidecar: {e}")))?;
    files.push((format!("{scan_id}.json"), sidecar_bytes));
    Ok(Converted {
        scan_id,
        files,
        notes,
    })
}

fn captured_at(naive: chrono::NaiveDateTime, offset: Option<FixedOffset>) -> DateTime<FixedOffset> {
    match offset {
        Some(o) => o
            .from_local_datetime(&naive)
            .single()
            .unwrap_or_else(|| naive.and_utc().fixed_offset()),
        None => Local
            .from_local_datetime(&naive)
            .earliest()
            .map_or_else(|| naive.and_utc().fixed_offset(), |t| t.fixed_offset()),
    }
}

/// Reads the files at `paths` (each at most `max_bytes`) and converts them.
pub fn convert_files(paths: &[&Path], bay: &BayId, max_bytes: u64) -> Result<Converted, Rejection> {
    let mut inputs = Vec::new();
    for path in paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        inputs.push((name, read_capped(path, max_bytes)?));
    }
    convert(&inputs, bay)
}

/// The bytes of the file at `path`, refused without reading when over `max_bytes`; messages
/// name the file.
pub fn read_capped(path: &Path, max_bytes: u64) -> Result<Vec<u8>, Rejection> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let len = std::fs::metadata(path)
        .map_err(|e| Rejection(format!("{name}: cannot read: {e}")))?
        .len();
    if len > max_bytes {
        return Err(Rejection(format!(
            "{name}: {len} bytes exceeds the limit of {max_bytes} bytes"
        )));
    }
    std::fs::read(path).map_err(|e| Rejection(format!("{name}: cannot read: {e}")))
}

/// Writes a converted scan into `dir`: each file under a hidden temporary name, fsynced and
/// renamed, images first and the sidecar last, then the folder fsynced. A file of the same
/// name already there is left alone (the same scan converted before a crash).
pub fn write_into(dir: &Path, converted: &Converted) -> std::io::Result<()> {
    for (name, bytes) in &converted.files {
        let target = dir.join(name);
        if target.exists() {
            continue;
        }
        let tmp = dir.join(format!(".{name}.tmp"));
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &target)?;
    }
    std::fs::File::open(dir)?.sync_all()
}
