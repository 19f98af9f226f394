//! Reading **DICOS DX** scans (SOP classes `1.2.840.10008.5.1.4.1.1.501.2.1`, for
//! presentation, and `.501.2.2`, for processing) with dicom-rs. One DX instance holds one
//! image; a dual-energy scan is two instances of one series, a high- and a low-energy image.
//!
//! What is read, and from where:
//!
//! | what | attribute |
//! |---|---|
//! | the image | Rows (0028,0010), Columns (0028,0011), Pixel Data (7FE0,0010): one frame, one sample, 16 bits allocated, unsigned, MONOCHROME2, pixel intensity relationship LIN when given |
//! | energy | Image Type (0008,0008) value 3, `HIGH ENERGY` or `LOW ENERGY` (DICOS OOI image characteristics); without it, the one of High Energy Detectors (4010,0002) and Low Energy Detectors (4010,0001) present |
//! | images in the scan | Images in Acquisition (0020,1002) when given; otherwise 2 when both detector attributes are present (a dual-energy scanner), else 1 |
//! | beam energy | KVP (0018,0060), in kV |
//! | pitch at the object | Pixel Spacing (0028,0030); otherwise Imager Pixel Spacing (0018,1164) divided by Estimated Radiographic Magnification Factor (0018,1114) when given |
//! | when | Acquisition DateTime (0008,002A), else Acquisition Date and Time (0008,0022/0032), else Content Date and Time (0008,0023/0033); Timezone Offset From UTC (0008,0201) when given |
//! | container | OOI ID (0010,0020) |
//! | itinerary | Itinerary ID (4010,1051) |
//!
//! Transfer syntaxes: Implicit and Explicit VR Little Endian, Explicit VR Big Endian, and RLE
//! Lossless. Any other is refused by name. Every refusal names the attribute.

use std::fmt;
use std::io::Cursor;

use chrono::{FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};
use dicom_core::Tag;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_dictionary_std::tags;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::file::ReadPreamble;
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

/// SOP class of a DICOS DX image for presentation.
pub const DX_FOR_PRESENTATION: &str = "1.2.840.10008.5.1.4.1.1.501.2.1";
/// SOP class of a DICOS DX image for processing.
pub const DX_FOR_PROCESSING: &str = "1.2.840.10008.5.1.4.1.1.501.2.2";

/// Transfer syntaxes read: (UID, name).
pub const TRANSFER_SYNTAXES: [(&str, &str); 4] = [
    ("1.2.840.10008.1.2", "Implicit VR Little Endian"),
    ("1.2.840.10008.1.2.1", "Explicit VR Little Endian"),
    ("1.2.840.10008.1.2.2", "Explicit VR Big Endian"),
    ("1.2.840.10008.1.2.5", "RLE Lossless"),
];
const RLE_LOSSLESS: &str = "1.2.840.10008.1.2.5";

/// Largest side of an image, pixels (as `baylens.scan/1`).
pub const MAX_SIDE: u32 = 16_384;
/// Largest image area, pixels (as `baylens.scan/1`).
pub const MAX_AREA: u64 = 64 * 1024 * 1024;

/// Which energy an image was taken at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Energy {
    /// The high-energy image.
    High,
    /// The low-energy image.
    Low,
}

/// Why a file is not a usable DICOS DX scan; the text names the attribute and the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DxError(pub String);

impl fmt::Display for DxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DxError {}

fn fail<T>(message: impl Into<String>) -> Result<T, DxError> {
    Err(DxError(message.into()))
}

/// Everything BayLens takes from a DX instance but its pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct DxHeader {
    /// SOP Class UID (0008,0016).
    pub sop_class: String,
    /// SOP Instance UID (0008,0018).
    pub sop_instance_uid: String,
    /// Series Instance UID (0020,000E): the two images of a dual-energy scan share it.
    pub series_uid: String,
    /// The transfer syntax's name.
    pub transfer_syntax: &'static str,
    /// Which energy this image is.
    pub energy: Energy,
    /// How many images the scan has (1 or 2).
    pub images_in_scan: u32,
    /// Nominal peak voltage, kV.
    pub kvp: f64,
    /// Pitch between rows (vertical) and between columns (along the truck), mm at the object.
    pub spacing_mm: (f64, f64),
    /// When the image was acquired, as written.
    pub acquired: NaiveDateTime,
    /// The offset from UTC, when the file gives one.
    pub utc_offset: Option<FixedOffset>,
    /// OOI ID (0010,0020): the container's number, for cargo.
    pub ooi_id: Option<String>,
    /// Itinerary ID (4010,1051).
    pub itinerary_id: Option<String>,
    /// Image width (Columns) and height (Rows), pixels.
    pub size: (u32, u32),
    /// Bits Stored (0028,0101): readings run from 0 to `2^bits_stored - 1`.
    pub bits_stored: u32,
}

