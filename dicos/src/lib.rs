//! DICOS (NEMA IIC 1, DICOM for security screening) for BayLens: DX scans in ([`dx`]), and a
//! **Threat Detection Report** (SOP class `1.2.840.10008.5.1.4.1.1.501.3`) of one scan's
//! report out, for screening systems
//! that speak DICOS rather than BayLens JSON. Encoded with dicom-rs (Explicit VR Little
//! Endian); the DICOS attributes come from its standard dictionary.
//!
//! What a TDR carries here:
//!
//! | attribute | from the report |
//! |---|---|
//! | TDR Type (4010,1027) | `MACHINE` (an algorithm's report) |
//! | Alarm Decision (4010,1031), Alarm Decision Time (4010,102B) | `ALARM` unless the lane is green (`CLEAR`); when it was analysed |
//! | Threat Detection Algorithm and Version (4010,1029) | `BayLens <model name>`, `sha256:<model file>` |
//! | Number of Total / Alarm Objects (4010,1033/1034) | findings |
//! | Total Processing Time (4010,1069) | model time, ms |
//! | Itinerary ID (4010,1051) | the container code, when read |
//! | DICOS Version (4010,103A, and (0002,0004) in the meta group) | `V03` |
//! | object of inspection, scan, series, equipment, frame of reference | OOI ID (0010,0020): the container code (or the scan id), OOI Type `CARGO`; Scan ID (0020,0010): the end of the scan id; scan date and time: when it was captured; series and content: when analysed; the bay as station and serial number; Referenced Scans Sequence (0008,1110): the scan; Modality `TDR`, Acquisition Status `SUCCESSFUL`, Scan Type `OPERATIONAL`, Abort Flag `SUCCESS`, Image Scale Representation 1 (scan pixels) |
//! | Threat Sequence (4010,1011) | one potential threat object per finding: its id (4010,1010); an ATD assessment (4010,1038) with category (4010,1012), probability (4010,1016) and, where DICOS has no field, the BayLens finding kind and message in the category description (4010,1013); a PTO representation (4010,1037) referencing the scan, with the finding's box as the threat ROI (4010,1001: base x y 0, extents w h 1; the whole scan for a finding without a place) and as a bounding polygon (4010,101D: two corners, x y z, z = 0, in scan pixels); processing start, end and time (4010,1080–1082) |
//!
//! The scan itself is referenced by UIDs derived from its scan id (`2.25.` and 128 bits of
//! its sha256), so the same scan always gets the same UIDs. The DICOS toolkit's reader
//! (pyDICOS) accepts the file: the tests check that.

pub mod dx;

use baylens_protocol::{FindingKind, Lane, ScanReport};
use dicom_core::value::{DataSetSequence, PrimitiveValue};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use sha2::{Digest, Sha256};

/// SOP class of a DICOS Threat Detection Report.
pub const TDR_SOP_CLASS: &str = "1.2.840.10008.5.1.4.1.1.501.3";
/// SOP class of a DICOS DX image for presentation (what a TDR references).
pub const DX_SOP_CLASS: &str = "1.2.840.10008.5.1.4.1.1.501.2.1";
/// Explicit VR Little Endian.
const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
/// The DICOS version written.
pub const DICOS_VERSION: &str = "V03";
/// Media type of a DICOS file.
pub const MEDIA_TYPE: &str = "application/dicom";

/// A DICOM UID for `what` of `id`: `2.25.` and 128 bits of their sha256, in decimal.
pub fn uid(what: &str, id: &str) -> String {
    let h = Sha256::digest(format!("baylens.{what}\u{1f}{id}").as_bytes());
    let mut bits = [0u8; 16];
    bits.copy_from_slice(&h[..16]);
    format!("2.25.{}", u128::from_be_bytes(bits))
}

/// The DICOS threat category of a finding kind.
pub fn threat_category(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::ConcealedObject
        | FindingKind::UndeclaredRegion
        | FindingKind::DeclaredEmptyNotEmpty
        | FindingKind::NoDeclaration => "CONTRABAND",
        _ => "ANOMALY",
    }
}

