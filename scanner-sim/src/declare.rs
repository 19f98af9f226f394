//! The advance declaration (`baylens.declaration/1`) a trader lodged for a simulated load:
//! truthful for honest loads, false in the ways each scenario calls for (see
//! [`crate::scene::Scenario`]).

use baylens_protocol::declaration::DECLARATION_CONTRACT;
use baylens_protocol::{BayId, ContainerCode, Declarant, Declaration, DeclaredItem, Vehicle};
use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use rand::seq::IndexedRandom;

use crate::scene::Truth;

const DECLARANTS: [(&str, &str); 6] = [
    ("Acme Textiles Ltd", "P051234567X"),
    ("Lakeside Fresh Produce", "P051876543K"),
    ("Coastal Hardware Imports", "P052223334M"),
    ("Rift Valley Traders", "P050987654Q"),
    ("Harbour Electronics", "P051112223B"),
    ("Great North Logistics", "P053334445C"),
];

/// The declaration for `truth`, lodged some hours before the truck reached the bay.
pub fn declaration(
    truth: &Truth,
    reference: &str,
    bay: &BayId,
    container: &ContainerCode,
    captured_at: DateTime<Utc>,
    rng: &mut impl Rng,
) -> Declaration {
    let (name, id) = *DECLARANTS.choose(rng).expect("non-empty");
    let items: Vec<DeclaredItem> = truth
        .declared
        .iter()
        .map(|d| DeclaredItem {
            hs_code: d.hs_code.replace('.', ""),
            description: d.description.clone(),
            packages: d.packages,
            package_type: Some(d.package_type.to_owned()),
            gross_mass_kg: d.mass_kg,
        })
        .collect();
    // A trader with nothing left to declare (every good was undeclared) still lodges: empty.
    let declared_empty = truth.declared_empty || items.is_empty();
    let letters: String = (0..3)
        .map(|_| char::from(b'A' + rng.random_range(0..26u8)))
        .collect();
    Declaration {
        contract: DECLARATION_CONTRACT.to_owned(),
        reference: reference.to_owned(),
        declarant: Declarant {
            name: name.to_owned(),
            id: id.to_owned(),
        },
        office: "KEMBA".to_owned(),
        bay: Some(bay.as_str().to_owned()),
        container_code: Some(container.as_str().to_owned()),
        vehicle: Some(Vehicle {
            registration: format!("K{letters} {:03}", rng.random_range(100..1000)),
            nationality: "KE".to_owned(),
        }),
        expected_arrival: captured_at - Duration::minutes(rng.random_range(0..180)),
        declared_empty,
        gross_mass_kg: if declared_empty {
            0.0
        } else {
            items.iter().map(|i| i.gross_mass_kg).sum()
        },
        items: if declared_empty { Vec::new() } else { items },
    }
}

#[cfg(test)]
mod tests {
    use crate::scene::Scenario;
    use crate::{SimOptions, generate};
    use baylens_protocol::{BayId, Declaration, ScanId};

    #[test]
    fn every_scenario_writes_a_declaration_that_passes_validation_and_tells_its_story() {
        let now = chrono::Utc::now();
        for scenario in Scenario::ALL {
            for i in 0..15 {
                let g = generate(
                    SimOptions::small(scenario),
                    21,
                    i,
                    ScanId::parse("S-1").unwrap(),
                    BayId::parse("BAY01").unwrap(),
                    now,
                );
                let json = serde_json::to_string(&g.declaration).unwrap();
                let d = Declaration::from_json(&json, now)
                    .unwrap_or_else(|e| panic!("{scenario:?} {i}: {e:?}\n{json}"));
                let code = g.meta.container_code.as_ref().unwrap().as_str();
                assert_eq!(d.container_code.as_deref(), Some(code));
                let declared = d.gross_mass_kg;
                let real = g.truth.cargo_mass_kg;
                match scenario {
                    Scenario::Honest => {
                        assert!(
                            (declared - real).abs() <= 0.035 * real + 10.0,
                            "{declared} {real}"
                        )
                    }
                    Scenario::Empty | Scenario::FalseEmpty => assert!(d.declared_empty),
                    Scenario::Mismatch if g.truth.variant == Some("mass") => {
                        assert!(declared < 0.7 * real)
                    }
                    _ => {}
                }
            }
        }
    }
}