/// A DX image: its header and its pixels, row by row.
#[derive(Debug, Clone)]
pub struct DxImage {
    /// The header.
    pub header: DxHeader,
    /// The pixels, `width × height`, row-major.
    pub pixels: Vec<u16>,
}

fn open(bytes: &[u8], until_pixels: bool) -> Result<DefaultDicomObject, DxError> {
    let mut options = OpenFileOptions::new().read_preamble(ReadPreamble::Auto);
    if until_pixels {
        options = options.read_until(tags::PIXEL_DATA);
    }
    options.from_reader(Cursor::new(bytes)).map_err(|e| {
        DxError(format!(
            "not a DICOM file (preamble, DICM and file meta group): {e}"
        ))
    })
}

/// Reads a DX instance's header only (the pixels are not decoded).
pub fn read_header(bytes: &[u8]) -> Result<DxHeader, DxError> {
    header(&open(bytes, true)?)
}

/// The Series Instance UID of a DICOM file, nothing checked: for grouping files into scans
/// before each is read in full (and refused, if so, with its own reason).
pub fn series_of(bytes: &[u8]) -> Option<String> {
    text(&open(bytes, true).ok()?, tags::SERIES_INSTANCE_UID)
}

/// Reads a DX instance: header and pixels.
pub fn read(bytes: &[u8]) -> Result<DxImage, DxError> {
    let obj = open(bytes, false)?;
    let header = header(&obj)?;
    let pixels = pixels(&obj, &header)?;
    Ok(DxImage { header, pixels })
}

fn text(obj: &DefaultDicomObject, tag: Tag) -> Option<String> {
    let s = obj.get(tag)?.to_str().ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!s.is_empty()).then(|| s.to_owned())
}

fn required(obj: &DefaultDicomObject, tag: Tag, name: &str) -> Result<String, DxError> {
    text(obj, tag).map_or_else(|| fail(format!("{name} {} is missing", show(tag))), Ok)
}

fn show(tag: Tag) -> String {
    format!("({:04X},{:04X})", tag.group(), tag.element())
}

fn number(obj: &DefaultDicomObject, tag: Tag, name: &str) -> Result<Option<u32>, DxError> {
    match obj.get(tag) {
        None => Ok(None),
        Some(e) => e
            .to_int::<u32>()
            .map(Some)
            .map_err(|_| DxError(format!("{name} {} is not a whole number", show(tag)))),
    }
}

