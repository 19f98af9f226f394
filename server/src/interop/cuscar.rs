//! UN/EDIFACT CUSCAR (customs cargo report, directory D.95B or later) onto
//! `baylens.declaration/1`, **one declaration per container** (equipment). The syntax level is
//! `edifact-rs`; the mapping is ours:
//!
//! | BayLens | CUSCAR |
//! |---|---|
//! | `reference` | `BGM` document number, `-`, the container code |
//! | `expected_arrival` | `DTM+132` (estimated arrival; else `DTM+178`, actual), formats 102, 203, 204 |
//! | `office` | `LOC+22` (customs office of clearance) |
//! | `container_code` | `EQD+CN` in the consignment; a goods item's `SGP` names the one it is in |
//! | `declarant` | the consignment's `NAD+CN` (consignee; else `NAD+CZ`, else the header's `NAD+CA` carrier): id and name |
//! | `items[]` | each `GID`: packages and type from its second element, `FTX+AAA` description, `MEA+…+G` (or `AAB`) gross weight in KGM, `CST` commodity code |
//! | `gross_mass_kg` | the sum of the container's items |
//!
//! Problems name the segment by its position in the interchange and its tag (`segment 14
//! GID`), or the segment BayLens looked for and did not find. The interchange is decoded from
//! the character repertoire its `UNB` declares (`UNOC` is ISO 8859-1). One message per
//! interchange: header data (document, arrival, office) belong to their message, so an
//! interchange of several is refused rather than mixed.

use std::collections::BTreeMap;

use baylens_protocol::{DECLARATION_CONTRACT, Declarant, Declaration, DeclaredItem};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use edifact_rs::Segment;

/// A goods item being read.
#[derive(Debug, Default)]
struct Goods {
    at: String,
    packages: Option<u32>,
    package_type: Option<String>,
    description: Vec<String>,
    mass_kg: Option<f64>,
    hs_code: Option<String>,
    container: Option<String>,
}

/// A consignment being read (`CNI` group).
#[derive(Debug, Default)]
struct Consignment {
    equipment: Vec<String>,
    parties: BTreeMap<String, (String, String)>,
    goods: Vec<Goods>,
}

/// An EDIFACT date/time of format 102 (CCYYMMDD), 203 (CCYYMMDDHHMM) or 204
/// (CCYYMMDDHHMMSS), in UTC.
fn edifact_time(value: &str, format: &str) -> Option<DateTime<Utc>> {
    match format {
        "102" => NaiveDate::parse_from_str(value, "%Y%m%d")
            .ok()?
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc()),
        "203" => NaiveDateTime::parse_from_str(value, "%Y%m%d%H%M")
            .ok()
            .map(|t| t.and_utc()),
        "204" => NaiveDateTime::parse_from_str(value, "%Y%m%d%H%M%S")
            .ok()
            .map(|t| t.and_utc()),
        _ => None,
    }
}

/// Whether a directory release (`95B`, `01B`) is D.95B or later.
fn release_ok(release: &str) -> bool {
    let (Some(year), Some(letter)) = (
        release.get(..2).and_then(|y| y.parse::<u32>().ok()),
        release.get(2..3),
    ) else {
        return false;
    };
    let year = if year >= 88 { 1900 + year } else { 2000 + year };
    (year, letter) >= (1995, "B")
}

