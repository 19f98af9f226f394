//! Painting a container face flat: corrugation, frame, door bars, the ISO 6346 marking and
//! dirt, with where each character of the marking went (the truth OCR training crops are
//! labelled from).

use baylens_protocol::ContainerCode;
use image::{Rgb, RgbImage};
use rand::Rng;

use super::View;
use crate::lettering::Typeface;

/// Texture resolution (pixels per metre) of each face.
const DOOR_PPM: f64 = 420.0;
const SIDE_PPM: f64 = 160.0;

/// Paint colours of container fleets, and the colour of the marking on each.
const PAINTS: [([u8; 3], [u8; 3]); 7] = [
    ([38, 84, 140], [240, 240, 235]),   // blue, white text
    ([150, 40, 32], [240, 240, 235]),   // red
    ([40, 105, 60], [240, 240, 235]),   // green
    ([120, 120, 118], [245, 245, 240]), // grey
    ([205, 110, 35], [245, 245, 240]),  // orange
    ([225, 225, 218], [25, 25, 25]),    // white, black text
    ([190, 160, 60], [25, 25, 25]),     // yellow
];

pub(super) fn fill_rect(img: &mut RgbImage, x0: f64, y0: f64, x1: f64, y1: f64, colour: [u8; 3]) {
    let (w, h) = (img.width() as f64, img.height() as f64);
    for y in y0.max(0.0) as u32..y1.min(h).max(0.0) as u32 {
        for x in x0.max(0.0) as u32..x1.min(w).max(0.0) as u32 {
            img.put_pixel(x, y, Rgb(colour));
        }
    }
}

fn outline_rect(img: &mut RgbImage, r: [f64; 4], t: f64, colour: [u8; 3]) {
    let [x0, y0, x1, y1] = r;
    fill_rect(img, x0, y0, x1, y0 + t, colour);
    fill_rect(img, x0, y1 - t, x1, y1, colour);
    fill_rect(img, x0, y0, x0 + t, y1, colour);
    fill_rect(img, x1 - t, y0, x1, y1, colour);
}

/// Letters and digits of the marking: each character and its centre (face pixels).
pub(super) type Glyphs = Vec<(char, [f64; 2])>;

/// Draws `text` and notes where its characters went.
#[allow(clippy::too_many_arguments)]
fn mark(
    img: &mut RgbImage,
    glyphs: &mut Glyphs,
    typeface: &Typeface,
    text: &str,
    x: f64,
    y: f64,
    size: f64,
    ink: [u8; 3],
) -> f64 {
    glyphs.extend(typeface.centres(text, x, y, size));
    typeface.draw(img, text, x, y, size, ink)
}