fn header(obj: &DefaultDicomObject) -> Result<DxHeader, DxError> {
    let ts_uid = obj
        .meta()
        .transfer_syntax()
        .trim_end_matches('\0')
        .to_owned();
    let Some(&(_, transfer_syntax)) = TRANSFER_SYNTAXES.iter().find(|(u, _)| *u == ts_uid) else {
        let name = TransferSyntaxRegistry
            .get(&ts_uid)
            .map_or("an unknown transfer syntax", |t| t.name());
        return fail(format!(
            "Transfer Syntax UID (0002,0010) is {ts_uid} ({name}): only {} are read",
            TRANSFER_SYNTAXES.map(|t| t.1).join(", ")
        ));
    };
    let sop_class = required(obj, tags::SOP_CLASS_UID, "SOP Class UID")?;
    if sop_class != DX_FOR_PRESENTATION && sop_class != DX_FOR_PROCESSING {
        return fail(format!(
            "SOP Class UID (0008,0016) is {sop_class}: not a DICOS DX image \
             ({DX_FOR_PRESENTATION} or {DX_FOR_PROCESSING})"
        ));
    }
    let sop_instance_uid = required(obj, tags::SOP_INSTANCE_UID, "SOP Instance UID")?;
    let series_uid = required(obj, tags::SERIES_INSTANCE_UID, "Series Instance UID")?;
    let low_detectors = text(obj, tags::LOW_ENERGY_DETECTORS).is_some();
    let high_detectors = text(obj, tags::HIGH_ENERGY_DETECTORS).is_some();
    let characteristics = obj
        .get(tags::IMAGE_TYPE)
        .and_then(|e| e.to_str().ok())
        .and_then(|s| s.split('\\').nth(2).map(|v| v.trim().to_ascii_uppercase()));
    let energy = match (characteristics.as_deref(), low_detectors, high_detectors) {
        (Some("HIGH ENERGY"), ..) => Energy::High,
        (Some("LOW ENERGY"), ..) => Energy::Low,
        (_, false, true) => Energy::High,
        (_, true, false) => Energy::Low,
        _ => {
            return fail(
                "the image's energy is not given: Image Type (0008,0008) value 3 is neither \
                 HIGH ENERGY nor LOW ENERGY, and not exactly one of High Energy Detectors \
                 (4010,0002) and Low Energy Detectors (4010,0001) is present",
            );
        }
    };
    let images_in_scan = match number(obj, tags::IMAGES_IN_ACQUISITION, "Images in Acquisition")? {
        Some(n @ 1..=2) => n,
        Some(n) => {
            return fail(format!(
                "Images in Acquisition (0020,1002) is {n}: a DX scan has one image or two (high and low energy)"
            ));
        }
        None if low_detectors && high_detectors => 2,
        None => 1,
    };
    let kvp = obj
        .get(tags::KVP)
        .map(|e| e.to_float64())
        .ok_or_else(|| DxError("KVP (0018,0060) is missing".into()))?
        .map_err(|_| DxError("KVP (0018,0060) is not a number".into()))?;
    if !(kvp > 0.0 && kvp <= 20_000.0) {
        return fail(format!("KVP (0018,0060) is {kvp}: outside (0, 20000] kV"));
    }
    let spacing_mm = spacing(obj)?;
    let (acquired, utc_offset) = when(obj)?;
    let rows = number(obj, tags::ROWS, "Rows")?
        .ok_or_else(|| DxError("Rows (0028,0010) is missing".into()))?;
    let cols = number(obj, tags::COLUMNS, "Columns")?
        .ok_or_else(|| DxError("Columns (0028,0011) is missing".into()))?;
    if rows == 0
        || cols == 0
        || rows > MAX_SIDE
        || cols > MAX_SIDE
        || u64::from(rows) * u64::from(cols) > MAX_AREA
    {
        return fail(format!(
            "Rows (0028,0010) × Columns (0028,0011) is {rows} × {cols}: each side must be 1 to \
             {MAX_SIDE} pixels and the area at most {MAX_AREA}"
        ));
    }
    let bits_stored = check_pixel_format(obj)?;
    Ok(DxHeader {
        sop_class,
        sop_instance_uid,
        series_uid,
        transfer_syntax,
        energy,
        images_in_scan,
        kvp,
        spacing_mm,
        acquired,
        utc_offset,
        ooi_id: text(obj, tags::PATIENT_ID),
        itinerary_id: text(obj, tags::ITINERARY_ID),
        size: (cols, rows),
        bits_stored,
    })
}

/// Checks the pixel format; returns Bits Stored.
fn check_pixel_format(obj: &DefaultDicomObject) -> Result<u32, DxError> {
    let expect = |tag: Tag, name: &str, want: u32| -> Result<(), DxError> {
        match number(obj, tag, name)? {
            Some(v) if v == want => Ok(()),
            Some(v) => fail(format!("{name} {} is {v}: BayLens reads {want}", show(tag))),
            None => fail(format!("{name} {} is missing", show(tag))),
        }
    };
    expect(tags::SAMPLES_PER_PIXEL, "Samples per Pixel", 1)?;
    expect(tags::BITS_ALLOCATED, "Bits Allocated", 16)?;
    expect(tags::PIXEL_REPRESENTATION, "Pixel Representation", 0)?;
    let bits_stored = match number(obj, tags::BITS_STORED, "Bits Stored")? {
        Some(v @ 8..=16) => v,
        Some(v) => {
            return fail(format!(
                "Bits Stored (0028,0101) is {v}: BayLens reads 8 to 16"
            ));
        }
        None => return fail("Bits Stored (0028,0101) is missing"),
    };
    if let Some(high_bit) = number(obj, tags::HIGH_BIT, "High Bit")?
        && high_bit + 1 != bits_stored
    {
        return fail(format!(
            "High Bit (0028,0102) is {high_bit}: with Bits Stored {bits_stored} it must be {}",
            bits_stored - 1
        ));
    }
    if let Some(n) = number(obj, tags::NUMBER_OF_FRAMES, "Number of Frames")?
        && n != 1
    {
        return fail(format!(
            "Number of Frames (0028,0008) is {n}: a DX image has one frame"
        ));
    }
    let photometric = required(
        obj,
        tags::PHOTOMETRIC_INTERPRETATION,
        "Photometric Interpretation",
    )?;
    if photometric != "MONOCHROME2" {
        return fail(format!(
            "Photometric Interpretation (0028,0004) is {photometric}: BayLens reads MONOCHROME2 \
             (the reading grows with the X-rays that reach the detector)"
        ));
    }
    if let Some(rel) = text(obj, tags::PIXEL_INTENSITY_RELATIONSHIP)
        && rel != "LIN"
    {
        return fail(format!(
            "Pixel Intensity Relationship (0028,1040) is {rel}: BayLens reads LIN (readings \
             proportional to the X-ray intensity)"
        ));
    }
    Ok(bits_stored)
}