fn text(s: &Segment<'_>, e: usize, c: usize) -> Option<String> {
    s.component_str(e, c)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// The declarations of a CUSCAR interchange; every problem, each naming its segment.
pub fn declarations(body: &[u8]) -> Result<Vec<Declaration>, Vec<String>> {
    let mut p: Vec<String> = Vec::new();
    // Decoded from the repertoire the UNB declares (UNOC is ISO 8859-1, not UTF-8).
    let segments = edifact_rs::from_bytes_decoded(body)
        .map_err(|e| vec![format!("not valid EDIFACT: {e}")])?;
    let messages = segments.iter().filter(|s| s.tag == "UNH").count();
    if messages > 1 {
        return Err(vec![format!(
            "{messages} messages (UNH) in one interchange; BayLens reads one CUSCAR message per \
             interchange (send each message on its own)"
        )]);
    }
    let mut document: Option<String> = None;
    let mut arrival: Option<(u8, DateTime<Utc>)> = None;
    let mut office: Option<String> = None;
    let mut carrier: Option<(String, String)> = None;
    let mut consignments: Vec<Consignment> = Vec::new();
    let mut message = false;
    for (i, s) in segments.iter().enumerate() {
        let at = format!("segment {} {}", i + 1, s.tag);
        let in_goods = consignments.last().is_some_and(|c| !c.goods.is_empty());
        match s.tag.as_ref() {
            "UNH" => {
                let kind = text(s, 1, 0).unwrap_or_default();
                let (version, release) = (text(s, 1, 1), text(s, 1, 2).unwrap_or_default());
                if kind != "CUSCAR" || version.as_deref() != Some("D") || !release_ok(&release) {
                    p.push(format!(
                        "{at}: message {kind}:{}:{release}; BayLens reads CUSCAR of directory D.95B or later",
                        version.unwrap_or_default()
                    ));
                }
                message = true;
            }
            "BGM" => document = text(s, 1, 0),
            "DTM" => {
                let qualifier = text(s, 0, 0).unwrap_or_default();
                let rank = match qualifier.as_str() {
                    "132" => 2,
                    "178" => 1,
                    _ => 0,
                };
                if rank > 0 && arrival.is_none_or(|(r, _)| r < rank) {
                    let value = text(s, 0, 1).unwrap_or_default();
                    let format = text(s, 0, 2).unwrap_or_else(|| "102".into());
                    match edifact_time(&value, &format) {
                        Some(t) => arrival = Some((rank, t)),
                        None => p.push(format!(
                            "{at}: {value:?} is not a date of format {format} (BayLens reads 102, 203 and 204)"
                        )),
                    }
                }
            }
            "LOC" if text(s, 0, 0).as_deref() == Some("22") => office = text(s, 1, 0),
            "NAD" => {
                let role = text(s, 0, 0).unwrap_or_default();
                let id = text(s, 1, 0);
                let name = text(s, 3, 0).or_else(|| id.clone());
                if let (Some(id), Some(name)) = (id, name) {
                    match consignments.last_mut() {
                        Some(c) => {
                            c.parties.insert(role, (id, name));
                        }
                        None if role == "CA" => carrier = Some((id, name)),
                        None => {}
                    }
                }
            }
            "CNI" => consignments.push(Consignment::default()),
            "EQD" => match (consignments.last_mut(), text(s, 1, 0)) {
                (Some(c), Some(id)) if text(s, 0, 0).as_deref() == Some("CN") => {
                    c.equipment.push(id)
                }
                (None, _) => p.push(format!("{at}: equipment outside a consignment (CNI)")),
                _ => {}
            },
            "GID" => match consignments.last_mut() {
                Some(c) => c.goods.push(Goods {
                    at: at.clone(),
                    packages: s.component_str(1, 0).and_then(|n| n.trim().parse().ok()),
                    package_type: text(s, 1, 1),
                    ..Goods::default()
                }),
                None => p.push(format!("{at}: goods item outside a consignment (CNI)")),
            },
            "FTX" if in_goods && text(s, 0, 0).as_deref() == Some("AAA") => {
                if let Some(g) = consignments.last_mut().and_then(|c| c.goods.last_mut()) {
                    g.description.extend((0..5).filter_map(|k| text(s, 3, k)));
                }
            }
            "MEA" if in_goods && matches!(text(s, 1, 0).as_deref(), Some("G" | "AAB")) => {
                let unit = text(s, 2, 0).unwrap_or_default();
                let value = text(s, 2, 1).unwrap_or_default();
                if unit != "KGM" {
                    p.push(format!(
                        "{at}: unit {unit:?}; BayLens takes gross weights in KGM"
                    ));
                }
                match value.parse::<f64>() {
                    Ok(v) => {
                        if let Some(g) = consignments.last_mut().and_then(|c| c.goods.last_mut()) {
                            g.mass_kg = Some(v);
                        }
                    }
                    Err(_) => p.push(format!("{at}: weight {value:?} is not a number")),
                }
            }
            "CST" if in_goods => {
                let code = (1..6).find_map(|e| text(s, e, 0));
                if let Some(g) = consignments.last_mut().and_then(|c| c.goods.last_mut()) {
                    g.hs_code = g.hs_code.take().or(code);
                }
            }
            "SGP" if in_goods => {
                if let Some(g) = consignments.last_mut().and_then(|c| c.goods.last_mut()) {
                    g.container = text(s, 0, 0);
                }
            }
            _ => {}
        }
    }
    if !message {
        p.push("no UNH segment: not an EDIFACT message".into());
    }
    let document = document.unwrap_or_else(|| {
        p.push("BGM: missing; BayLens needs the document number".into());
        String::new()
    });
    let arrival = arrival.map(|(_, t)| t).unwrap_or_else(|| {
        p.push("DTM+132: missing (nor DTM+178); BayLens needs the arrival".into());
        DateTime::<Utc>::MIN_UTC
    });
    let office = office.unwrap_or_else(|| {
        p.push("LOC+22: missing; BayLens needs the customs office".into());
        String::new()
    });
    // Items by container, in the order containers first appear.
    let mut by_container: Vec<(String, (String, String), Vec<DeclaredItem>)> = Vec::new();
    for c in &consignments {
        let party = ["CN", "CZ"]
            .iter()
            .find_map(|r| c.parties.get(*r).cloned())
            .or_else(|| carrier.clone());
        for g in &c.goods {
            let container = match (&g.container, c.equipment.as_slice()) {
                (Some(id), _) => id.clone(),
                (None, [one]) => one.clone(),
                (None, []) => {
                    p.push(format!(
                        "{}: no container (no EQD+CN in its consignment)",
                        g.at
                    ));
                    continue;
                }
                (None, _) => {
                    p.push(format!(
                        "{}: its consignment has several containers and no SGP says which holds it",
                        g.at
                    ));
                    continue;
                }
            };
            let Some(party) = party.clone() else {
                p.push(format!(
                    "{}: no party (NAD+CN, NAD+CZ or the carrier's NAD+CA); BayLens needs a declarant",
                    g.at
                ));
                continue;
            };
            let mut need = |what: &str| p.push(format!("{}: no {what}", g.at));
            if g.description.is_empty() {
                need("goods description (FTX+AAA)");
            }
            if g.hs_code.is_none() {
                need("commodity code (CST)");
            }
            if g.mass_kg.is_none() {
                need("gross weight (MEA with G or AAB)");
            }
            if g.packages.is_none() {
                need("number of packages (GID second element)");
            }
            let item = DeclaredItem {
                hs_code: g.hs_code.clone().unwrap_or_default(),
                description: g.description.join(" "),
                packages: g.packages.unwrap_or(0),
                package_type: g.package_type.clone(),
                gross_mass_kg: g.mass_kg.unwrap_or(0.0),
            };
            match by_container.iter_mut().find(|(id, _, _)| *id == container) {
                Some((_, _, items)) => items.push(item),
                None => by_container.push((container, party, vec![item])),
            }
        }
    }
    if by_container.is_empty() && p.is_empty() {
        p.push("no goods item (GID) in any consignment (CNI)".into());
    }
    if !p.is_empty() {
        return Err(p);
    }
    Ok(by_container
        .into_iter()
        .map(|(container, (id, name), items)| Declaration {
            contract: DECLARATION_CONTRACT.to_owned(),
            reference: format!("{}-{container}", document.to_uppercase()),
            declarant: Declarant { name, id },
            office: office.clone(),
            bay: None,
            container_code: Some(container),
            vehicle: None,
            expected_arrival: arrival,
            declared_empty: false,
            gross_mass_kg: items.iter().map(|i| i.gross_mass_kg).sum(),
            items,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_from_95b_on_are_read() {
        assert!(release_ok("95B") && release_ok("96A") && release_ok("01B"));
        assert!(!release_ok("95A") && !release_ok("93A") && !release_ok("x"));
        assert_eq!(
            edifact_time("202612071430", "203").unwrap().to_rfc3339(),
            "2026-12-07T14:30:00+00:00"
        );
        assert!(edifact_time("20261207", "999").is_none());
    }
}
