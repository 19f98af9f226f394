//! Solids, containers and the truck, in scanner coordinates (millimetres):
//! `x` along the direction of travel (0 at the left edge of the image), `y` across the lane
//! (0 on the truck's centre line, the source at negative `y`), `z` up from the road.
//!
//! # Beam
//! The scanner is a **vertical fan beam**: a linac on one side of the lane at height
//! [`Beam::source_height`], [`Beam::source_distance`] from the centre line, and a column of
//! detectors on the other side. The truck moves through the fan, so successive pulses give
//! successive image columns: parallel along `x`, diverging in `z`. This is how drive-through
//! portals are built, and it is cheap to get right: a solid's path length depends only on the
//! detector row and the solid's cross-section at that `x`. A fan beam gives what a parallel-beam
//! model cannot: the roof and floor smear into bands, objects near the source look taller than
//! objects near the detector, and a package hidden deep in the load projects to a different
//! height than the same package at the wall. Image rows are labelled by the height at which their
//! ray crosses the centre plane (`y = 0`), so the sidecar's pixel pitch is the pitch at the
//! container's centre.

use serde::Serialize;

use crate::materials::{CELLULOSE, Material, PLASTIC, STEEL};

/// The fan-beam source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Beam {
    /// Distance from the source to the lane's centre plane, mm.
    pub source_distance: f64,
    /// Height of the source above the road, mm.
    pub source_height: f64,
}

/// The simulated portal: source 8 m from the centre line (a gantry's source-to-detector span),
/// 1.3 m above the road.
pub const BEAM: Beam = Beam {
    source_distance: 8_000.0,
    source_height: 1_300.0,
};

impl Beam {
    /// Slope dz/dy of the ray that crosses the centre plane at height `z_mid`.
    pub fn slope(&self, z_mid: f64) -> f64 {
        (z_mid - self.source_height) / self.source_distance
    }

    /// Height at which the ray through the point (y, z) crosses the centre plane.
    pub fn project(&self, y: f64, z: f64) -> f64 {
        self.source_height
            + (z - self.source_height) * self.source_distance / (y + self.source_distance)
    }

    /// Length (mm) of the ray with slope `k` inside the rectangle `[y0, y1] × [z0, z1]` of a
    /// cross-section. `sec` is `sqrt(1 + k²)`, passed in because every row reuses it.
    pub fn path_mm(&self, k: f64, sec: f64, [y0, y1, z0, z1]: [f64; 4]) -> f64 {
        // Along the ray, z(y) = zs + k (y + S).
        let (lo, hi) = if k.abs() < 1e-12 {
            if (z0..z1).contains(&self.source_height) {
                (y0, y1)
            } else {
                return 0.0;
            }
        } else {
            let at = |z: f64| (z - self.source_height) / k - self.source_distance;
            let (a, b) = (at(z0), at(z1));
            (y0.max(a.min(b)), y1.min(a.max(b)))
        };
        if hi > lo { (hi - lo) * sec } else { 0.0 }
    }
}

/// The cross-section of a solid at one `x`: `[y0, y1, z0, z1]`.
pub type Section = [f64; 4];

/// The shape of a solid.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "shape", rename_all = "snake_case")]
pub enum Shape {
    /// An axis-aligned box.
    Box {
        /// Extent along x.
        x: [f64; 2],
        /// Extent across the lane.
        y: [f64; 2],
        /// Extent in height.
        z: [f64; 2],
    },
    /// A cylinder whose axis runs across the lane: a wheel, tyre or rim.
    WheelY {
        /// Centre along x.
        xc: f64,
        /// Centre height.
        zc: f64,
        /// Radius.
        r: f64,
        /// Extent across the lane.
        y: [f64; 2],
    },
    /// An upright cylinder: a drum.
    DrumZ {
        /// Centre along x.
        xc: f64,
        /// Centre across the lane.
        yc: f64,
        /// Radius.
        r: f64,
        /// Extent in height.
        z: [f64; 2],
    },
    /// A heap of loose goods: `z[1]` high in the middle, sloping down to `z[0]` over `ramp` mm at
    /// both ends.
    Heap {
        /// Extent along x.
        x: [f64; 2],
        /// Extent across the lane.
        y: [f64; 2],
        /// Floor and crest height.
        z: [f64; 2],
        /// Length of the slopes.
        ramp: f64,
    },
}

