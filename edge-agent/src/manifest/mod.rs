//! Manifest verification: what the scan shows against what the trader declared (TFA Art. 7
//! pre-arrival processing). Each check that fails is a [`Finding`] with a score, a region where
//! there is one, and a sentence an officer understands. Pure functions over plain data.
//!
//! | check | fires when |
//! |---|---|
//! | no declaration | no advance declaration matches the scan |
//! | container code | the code read at the bay differs from the declared one |
//! | declared empty | declared empty, but the cargo space holds more than [`Tolerances::empty_max_kg`] |
//! | mass | estimated cargo mass and declared gross mass differ by more than the relative plus absolute tolerance (opaque loads: only when even the lower bound exceeds it) |
//! | material | a material class (organic, inorganic, metal; glass may show as organic) takes a larger share of the load than the declared chapters allow it (`assets/hs_chapters.csv`), by more than [`Tolerances::class_share`] and [`Tolerances::class_min_kg`] |
//! | container code invalid | the code the scanner read fails its ISO 6346 check digit or form |
//! | fill | the load's side area (`expected` module) lies outside the range the declared masses and stowed densities predict, by more than [`Tolerances::fill_relative`] and [`Tolerances::fill_absolute_m2`] |
//! | undeclared region | a block of the load ([`crate::expected::blocks`]) of at least [`Tolerances::region_min_kg`] lies beyond the most area the declared goods can fill, counted from the end the load starts at, or is of a class none of the declared goods explains (the pallets' wood explains organic mass in the load's share, never a block of its own) |
//! | stowage | a stretch of a block, one pallet long or more and of at least [`Tolerances::region_min_kg`], weighs more or less per square metre of side view than every declared item of its class can stow, by more than [`Tolerances::stowage_relative`] (`volume` module); reported as an undeclared region |

use baylens_protocol::hs::{self, GoodsClass, Packing};
use baylens_protocol::{ContainerCode, Declaration, Finding, FindingKind, Region};

use crate::calibration::CargoEstimate;
use crate::material_map::MaterialClass;

mod volume;

/// How far observation and declaration may differ before it is a finding. A scanner's
/// calibration file may set any of them (`[tolerances]`, `edge-agent calibrate --cleared`);
/// those it leaves out keep these defaults.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tolerances {
    /// Relative mass tolerance (the estimate's spread on simulated loads is a few per cent;
    /// declared gross masses include packaging).
    pub mass_relative: f64,
    /// Absolute mass tolerance, kg.
    pub mass_absolute_kg: f64,
    /// Mass above which a container declared empty is not, kg.
    pub empty_max_kg: f64,
    /// Least unexplained mass of a material class, kg.
    pub class_min_kg: f64,
    /// Least excess of a class's observed share over its declared share.
    pub class_share: f64,
    /// Relative tolerance on the predicted side area of the load.
    pub fill_relative: f64,
    /// Absolute tolerance on the predicted side area, m².
    pub fill_absolute_m2: f64,
    /// Least mass of a block reported as an undeclared region, or of a stretch reported by the
    /// stowage check, kg.
    pub region_min_kg: f64,
    /// Relative tolerance on the stowage density range of the declared goods (the stowage
    /// check, [`volume`]).
    pub stowage_relative: f64,
}

impl Default for Tolerances {
    fn default() -> Self {
        Self {
            mass_relative: 0.25,
            mass_absolute_kg: 500.0,
            empty_max_kg: 500.0,
            class_min_kg: 1_000.0,
            class_share: 0.3,
            fill_relative: 0.2,
            fill_absolute_m2: 0.5,
            region_min_kg: 500.0,
            stowage_relative: 0.25,
        }
    }
}

impl Tolerances {
    /// Every tolerance, named, for checks and messages.
    pub fn named(&self) -> [(&'static str, f64); 9] {
        [
            ("mass_relative", self.mass_relative),
            ("mass_absolute_kg", self.mass_absolute_kg),
            ("empty_max_kg", self.empty_max_kg),
            ("class_min_kg", self.class_min_kg),
            ("class_share", self.class_share),
            ("fill_relative", self.fill_relative),
            ("fill_absolute_m2", self.fill_absolute_m2),
            ("region_min_kg", self.region_min_kg),
            ("stowage_relative", self.stowage_relative),
        ]
    }
}

/// What the checks look at.
#[derive(Debug, Clone, Copy)]
pub struct ManifestInput<'a> {
    /// The matching declaration, if any.
    pub declaration: Option<&'a Declaration>,
    /// Container code from the sidecar (read by the gate OCR).
    pub container_code: Option<&'a ContainerCode>,
    /// The calibrated cargo estimate, if a container was found.
    pub cargo: Option<&'a CargoEstimate>,
    /// A container code the scanner sent that is not valid ISO 6346: the text and why.
    pub unreadable_code: Option<(&'a str, &'a str)>,
    /// Pixel pitch of the scan, mm: horizontal, vertical.
    pub pitch_mm: [f64; 2],
}

