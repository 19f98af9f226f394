//! The expected-cargo overlay: PNG layers of the scan's size, and the same primitives as vector
//! JSON in scan pixel coordinates, for the review UI, the tablet page and AR clients.
//!
//! | layer | file | what |
//! |---|---|---|
//! | scan | `scan.png` | high-energy transmission, contrast-enhanced (histogram equalisation of the cargo's grey levels; air stays white) |
//! | material | `material.png` | dual-energy class of every cargo pixel (RGBA, half opacity) |
//! | expected | `expected.png` | the declared goods laid out as they should show (filled with their expected class colour, outlined) |
//! | heat | `heat.png` | concealment probability ([`crate::preview`]) |
//! | findings | `findings.png` | every finding's region, outlined; undeclared and concealed regions hatched |
//! | vector | `overlay.json` | all of the above as rectangles with labels, plus the legend ([`OVERLAY_CONTRACT`]) |
//!
//! **Colours** come from viridis, whose lightness rises monotonically, so the classes stay
//! apart under deuteranopia, protanopia and tritanopia and even in greyscale: light (yellow) is
//! the lightest matter, organic, and dark (purple) the densest, metal and opaque. Findings are
//! vermillion (Okabe–Ito #D55E00) with a dark edge, which reads on both the grey scan and the
//! viridis map. The legend travels in the JSON and as `legend.svg`.

use std::io::Cursor;

use baylens_protocol::{Finding, FindingKind, Region, ScanReport};
use image::{ImageBuffer, ImageFormat, Luma, Rgba, RgbaImage};
use serde_json::{Value, json};

use baylens_models::ConcealmentOutput;

use crate::calibration::CargoEstimate;
use crate::expected::{Block, ExpectedLayout};
use crate::material_map::MaterialClass;
use crate::preview::render_heat_layer;

/// Version of the vector overlay document.
pub const OVERLAY_CONTRACT: &str = "baylens.overlay/1";

/// Viridis colours of the material classes (None, organic, mixed, inorganic, metal, opaque).
pub const CLASS_COLOURS: [[u8; 3]; 6] = [
    [0, 0, 0],
    [253, 231, 37],
    [94, 201, 98],
    [33, 145, 140],
    [59, 82, 139],
    [68, 1, 84],
];
/// Finding outline colour (Okabe–Ito vermillion).
pub const FINDING_COLOUR: [u8; 3] = [213, 94, 0];

fn hex([r, g, b]: [u8; 3]) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

fn class_name(c: MaterialClass) -> &'static str {
    match c {
        MaterialClass::None => "none",
        MaterialClass::Organic => "organic",
        MaterialClass::Mixed => "mixed",
        MaterialClass::Inorganic => "inorganic",
        MaterialClass::Metal => "metal",
        MaterialClass::Opaque => "opaque",
    }
}

fn goods_colour(class: Option<baylens_protocol::hs::GoodsClass>) -> [u8; 3] {
    use baylens_protocol::hs::GoodsClass;
    match class {
        Some(GoodsClass::Organic) => CLASS_COLOURS[1],
        Some(GoodsClass::Inorganic) => CLASS_COLOURS[3],
        Some(GoodsClass::Metal) => CLASS_COLOURS[4],
        None => [200, 200, 200],
    }
}

fn png_rgba(img: &RgbaImage) -> Result<Vec<u8>, image::ImageError> {
    let mut bytes = Vec::new();
    img.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)?;
    Ok(bytes)
}

/// The scan, contrast-enhanced: transmission equalised over the histogram of the pixels that
/// hold something (below 90 % of air), so dense and thin cargo both get the full grey range;
/// air stays white.
pub fn render_scan(
    readings: &[u16],
    width: u32,
    height: u32,
    air: u16,
    dark: u16,
) -> Result<Vec<u8>, image::ImageError> {
    let span = f32::from(air.saturating_sub(dark)).max(1.0);
    let t = |v: u16| ((f32::from(v) - f32::from(dark)) / span).clamp(0.0, 1.0);
    // Readings are 16-bit: count each value once, then work on the 65,536 values, not the pixels.
    let mut counts = vec![0u32; 65_536];
    for &v in readings {
        counts[usize::from(v)] += 1;
    }
    let mut hist = [0u64; 1024];
    for (v, &n) in counts.iter().enumerate() {
        let x = t(v as u16);
        if n > 0 && x < 0.9 {
            hist[(x * 1023.0) as usize] += u64::from(n);
        }
    }
    let total: u64 = hist.iter().sum();
    let mut cdf = [0f32; 1024];
    let mut acc = 0u64;
    for (i, h) in hist.iter().enumerate() {
        acc += h;
        cdf[i] = acc as f32 / total.max(1) as f32;
    }
    let grey: Vec<u8> = (0..=u16::MAX)
        .map(|v| {
            let x = t(v);
            let g = if x >= 0.9 {
                // Air and near-air: from light grey to white.
                235.0 + (x - 0.9) / 0.1 * 20.0
            } else {
                cdf[(x * 1023.0) as usize] * 230.0
            };
            g.round().clamp(0.0, 255.0) as u8
        })
        .collect();
    let pixels: Vec<u8> = readings.iter().map(|&v| grey[usize::from(v)]).collect();
    let img =
        ImageBuffer::<Luma<u8>, Vec<u8>>::from_raw(width, height, pixels).ok_or_else(|| {
            image::ImageError::Parameter(image::error::ParameterError::from_kind(
                image::error::ParameterErrorKind::DimensionMismatch,
            ))
        })?;
    let mut bytes = Vec::new();
    img.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)?;
    Ok(bytes)
}