impl Shape {
    /// Extent along x.
    pub fn x_range(&self) -> [f64; 2] {
        match *self {
            Self::Box { x, .. } | Self::Heap { x, .. } => x,
            Self::WheelY { xc, r, .. } | Self::DrumZ { xc, r, .. } => [xc - r, xc + r],
        }
    }

    /// Extent across the lane and in height, over all x (for the rows a solid can touch).
    pub fn bounds_yz(&self) -> Section {
        match *self {
            Self::Box { y, z, .. } | Self::Heap { y, z, .. } => [y[0], y[1], z[0], z[1]],
            Self::WheelY { zc, r, y, .. } => [y[0], y[1], zc - r, zc + r],
            Self::DrumZ { yc, r, z, .. } => [yc - r, yc + r, z[0], z[1]],
        }
    }

    /// Cross-section at `x`, for a pixel column `width` mm wide, and the fraction of that column
    /// the solid covers (boxes are area-weighted so that thin plates are not lost between
    /// columns; curved shapes are sampled at the column centre).
    pub fn section(&self, x: f64, width: f64) -> Option<(Section, f64)> {
        let chord = |r: f64, d: f64| (r * r - d * d).max(0.0).sqrt();
        match *self {
            Self::Box { x: [x0, x1], y, z } => {
                let cover = ((x + width / 2.0).min(x1) - (x - width / 2.0).max(x0)) / width;
                (cover > 0.0).then_some(([y[0], y[1], z[0], z[1]], cover.min(1.0)))
            }
            Self::WheelY { xc, zc, r, y } => {
                let h = chord(r, x - xc);
                (h > 0.0).then_some(([y[0], y[1], zc - h, zc + h], 1.0))
            }
            Self::DrumZ { xc, yc, r, z } => {
                let h = chord(r, x - xc);
                (h > 0.0).then_some(([yc - h, yc + h, z[0], z[1]], 1.0))
            }
            Self::Heap {
                x: [x0, x1],
                y,
                z: [z0, z1],
                ramp,
            } => {
                if x < x0 || x >= x1 {
                    return None;
                }
                let edge = (x - x0).min(x1 - x).min(ramp) / ramp.max(1.0);
                let top = z0 + (z1 - z0) * edge;
                (top > z0).then_some(([y[0], y[1], z0, top], 1.0))
            }
        }
    }
}

/// A homogeneous solid: a shape filled with one material at one density. A negative density
/// removes material (a hollow drum is a full drum plus a slightly smaller negative one), which is
/// exact under Beer–Lambert because attenuation adds along the ray.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Solid {
    /// Where it is.
    pub shape: Shape,
    /// Material name.
    pub material: &'static str,
    /// Density, g/cm³ (stowed density for goods; negative removes material).
    pub density: f64,
    /// Linear attenuation per mm (high, low energy).
    #[serde(skip)]
    pub mu: (f64, f64),
    /// Corrugated sheet: the path through it varies along x with the corrugation.
    pub corrugated: bool,
    /// Index of the truth item this solid belongs to, if it is cargo.
    pub item: Option<usize>,
    /// Part of a concealment: marked in the truth mask.
    pub concealed: bool,
}

impl Solid {
    /// A solid of `material` at `density`.
    pub fn new(shape: Shape, material: Material, density: f64) -> Self {
        Self {
            shape,
            material: material.name,
            density,
            mu: (
                material.mu_per_mm(true, density),
                material.mu_per_mm(false, density),
            ),
            corrugated: false,
            item: None,
            concealed: false,
        }
    }

    /// The same solid, belonging to truth item `item`.
    pub fn of_item(mut self, item: usize) -> Self {
        self.item = Some(item);
        self
    }