fn pair(obj: &DefaultDicomObject, tag: Tag, name: &str) -> Result<Option<(f64, f64)>, DxError> {
    let Some(e) = obj.get(tag) else {
        return Ok(None);
    };
    match e.to_multi_float64().as_deref() {
        Ok([r, c]) if *r > 0.0 && *c > 0.0 && *r <= 1000.0 && *c <= 1000.0 => Ok(Some((*r, *c))),
        _ => fail(format!(
            "{name} {} must be two numbers in (0, 1000] mm (row spacing \\ column spacing)",
            show(tag)
        )),
    }
}

fn spacing(obj: &DefaultDicomObject) -> Result<(f64, f64), DxError> {
    if let Some(s) = pair(obj, tags::PIXEL_SPACING, "Pixel Spacing")? {
        return Ok(s);
    }
    let Some((r, c)) = pair(obj, tags::IMAGER_PIXEL_SPACING, "Imager Pixel Spacing")? else {
        return fail(
            "Pixel Spacing (0028,0030) is missing, and so is Imager Pixel Spacing (0018,1164): \
             the scan's pitch is unknown",
        );
    };
    let magnification = match obj.get(tags::ESTIMATED_RADIOGRAPHIC_MAGNIFICATION_FACTOR) {
        None => 1.0,
        Some(e) => match e.to_float64() {
            Ok(m) if m > 0.0 => m,
            _ => {
                return fail(
                    "Estimated Radiographic Magnification Factor (0018,1114) must be a positive number",
                );
            }
        },
    };
    Ok((r / magnification, c / magnification))
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.get(..8)?, "%Y%m%d").ok()
}

/// A DICOM TM value (`HH`, `HHMM`, `HHMMSS`, `HHMMSS.F…`).
fn parse_time(s: &str) -> Option<NaiveTime> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |r: std::ops::Range<usize>| whole.get(r).map(str::parse::<u32>);
    let h = digits(0..2)?.ok()?;
    let m = if whole.len() >= 4 {
        digits(2..4)?.ok()?
    } else {
        0
    };
    let sec = if whole.len() >= 6 {
        digits(4..6)?.ok()?
    } else {
        0
    };
    if !matches!(whole.len(), 2 | 4 | 6) {
        return None;
    }
    let micros = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").get(..6)?.parse::<u32>().ok()?
    };
    NaiveTime::from_hms_micro_opt(h, m, sec, micros)
}

