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
//! | Threat Sequence (4010,1011) | one potential threat object per finding: its id (4010,1010); an ATD assessment (4010,1038) with category (4010,1012), probability (4010,1016) and, where DICOS has no field, the BayLens finding kind and message in the category description (4010,1013); a PTO representation (4010,1037) referencing the scan, with the finding's box as a bounding polygon (4010,101D: two corners, x y z, z = 0, in scan pixels) |
//!
//! The scan itself is referenced by UIDs derived from its scan id (`2.25.` and 128 bits of
//! its sha256), so the same scan always gets the same UIDs.

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
pub const DICOS_VERSION: &str = "V02A";
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
    put(&mut obj, tags::TDR_TYPE, VR::CS, text("MACHINE"));
    let alarm = if report.lane == Lane::Green {
        "CLEAR"
    } else {
        "ALARM"
    };
    put(&mut obj, tags::ALARM_DECISION, VR::CS, text(alarm));
    put(
        &mut obj,
        tags::ALARM_DECISION_TIME,
        VR::DT,
        text(at.format("%Y%m%d%H%M%S%.6f+0000").to_string()),
    );
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
            if let Some(r) = &f.region {
                let (x0, y0) = (r.x as f32, r.y as f32);
                let (x1, y1) = (x0 + r.width as f32, y0 + r.height as f32);
                put(
                    &mut pto,
                    tags::BOUNDING_POLYGON,
                    VR::FL,
                    PrimitiveValue::F32([x0, y0, 0.0, x1, y1, 0.0].into_iter().collect()),
                );
            }
            t.put(DataElement::new(
                tags::PTO_REPRESENTATION_SEQUENCE,
                VR::SQ,
                sequence(vec![pto]),
            ));
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