fn region_of(cargo: &CargoEstimate) -> Region {
    let s = cargo.space;
    Region {
        x: s.x0 as u32,
        y: s.top as u32,
        width: (s.x1 - s.x0) as u32,
        height: (s.floor - s.top) as u32,
    }
}

/// Bounding box of the pixels of one class, if any.
fn class_region(cargo: &CargoEstimate, width: usize, class: MaterialClass) -> Option<Region> {
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for (i, &c) in cargo.classes.iter().enumerate() {
        if c == class as u8 {
            let (y, x) = (i / width, i % width);
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
    }
    (x0 != usize::MAX).then(|| Region {
        x: x0 as u32,
        y: y0 as u32,
        width: (x1 - x0 + 1) as u32,
        height: (y1 - y0 + 1) as u32,
    })
}

/// Mass each goods class may hold given the declared items: each item's own class, and for
/// goods in drums also inorganic and some metal (the drums' steel shells); plus, for the load as
/// a whole, the pallets' and dunnage's wood ([`with_dunnage`]).
fn allowances(declaration: &Declaration) -> [f64; 3] {
    with_dunnage(goods_allowances(declaration), declaration)
}

/// Pallets and dunnage are wood: some organic mass is always explained in the load's share.
/// Not in a block of its own, though: pallets lie under the goods along the whole load, so a
/// run of columns that is organic through and through is goods, not pallets.
fn with_dunnage(mut allow: [f64; 3], declaration: &Declaration) -> [f64; 3] {
    allow[GoodsClass::Organic as usize] += 0.1 * declaration.gross_mass_kg;
    allow
}

/// What the declared goods themselves explain, class by class (see [`allowances`]).
fn goods_allowances(declaration: &Declaration) -> [f64; 3] {
    let mut allow = [0.0; 3];
    for item in &declaration.items {
        let Some(p) = hs::profile(item.chapter()) else {
            // An unknown chapter explains anything.
            return [f64::INFINITY; 3];
        };
        allow[p.class as usize] += item.gross_mass_kg;
        // Glass, stone and cement sit 0.4 % from organic matter in the energy ratio, within
        // the noise of the map: they may show as either.
        if p.material == "glass" {
            allow[GoodsClass::Organic as usize] += item.gross_mass_kg;
        }
        if p.packing == Packing::Drums {
            allow[GoodsClass::Inorganic as usize] += item.gross_mass_kg;
            allow[GoodsClass::Metal as usize] += 0.2 * item.gross_mass_kg;
        }
    }
    allow
}

/// Which check raised a finding: the rows of the module docs' table. Several checks report the
/// same [`FindingKind`]; the cleared-scan fit (`crate::commission`) loosens one tolerance per
/// check, so it needs to tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// No declaration matches.
    NoDeclaration,
    /// The container code read differs from the declared one.
    ContainerCode,
    /// The container code read is not valid ISO 6346.
    CodeInvalid,
    /// Declared empty, but not.
    DeclaredEmpty,
    /// Total mass.
    Mass,
    /// Share of a material class.
    Material,
    /// Side area of the load.
    Fill,
    /// A block beyond the declared goods' space, or of a class nothing declared explains.
    UndeclaredRegion,
    /// A stretch of the load that stows lighter or denser than any declared goods of its class.
    Stowage,
}

/// Runs every check; returns the findings, strongest first.
pub fn verify(input: ManifestInput<'_>, width: usize, tol: Tolerances) -> Vec<Finding> {
    checks(input, width, tol)
        .into_iter()
        .map(|(_, f)| f)
        .collect()
}