/// `+HHMM` / `-HHMM`.
fn parse_offset(s: &str) -> Option<FixedOffset> {
    let sign = match s.get(..1)? {
        "+" => 1,
        "-" => -1,
        _ => return None,
    };
    let h: i32 = s.get(1..3)?.parse().ok()?;
    let m: i32 = s.get(3..5)?.parse().ok()?;
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

fn when(obj: &DefaultDicomObject) -> Result<(NaiveDateTime, Option<FixedOffset>), DxError> {
    let mut offset = match text(obj, tags::TIMEZONE_OFFSET_FROM_UTC) {
        None => None,
        Some(s) => Some(parse_offset(&s).ok_or_else(|| {
            DxError(format!(
                "Timezone Offset From UTC (0008,0201) is {s:?}: expected +HHMM or -HHMM"
            ))
        })?),
    };
    if let Some(dt) = text(obj, tags::ACQUISITION_DATE_TIME) {
        let bad = || {
            DxError(format!(
                "Acquisition DateTime (0008,002A) is {dt:?}: expected YYYYMMDDHHMMSS"
            ))
        };
        let (body, zone) = match dt.find(['+', '-']) {
            Some(i) => (&dt[..i], Some(&dt[i..])),
            None => (dt.as_str(), None),
        };
        let date = parse_date(body).ok_or_else(bad)?;
        let time =
            parse_time(body.get(8..).filter(|t| !t.is_empty()).unwrap_or("00")).ok_or_else(bad)?;
        if let Some(z) = zone {
            offset = Some(parse_offset(z).ok_or_else(bad)?);
        }
        return Ok((date.and_time(time), offset));
    }
    for (date_tag, time_tag, what) in [
        (
            tags::ACQUISITION_DATE,
            tags::ACQUISITION_TIME,
            "Acquisition",
        ),
        (tags::CONTENT_DATE, tags::CONTENT_TIME, "Content"),
    ] {
        if let (Some(d), Some(t)) = (text(obj, date_tag), text(obj, time_tag)) {
            let date = parse_date(&d).ok_or_else(|| {
                DxError(format!(
                    "{what} Date {} is {d:?}: expected YYYYMMDD",
                    show(date_tag)
                ))
            })?;
            let time = parse_time(&t).ok_or_else(|| {
                DxError(format!(
                    "{what} Time {} is {t:?}: expected HHMMSS",
                    show(time_tag)
                ))
            })?;
            return Ok((date.and_time(time), offset));
        }
    }
    fail(
        "the acquisition time is missing: none of Acquisition DateTime (0008,002A), Acquisition \
         Date and Time (0008,0022/0032), Content Date and Time (0008,0023/0033)",
    )
}

fn pixels(obj: &DefaultDicomObject, header: &DxHeader) -> Result<Vec<u16>, DxError> {
    let (w, h) = header.size;
    let n = w as usize * h as usize;
    let ts_uid = obj.meta().transfer_syntax().trim_end_matches('\0');
    let element = obj
        .get(tags::PIXEL_DATA)
        .ok_or_else(|| DxError("Pixel Data (7FE0,0010) is missing".into()))?;
    let values: Vec<u16> = if ts_uid == RLE_LOSSLESS {
        let ts = TransferSyntaxRegistry
            .get(RLE_LOSSLESS)
            .ok_or_else(|| DxError("RLE Lossless is not available".into()))?;
        let reader = ts
            .pixel_data_reader()
            .ok_or_else(|| DxError("RLE Lossless has no decoder in this build".into()))?;
        let mut out = Vec::with_capacity(n * 2);
        reader.decode(obj, &mut out).map_err(|e| {
            DxError(format!(
                "Pixel Data (7FE0,0010): RLE Lossless does not decode: {e}"
            ))
        })?;
        out.chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect()
    } else {
        match element.value() {
            Value::Primitive(PrimitiveValue::U16(v)) => v.to_vec(),
            Value::Primitive(PrimitiveValue::U8(b)) => {
                let big = ts_uid == "1.2.840.10008.1.2.2";
                b.chunks_exact(2)
                    .map(|b| {
                        if big {
                            u16::from_be_bytes([b[0], b[1]])
                        } else {
                            u16::from_le_bytes([b[0], b[1]])
                        }
                    })
                    .collect()
            }
            _ => return fail("Pixel Data (7FE0,0010) is not 16-bit native pixel data"),
        }
    };
    if values.len() < n {
        return fail(format!(
            "Pixel Data (7FE0,0010) holds {} pixels; Rows × Columns is {n}",
            values.len()
        ));
    }
    // Bits above Bits Stored are not part of the reading (High Bit is Bits Stored - 1).
    let mask = u16::MAX >> (16 - header.bits_stored);
    Ok(values[..n].iter().map(|v| v & mask).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_every_dicom_form() {
        assert_eq!(parse_time("0930"), NaiveTime::from_hms_opt(9, 30, 0));
        assert_eq!(
            parse_time("093015.5"),
            NaiveTime::from_hms_micro_opt(9, 30, 15, 500_000)
        );
        assert_eq!(parse_time("09"), NaiveTime::from_hms_opt(9, 0, 0));
        assert_eq!(parse_time("9:30"), None);
        assert_eq!(
            parse_offset("+0530"),
            FixedOffset::east_opt(5 * 3600 + 30 * 60)
        );
        assert_eq!(parse_offset("0530"), None);
    }
}