/// The painted face: corrugation, frame, door bars, marking and dirt, with the marking's glyphs.
#[allow(clippy::too_many_arguments)]
pub(super) fn paint_face(
    view: View,
    typeface: &Typeface,
    face_m: [f64; 2],
    code: &ContainerCode,
    size_type: &str,
    vertical: bool,
    rng: &mut impl Rng,
    difficulty: f64,
) -> (RgbImage, Glyphs) {
    let mut glyphs = Glyphs::new();
    let ppm = if view == View::Door {
        DOOR_PPM
    } else {
        SIDE_PPM
    };
    let (w, h) = (
        (face_m[0] * ppm).round() as u32,
        (face_m[1] * ppm).round() as u32,
    );
    let (paint, ink) = PAINTS[rng.random_range(0..PAINTS.len())];
    let mut img = RgbImage::new(w, h);
    // Corrugation: vertical ribs, lit from one side.
    let pitch = if view == View::Door { 0.07 } else { 0.278 } * ppm;
    for x in 0..w {
        let phase = (f64::from(x) / pitch * std::f64::consts::TAU).sin();
        let shade = 1.0 + 0.09 * phase;
        let c = paint.map(|v| (f64::from(v) * shade).clamp(0.0, 255.0) as u8);
        for y in 0..h {
            img.put_pixel(x, y, Rgb(c));
        }
    }
    // Frame: corner posts and rails, darker.
    let dark = paint.map(|v| (f64::from(v) * 0.55) as u8);
    let t = 0.12 * ppm;
    outline_rect(&mut img, [0.0, 0.0, w as f64, h as f64], t, dark);
    // Markings are painted inside the frame rails.
    let mut text_area = [
        t + 0.05 * ppm,
        t + 0.02 * ppm,
        w as f64 - t - 0.05 * ppm,
        h as f64 - t,
    ];
    if view == View::Door {
        // Two doors; the right one carries the marking. Four locking bars.
        fill_rect(
            &mut img,
            w as f64 / 2.0 - 3.0,
            t,
            w as f64 / 2.0 + 3.0,
            h as f64 - t,
            dark,
        );
        for k in [0.14, 0.36, 0.64, 0.86] {
            let x = k * w as f64;
            fill_rect(
                &mut img,
                x - 0.018 * ppm,
                t,
                x + 0.018 * ppm,
                h as f64 - t,
                [70, 70, 72],
            );
            for yy in [0.3, 0.7] {
                let y = yy * h as f64;
                fill_rect(
                    &mut img,
                    x - 0.05 * ppm,
                    y - 0.03 * ppm,
                    x + 0.05 * ppm,
                    y + 0.03 * ppm,
                    [60, 60, 62],
                );
            }
        }
        text_area = [
            w as f64 / 2.0 + 0.08 * ppm,
            t + 0.1 * ppm,
            w as f64 - t - 0.05 * ppm,
            h as f64,
        ];
    }
    let s = code.as_str();
    let (owner, serial, check) = (&s[..4], &s[4..10], &s[10..]);
    if vertical && view == View::Door {
        // Stacked at the right door's outer edge, one character per row, in the strip between
        // the outer locking bar's brackets and the corner post, as owners paint it: never on
        // the bar, which stands proud of the door.
        let size = 0.11 * ppm;
        let x = (0.86 * w as f64 + 0.05 * ppm + w as f64 - t) / 2.0;
        let mut y = t + 0.25 * ppm;
        for (i, c) in s.chars().enumerate() {
            let cw = typeface.width(&c.to_string(), size);
            mark(
                &mut img,
                &mut glyphs,
                typeface,
                &c.to_string(),
                x - cw / 2.0,
                y,
                size,
                ink,
            );
            if i == 10 {
                outline_rect(
                    &mut img,
                    [
                        x - 0.6 * size,
                        y - 0.2 * size,
                        x + 0.6 * size,
                        y + 1.2 * size,
                    ],
                    0.08 * size,
                    ink,
                );
            }
            y += size * 1.45;
        }
        // The size/type code stays horizontal, on the door.
        mark(
            &mut img,
            &mut glyphs,
            typeface,
            size_type,
            text_area[0] + 0.1 * ppm,
            text_area[1] + 0.2 * ppm,
            size,
            ink,
        );
    } else {
        // Door: the ISO 6346 marking (100 mm characters). Side: the large code many owners paint
        // along the top rail (280 mm), which a camera that sees the whole side can read.
        let mut size = if view == View::Door { 0.1 } else { 0.28 } * ppm;
        let line = format!("{owner} {serial}");
        // A typeface too wide for the space is painted smaller, as an owner would.
        let wide = (typeface.width(&line, size) + size * 1.3) / (text_area[2] - text_area[0]);
        if wide > 1.0 {
            size /= wide;
        }
        let lw = typeface.width(&line, size) + size * 1.3;
        let x = (text_area[2] - lw - 0.1 * ppm).max(text_area[0]);
        let y = text_area[1]
            + if view == View::Door {
                0.15 * ppm
            } else {
                0.3 * size
            };
        let used = mark(&mut img, &mut glyphs, typeface, &line, x, y, size, ink);
        let cx = x + used + size * 0.45;
        mark(&mut img, &mut glyphs, typeface, check, cx, y, size, ink);
        let cw = typeface.width(check, size);
        outline_rect(
            &mut img,
            [
                cx - 0.22 * size,
                y - 0.22 * size,
                cx + cw + 0.22 * size,
                y + 1.22 * size,
            ],
            0.09 * size,
            ink,
        );
        mark(
            &mut img,
            &mut glyphs,
            typeface,
            size_type,
            x,
            y + size * 1.7,
            size,
            ink,
        );
        if view == View::Door {
            // Payload marking: smaller text that is not the code.
            let small = 0.045 * ppm;
            let mut yy = y + size * 3.6;
            for l in ["MAX.GROSS 30480 KG", "TARE 3750 KG", "PAYLOAD 26730 KG"] {
                mark(&mut img, &mut glyphs, typeface, l, x, yy, small, ink);
                yy += small * 1.6;
            }
        }
    }
    // Dirt and rust: soft dark blotches.
    let blotches = (difficulty * rng.random_range(0.0..12.0)) as usize;
    for _ in 0..blotches {
        let (cx, cy) = (
            rng.random_range(0.0..w as f64),
            rng.random_range(0.0..h as f64),
        );
        let r = rng.random_range(0.02..0.15) * ppm;
        let strength = rng.random_range(0.15..0.45) * difficulty;
        let tint = [90.0, 60.0, 40.0];
        for y in (cy - r).max(0.0) as u32..((cy + r) as u32).min(h) {
            for x in (cx - r).max(0.0) as u32..((cx + r) as u32).min(w) {
                let d = ((f64::from(x) - cx).powi(2) + (f64::from(y) - cy).powi(2)).sqrt() / r;
                if d < 1.0 {
                    let a = strength * (1.0 - d * d);
                    let p = img.get_pixel_mut(x, y);
                    for k in 0..3 {
                        p[k] = (f64::from(p[k]) * (1.0 - a) + tint[k] * a) as u8;
                    }
                }
            }
        }
    }
    (img, glyphs)
}