fn put(obj: &mut InMemDicomObject, tag: Tag, vr: VR, value: PrimitiveValue) {
    obj.put(DataElement::new(tag, vr, value));
}

fn text(s: impl Into<String>) -> PrimitiveValue {
    PrimitiveValue::Str(s.into())
}

fn sequence(items: Vec<InMemDicomObject>) -> dicom_core::value::Value<InMemDicomObject> {
    DataSetSequence::from(items).into()
}

/// The snake-case name of a finding kind, as in the report.
fn kind_name(kind: FindingKind) -> String {
    format!("{kind:?}")
        .chars()
        .enumerate()
        .flat_map(|(i, c)| {
            let lower = c.to_ascii_lowercase();
            if c.is_ascii_uppercase() && i > 0 {
                vec!['_', lower]
            } else {
                vec![lower]
            }
        })
        .collect()
}

/// Processing start of a potential threat object (DICOS V03, (4010,1080), DT).
const PTO_PROCESSING_START: Tag = Tag(0x4010, 0x1080);
/// Processing end of a potential threat object (DICOS V03, (4010,1081), DT).
const PTO_PROCESSING_END: Tag = Tag(0x4010, 0x1081);
/// Processing time of a potential threat object, ms (DICOS V03, (4010,1082), FL).
const PTO_PROCESSING_TIME: Tag = Tag(0x4010, 0x1082);

fn dt(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y%m%d%H%M%S%.6f+0000").to_string()
}

fn date_time(obj: &mut InMemDicomObject, date: Tag, time: Tag, t: chrono::DateTime<chrono::Utc>) {
    put(obj, date, VR::DA, text(t.format("%Y%m%d").to_string()));
    put(obj, time, VR::TM, text(t.format("%H%M%S%.6f").to_string()));
}

/// The modules DICOS requires of every instance: object of inspection, scan (study), series,
/// equipment, frame of reference and the TDR's own flags.
fn identification(obj: &mut InMemDicomObject, report: &ScanReport) {
    let scan = report.scan_id.as_str();
    let bay = report.bay.as_str();
    let at = report.analysed_at;
    date_time(obj, tags::STUDY_DATE, tags::STUDY_TIME, report.captured_at);
    date_time(obj, tags::SERIES_DATE, tags::SERIES_TIME, at);
    date_time(obj, tags::CONTENT_DATE, tags::CONTENT_TIME, at);
    // No calibration record travels with a report: the time of the analysis stands in.
    date_time(
        obj,
        tags::DATE_OF_LAST_CALIBRATION,
        tags::TIME_OF_LAST_CALIBRATION,
        at,
    );
    put(obj, tags::MODALITY, VR::CS, text("TDR"));
    put(obj, tags::MANUFACTURER, VR::LO, text("BayLens"));
    put(
        obj,
        tags::MANUFACTURER_MODEL_NAME,
        VR::LO,
        text("BayLens edge agent"),
    );
    put(
        obj,
        tags::INSTITUTION_NAME,
        VR::LO,
        text(format!("inspection bay {bay}")),
    );
    put(
        obj,
        tags::INSTITUTION_ADDRESS,
        VR::ST,
        text(format!("inspection bay {bay}")),
    );
    put(
        obj,
        tags::STATION_NAME,
        VR::SH,
        text(bay.chars().take(16).collect::<String>()),
    );
    put(obj, tags::DEVICE_SERIAL_NUMBER, VR::LO, text(bay));
    put(
        obj,
        tags::SOFTWARE_VERSIONS,
        VR::LO,
        text(format!("BayLens {}", env!("CARGO_PKG_VERSION"))),
    );
    // OOI: the container, when its code was read; otherwise the scan.
    let (ooi, issuer) = match &report.container_code {
        Some(c) => (c.as_str().to_owned(), "ISO 6346"),
        None => (scan.to_owned(), "BayLens scan id"),
    };
    put(obj, tags::PATIENT_ID, VR::LO, text(ooi));
    put(obj, tags::ISSUER_OF_PATIENT_ID, VR::LO, text(issuer));
    put(obj, tags::TYPE_OF_PATIENT_ID, VR::CS, text("TEXT"));
    put(obj, tags::PATIENT_SEX, VR::CS, text("U"));
    put(obj, tags::OOI_TYPE, VR::CS, text("CARGO"));
    // Scan ID is at most 16 characters: the end of the scan id, which carries its number.
    let tail: String = scan
        .chars()
        .rev()
        .take(16)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    put(obj, tags::STUDY_ID, VR::SH, text(tail));
    put(obj, tags::INSTANCE_NUMBER, VR::IS, text("1"));
    put(
        obj,
        tags::FRAME_OF_REFERENCE_UID,
        VR::UI,
        text(uid("frame", scan)),
    );
    put(obj, tags::POSITION_REFERENCE_INDICATOR, VR::LO, text(""));
    put(obj, tags::ACQUISITION_STATUS, VR::CS, text("SUCCESSFUL"));
    put(obj, tags::SCAN_TYPE, VR::CS, text("OPERATIONAL"));
    put(obj, tags::ABORT_FLAG, VR::CS, text("SUCCESS"));
    put(
        obj,
        tags::ADDITIONAL_SCREENING_PERFORMED,
        VR::CS,
        text("NO"),
    );
    // Regions are in the scan's own pixels: scale 1 (FD, as the DICOS toolkit writes it).
    put(
        obj,
        tags::IMAGE_SCALE_REPRESENTATION,
        VR::FD,
        PrimitiveValue::from(1.0f64),
    );
}

