//! Advance cargo declarations (`baylens.declaration/1`): a JSON subset of the WCO Data Model
//! that a trader lodges before the truck arrives (TFA Art. 7.1 pre-arrival processing).
//!
//! Parsing rejects unknown fields and wrong types; validation then checks every rule and
//! reports **all** broken rules at once, each naming its field (`items[2].hs_code`), so the
//! declarant can fix the document in one go.
//!
//! | field | WCO DM | rule |
//! |---|---|---|
//! | `reference` | UCR (D015) | 1–35 of `A-Z 0-9 - /` |
//! | `declarant.name`, `declarant.id` | Declarant (R031, R032) | 1–200 / 1–35 characters |
//! | `office` | Office of entry (G005) | 2–17 of `A-Z 0-9` |
//! | `bay` | — | the inspection bay expected to scan it, optional |
//! | `container_code` | Equipment id (159) | ISO 6346 with a correct check digit, optional |
//! | `vehicle.registration`, `vehicle.nationality` | Means of transport (T005, T006) | 1–20 chars; ISO 3166 alpha-2 |
//! | `expected_arrival` | Arrival date/time (L100) | RFC 3339, within −30 … +366 days of lodging |
//! | `declared_empty` | — | an empty container has no items and no gross mass |
//! | `gross_mass_kg` | Total gross mass (131) | > 0 and ≤ 45 000 kg |
//! | `items[].hs_code` | Commodity code (145) | 6, 8 or 10 digits (dots and spaces allowed), chapter 01–97, not 77 |
//! | `items[].description` | Goods description (137) | 1–512 characters |
//! | `items[].packages` | Number of packages (144) | 1 … 1 000 000 |
//! | `items[].package_type` | Package type (141) | UN/ECE Rec. 21 code, 2 characters, optional |
//! | `items[].gross_mass_kg` | Item gross mass (126) | > 0; the items sum to the total within 1 % (at least 1 kg) |

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::container_code::ContainerCode;
use crate::error::ProtocolError;

/// Contract version string every declaration carries.
pub const DECLARATION_CONTRACT: &str = "baylens.declaration/1";
/// Largest gross mass accepted for one container load (a 45' high cube's maximum gross is
/// about 32.5 t; a truck with trailer stays under 45 t).
pub const MAX_GROSS_MASS_KG: f64 = 45_000.0;
/// Most items per declaration.
pub const MAX_ITEMS: usize = 999;
/// Relative tolerance of the item-mass sum against the declared total.
pub const MASS_SUM_TOLERANCE: f64 = 0.01;

/// The party lodging the declaration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declarant {
    /// Legal name.
    pub name: String,
    /// Trader id (e.g. TIN or EORI).
    pub id: String,
}

/// The truck bringing the container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vehicle {
    /// Registration plate.
    pub registration: String,
    /// ISO 3166-1 alpha-2 country of registration.
    pub nationality: String,
}

/// One goods item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredItem {
    /// Harmonized System code; stored normalised to digits only.
    pub hs_code: String,
    /// Plain-language description of the goods.
    pub description: String,
    /// Number of packages.
    pub packages: u32,
    /// UN/ECE Rec. 21 package type code (e.g. `CT` carton, `PX` pallet, `DR` drum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_type: Option<String>,
    /// Gross mass of the item in kg.
    pub gross_mass_kg: f64,
}

impl DeclaredItem {
    /// HS chapter (first two digits), 1..=97.
    pub fn chapter(&self) -> u8 {
        self.hs_code
            .get(..2)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }
}

/// An advance declaration, validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declaration {
    /// Always [`DECLARATION_CONTRACT`].
    pub contract: String,
    /// Declaration reference (unique).
    pub reference: String,
    /// Who lodged it.
    pub declarant: Declarant,
    /// Customs office of entry.
    pub office: String,
    /// Inspection bay expected to scan the load, if known at lodging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bay: Option<String>,
    /// Container, if the goods travel in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_code: Option<String>,
    /// The truck.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vehicle: Option<Vehicle>,
    /// Expected arrival at the border.
    pub expected_arrival: DateTime<Utc>,
    /// The declarant says the container is empty.
    #[serde(default)]
    pub declared_empty: bool,
    /// Total gross mass in kg (0 for an empty container).
    pub gross_mass_kg: f64,
    /// The goods.
    #[serde(default)]
    pub items: Vec<DeclaredItem>,
}