/// [`verify`], with the check that raised each finding.
pub fn checks(input: ManifestInput<'_>, width: usize, tol: Tolerances) -> Vec<(Check, Finding)> {
    let mut out = Vec::new();
    let code = input
        .container_code
        .map_or("unknown", ContainerCode::as_str);
    if let Some((raw, why)) = input.unreadable_code {
        out.push((
            Check::CodeInvalid,
            Finding {
                kind: FindingKind::ContainerCodeInvalid,
                score: 0.5,
                region: None,
                message: format!(
                    "The container code the scanner read, {raw:?}, is not a valid ISO 6346 code \
                 ({why}): read the code on the container and check it against the documents."
                ),
            },
        ));
    }
    let Some(decl) = input.declaration else {
        out.push((
            Check::NoDeclaration,
            Finding {
                kind: FindingKind::NoDeclaration,
                score: 0.6,
                region: input.cargo.map(region_of),
                message: format!(
                    "No advance declaration matches container {code}: treat the load as undeclared \
                 goods and ask the driver for the documents."
                ),
            },
        ));
        return out;
    };
    if let (Some(read), Some(declared)) = (input.container_code, decl.container_code.as_deref())
        && read.as_str() != declared
    {
        out.push((
            Check::ContainerCode,
            Finding {
                kind: FindingKind::ContainerCodeMismatch,
            score: 0.8,
            region: None,
            message: format!(
                "Container {} was scanned, but declaration {} is for container {declared}: check \
                 the container and the seal against the documents.",
                read.as_str(),
                decl.reference
            ),
        }));
    }
    let Some(cargo) = input.cargo else {
        return out;
    };
    let est = cargo.mass_kg;
    // Any opaque pixel makes the estimate a lower bound.
    let opaque = cargo.opaque_fraction > 0.0;
    if decl.declared_empty {
        if est > tol.empty_max_kg {
            out.push((
                Check::DeclaredEmpty,
                Finding {
                    kind: FindingKind::DeclaredEmptyNotEmpty,
                score: (0.5 + est / 4_000.0).min(1.0) as f32,
                region: Some(region_of(cargo)),
                message: format!(
                    "Declared empty, but the scan shows about {:.1} t of goods: open the container.",
                    est / 1_000.0
                ),
            }));
        }
        return out;
    }
    let declared = decl.gross_mass_kg;
    let allowed = declared * tol.mass_relative + tol.mass_absolute_kg;
    let excess = est - declared;
    if excess > allowed || (!opaque && -excess > allowed) {
        let rel = excess.abs() / declared.max(1.0);
        let (more, hint) = if excess > 0.0 {
            ("more", "undeclared or under-declared goods")
        } else {
            ("less", "goods declared but not loaded")
        };
        out.push((
            Check::Mass,
            Finding {
                kind: FindingKind::MassMismatch,
                score: (0.4 + rel).min(1.0) as f32,
                region: Some(region_of(cargo)),
                message: format!(
                    "The load weighs about {:.1} t{}, {:.0} % {more} than the {:.1} t declared: \
                 look for {hint}.",
                    est / 1_000.0,
                    if opaque { " or more" } else { "" },
                    rel * 100.0,
                    declared / 1_000.0
                ),
            },
        ));
    }
    // Material classes: organic takes the mixed band too (organic and light inorganic are not
    // told apart there); opaque mass has no class.
    // Opaque mass has no class but is part of the load (a lower bound of it).
    let [organic, mixed, inorganic, metal, opaque_kg] = cargo.mass_by_class;
    let observed = [organic + mixed, inorganic, metal];
    let total: f64 = observed.iter().map(|m| m.max(0.0)).sum::<f64>() + opaque_kg.max(0.0);
    // Compare composition, not mass (the mass check covers that): each class's share of the
    // observed load against the largest share the declared goods allow it.
    let allow = allowances(decl);
    let classes = [
        (GoodsClass::Organic, MaterialClass::Organic),
        (GoodsClass::Inorganic, MaterialClass::Inorganic),
        (GoodsClass::Metal, MaterialClass::Metal),
    ];
    for (goods, pixel_class) in classes {
        let c = goods as usize;
        // Allowances overlap (glass may show as organic, drums as anything), so each class's
        // allowed share is its allowance over the declared mass, not over the allowances' sum.
        let expected_share = (allow[c] / decl.gross_mass_kg.max(1.0)).min(1.0);
        let observed_share = observed[c].max(0.0) / total.max(1.0);
        let unexplained = (observed_share - expected_share) * total;
        if unexplained > tol.class_min_kg && observed_share - expected_share > tol.class_share {
            let declared_classes: Vec<&str> = decl
                .items
                .iter()
                .filter_map(|i| hs::profile(i.chapter()))
                .map(|p| p.class.as_str())
                .collect();
            out.push((
                Check::Material,
                Finding {
                    kind: FindingKind::MaterialMismatch,
                score: (0.4 + observed_share - expected_share).min(1.0) as f32,
                region: class_region(cargo, width, pixel_class).or(Some(region_of(cargo))),
                message: format!(
                    "About {:.0} % of the load ({:.1} t) is {} material that the declared goods \
                     ({}) do not explain: examine what it is.",
                    observed_share * 100.0,
                    observed[c] / 1_000.0,
                    goods.as_str(),
                    declared_classes.join(", ")
                ),
            }));
        }
    }
    if !decl.declared_empty {
        out.extend(volume::checks(decl, cargo, width, input.pitch_mm, tol));
    }
    out.sort_by(|a, b| b.1.score.total_cmp(&a.1.score));
    out
}

#[cfg(test)]
mod tests;
