//! The scan contract, version `baylens.scan/1`: the sidecar JSON a scanner writes beside its
//! 16-bit image(s). `SCAN_FORMAT.md` in this crate is the human-readable specification; this
//! module is the executable one, and the two are kept in step by the tests below.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::{BayId, ContainerCode, ProtocolError, ScanId};

/// The contract version this build reads and writes.
pub const SCAN_CONTRACT: &str = "baylens.scan/1";

/// Largest image side we accept, in pixels. A 40' HC container at 5 mm pitch is about
/// 2,500 x 600 pixels; 16,384 leaves room for long trains of trucks without letting a
/// forged header ask for gigabytes.
pub const MAX_IMAGE_SIDE: u32 = 16_384;

/// Largest image area we accept, in pixels (about 128 MiB of 16-bit samples).
pub const MAX_IMAGE_PIXELS: u64 = 64 * 1024 * 1024;

/// How far in the future a capture time may lie before we call the scanner's clock broken.
const MAX_CLOCK_SKEW_MINUTES: i64 = 10;

/// Which beam produced an image. Single-energy scanners send one `high` image; dual-energy
/// scanners send a `high` and a `low` image of the same size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Energy {
    /// The higher-energy image (e.g. 6 MeV), or the only image of a single-energy scanner.
    High,
    /// The lower-energy image (e.g. 4 MeV) of a dual-energy pair.
    Low,
}

/// One image file of a scan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanImage {
    /// File name beside the sidecar. A bare name: no directories.
    pub file: String,
    /// Which beam produced it.
    pub energy: Energy,
    /// Nominal end-point energy of the beam in MeV, for the record and for calibration.
    pub energy_mev: f64,
    /// Detector reading with nothing in the beam (air), the same for every pixel after the
    /// scanner's own flat-field correction.
    pub air: u16,
    /// Detector reading with the beam off (dark current).
    pub dark: u16,
}

/// The sidecar JSON, as parsed and validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanSidecar {
    /// Always [`SCAN_CONTRACT`].
    pub contract: String,
    /// Unique id of this scan.
    pub scan_id: ScanId,
    /// The bay where it was taken.
    pub bay: BayId,
    /// When the scan was taken (RFC 3339, with offset).
    pub captured_at: DateTime<Utc>,
    /// One image (single energy) or two (dual energy: one `high`, one `low`).
    pub images: Vec<ScanImage>,
    /// Size of one pixel at the container's mid-plane, in millimetres: along the truck's
    /// travel (columns), and also between detector rows unless `pixel_pitch_vertical_mm` says
    /// otherwise.
    pub pixel_pitch_mm: f64,
    /// Pitch between detector rows at the container's mid-plane, in millimetres, when it differs
    /// from `pixel_pitch_mm` (a scanner whose belt speed and detector element differ).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pixel_pitch_vertical_mm: Option<f64>,
    /// Container code, when the scanner's own OCR or the gate system knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_code: Option<ContainerCode>,
    /// The advance declaration this scan belongs to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declaration_ref: Option<String>,
    /// A `container_code` the scanner sent that is not a valid ISO 6346 code (a misread, most
    /// often), with the reason. The scan is still taken: the bay reports the bad read as a
    /// finding rather than lose the scan. Never on the wire.
    #[serde(skip)]
    pub unreadable_container_code: Option<(String, String)>,
}

/// Longest `container_code` string kept as an unreadable read (a longer one is refused).
pub const MAX_RAW_CONTAINER_CODE: usize = 32;