fn charset_ok(s: &str, extra: &[char]) -> bool {
    s.chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || extra.contains(&c))
}

/// Normalises an HS code (`"8471.30"` → `"847130"`) and checks its form.
pub fn normalise_hs_code(raw: &str) -> Result<String, String> {
    if raw.len() > 20 {
        return Err("longer than 20 characters".into());
    }
    let digits: String = raw.chars().filter(|c| !matches!(c, '.' | ' ')).collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("{raw:?} must be digits, optionally with dots"));
    }
    if !matches!(digits.len(), 6 | 8 | 10) {
        return Err(format!(
            "{raw:?} has {} digits; an HS code has 6, 8 or 10",
            digits.len()
        ));
    }
    let chapter: u8 = digits[..2].parse().map_err(|_| "bad chapter".to_string())?;
    if !(1..=97).contains(&chapter) || chapter == 77 {
        return Err(format!(
            "{raw:?} is in chapter {chapter:02}, which the Harmonized System does not have"
        ));
    }
    Ok(digits)
}

fn check_len(
    problems: &mut Vec<ProtocolError>,
    field: &str,
    value: &str,
    min: usize,
    max: usize,
) -> bool {
    let n = value.chars().count();
    if n < min || n > max {
        problems.push(ProtocolError::invalid(
            field,
            format!("must be {min} to {max} characters, got {n}"),
        ));
        false
    } else {
        true
    }
}

fn check_mass(problems: &mut Vec<ProtocolError>, field: &str, kg: f64) {
    if !kg.is_finite() || kg <= 0.0 {
        problems.push(ProtocolError::invalid(
            field,
            format!("must be a positive mass in kg, got {kg}"),
        ));
    } else if kg > MAX_GROSS_MASS_KG {
        problems.push(ProtocolError::invalid(
            field,
            format!("{kg} kg exceeds the {MAX_GROSS_MASS_KG} kg a road container load can weigh"),
        ));
    }
}

impl Declaration {
    /// Parses and validates a declaration lodged at `now`. Returns every broken rule.
    pub fn from_json(json: &str, now: DateTime<Utc>) -> Result<Self, Vec<ProtocolError>> {
        let value: Self = serde_json::from_str(json).map_err(|e| {
            vec![ProtocolError::Malformed {
                document: "declaration",
                reason: e.to_string(),
            }]
        })?;
        value.validated(now)
    }

