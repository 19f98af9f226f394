//! The code a bay's camera read over a truck pass, as the bay sends it to the server's case
//! (`POST /api/v1/scans/{scan_id}/camera-code`). The server compares it with the scanner's code
//! and the declaration's; a difference becomes a `container_code_mismatch` finding of the case,
//! with both readings and the frames as evidence.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{ContainerCode, ScanId};

/// Frames a bay sends as evidence of a reading, at most.
pub const MAX_EVIDENCE_FRAMES: usize = 3;

/// One accepted camera reading of a scan's container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraCode {
    /// Unique id (a UUID); the server records a reading once.
    pub reading_id: String,
    /// The scan whose container the camera saw.
    pub scan_id: ScanId,
    /// When the pass's code was accepted.
    pub read_at: DateTime<Utc>,
    /// The accepted code (its check digit passed).
    pub code: ContainerCode,
    /// The pass's confidence, 0 to 1.
    pub confidence: f32,
    /// Frames read in the pass.
    pub frames: u32,
    /// Frames whose own reading is the code (a vote can pass with none: each frame misread a
    /// different character).
    pub agreeing: u32,
    /// The size/type code read beside it (e.g. `22G1`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_type: Option<String>,
    /// Frames that read the code, JPEG as base64, best first (at most
    /// [`MAX_EVIDENCE_FRAMES`]).
    #[serde(default)]
    pub frames_jpeg_base64: Vec<String>,
}

impl CameraCode {
    /// What is wrong with a reading that parsed, if anything: the id's form, the counts and the
    /// confidence.
    pub fn problem(&self) -> Option<String> {
        if !(8..=64).contains(&self.reading_id.len())
            || !self
                .reading_id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b'-')
        {
            return Some("reading_id must be 8 to 64 hex digits and dashes (a UUID)".into());
        }
        if !(0.0..=1.0).contains(&self.confidence) {
            return Some(format!(
                "confidence must be between 0 and 1, got {}",
                self.confidence
            ));
        }
        if self.frames == 0 || self.agreeing > self.frames {
            return Some(format!(
                "frames ({}) must be at least 1, and agreeing ({}) at most frames",
                self.frames, self.agreeing
            ));
        }
        if self.frames_jpeg_base64.len() > MAX_EVIDENCE_FRAMES {
            return Some(format!(
                "at most {MAX_EVIDENCE_FRAMES} frames, got {}",
                self.frames_jpeg_base64.len()
            ));
        }
        if self
            .size_type
            .as_ref()
            .is_some_and(|s| s.len() != 4 || !s.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return Some("size_type must be four letters and digits (e.g. 22G1)".into());
        }
        None
    }
}

/// Where a camera reading differs from the scanner's code and the declaration's, in words for
/// the case's finding; `None` when it agrees with both (or there is nothing to compare).
pub fn disagreement(
    camera: &CameraCode,
    scanner: Option<&str>,
    declaration: Option<(&str, &str)>,
) -> Option<String> {
    let read = camera.code.as_str();
    let scanner = scanner.filter(|s| *s != read);
    let declared = declaration.filter(|(_, c)| *c != read);
    let against = match (scanner, declared) {
        (None, None) => return None,
        (Some(s), None) => format!("the scanner gave {s}"),
        (None, Some((reference, c))) => format!("declaration {reference} declares {c}"),
        (Some(s), Some((reference, c))) if s == c => {
            format!("the scanner gave {s} and declaration {reference} declares it")
        }
        (Some(s), Some((reference, c))) => {
            format!("the scanner gave {s} and declaration {reference} declares {c}")
        }
    };
    Some(format!(
        "The bay camera read container {read} ({} of {} frames agree, confidence {:.2}), but {against}: check the container's code at the bay and the documents.",
        camera.agreeing, camera.frames, camera.confidence
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(code: &str) -> CameraCode {
        CameraCode {
            reading_id: "0f8e2a34-1111-4222-8333-444455556666".into(),
            scan_id: ScanId::parse("BAY01-s1-000001").unwrap(),
            read_at: Utc::now(),
            code: ContainerCode::parse(code).unwrap(),
            confidence: 0.97,
            frames: 7,
            agreeing: 6,
            size_type: Some("22G1".into()),
            frames_jpeg_base64: vec![],
        }
    }

    #[test]
    fn a_reading_that_differs_says_from_what() {
        let r = reading("CSQU3054383");
        assert_eq!(disagreement(&r, Some("CSQU3054383"), None), None);
        assert_eq!(
            disagreement(&r, Some("CSQU3054383"), Some(("D1", "CSQU3054383"))),
            None
        );
        assert_eq!(disagreement(&r, None, None), None);
        let s = disagreement(&r, Some("MSKU0000006"), None).unwrap();
        assert!(
            s.contains("read container CSQU3054383") && s.contains("6 of 7"),
            "{s}"
        );
        assert!(s.contains("the scanner gave MSKU0000006"), "{s}");
        let s = disagreement(&r, None, Some(("D1", "MSKU0000006"))).unwrap();
        assert!(s.contains("declaration D1 declares MSKU0000006"), "{s}");
        let s = disagreement(&r, Some("MSKU0000006"), Some(("D1", "MSKU0000006"))).unwrap();
        assert!(s.contains("declares it"), "{s}");
    }

    #[test]
    fn bad_readings_are_named() {
        let mut r = reading("CSQU3054383");
        assert_eq!(r.problem(), None);
        r.agreeing = 8;
        assert!(r.problem().unwrap().contains("agreeing"));
        r = reading("CSQU3054383");
        r.reading_id = "../etc".into();
        assert!(r.problem().unwrap().contains("reading_id"));
        r = reading("CSQU3054383");
        r.frames_jpeg_base64 = vec![String::new(); 4];
        assert!(r.problem().unwrap().contains("at most 3"));
        let wrong_digit = serde_json::json!({
            "reading_id": "0f8e2a34", "scan_id": "BAY01-s1-000001", "read_at": "2026-12-06T08:00:00Z",
            "code": "CSQU3054384", "confidence": 0.9, "frames": 3, "agreeing": 2
        });
        assert!(serde_json::from_value::<CameraCode>(wrong_digit).is_err());
    }
}