/// The Threat Detection Report of `report`, as a DICOM file (Part 10, with its meta header).
pub fn tdr(report: &ScanReport) -> Result<Vec<u8>, String> {
    let scan = report.scan_id.as_str();
    let instance = uid("tdr", report.report_id.as_str());
    let at = report.analysed_at;
    let mut obj = InMemDicomObject::new_empty();
    put(&mut obj, tags::SOP_CLASS_UID, VR::UI, text(TDR_SOP_CLASS));
    put(
        &mut obj,
        tags::SOP_INSTANCE_UID,
        VR::UI,
        text(instance.clone()),
    );
    put(
        &mut obj,
        tags::INSTANCE_CREATION_DATE,
        VR::DA,
        text(at.format("%Y%m%d").to_string()),
    );
    put(
        &mut obj,
        tags::INSTANCE_CREATION_TIME,
        VR::TM,
        text(at.format("%H%M%S").to_string()),
    );
    put(
        &mut obj,
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        text(uid("study", scan)),
    );
    put(
        &mut obj,
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        text(uid("tdr-series", scan)),
    );
    put(&mut obj, tags::DICOS_VERSION, VR::CS, text(DICOS_VERSION));
    if let Some(code) = &report.container_code {
        put(&mut obj, tags::ITINERARY_ID, VR::LO, text(code.as_str()));
    }
    identification(&mut obj, report);
    put(&mut obj, tags::TDR_TYPE, VR::CS, text("MACHINE"));
    let alarm = if report.lane == Lane::Green {
        "CLEAR"
    } else {
        "ALARM"
    };
    put(&mut obj, tags::ALARM_DECISION, VR::CS, text(alarm));
    put(&mut obj, tags::ALARM_DECISION_TIME, VR::DT, text(dt(at)));
    put(
        &mut obj,
        tags::THREAT_DETECTION_ALGORITHM_AND_VERSION,
        VR::LO,
        PrimitiveValue::Strs(
            [
                format!("BayLens {}", report.model.name),
                format!(
                    "sha256:{}",
                    report.model.sha256.chars().take(56).collect::<String>()
                ),
            ]
            .into_iter()
            .collect(),
        ),
    );
    let n = u16::try_from(report.findings.len()).map_err(|_| "more than 65535 findings")?;
    put(
        &mut obj,
        tags::NUMBER_OF_TOTAL_OBJECTS,
        VR::US,
        PrimitiveValue::from(n),
    );
    put(
        &mut obj,
        tags::NUMBER_OF_ALARM_OBJECTS,
        VR::US,
        PrimitiveValue::from(n),
    );
    put(
        &mut obj,
        tags::TOTAL_PROCESSING_TIME,
        VR::FL,
        PrimitiveValue::from(report.model.inference_ms),
    );
    let scan_ref = {
        let mut r = InMemDicomObject::new_empty();
        put(
            &mut r,
            tags::REFERENCED_SOP_CLASS_UID,
            VR::UI,
            text(DX_SOP_CLASS),
        );
        put(
            &mut r,
            tags::REFERENCED_SOP_INSTANCE_UID,
            VR::UI,
            text(uid("scan", scan)),
        );
        r
    };
    // The Referenced Scans Sequence of DICOS (DICOM's Referenced Study Sequence).
    obj.put(DataElement::new(
        tags::REFERENCED_STUDY_SEQUENCE,
        VR::SQ,
        sequence(vec![scan_ref.clone()]),
    ));
    let started =
        at - chrono::Duration::microseconds((f64::from(report.model.inference_ms) * 1000.0) as i64);
    let threats = report
        .findings
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut t = InMemDicomObject::new_empty();
            put(
                &mut t,
                tags::POTENTIAL_THREAT_OBJECT_ID,
                VR::US,
                PrimitiveValue::from(u16::try_from(i + 1).unwrap_or(u16::MAX)),
            );
            let mut a = InMemDicomObject::new_empty();
            put(
                &mut a,
                tags::THREAT_CATEGORY,
                VR::CS,
                text(threat_category(f.kind)),
            );
            put(
                &mut a,
                tags::THREAT_CATEGORY_DESCRIPTION,
                VR::LT,
                text(format!("BayLens {}: {}", kind_name(f.kind), f.message)),
            );
            put(
                &mut a,
                tags::ATD_ABILITY_ASSESSMENT,
                VR::CS,
                text("NO_INTERFERENCE"),
            );
            put(&mut a, tags::ATD_ASSESSMENT_FLAG, VR::CS, text("THREAT"));
            put(
                &mut a,
                tags::ATD_ASSESSMENT_PROBABILITY,
                VR::FL,
                PrimitiveValue::from(f.score),
            );
            t.put(DataElement::new(
                tags::ATD_ASSESSMENT_SEQUENCE,
                VR::SQ,
                sequence(vec![a]),
            ));
            let mut pto = InMemDicomObject::new_empty();
            pto.put(DataElement::new(
                tags::REFERENCED_INSTANCE_SEQUENCE,
                VR::SQ,
                sequence(vec![scan_ref.clone()]),
            ));
            // The region of interest: the finding's box, or the whole scan for a finding
            // about the load as a whole (DICOS wants one with a size for every object).
            let (x0, y0, w, h) = f
                .region
                .as_ref()
                .map_or((0.0, 0.0, report.width as f32, report.height as f32), |r| {
                    (r.x as f32, r.y as f32, r.width as f32, r.height as f32)
                });
            let mut roi = InMemDicomObject::new_empty();
            put(
                &mut roi,
                tags::THREAT_ROI_BASE,
                VR::FL,
                PrimitiveValue::F32([x0, y0, 0.0].into_iter().collect()),
            );
            put(
                &mut roi,
                tags::THREAT_ROI_EXTENTS,
                VR::FL,
                PrimitiveValue::F32([w.max(1.0), h.max(1.0), 1.0].into_iter().collect()),
            );
            // No mask: the whole box (an empty bitmap, as the DICOS toolkit writes it).
            put(
                &mut roi,
                tags::THREAT_ROI_BITMAP,
                VR::OB,
                PrimitiveValue::Empty,
            );
            pto.put(DataElement::new(
                tags::THREAT_ROI_VOXEL_SEQUENCE,
                VR::SQ,
                sequence(vec![roi]),
            ));
            if f.region.is_some() {
                put(
                    &mut pto,
                    tags::BOUNDING_POLYGON,
                    VR::FL,
                    PrimitiveValue::F32([x0, y0, 0.0, x0 + w, y0 + h, 0.0].into_iter().collect()),
                );
            }
            t.put(DataElement::new(
                tags::PTO_REPRESENTATION_SEQUENCE,
                VR::SQ,
                sequence(vec![pto]),
            ));
            // Processing start, end and time of the object (DICOS V03; not in the DICOM
            // registry): the model's run.
            put(&mut t, PTO_PROCESSING_START, VR::DT, text(dt(started)));
            put(&mut t, PTO_PROCESSING_END, VR::DT, text(dt(at)));
            put(
                &mut t,
                PTO_PROCESSING_TIME,
                VR::FL,
                PrimitiveValue::from(report.model.inference_ms),
            );
            t
        })
        .collect();
    obj.put(DataElement::new(
        tags::THREAT_SEQUENCE,
        VR::SQ,
        sequence(threats),
    ));
    let file = obj
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(EXPLICIT_VR_LE)
                .media_storage_sop_class_uid(TDR_SOP_CLASS)
                .media_storage_sop_instance_uid(instance),
        )
        .map_err(|e| format!("TDR meta header: {e}"))?;
    let mut out = Vec::new();
    file.write_all(&mut out)
        .map_err(|e| format!("writing the TDR: {e}"))?;
    with_meta_dicos_version(out)
}

