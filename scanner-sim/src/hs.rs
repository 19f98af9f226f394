//! The HS chapter → material profile table, with each row's material resolved to the
//! simulator's attenuation data. The table and its parser live in
//! [`baylens_protocol::hs`], shared with the edge agent's manifest checks.

use std::sync::OnceLock;

pub use baylens_protocol::hs::Packing;

use crate::materials::Material;

/// One row of the table, its material resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ChapterProfile {
    /// First HS chapter the row covers.
    pub first: u8,
    /// Last HS chapter the row covers.
    pub last: u8,
    /// Material the goods attenuate like.
    pub material: Material,
    /// Usual packing.
    pub packing: Packing,
    /// Stowed density range, g/cm³.
    pub bulk: (f64, f64),
    /// A representative 6-digit HS code, dotted.
    pub hs_code: String,
    /// Its plain-language description.
    pub description: String,
}

/// The table with materials resolved.
pub fn table() -> &'static [ChapterProfile] {
    static TABLE: OnceLock<Vec<ChapterProfile>> = OnceLock::new();
    TABLE.get_or_init(|| {
        baylens_protocol::hs::table()
            .iter()
            .map(|p| ChapterProfile {
                first: p.first,
                last: p.last,
                material: Material::by_name(&p.material)
                    .expect("every table material is a simulator material (tested)"),
                packing: p.packing,
                bulk: p.bulk,
                hs_code: p.hs_code.clone(),
                description: p.description.clone(),
            })
            .collect()
    })
}

/// The profile of an HS chapter, if the table covers it.
pub fn profile(chapter: u8) -> Option<&'static ChapterProfile> {
    table()
        .iter()
        .find(|p| (p.first..=p.last).contains(&chapter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_resolves_to_a_material_whose_class_the_table_states() {
        for (row, p) in baylens_protocol::hs::table().iter().zip(table()) {
            assert_eq!(
                p.material.class().as_str(),
                row.class.as_str(),
                "{}",
                row.hs_code
            );
        }
        assert_eq!(profile(52).unwrap().material.name, "cellulose");
    }
}