/// A thumbnail of a greyscale PNG at a third of its size (the first image a cleared scan
/// sends over a weak uplink).
pub fn thumbnail(png: &[u8]) -> Result<Vec<u8>, image::ImageError> {
    let img = image::load_from_memory_with_format(png, ImageFormat::Png)?.into_luma8();
    let (w, h) = img.dimensions();
    let small = image::imageops::resize(
        &img,
        (w / 3).max(1),
        (h / 3).max(1),
        image::imageops::FilterType::Triangle,
    );
    let mut bytes = Vec::new();
    small.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)?;
    Ok(bytes)
}

/// The material map as a half-transparent RGBA layer.
pub fn render_material(
    cargo: &CargoEstimate,
    width: u32,
    height: u32,
) -> Result<Vec<u8>, image::ImageError> {
    let mut img = RgbaImage::new(width, height);
    for (px, &c) in img.pixels_mut().zip(&cargo.classes) {
        if c != MaterialClass::None as u8 {
            let [r, g, b] = CLASS_COLOURS[usize::from(c).min(5)];
            *px = Rgba([r, g, b, 130]);
        }
    }
    png_rgba(&img)
}

fn outline(img: &mut RgbaImage, r: Region, colour: [u8; 3], thick: u32) {
    let (w, h) = img.dimensions();
    let (x0, y0) = (r.x.min(w.saturating_sub(1)), r.y.min(h.saturating_sub(1)));
    let (x1, y1) = (
        (r.x + r.width).min(w).max(x0 + 1) - 1,
        (r.y + r.height).min(h).max(y0 + 1) - 1,
    );
    let [cr, cg, cb] = colour;
    for y in y0..=y1 {
        for x in x0..=x1 {
            let d = (x - x0).min(x1 - x).min(y - y0).min(y1 - y);
            if d < thick {
                *img.get_pixel_mut(x, y) = Rgba([cr, cg, cb, 255]);
            } else if d == thick {
                *img.get_pixel_mut(x, y) = Rgba([20, 20, 20, 220]);
            }
        }
    }
}

fn hatch(img: &mut RgbaImage, r: Region, colour: [u8; 3], alpha: u8) {
    let (w, h) = img.dimensions();
    let [cr, cg, cb] = colour;
    for y in r.y..(r.y + r.height).min(h) {
        for x in r.x..(r.x + r.width).min(w) {
            if (x + y) % 12 < 3 && img.get_pixel(x, y)[3] == 0 {
                *img.get_pixel_mut(x, y) = Rgba([cr, cg, cb, alpha]);
            }
        }
    }
}

/// The expected cargo: each declared item as a rectangle in its expected class colour.
pub fn render_expected(
    layout: &ExpectedLayout,
    width: u32,
    height: u32,
) -> Result<Vec<u8>, image::ImageError> {
    let mut img = RgbaImage::new(width, height);
    for item in &layout.items {
        if item.x1 <= item.x0 || item.floor <= item.top {
            continue;
        }
        let [r, g, b] = goods_colour(item.class);
        for y in item.top..item.floor.min(height as usize) {
            for x in item.x0..item.x1.min(width as usize) {
                *img.get_pixel_mut(x as u32, y as u32) = Rgba([r, g, b, 90]);
            }
        }
        outline(&mut img, item_region(item), [r, g, b], 2);
    }
    png_rgba(&img)
}

fn item_region(item: &crate::expected::ExpectedItem) -> Region {
    Region {
        x: item.x0 as u32,
        y: item.top as u32,
        width: (item.x1.saturating_sub(item.x0)) as u32,
        height: (item.floor.saturating_sub(item.top)) as u32,
    }
}