    /// The same solid, marked as concealed.
    pub fn hidden(mut self) -> Self {
        self.concealed = true;
        self
    }

    /// Attenuation multiplier of a corrugated sheet at `x` (trapezoidal profile, 280 mm pitch:
    /// the ray crosses the inclined flanks at a slant).
    pub fn corrugation(&self, x: f64) -> f64 {
        if self.corrugated {
            1.0 + 0.8 * (x * std::f64::consts::PI / 140.0).sin().abs()
        } else {
            1.0
        }
    }

    /// Mass in kg, for boxes, heaps and drums (wheels are structure and never weighed).
    pub fn mass_kg(&self) -> f64 {
        let volume_mm3 = match self.shape {
            Shape::Box { x, y, z } => (x[1] - x[0]) * (y[1] - y[0]) * (z[1] - z[0]),
            Shape::Heap { x, y, z, ramp } => {
                (x[1] - x[0] - ramp.min((x[1] - x[0]) / 2.0)) * (y[1] - y[0]) * (z[1] - z[0])
            }
            Shape::DrumZ { r, z, .. } => std::f64::consts::PI * r * r * (z[1] - z[0]),
            Shape::WheelY { r, y, .. } => std::f64::consts::PI * r * r * (y[1] - y[0]),
        };
        volume_mm3 * 1e-3 * self.density / 1000.0
    }
}

/// Shorthand for a box solid.
pub fn cuboid(x: [f64; 2], y: [f64; 2], z: [f64; 2], m: Material, density: f64) -> Solid {
    Solid::new(Shape::Box { x, y, z }, m, density)
}

/// ISO container types, with their exterior and interior dimensions (ISO 668, typical steel
/// dry boxes), tare and maximum payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ContainerType {
    /// 20' standard (22G1).
    #[serde(rename = "20")]
    Twenty,
    /// 40' standard (42G1).
    #[serde(rename = "40")]
    Forty,
    /// 40' high cube (45G1).
    #[serde(rename = "40HC")]
    FortyHighCube,
}

impl ContainerType {
    /// Parses `20`, `40` or `40hc`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "20" => Some(Self::Twenty),
            "40" => Some(Self::Forty),
            "40hc" => Some(Self::FortyHighCube),
            _ => None,
        }
    }

    /// Exterior length, width, height (mm).
    pub fn exterior(self) -> [f64; 3] {
        match self {
            Self::Twenty => [6_058.0, 2_438.0, 2_591.0],
            Self::Forty => [12_192.0, 2_438.0, 2_591.0],
            Self::FortyHighCube => [12_192.0, 2_438.0, 2_896.0],
        }
    }

    /// Interior length, width, height (mm).
    pub fn interior(self) -> [f64; 3] {
        match self {
            Self::Twenty => [5_898.0, 2_352.0, 2_393.0],
            Self::Forty => [12_032.0, 2_352.0, 2_393.0],
            Self::FortyHighCube => [12_032.0, 2_352.0, 2_698.0],
        }
    }

    /// Maximum payload, kg.
    pub fn max_payload_kg(self) -> f64 {
        match self {
            Self::Twenty => 28_200.0,
            Self::Forty => 26_700.0,
            Self::FortyHighCube => 26_500.0,
        }
    }

    /// ISO 6346 size and type code.
    pub fn size_type(self) -> &'static str {
        match self {
            Self::Twenty => "22G1",
            Self::Forty => "42G1",
            Self::FortyHighCube => "45G1",
        }
    }
}

/// Height of the floor boards; the cargo stands on `floor_top`.
pub const FLOOR_THICKNESS: f64 = 28.0;
/// Depth of the bottom side rails and cross-members under the floor.
pub const UNDERFRAME: f64 = 132.0;