/// DICOS also carries its version in the file meta group, as (0002,0004) CS, which dicom-rs's
/// meta table has no field for: the element is put in before the transfer syntax (0002,0010)
/// and the group length (0002,0000) grows by its size. The meta group is always Explicit VR
/// Little Endian, after the 128-byte preamble and `DICM`.
fn with_meta_dicos_version(file: Vec<u8>) -> Result<Vec<u8>, String> {
    let bad = || "the TDR's meta group is not as written".to_owned();
    let mut element = vec![0x02, 0x00, 0x04, 0x00, b'C', b'S'];
    let mut value = DICOS_VERSION.as_bytes().to_vec();
    if value.len() % 2 == 1 {
        value.push(b' ');
    }
    element.extend_from_slice(&(value.len() as u16).to_le_bytes());
    element.extend_from_slice(&value);
    // (0002,0000) UL 4: its value sits at 140..144.
    if file.get(128..132) != Some(b"DICM") || file.get(132..136) != Some(&[2, 0, 0, 0]) {
        return Err(bad());
    }
    let length = u32::from_le_bytes(file[140..144].try_into().map_err(|_| bad())?);
    let end = 144 + length as usize;
    let mut pos = 144;
    while pos < end {
        let element_at = file.get(pos..pos + 8).ok_or_else(bad)?;
        let tag = u16::from_le_bytes([element_at[2], element_at[3]]);
        if tag >= 0x0004 {
            break;
        }
        let vr = &element_at[4..6];
        pos += if matches!(vr, b"OB" | b"OW" | b"UN" | b"SQ" | b"UT" | b"UC" | b"UR") {
            let n = file.get(pos + 8..pos + 12).ok_or_else(bad)?;
            12 + u32::from_le_bytes(n.try_into().map_err(|_| bad())?) as usize
        } else {
            8 + u16::from_le_bytes([element_at[6], element_at[7]]) as usize
        };
    }
    let mut out = Vec::with_capacity(file.len() + element.len());
    out.extend_from_slice(&file[..140]);
    out.extend_from_slice(&(length + element.len() as u32).to_le_bytes());
    out.extend_from_slice(&file[144..pos]);
    out.extend_from_slice(&element);
    out.extend_from_slice(&file[pos..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_stable_decimal_and_short() {
        let a = uid("scan", "BAY01-1");
        assert_eq!(a, uid("scan", "BAY01-1"));
        assert_ne!(a, uid("scan", "BAY01-2"));
        assert!(a.starts_with("2.25.") && a.len() <= 64);
        assert!(a[5..].chars().all(|c| c.is_ascii_digit()));
        assert_eq!(kind_name(FindingKind::ConcealedObject), "concealed_object");
    }
}