impl ScanSidecar {
    /// Parses a sidecar from JSON and checks every rule of the contract. `now` bounds the
    /// capture time (a scanner clock far in the future is refused).
    pub fn from_json(bytes: &[u8], now: DateTime<Utc>) -> Result<Self, ProtocolError> {
        // Read the version first, so that a newer contract gets "unsupported" rather than a
        // confusing unknown-field error.
        let probe: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| ProtocolError::Malformed {
                document: "sidecar",
                reason: e.to_string(),
            })?;
        match probe.get("contract").and_then(|v| v.as_str()) {
            Some(SCAN_CONTRACT) => {}
            Some(other) => {
                return Err(ProtocolError::UnsupportedContract {
                    found: other.to_owned(),
                    expected: SCAN_CONTRACT,
                });
            }
            None => {
                return Err(ProtocolError::invalid(
                    "contract",
                    format!("missing; expected \"{SCAN_CONTRACT}\""),
                ));
            }
        }
        // A container code that fails ISO 6346 is a finding, not a reason to lose the scan.
        let mut probe = probe;
        let mut unreadable = None;
        if let Some(raw) = probe.get("container_code").and_then(|v| v.as_str())
            && let Err(e) = ContainerCode::parse(raw)
        {
            if raw.chars().count() > MAX_RAW_CONTAINER_CODE || raw.chars().any(char::is_control) {
                return Err(ProtocolError::invalid(
                    "container_code",
                    format!("must be at most {MAX_RAW_CONTAINER_CODE} printable characters; {e}"),
                ));
            }
            let reason = match e {
                ProtocolError::Invalid { reason, .. } => reason,
                other => other.to_string(),
            };
            unreadable = Some((raw.to_owned(), reason));
            if let Some(map) = probe.as_object_mut() {
                map.remove("container_code");
            }
        }
        let mut sidecar: Self =
            serde_json::from_value(probe).map_err(|e| ProtocolError::Malformed {
                document: "sidecar",
                reason: e.to_string(),
            })?;
        sidecar.unreadable_container_code = unreadable;
        sidecar.validate(now)?;
        Ok(sidecar)
    }

    /// Pixel pitch at the container's mid-plane, mm: `[horizontal, vertical]`.
    pub fn pitch_mm(&self) -> [f64; 2] {
        [
            self.pixel_pitch_mm,
            self.pixel_pitch_vertical_mm.unwrap_or(self.pixel_pitch_mm),
        ]
    }

    fn validate(&self, now: DateTime<Utc>) -> Result<(), ProtocolError> {
        if self.captured_at > now + Duration::minutes(MAX_CLOCK_SKEW_MINUTES) {
            return Err(ProtocolError::invalid(
                "captured_at",
                format!(
                    "{} is in the future (now {}); check the scanner's clock",
                    self.captured_at.to_rfc3339(),
                    now.to_rfc3339()
                ),
            ));
        }
        if !(self.pixel_pitch_mm.is_finite()
            && self.pixel_pitch_mm > 0.0
            && self.pixel_pitch_mm <= 1000.0)
        {
            return Err(ProtocolError::invalid(
                "pixel_pitch_mm",
                format!("must be in (0, 1000] mm, got {}", self.pixel_pitch_mm),
            ));
        }
        if let Some(v) = self.pixel_pitch_vertical_mm
            && !(v.is_finite() && v > 0.0 && v <= 1000.0)
        {
            return Err(ProtocolError::invalid(
                "pixel_pitch_vertical_mm",
                format!("must be in (0, 1000] mm, got {v}"),
            ));
        }
        if let Some(r) = &self.declaration_ref {
            if r.is_empty() || r.len() > 64 || r.chars().any(char::is_control) {
                return Err(ProtocolError::invalid(
                    "declaration_ref",
                    "must be 1 to 64 printable characters",
                ));
            }
        }
        let energies: Vec<Energy> = self.images.iter().map(|i| i.energy).collect();
        match energies.as_slice() {
            [Energy::High] | [Energy::High, Energy::Low] | [Energy::Low, Energy::High] => {}
            _ => {
                return Err(ProtocolError::invalid(
                    "images",
                    format!(
                        "must be one \"high\" image, or one \"high\" and one \"low\"; got {energies:?}"
                    ),
                ));
            }
        }
        for (i, image) in self.images.iter().enumerate() {
            let field = |name: &str| format!("images[{i}].{name}");
            if !is_bare_file_name(&image.file) {
                return Err(ProtocolError::invalid(
                    field("file"),
                    format!(
                        "{:?} must be a bare .png/.tif/.tiff file name beside the sidecar",
                        image.file
                    ),
                ));
            }
            if !(image.energy_mev.is_finite() && image.energy_mev > 0.0 && image.energy_mev <= 20.0)
            {
                return Err(ProtocolError::invalid(
                    field("energy_mev"),
                    format!("must be in (0, 20] MeV, got {}", image.energy_mev),
                ));
            }
            if image.air <= image.dark {
                return Err(ProtocolError::invalid(
                    field("air"),
                    format!(
                        "air reading {} must exceed dark reading {}",
                        image.air, image.dark
                    ),
                ));
            }
        }
        if self.images.len() == 2 && self.images[0].file == self.images[1].file {
            return Err(ProtocolError::invalid(
                "images",
                "the high and low images must be different files",
            ));
        }
        Ok(())
    }

    /// The high-energy (or only) image.
    pub fn high(&self) -> &ScanImage {
        self.images
            .iter()
            .find(|i| i.energy == Energy::High)
            .unwrap_or(&self.images[0])
    }

    /// The low-energy image of a dual-energy scan.
    pub fn low(&self) -> Option<&ScanImage> {
        self.images.iter().find(|i| i.energy == Energy::Low)
    }
}