/// The findings: each region outlined, concealment and undeclared regions hatched too.
pub fn render_findings(
    findings: &[Finding],
    width: u32,
    height: u32,
) -> Result<Vec<u8>, image::ImageError> {
    let mut img = RgbaImage::new(width, height);
    let thick = (width.max(height) / 400).clamp(2, 6);
    for f in findings {
        let Some(r) = f.region else { continue };
        outline(&mut img, r, FINDING_COLOUR, thick);
        if matches!(
            f.kind,
            FindingKind::ConcealedObject | FindingKind::UndeclaredRegion
        ) {
            hatch(&mut img, r, FINDING_COLOUR, 150);
        }
    }
    png_rgba(&img)
}

/// Named files: `(file name, bytes)`.
pub type Files = Vec<(String, Vec<u8>)>;

/// The high-energy image: readings, width, height, air, dark.
pub type HighImage<'a> = (&'a [u16], u32, u32, u16, u16);

/// Renders every PNG layer the scan has (scan, material, expected, heat, findings; see the
/// module docs), on two threads. Returns the files and the names of the layers, in order.
pub fn render_layers(
    (readings, w, h, air, dark): HighImage<'_>,
    cargo: Option<&CargoEstimate>,
    layout: Option<&ExpectedLayout>,
    heat: &ConcealmentOutput,
    findings: &[Finding],
) -> Result<(Files, Vec<&'static str>), image::ImageError> {
    type Layer = Result<Option<(&'static str, Vec<u8>)>, image::ImageError>;
    let (first, second): (Vec<Layer>, Vec<Layer>) = std::thread::scope(|s| {
        let other = s.spawn(|| {
            vec![
                cargo
                    .map(|c| render_material(c, w, h).map(|b| ("material", b)))
                    .transpose(),
                layout
                    .map(|l| render_expected(l, w, h).map(|b| ("expected", b)))
                    .transpose(),
                render_findings(findings, w, h).map(|b| Some(("findings", b))),
            ]
        });
        let mine = vec![
            render_scan(readings, w, h, air, dark).map(|b| Some(("scan", b))),
            render_heat_layer(w, h, heat).map(|b| Some(("heat", b))),
        ];
        (mine, other.join().expect("layer rendering does not panic"))
    });
    let mut by_name = Vec::new();
    for layer in first.into_iter().chain(second) {
        if let Some(l) = layer? {
            by_name.push(l);
        }
    }
    let mut files = Vec::new();
    let mut names = Vec::new();
    for name in ["scan", "material", "expected", "heat", "findings"] {
        if let Some((n, bytes)) = by_name.iter().find(|(n, _)| *n == name) {
            files.push((format!("{n}.png"), bytes.clone()));
            names.push(*n);
        }
    }
    Ok((files, names))
}

fn rect(r: Region) -> Value {
    json!({"x": r.x, "y": r.y, "width": r.width, "height": r.height})
}

/// The legend: one entry per colour a layer uses.
pub fn legend() -> Value {
    let mut entries = Vec::new();
    for c in [
        MaterialClass::Organic,
        MaterialClass::Mixed,
        MaterialClass::Inorganic,
        MaterialClass::Metal,
        MaterialClass::Opaque,
    ] {
        let label = match c {
            MaterialClass::Organic => "Organic (food, textiles, paper, wood, plastics)",
            MaterialClass::Mixed => "Organic or light inorganic",
            MaterialClass::Inorganic => "Light inorganic (glass, ceramics, aluminium, electronics)",
            MaterialClass::Metal => "Metal (iron and heavier)",
            _ => "Too dense to see through",
        };
        entries.push(json!({"layer": "material", "key": class_name(c),
                            "colour": hex(CLASS_COLOURS[c as usize]), "label": label}));
    }
    entries.push(json!({"layer": "expected", "key": "declared",
        "colour": "outline", "label": "Declared goods as they should show, in their expected material colour"}));
    entries.push(json!({"layer": "heat", "key": "concealment",
        "colour": "#e66100..#ffe650", "label": "Concealment probability (orange to yellow: higher)"}));
    entries.push(json!({"layer": "findings", "key": "finding",
        "colour": hex(FINDING_COLOUR), "label": "Finding: look here (hatched: hidden or undeclared goods)"}));
    Value::Array(entries)
}

/// The legend as a small SVG, readable on a tablet.
pub fn legend_svg() -> String {
    let entries = legend();
    let rows = entries.as_array().map_or(&[][..], Vec::as_slice);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"560\" height=\"{}\" font-family=\"sans-serif\" font-size=\"18\">\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n",
        20 + 34 * rows.len()
    );
    for (i, e) in rows.iter().enumerate() {
        let y = 12 + 34 * i;
        let colour = e["colour"].as_str().unwrap_or("#000000");
        let fill = if colour.starts_with('#') && colour.len() == 7 {
            colour.to_owned()
        } else if colour == "outline" {
            "none".to_owned()
        } else {
            "#f08c28".to_owned()
        };
        let stroke = if e["layer"] == "findings" || colour == "outline" {
            "#141414"
        } else {
            "none"
        };
        svg.push_str(&format!(
            "<rect x=\"12\" y=\"{y}\" width=\"26\" height=\"26\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"3\"/><text x=\"50\" y=\"{}\">{}</text>\n",
            y + 19,
            e["label"].as_str().unwrap_or("")
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

/// The vector overlay document (see the module docs for the layers it names).
pub fn vector(
    report: &ScanReport,
    pitch_mm: [f64; 2],
    cargo: Option<&CargoEstimate>,
    layout: Option<&ExpectedLayout>,
    blocks: &[Block],
    layers: &[&str],
) -> Value {
    json!({
        "contract": OVERLAY_CONTRACT,
        "scan_id": report.scan_id,
        "width": report.width,
        "height": report.height,
        "pixel_pitch_mm": pitch_mm[0],
        "pixel_pitch_vertical_mm": pitch_mm[1],
        "cargo_space": cargo.map(|c| rect(Region {
            x: c.space.x0 as u32, y: c.space.top as u32,
            width: (c.space.x1 - c.space.x0) as u32, height: (c.space.floor - c.space.top) as u32,
        })),
        "expected": layout.map_or(Vec::new(), |l| l.items.iter().map(|i| json!({
            "item": i.index,
            "description": i.description,
            "class": i.class.map(|c| c.as_str()),
            "mass_kg": i.mass_kg,
            "area_m2": [i.area_m2[0], if i.area_m2[1].is_finite() { json!(i.area_m2[1]) } else { Value::Null }],
            "rect": rect(item_region(i)),
            "colour": hex(goods_colour(i.class)),
        })).collect()),
        "observed": blocks.iter().map(|b| json!({
            "class": class_name(b.class),
            "mass_kg": (b.mass_kg * 10.0).round() / 10.0,
            "area_m2": (b.area_m2 * 100.0).round() / 100.0,
            "rect": rect(Region { x: b.x0 as u32, y: b.top as u32,
                                  width: (b.x1 - b.x0) as u32, height: (b.bottom - b.top) as u32 }),
            "colour": hex(CLASS_COLOURS[b.class as usize]),
        })).collect::<Vec<_>>(),
        "findings": report.findings.iter().map(|f| json!({
            "kind": f.kind,
            "score": f.score,
            "rect": f.region.map(rect),
            "message": f.message,
            "colour": hex(FINDING_COLOUR),
        })).collect::<Vec<_>>(),
        "risk": report.risk,
        "lane": report.lane,
        "layers": layers.iter().map(|l| json!({"name": l, "file": format!("{l}.png")})).collect::<Vec<_>>(),
        "legend": legend(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_classes_get_darker_with_density() {
        let lum = |[r, g, b]: [u8; 3]| {
            0.2126 * f64::from(r) + 0.7152 * f64::from(g) + 0.0722 * f64::from(b)
        };
        for k in 1..5 {
            assert!(
                lum(CLASS_COLOURS[k]) > lum(CLASS_COLOURS[k + 1]),
                "class {k}"
            );
        }
    }

    #[test]
    fn the_scan_layer_keeps_air_white_and_spreads_the_cargo() {
        let mut readings = vec![1000u16; 100];
        for (i, r) in readings.iter_mut().enumerate().take(50) {
            *r = 100 + i as u16; // a narrow band of dense cargo
        }
        let png = render_scan(&readings, 10, 10, 1000, 0).unwrap();
        let img = image::load_from_memory(&png).unwrap().into_luma8();
        assert_eq!(img.get_pixel(9, 9)[0], 255);
        let (lo, hi) = (img.get_pixel(0, 0)[0], img.get_pixel(9, 4)[0]);
        // 100..150 of 1000 spans 5 % of the range; equalised it spans most of it.
        assert!(hi - lo > 150, "{lo}..{hi}");
    }

    #[test]
    fn findings_are_outlined_where_they_are() {
        let f = Finding {
            kind: FindingKind::UndeclaredRegion,
            score: 0.6,
            region: Some(Region {
                x: 10,
                y: 10,
                width: 20,
                height: 10,
            }),
            message: "m".into(),
        };
        let png = render_findings(&[f], 64, 32).unwrap();
        let img = image::load_from_memory(&png).unwrap().into_rgba8();
        assert_eq!(img.get_pixel(10, 15)[0], FINDING_COLOUR[0]);
        assert_eq!(img.get_pixel(5, 5)[3], 0);
        assert!(legend_svg().contains("Metal"));
    }
}