/// Where the container sits in the scan and what surrounds it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Layout {
    /// Container type.
    pub container: ContainerType,
    /// A tractor and trailer chassis with wheels are in the image; otherwise the scan is cropped
    /// to the container on its trailer deck.
    pub truck: bool,
    /// Image extent along x, mm (before any motion stretch).
    pub length_mm: f64,
    /// Image extent in height, mm.
    pub height_mm: f64,
    /// Left (front) end of the container's exterior.
    pub container_x: f64,
    /// Height of the container's underside.
    pub container_z: f64,
}

impl Layout {
    /// The layout for a container type, with or without the truck.
    pub fn new(container: ContainerType, truck: bool) -> Self {
        let [len, _, ext_h] = container.exterior();
        if truck {
            // 300 mm margin, a 6 m tractor, 700 mm to the trailer's front end, the container,
            // 1.2 m of trailer overhang and margin. Trailer deck 1.25 m above the road.
            Self {
                container,
                truck,
                length_mm: 300.0 + 6_000.0 + 700.0 + len + 1_200.0,
                height_mm: Self::image_height(1_250.0 + ext_h),
                container_x: 7_000.0,
                container_z: 1_250.0,
            }
        } else {
            Self {
                container,
                truck,
                length_mm: len + 600.0,
                height_mm: Self::image_height(250.0 + ext_h),
                container_x: 300.0,
                container_z: 250.0,
            }
        }
    }

    /// Image height for a container whose roof is at `roof` mm: the fan beam projects the
    /// roof's near edge higher than the roof, and the image must hold it, plus 150 mm of air.
    fn image_height(roof: f64) -> f64 {
        let projected = BEAM.project(-ContainerType::Twenty.exterior()[1] / 2.0, roof);
        ((projected + 150.0) / 100.0).ceil() * 100.0
    }

    /// The cargo space: `[x0, x1]`, `[y0, y1]`, `[z0, z1]` inside the container, above the floor.
    pub fn cargo_space(&self) -> [[f64; 2]; 3] {
        let [ext_l, _, ext_h] = self.container.exterior();
        let [l, w, h] = self.container.interior();
        let x0 = self.container_x + (ext_l - l) / 2.0;
        let floor = self.container_z + UNDERFRAME + FLOOR_THICKNESS;
        debug_assert!(floor + h <= self.container_z + ext_h);
        [[x0, x0 + l], [-w / 2.0, w / 2.0], [floor, floor + h]]
    }