/// The scan sidecars in `dir`, sorted by name: its `*.json` files other than `truth.json`,
/// phantom descriptions (`*.phantom.json`) and hidden files, as `scanner-sim generate` and
/// `server dataset export` lay a folder out (declarations live in a subfolder). Errors name
/// the folder.
pub fn sidecars_in(dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>, String> {
    let mut out: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            p.is_file()
                && name.is_some_and(|n| {
                    n.ends_with(".json")
                        && n != "truth.json"
                        && !n.ends_with(".phantom.json")
                        && !n.starts_with('.')
                })
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Whether `name` is a bare image file name (`.png`, `.tif`, `.tiff`; letters, digits, `.`, `_`, `-`;
/// no leading dot, at most 128 bytes): nothing that could leave the folder it is written to.
pub fn is_bare_file_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let has_image_extension =
        lower.ends_with(".png") || lower.ends_with(".tif") || lower.ends_with(".tiff");
    has_image_extension
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-25T12:00:00Z".parse().unwrap()
    }

    fn sample() -> serde_json::Value {
        serde_json::json!({
            "contract": "baylens.scan/1",
            "scan_id": "BAY01-000001",
            "bay": "BAY01",
            "captured_at": "2026-11-25T11:59:00Z",
            "images": [
                {"file": "BAY01-000001.high.png", "energy": "high", "energy_mev": 6.0, "air": 60000, "dark": 300},
                {"file": "BAY01-000001.low.png", "energy": "low", "energy_mev": 4.0, "air": 58000, "dark": 300}
            ],
            "pixel_pitch_mm": 10.0,
            "container_code": "CSQU3054383",
            "declaration_ref": "26KE0001234"
        })
    }

    fn parse(v: &serde_json::Value) -> Result<ScanSidecar, ProtocolError> {
        ScanSidecar::from_json(v.to_string().as_bytes(), now())
    }

    fn error_of(v: &serde_json::Value) -> String {
        parse(v).unwrap_err().to_string()
    }

    #[test]
    fn a_complete_dual_energy_sidecar_parses() {
        let s = parse(&sample()).unwrap();
        assert_eq!(s.high().file, "BAY01-000001.high.png");
        assert_eq!(s.low().map(|l| l.air), Some(58000));
        assert_eq!(s.container_code.unwrap().as_str(), "CSQU3054383");
    }

    #[test]
    fn the_documented_example_parses() {
        // SCAN_FORMAT.md carries an example; it must stay valid.
        let doc = include_str!("../SCAN_FORMAT.md");
        let start = doc.find("```json").unwrap() + "```json".len();
        let end = start + doc[start..].find("```").unwrap();
        let example = &doc[start..end];
        let later: DateTime<Utc> = "2026-11-26T00:00:00Z".parse().unwrap();
        ScanSidecar::from_json(example.as_bytes(), later).unwrap();
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        let mut v = sample();
        v["exposure"] = serde_json::json!(3);
        assert!(
            error_of(&v).contains("unknown field `exposure`"),
            "{}",
            error_of(&v)
        );
        let mut v = sample();
        v["images"][0]["gain"] = serde_json::json!(1);
        assert!(error_of(&v).contains("unknown field `gain`"));
    }

    #[test]
    fn missing_and_mistyped_fields_are_named() {
        let mut v = sample();
        v.as_object_mut().unwrap().remove("bay");
        assert!(error_of(&v).contains("missing field `bay`"));
        let mut v = sample();
        v["pixel_pitch_mm"] = serde_json::json!("ten");
        assert!(error_of(&v).contains("invalid type"));
        let mut v = sample();
        v["images"][0]["air"] = serde_json::json!(70000);
        assert!(error_of(&v).contains("70000"), "{}", error_of(&v));
    }

    #[test]
    fn another_contract_version_is_unsupported_not_malformed() {
        let mut v = sample();
        v["contract"] = serde_json::json!("baylens.scan/2");
        assert_eq!(
            parse(&v).unwrap_err(),
            ProtocolError::UnsupportedContract {
                found: "baylens.scan/2".into(),
                expected: SCAN_CONTRACT
            }
        );
        let mut v = sample();
        v.as_object_mut().unwrap().remove("contract");
        assert!(error_of(&v).contains("invalid contract: missing"));
    }

    #[test]
    fn absurd_values_are_refused() {
        let mut v = sample();
        v["captured_at"] = serde_json::json!("2030-01-01T00:00:00Z");
        assert!(error_of(&v).contains("in the future"));
        let mut v = sample();
        v["pixel_pitch_mm"] = serde_json::json!(-1.0);
        assert!(error_of(&v).contains("pixel_pitch_mm"));
        v["pixel_pitch_mm"] = serde_json::json!(6.0);
        v["pixel_pitch_vertical_mm"] = serde_json::json!(0.0);
        assert!(error_of(&v).contains("pixel_pitch_vertical_mm"));
        let mut v = sample();
        v["images"][0]["dark"] = serde_json::json!(60000);
        assert!(error_of(&v).contains("must exceed dark"));
        let mut v = sample();
        v["container_code"] = serde_json::json!("CSQU3054384 CSQU3054384 CSQU3054384");
        assert!(error_of(&v).contains("container_code"));
        let mut v = sample();
        v["container_code"] = serde_json::json!(42);
        assert!(error_of(&v).contains("sidecar"));
    }

    #[test]
    fn a_misread_container_code_is_kept_for_a_finding_not_refused() {
        let mut v = sample();
        v["container_code"] = serde_json::json!("CSQU3054384");
        let s = parse(&v).unwrap();
        assert_eq!(s.container_code, None);
        let (raw, why) = s.unreadable_container_code.unwrap();
        assert_eq!(raw, "CSQU3054384");
        assert!(why.contains("check digit"), "{why}");
    }

    #[test]
    fn image_file_names_cannot_leave_the_folder() {
        for bad in [
            "../x.png",
            "/etc/passwd.png",
            "sub/x.png",
            ".x.png",
            "x.jpg",
        ] {
            let mut v = sample();
            v["images"][0]["file"] = serde_json::json!(bad);
            assert!(error_of(&v).contains("images[0].file"), "{bad} accepted");
        }
    }

    #[test]
    fn image_sets_must_be_high_or_high_and_low() {
        let mut v = sample();
        v["images"][1]["energy"] = serde_json::json!("high");
        assert!(error_of(&v).contains("invalid images"));
        let mut v = sample();
        v["images"] = serde_json::json!([]);
        assert!(error_of(&v).contains("invalid images"));
        let mut v = sample();
        v["images"].as_array_mut().unwrap().remove(0);
        assert!(error_of(&v).contains("invalid images"));
        let mut v = sample();
        v["images"].as_array_mut().unwrap().remove(1);
        assert!(parse(&v).is_ok());
    }

    #[test]
    fn syntax_errors_are_malformed() {
        let err = ScanSidecar::from_json(b"{\"contract\": ", now()).unwrap_err();
        assert!(matches!(
            err,
            ProtocolError::Malformed {
                document: "sidecar",
                ..
            }
        ));
    }
}