    /// Checks every rule, normalising HS codes and the container code on the way.
    pub fn validated(mut self, now: DateTime<Utc>) -> Result<Self, Vec<ProtocolError>> {
        let mut p = Vec::new();
        if self.contract != DECLARATION_CONTRACT {
            return Err(vec![ProtocolError::UnsupportedContract {
                found: self.contract.chars().take(64).collect(),
                expected: DECLARATION_CONTRACT,
            }]);
        }
        if check_len(&mut p, "reference", &self.reference, 1, 35)
            && !charset_ok(&self.reference, &['-', '/'])
        {
            p.push(ProtocolError::invalid(
                "reference",
                "may hold only A-Z, 0-9, '-' and '/'",
            ));
        }
        check_len(&mut p, "declarant.name", &self.declarant.name, 1, 200);
        check_len(&mut p, "declarant.id", &self.declarant.id, 1, 35);
        if check_len(&mut p, "office", &self.office, 2, 17) && !charset_ok(&self.office, &[]) {
            p.push(ProtocolError::invalid(
                "office",
                "may hold only A-Z and 0-9",
            ));
        }
        if let Some(bay) = &self.bay
            && let Err(e) = crate::BayId::parse(bay)
        {
            p.push(ProtocolError::invalid("bay", e.to_string()));
        }
        if let Some(code) = &self.container_code {
            match ContainerCode::parse(code) {
                Ok(c) => self.container_code = Some(c.as_str().to_owned()),
                Err(e) => p.push(ProtocolError::invalid("container_code", e.to_string())),
            }
        }
        if let Some(v) = &self.vehicle {
            check_len(&mut p, "vehicle.registration", &v.registration, 1, 20);
            if v.nationality.len() != 2 || !charset_ok(&v.nationality, &[]) {
                p.push(ProtocolError::invalid(
                    "vehicle.nationality",
                    "must be an ISO 3166-1 alpha-2 code such as KE",
                ));
            }
        }
        if self.expected_arrival < now - Duration::days(30) {
            p.push(ProtocolError::invalid(
                "expected_arrival",
                "is more than 30 days in the past",
            ));
        } else if self.expected_arrival > now + Duration::days(366) {
            p.push(ProtocolError::invalid(
                "expected_arrival",
                "is more than a year in the future",
            ));
        }
        if self.declared_empty {
            if !self.items.is_empty() {
                p.push(ProtocolError::invalid(
                    "items",
                    "a container declared empty cannot list goods",
                ));
            }
            if self.gross_mass_kg != 0.0 {
                p.push(ProtocolError::invalid(
                    "gross_mass_kg",
                    "must be 0 for a container declared empty",
                ));
            }
            if self.container_code.is_none() {
                p.push(ProtocolError::invalid(
                    "container_code",
                    "is required for a container declared empty",
                ));
            }
        } else {
            check_mass(&mut p, "gross_mass_kg", self.gross_mass_kg);
            if self.items.is_empty() {
                p.push(ProtocolError::invalid(
                    "items",
                    "must list at least one item (or set declared_empty)",
                ));
            }
        }
        if self.items.len() > MAX_ITEMS {
            p.push(ProtocolError::invalid(
                "items",
                format!("at most {MAX_ITEMS} items, got {}", self.items.len()),
            ));
            return Err(p);
        }
        for (i, item) in self.items.iter_mut().enumerate() {
            match normalise_hs_code(&item.hs_code) {
                Ok(code) => item.hs_code = code,
                Err(e) => p.push(ProtocolError::invalid(format!("items[{i}].hs_code"), e)),
            }
            check_len(
                &mut p,
                &format!("items[{i}].description"),
                &item.description,
                1,
                512,
            );
            if item.packages == 0 || item.packages > 1_000_000 {
                p.push(ProtocolError::invalid(
                    format!("items[{i}].packages"),
                    format!("must be 1 to 1000000, got {}", item.packages),
                ));
            }
            if let Some(t) = &item.package_type
                && (t.len() != 2 || !charset_ok(t, &[]))
            {
                p.push(ProtocolError::invalid(
                    format!("items[{i}].package_type"),
                    "must be a two-character UN/ECE Rec. 21 code such as CT",
                ));
            }
            check_mass(
                &mut p,
                &format!("items[{i}].gross_mass_kg"),
                item.gross_mass_kg,
            );
        }
        if !self.declared_empty && !self.items.is_empty() {
            let sum: f64 = self.items.iter().map(|i| i.gross_mass_kg).sum();
            let tolerance = (self.gross_mass_kg * MASS_SUM_TOLERANCE).max(1.0);
            if sum.is_finite() && (sum - self.gross_mass_kg).abs() > tolerance {
                p.push(ProtocolError::invalid(
                    "gross_mass_kg",
                    format!(
                        "items sum to {sum:.1} kg but the total says {:.1} kg (tolerance {tolerance:.1} kg)",
                        self.gross_mass_kg
                    ),
                ));
            }
        }
        if p.is_empty() { Ok(self) } else { Err(p) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-26T08:00:00Z".parse().unwrap()
    }

    fn sample() -> serde_json::Value {
        serde_json::json!({
            "contract": "baylens.declaration/1",
            "reference": "26KE-MSA-000123",
            "declarant": {"name": "Acme Textiles Ltd", "id": "P051234567X"},
            "office": "KEMBA",
            "bay": "mombasa-1",
            "container_code": "CSQU3054383",
            "vehicle": {"registration": "KCA 123A", "nationality": "KE"},
            "expected_arrival": "2026-11-26T14:00:00Z",
            "gross_mass_kg": 12000.0,
            "items": [
                {"hs_code": "5208.12", "description": "Cotton fabric, woven", "packages": 200, "package_type": "CT", "gross_mass_kg": 8000.0},
                {"hs_code": "640299", "description": "Sports shoes", "packages": 100, "gross_mass_kg": 4000.0}
            ]
        })
    }

    fn parse(v: &serde_json::Value) -> Result<Declaration, Vec<ProtocolError>> {
        Declaration::from_json(&v.to_string(), now())
    }

    fn fields(errors: &[ProtocolError]) -> Vec<String> {
        errors
            .iter()
            .map(|e| match e {
                ProtocolError::Invalid { field, .. } => field.clone(),
                other => other.to_string(),
            })
            .collect()
    }

    #[test]
    fn a_good_declaration_parses_and_normalises() {
        let d = parse(&sample()).unwrap();
        assert_eq!(d.items[0].hs_code, "520812");
        assert_eq!(d.items[0].chapter(), 52);
        assert_eq!(d.container_code.as_deref(), Some("CSQU3054383"));
    }

    #[test]
    fn every_broken_rule_is_reported_with_its_field() {
        let mut v = sample();
        v["container_code"] = "CSQU3054384".into();
        v["items"][0]["hs_code"] = "7712.34".into();
        v["items"][1]["gross_mass_kg"] = (-5.0).into();
        v["items"][1]["packages"] = 0.into();
        v["reference"] = "bad ref".into();
        let errors = parse(&v).unwrap_err();
        let f = fields(&errors);
        for want in [
            "reference",
            "container_code",
            "items[0].hs_code",
            "items[1].packages",
            "items[1].gross_mass_kg",
        ] {
            assert!(f.contains(&want.to_string()), "{want} missing from {f:?}");
        }
    }

    #[test]
    fn item_masses_must_sum_to_the_total() {
        let mut v = sample();
        v["gross_mass_kg"] = 15000.0.into();
        let errors = parse(&v).unwrap_err();
        assert_eq!(fields(&errors), vec!["gross_mass_kg"]);
        assert!(errors[0].to_string().contains("items sum to 12000.0 kg"));
        // Within 1 % is fine.
        v["gross_mass_kg"] = 12100.0.into();
        parse(&v).unwrap();
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_malformed() {
        let mut v = sample();
        v["colour"] = "red".into();
        let e = parse(&v).unwrap_err();
        assert!(e[0].to_string().contains("unknown field `colour`"), "{e:?}");
        let mut v = sample();
        v["gross_mass_kg"] = "twelve".into();
        assert!(matches!(
            parse(&v).unwrap_err()[0],
            ProtocolError::Malformed { .. }
        ));
    }

    #[test]
    fn empty_containers_have_no_goods_and_need_a_code() {
        let mut v = sample();
        v["declared_empty"] = true.into();
        let f = fields(&parse(&v).unwrap_err());
        assert_eq!(f, vec!["items", "gross_mass_kg"]);
        v["items"] = serde_json::json!([]);
        v["gross_mass_kg"] = 0.0.into();
        parse(&v).unwrap();
        v.as_object_mut().unwrap().remove("container_code");
        assert_eq!(fields(&parse(&v).unwrap_err()), vec!["container_code"]);
    }

    #[test]
    fn absurd_values_are_refused() {
        let mut v = sample();
        v["expected_arrival"] = "2099-01-01T00:00:00Z".into();
        v["items"][0]["gross_mass_kg"] = 1e9.into();
        v["items"][0]["description"] = "x".repeat(10_000).into();
        let f = fields(&parse(&v).unwrap_err());
        assert!(f.contains(&"expected_arrival".to_string()));
        assert!(f.contains(&"items[0].gross_mass_kg".to_string()));
        assert!(f.contains(&"items[0].description".to_string()));
        let mut v = sample();
        v["contract"] = "baylens.declaration/9".into();
        assert!(matches!(
            parse(&v).unwrap_err()[0],
            ProtocolError::UnsupportedContract { .. }
        ));
    }

    #[test]
    fn hs_codes() {
        assert_eq!(normalise_hs_code("8471.30.00").unwrap(), "84713000");
        assert!(normalise_hs_code("8471").is_err());
        assert!(normalise_hs_code("0012345").is_err());
        assert!(normalise_hs_code("000000").is_err());
        assert!(normalise_hs_code("98 01 00").is_err());
        assert!(normalise_hs_code("24 02 20").is_ok());
    }
}

#[cfg(test)]
mod example {
    /// The example in `assets/declarations/` (used by the README) stays valid.
    #[test]
    fn the_documented_example_is_valid() {
        let text = include_str!("../../assets/declarations/example.json");
        let d: super::Declaration = serde_json::from_str(text).unwrap();
        let lodged = d.expected_arrival - chrono::Duration::days(1);
        super::Declaration::from_json(text, lodged).unwrap();
    }
}
