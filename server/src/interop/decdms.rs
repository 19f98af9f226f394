//! WCO Data Model declarations in DEC-DMS XML (the UK CDS profile) onto
//! `baylens.declaration/1`. Each `Declaration` element of the document (the root, or inside
//! `MetaData`) becomes one declaration:
//!
//! | BayLens | DEC-DMS (relative to `Declaration`) | data element |
//! |---|---|---|
//! | `reference` | `FunctionalReferenceID` (upper-cased) | DE 2/5 LRN |
//! | `declarant.id`, `.name` | `Declarant/ID`, `Declarant/Name` (the id when no name) | DE 3/18 |
//! | `office` | `PresentationOffice/ID`, else `SupervisingOffice/ID` | DE 5/26, 5/27 |
//! | `container_code` | `GoodsShipment/Consignment/TransportEquipment/ID` (one) | DE 7/10 |
//! | `vehicle` | `…/Consignment/ArrivalTransportMeans/ID` and `…/RegistrationNationalityCode` | DE 7/9 |
//! | `expected_arrival` | `…/Consignment/ArrivalDateTime/DateTimeString`, else `IssueDateTime/DateTimeString` (format 102 or 304) | DE 5/4 |
//! | `items[].description` | `GoodsShipment/GovernmentAgencyGoodsItem/Commodity/Description` | DE 6/8 |
//! | `items[].hs_code` | `…/Commodity/Classification/ID` of type TSP, CV or HS (else the first) | DE 6/14 |
//! | `items[].gross_mass_kg` | `…/Commodity/GoodsMeasure/GrossMassMeasure` (kg) | DE 6/5 |
//! | `items[].packages`, `.package_type` | `…/Packaging/QuantityQuantity` (summed), `…/Packaging/TypeCode` | DE 6/10, 6/9 |
//! | `gross_mass_kg` | `TotalGrossMassMeasure`, else the items' sum | DE 6/18 |
//!
//! What BayLens needs and the message lacks is named by its XPath.

use baylens_protocol::Declaration;
use baylens_protocol::declaration::{DECLARATION_CONTRACT, Declarant, DeclaredItem, Vehicle};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use super::xml::{Node, parse};

/// The declarations of a DEC-DMS document; every problem, each naming its XPath.
pub fn declarations(text: &str) -> Result<Vec<Declaration>, Vec<String>> {
    let root = parse(text).map_err(|e| vec![e])?;
    let mut found = Vec::new();
    if root.name == "Declaration" {
        found.push((format!("/{}", root.name), &root));
    } else {
        root.descendants("Declaration", &format!("/{}", root.name), &mut found);
    }
    if found.is_empty() {
        return Err(vec![format!(
            "/{}: no Declaration element (a WCO DEC-DMS document has one)",
            root.name
        )]);
    }
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (path, d) in found {
        match declaration(&path, d) {
            Ok(d) => out.push(d),
            Err(p) => problems.extend(p),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// A WCO date: format 102 (`CCYYMMDD`, midnight UTC) or 304 (`CCYYMMDDhhmmss` and an offset
/// `Z` or `±hh[mm]`).
fn wco_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if !s.is_ascii() {
        return None;
    }
    if s.len() == 8 {
        return NaiveDate::parse_from_str(s, "%Y%m%d")
            .ok()?
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc());
    }
    let (local, offset) = s.split_at(s.len().min(14));
    let t = NaiveDateTime::parse_from_str(local, "%Y%m%d%H%M%S").ok()?;
    let secs = match offset {
        "" | "Z" => 0,
        o => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let digits = o.trim_start_matches(['+', '-']);
            let h: i64 = digits.get(..2)?.parse().ok()?;
            let m: i64 = digits.get(2..4).map_or(Some(0), |m| m.parse().ok())?;
            sign * (h * 3600 + m * 60)
        }
    };
    Some(t.and_utc() - chrono::Duration::seconds(secs))
}