    /// The solids of the container structure, the trailer chassis and (if present) the tractor.
    pub fn structure(&self) -> Vec<Solid> {
        let mut s = Vec::new();
        let [ext_l, ext_w, ext_h] = self.container.exterior();
        let (left, right) = (self.container_x, self.container_x + ext_l);
        let (bottom, top) = (self.container_z, self.container_z + ext_h);
        let half = ext_w / 2.0;
        let floor_z = bottom + UNDERFRAME;
        let steel = |x: [f64; 2], y: [f64; 2], z: [f64; 2], fill: f64| {
            cuboid(x, y, z, STEEL, STEEL.density * fill)
        };
        // Corrugated side walls, 1.6 mm sheet.
        for y in [[-half, -half + 1.6], [half - 1.6, half]] {
            let mut wall = steel([left, right], y, [bottom, top], 1.0);
            wall.corrugated = true;
            s.push(wall);
        }
        // Roof sheet (2 mm) and the top side rails (hollow 60 x 100 mm sections, 4 mm wall).
        s.push(steel([left, right], [-half, half], [top - 2.0, top], 1.0));
        for y in [[-half, -half + 60.0], [half - 60.0, half]] {
            s.push(steel([left, right], y, [top - 100.0, top], 0.25));
        }
        // Bottom side rails (C-sections 160 mm deep) and cross-members every 300 mm.
        for y in [[-half, -half + 50.0], [half - 50.0, half]] {
            s.push(steel(
                [left, right],
                y,
                [bottom, floor_z + FLOOR_THICKNESS],
                0.3,
            ));
        }
        let mut x = left + 150.0;
        while x + 50.0 < right - 150.0 {
            s.push(steel([x, x + 50.0], [-half, half], [bottom, floor_z], 0.12));
            x += 300.0;
        }
        // Floor: 28 mm plywood.
        s.push(cuboid(
            [left, right],
            [-half, half],
            [floor_z, floor_z + FLOOR_THICKNESS],
            CELLULOSE,
            0.7,
        ));
        // Front end wall (corrugated 2 mm sheet within a 40 mm envelope) and corner posts.
        s.push(steel(
            [left, left + 40.0],
            [-half, half],
            [bottom, top],
            0.06,
        ));
        for x in [[left, left + 150.0], [right - 150.0, right]] {
            for y in [[-half, -half + 150.0], [half - 150.0, half]] {
                s.push(steel(x, y, [bottom, top], 0.12));
            }
        }
        // Doors: two 2 mm leaves in a 60 mm envelope, the door header and sill, and four
        // locking bars (27 mm tubes) standing the full door height.
        s.push(steel(
            [right - 70.0, right - 10.0],
            [-half, half],
            [bottom, top],
            0.07,
        ));
        s.push(steel(
            [right - 150.0, right],
            [-half, half],
            [top - 120.0, top],
            0.12,
        ));
        s.push(steel(
            [right - 150.0, right],
            [-half, half],
            [bottom, bottom + 120.0],
            0.12,
        ));
        for yc in [-900.0, -300.0, 300.0, 900.0] {
            s.push(steel(
                [right - 40.0, right - 13.0],
                [yc - 13.5, yc + 13.5],
                [bottom + 120.0, top - 120.0],
                0.3,
            ));
        }

        // Trailer chassis: two I-beams (12 mm webs) under the container, and its wheels.
        let deck = bottom;
        let (chassis_l, chassis_r) = if self.truck {
            (left - 700.0, right + 1_100.0)
        } else {
            (left - 300.0, right + 300.0)
        };
        for yc in [-500.0, 500.0] {
            s.push(steel(
                [chassis_l, chassis_r],
                [yc - 6.0, yc + 6.0],
                [deck - 300.0, deck],
                1.0,
            ));
        }
        if !self.truck {
            return s;
        }
        // Tandem or tri-axle bogie at the rear of the trailer, landing legs at the front.
        let axles = if ext_l > 7_000.0 { 3 } else { 2 };
        for k in 0..axles {
            wheel(&mut s, right - 700.0 - 1_310.0 * f64::from(k));
        }
        for yc in [-900.0, 900.0] {
            s.push(steel(
                [left + 1_500.0, left + 1_600.0],
                [yc - 50.0, yc + 50.0],
                [250.0, deck - 300.0],
                0.2,
            ));
        }
        // Tractor: ladder frame, engine block, gearbox, cab shell, fuel tank, fifth wheel, three
        // axles.
        let t0 = 300.0;
        s.push(steel(
            [t0 + 200.0, t0 + 6_000.0],
            [-450.0, 450.0],
            [750.0, 1_050.0],
            0.03,
        ));
        s.push(steel(
            [t0 + 500.0, t0 + 1_500.0],
            [-400.0, 400.0],
            [700.0, 1_500.0],
            0.35,
        ));
        s.push(steel(
            [t0 + 1_500.0, t0 + 2_200.0],
            [-250.0, 250.0],
            [800.0, 1_250.0],
            0.3,
        ));
        s.push(steel(
            [t0, t0 + 2_300.0],
            [-1_250.0, 1_250.0],
            [1_200.0, 3_900.0],
            0.004,
        ));
        s.push(steel(
            [t0 + 2_600.0, t0 + 3_600.0],
            [-1_250.0, -600.0],
            [600.0, 1_150.0],
            0.01,
        ));
        s.push(steel(
            [t0 + 4_300.0, t0 + 5_300.0],
            [-400.0, 400.0],
            [1_050.0, 1_250.0],
            0.3,
        ));
        for xc in [t0 + 1_100.0, t0 + 4_200.0, t0 + 5_550.0] {
            wheel(&mut s, xc);
        }
        s
    }
}

