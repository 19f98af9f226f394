//! The HS chapter → material profile table (`assets/hs_chapters.csv`): what a load of goods from
//! each chapter of the Harmonized System looks like to a scanner (material, dual-energy class,
//! packing, stowed density), and a representative commodity. The simulator loads goods from it;
//! the edge agent checks what it sees against what the declared chapters imply.

use std::sync::OnceLock;

use serde::Serialize;

/// The table as committed.
pub const TABLE_CSV: &str = include_str!("../../assets/hs_chapters.csv");

/// How goods of a chapter are usually stowed in a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Packing {
    /// Unit loads on pallets, or floor-stacked cartons.
    Pallets,
    /// Loose goods heaped on the floor (grain, cement, feed).
    Bulk,
    /// Liquids in 200 l steel drums.
    Drums,
}

/// The dual-energy class a chapter's goods show as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GoodsClass {
    /// Food, textiles, paper, wood, plastics.
    Organic,
    /// Glass, ceramics, stone, aluminium, electronics.
    Inorganic,
    /// Iron, steel, copper, lead.
    Metal,
}

impl GoodsClass {
    /// Name as in the table.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Organic => "organic",
            Self::Inorganic => "inorganic",
            Self::Metal => "metal",
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChapterProfile {
    /// First HS chapter the row covers.
    pub first: u8,
    /// Last HS chapter the row covers.
    pub last: u8,
    /// Material the goods attenuate like (a scanner-sim material name).
    pub material: String,
    /// Their dual-energy class.
    pub class: GoodsClass,
    /// Usual packing.
    pub packing: Packing,
    /// Stowed density range, g/cm³.
    pub bulk: (f64, f64),
    /// A representative 6-digit HS code, dotted.
    pub hs_code: String,
    /// Its plain-language description.
    pub description: String,
}

impl ChapterProfile {
    /// HS chapter of the representative commodity.
    pub fn chapter(&self) -> u8 {
        self.hs_code[..2].parse().unwrap_or(self.first)
    }
}

/// The parsed table (parsed once; the CSV is compiled in and checked by a test).
pub fn table() -> &'static [ChapterProfile] {
    static TABLE: OnceLock<Vec<ChapterProfile>> = OnceLock::new();
    TABLE.get_or_init(|| parse(TABLE_CSV).expect("assets/hs_chapters.csv is valid (tested)"))
}

/// The profile of an HS chapter, if the table covers it (every chapter but the reserved 77).
pub fn profile(chapter: u8) -> Option<&'static ChapterProfile> {
    table()
        .iter()
        .find(|p| (p.first..=p.last).contains(&chapter))
}

/// Parses the table: `#` comment lines, one header line, then rows.
pub fn parse(csv: &str) -> Result<Vec<ChapterProfile>, String> {
    let mut rows = Vec::new();
    let mut lines = csv
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#') && !l.trim().is_empty());
    lines.next().ok_or("the table has no header")?;
    for (n, line) in lines {
        let at = |what: &str| format!("line {}: {what}", n + 1);
        let f = split_csv(line);
        let [
            first,
            last,
            material,
            class,
            packing,
            bmin,
            bmax,
            hs_code,
            description,
        ] = f.as_slice()
        else {
            return Err(at(&format!("{} fields, expected 9", f.len())));
        };
        let num = |s: &str| {
            s.parse::<f64>()
                .map_err(|_| at(&format!("{s:?} is not a number")))
        };
        let chapter = |s: &str| {
            s.parse::<u8>()
                .ok()
                .filter(|c| (1..=97).contains(c))
                .ok_or_else(|| at(&format!("{s:?} is not an HS chapter")))
        };
        let packing = match packing.as_str() {
            "pallets" => Packing::Pallets,
            "bulk" => Packing::Bulk,
            "drums" => Packing::Drums,
            other => return Err(at(&format!("unknown packing {other:?}"))),
        };
        let class = match class.as_str() {
            "organic" => GoodsClass::Organic,
            "inorganic" => GoodsClass::Inorganic,
            "metal" => GoodsClass::Metal,
            other => return Err(at(&format!("unknown class {other:?}"))),
        };
        let bulk = (num(bmin)?, num(bmax)?);
        if !(bulk.0 > 0.0 && bulk.0 <= bulk.1 && bulk.1 < 12.0) {
            return Err(at("bulk density range must be 0 < min <= max < 12 g/cm3"));
        }
        rows.push(ChapterProfile {
            first: chapter(first)?,
            last: chapter(last)?,
            material: material.clone(),
            class,
            packing,
            bulk,
            hs_code: hs_code.clone(),
            description: description.clone(),
        });
    }
    Ok(rows)
}

fn split_csv(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    for ch in line.chars() {
        match ch {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => fields.last_mut().expect("starts with one field").push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_covers_every_chapter_but_77_once_and_its_examples_are_in_range() {
        let t = table();
        for chapter in 1..=97u8 {
            let rows = t
                .iter()
                .filter(|p| (p.first..=p.last).contains(&chapter))
                .count();
            assert_eq!(rows, usize::from(chapter != 77), "chapter {chapter}");
        }
        for p in t {
            assert!((p.first..=p.last).contains(&p.chapter()), "{}", p.hs_code);
            assert_eq!(p.hs_code.len(), 7, "{}", p.hs_code);
        }
        assert_eq!(profile(52).unwrap().description, "Cotton fabric, woven");
        assert_eq!(profile(73).unwrap().class, GoodsClass::Metal);
        assert!(profile(77).is_none());
    }

    #[test]
    fn bad_rows_are_reported_by_line() {
        let err = parse("first,last\n1,2,water,gaseous,pallets,0.1,0.2,0101.10,x\n").unwrap_err();
        assert!(err.contains("line 2") && err.contains("gaseous"), "{err}");
    }
}