fn declaration(path: &str, d: &Node) -> Result<Declaration, Vec<String>> {
    let mut p = Vec::new();
    let mut need = |rel: &str| -> String {
        match d.text_at(rel) {
            Some(t) => t.to_owned(),
            None => {
                p.push(format!("{path}/{rel}: missing; BayLens needs it"));
                String::new()
            }
        }
    };
    let reference = need("FunctionalReferenceID").to_uppercase();
    let declarant_id = need("Declarant/ID");
    let declarant_name = d
        .text_at("Declarant/Name")
        .map_or_else(|| declarant_id.clone(), str::to_owned);
    let office = match d
        .text_at("PresentationOffice/ID")
        .or_else(|| d.text_at("SupervisingOffice/ID"))
    {
        Some(o) => o.to_owned(),
        None => {
            p.push(format!(
                "{path}/PresentationOffice/ID: missing (nor SupervisingOffice/ID); BayLens needs the office"
            ));
            String::new()
        }
    };
    let consignment = d.at("GoodsShipment/Consignment");
    let containers: Vec<&str> = consignment
        .into_iter()
        .flat_map(|c| c.all("TransportEquipment"))
        .filter_map(|e| e.text_at("ID"))
        .collect();
    let container_code = match containers.as_slice() {
        [] => None,
        [one] => Some((*one).to_owned()),
        many => {
            p.push(format!(
                "{path}/GoodsShipment/Consignment/TransportEquipment: {} containers; BayLens checks one \
                 container per declaration (lodge one declaration per container)",
                many.len()
            ));
            None
        }
    };
    let vehicle = consignment.and_then(|c| {
        Some(Vehicle {
            registration: c.text_at("ArrivalTransportMeans/ID")?.to_owned(),
            nationality: c
                .text_at("ArrivalTransportMeans/RegistrationNationalityCode")?
                .to_owned(),
        })
    });
    let arrival_path = "GoodsShipment/Consignment/ArrivalDateTime/DateTimeString";
    let expected_arrival = match d
        .text_at(arrival_path)
        .map(|t| (arrival_path, t))
        .or_else(|| {
            d.text_at("IssueDateTime/DateTimeString")
                .map(|t| ("IssueDateTime/DateTimeString", t))
        }) {
        Some((rel, t)) => wco_time(t).unwrap_or_else(|| {
            p.push(format!(
                "{path}/{rel}: {t:?} is not a WCO date (format 102 CCYYMMDD or 304 CCYYMMDDhhmmssZ)"
            ));
            DateTime::<Utc>::MIN_UTC
        }),
        None => {
            p.push(format!(
                "{path}/{arrival_path}: missing (nor IssueDateTime/DateTimeString); BayLens needs the arrival"
            ));
            DateTime::<Utc>::MIN_UTC
        }
    };
    let mut items = Vec::new();
    let goods: Vec<&Node> = d
        .at("GoodsShipment")
        .into_iter()
        .flat_map(|g| g.all("GovernmentAgencyGoodsItem"))
        .collect();
    if goods.is_empty() {
        p.push(format!(
            "{path}/GoodsShipment/GovernmentAgencyGoodsItem: missing; a declaration of goods has at least one"
        ));
    }
    for (i, g) in goods.iter().enumerate() {
        let at = format!("{path}/GoodsShipment/GovernmentAgencyGoodsItem[{}]", i + 1);
        items.push(item(&at, g, &mut p));
    }
    let total = d.at("TotalGrossMassMeasure");
    let gross_mass_kg = match total {
        Some(t) => mass(&format!("{path}/TotalGrossMassMeasure"), t, &mut p),
        None => items.iter().map(|i| i.gross_mass_kg).sum(),
    };
    if !p.is_empty() {
        return Err(p);
    }
    Ok(Declaration {
        contract: DECLARATION_CONTRACT.to_owned(),
        reference,
        declarant: Declarant {
            name: declarant_name,
            id: declarant_id,
        },
        office,
        bay: None,
        container_code,
        vehicle,
        expected_arrival,
        declared_empty: false,
        gross_mass_kg,
        items,
    })
}

/// A mass element in kg (`unitCode` KGM or none).
fn mass(at: &str, n: &Node, p: &mut Vec<String>) -> f64 {
    if let Some(unit) = n.attr("unitCode").filter(|u| *u != "KGM") {
        p.push(format!(
            "{at}: unit {unit:?}; BayLens takes masses in kg (unitCode KGM)"
        ));
    }
    n.text.parse::<f64>().unwrap_or_else(|_| {
        p.push(format!("{at}: {:?} is not a number", n.text));
        0.0
    })
}

fn item(at: &str, g: &Node, p: &mut Vec<String>) -> DeclaredItem {
    let description = g.text_at("Commodity/Description").map_or_else(
        || {
            p.push(format!(
                "{at}/Commodity/Description: missing; BayLens needs the goods description"
            ));
            String::new()
        },
        str::to_owned,
    );
    let classes: Vec<&Node> = g
        .at("Commodity")
        .into_iter()
        .flat_map(|c| c.all("Classification"))
        .collect();
    let hs_code = classes
        .iter()
        .find(|c| {
            matches!(
                c.text_at("IdentificationTypeCode"),
                Some("TSP" | "CV" | "HS")
            )
        })
        .or(classes.first())
        .and_then(|c| c.text_at("ID"))
        .map_or_else(
            || {
                p.push(format!(
                    "{at}/Commodity/Classification/ID: missing; BayLens needs the commodity code"
                ));
                String::new()
            },
            str::to_owned,
        );
    let gross_mass_kg = match g.at("Commodity/GoodsMeasure/GrossMassMeasure") {
        Some(m) => mass(
            &format!("{at}/Commodity/GoodsMeasure/GrossMassMeasure"),
            m,
            p,
        ),
        None => {
            p.push(format!(
                "{at}/Commodity/GoodsMeasure/GrossMassMeasure: missing; BayLens needs each item's gross mass"
            ));
            0.0
        }
    };
    let packaging: Vec<&Node> = g.all("Packaging").collect();
    let mut packages: u32 = 0;
    for (j, pk) in packaging.iter().enumerate() {
        match pk.text_at("QuantityQuantity").map(str::parse::<u32>) {
            Some(Ok(n)) => packages = packages.saturating_add(n),
            Some(Err(_)) => p.push(format!(
                "{at}/Packaging[{}]/QuantityQuantity: not a whole number",
                j + 1
            )),
            None => {}
        }
    }
    if packages == 0 {
        p.push(format!(
            "{at}/Packaging/QuantityQuantity: missing; BayLens needs the number of packages"
        ));
    }
    DeclaredItem {
        hs_code,
        description,
        packages,
        package_type: packaging
            .iter()
            .find_map(|pk| pk.text_at("TypeCode"))
            .map(str::to_owned),
        gross_mass_kg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wco_dates_in_both_formats() {
        assert_eq!(
            wco_time("20261207").unwrap().to_rfc3339(),
            "2026-12-07T00:00:00+00:00"
        );
        assert_eq!(
            wco_time("20261207143000+0100").unwrap().to_rfc3339(),
            "2026-12-07T13:30:00+00:00"
        );
        assert_eq!(
            wco_time("20261207143000Z").unwrap().to_rfc3339(),
            "2026-12-07T14:30:00+00:00"
        );
        assert!(wco_time("7 Dec").is_none());
        assert!(
            wco_time("2026120714300é").is_none(),
            "no panic on a multi-byte character"
        );
    }
}