/// A pair of dual wheels on one axle: tyres (rubber), steel rims, and the axle beam.
fn wheel(s: &mut Vec<Solid>, xc: f64) {
    let zc = 500.0;
    for y in [[-1_250.0, -700.0], [700.0, 1_250.0]] {
        s.push(Solid::new(
            Shape::WheelY {
                xc,
                zc,
                r: 500.0,
                y,
            },
            PLASTIC,
            1.15,
        ));
        // The rim replaces the inner part of the tyre: remove rubber, add steel (8 % fill).
        s.push(Solid::new(
            Shape::WheelY {
                xc,
                zc,
                r: 290.0,
                y,
            },
            PLASTIC,
            -1.15,
        ));
        s.push(Solid::new(
            Shape::WheelY {
                xc,
                zc,
                r: 290.0,
                y,
            },
            STEEL,
            STEEL.density * 0.08,
        ));
    }
    s.push(cuboid(
        [xc - 60.0, xc + 60.0],
        [-1_000.0, 1_000.0],
        [zc - 60.0, zc + 60.0],
        STEEL,
        STEEL.density * 0.3,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_horizontal_ray_through_a_box_travels_its_width_and_a_slanted_one_further() {
        let beam = Beam {
            source_distance: 4_000.0,
            source_height: 1_000.0,
        };
        let sec = |k: f64| (1.0 + k * k).sqrt();
        let b = [-1_000.0, 1_000.0, 0.0, 2_000.0];
        assert!((beam.path_mm(0.0, 1.0, b) - 2_000.0).abs() < 1e-9);
        let k = beam.slope(1_500.0);
        let slanted = beam.path_mm(k, sec(k), b);
        assert!(slanted > 2_000.0 && slanted < 2_000.0 * sec(k) + 1e-9);
        // A ray passing above the box misses it.
        let k = beam.slope(5_000.0);
        assert_eq!(
            beam.path_mm(k, sec(k), [-1_000.0, 1_000.0, 0.0, 1_500.0]),
            0.0
        );
        // Projection: a point on the centre plane projects onto itself; a point nearer the
        // source projects further from the source height (magnification).
        assert!((beam.project(0.0, 2_000.0) - 2_000.0).abs() < 1e-9);
        assert!(beam.project(-1_000.0, 2_000.0) > beam.project(1_000.0, 2_000.0));
    }

    #[test]
    fn container_dimensions_are_the_iso_ones_and_the_cargo_space_fits_inside() {
        for t in [
            ContainerType::Twenty,
            ContainerType::Forty,
            ContainerType::FortyHighCube,
        ] {
            for truck in [false, true] {
                let l = Layout::new(t, truck);
                let [[x0, x1], [y0, y1], [z0, z1]] = l.cargo_space();
                let [el, ew, eh] = t.exterior();
                assert!(x0 > l.container_x && x1 < l.container_x + el);
                assert!(y0 > -ew / 2.0 && y1 < ew / 2.0);
                assert!(z0 > l.container_z && z1 < l.container_z + eh);
                assert!(l.container_x + el < l.length_mm && l.container_z + eh < l.height_mm);
            }
        }
        assert_eq!(ContainerType::Forty.interior()[0], 12_032.0);
        assert_eq!(
            ContainerType::parse("40HC"),
            Some(ContainerType::FortyHighCube)
        );
    }

    #[test]
    fn boxes_cover_columns_by_area_and_drums_by_chord() {
        let thin = cuboid([100.0, 105.0], [0.0, 1.0], [0.0, 1.0], STEEL, 1.0);
        let (_, cover) = thin.shape.section(104.0, 10.0).unwrap();
        assert!((cover - 0.5).abs() < 1e-9);
        let drum = Shape::DrumZ {
            xc: 0.0,
            yc: 0.0,
            r: 300.0,
            z: [0.0, 900.0],
        };
        let ([y0, y1, ..], _) = drum.section(0.0, 10.0).unwrap();
        assert!((y1 - y0 - 600.0).abs() < 1e-9);
        assert!(drum.section(301.0, 10.0).is_none());
    }
}
