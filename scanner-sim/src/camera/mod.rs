//! Simulated bay cameras: what a camera at the bay sees of the container the scanner scanned.
//!
//! Two views:
//! - [`View::Door`]: the door end, with the ISO 6346 marking as it is painted on the right-hand
//!   door (owner code, serial and boxed check digit on one line, the size/type code under it,
//!   smaller payload text beside it) or, on some containers, stacked vertically on the door
//!   post. This is what the container-code OCR reads.
//! - [`View::Side`]: the long side face the X-ray scanner sees, with the code in its top right
//!   corner. This is what AR registration anchors the scan to.
//!
//! The face is drawn flat (corrugation, door bars, dirt, text) and then projected into the frame
//! through a random homography (the camera's pose), with lighting gradients, blur, sensor noise
//! and sometimes an occluding post or person. Every frame comes with its ground truth: the code,
//! the face's corners in the frame and the homography from face metres to frame pixels.

use baylens_protocol::ContainerCode;
use image::{Rgb, RgbImage};
use rand::Rng;
use rand_distr::{Distribution, Normal};

use crate::ContainerType;
use crate::lettering::Typeface;

mod face;

use face::{fill_rect, paint_face};

/// Which face of the container the camera looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// The door end (2.438 m wide).
    Door,
    /// The long side (6.058 or 12.192 m).
    Side,
}

/// How hard the frame is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CameraOptions {
    /// Frame width (pixels).
    pub width: u32,
    /// Frame height (pixels).
    pub height: u32,
    /// 0 gives a clean, frontal frame; 1 the full range of pose, light, blur, dirt and occlusion.
    pub difficulty: f64,
    /// Probability that the door marking is stacked vertically on the door post.
    pub vertical_share: f64,
}

impl Default for CameraOptions {
    fn default() -> Self {
        Self {
            width: 1280,
            height: 720,
            difficulty: 1.0,
            vertical_share: 0.25,
        }
    }
}

/// A rendered camera frame and what is known about it.
#[derive(Debug, Clone)]
pub struct CameraFrame {
    /// The frame.
    pub image: RgbImage,
    /// The container code painted on the face.
    pub code: ContainerCode,
    /// The size/type code painted under it.
    pub size_type: &'static str,
    /// Whether the code is stacked vertically.
    pub vertical: bool,
    /// Face size (metres): width, height.
    pub face_m: [f64; 2],
    /// Face corners in the frame: top-left, top-right, bottom-right, bottom-left.
    pub corners: [[f64; 2]; 4],
    /// Homography from face metres (x right, y down from the top-left corner) to frame pixels,
    /// row-major.
    pub homography: [f64; 9],
    /// Whether an occluder was drawn.
    pub occluded: bool,
    /// Each letter and digit painted on the face where it lands in the frame: the code's 11
    /// characters, then the size/type code's 4, then any payload text.
    pub glyphs: Vec<Glyph>,
}

/// A painted character in a frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Glyph {
    /// The character.
    pub ch: char,
    /// Its centre (frame pixels).
    pub at: [f64; 2],
    /// Whether it falls outside the frame or behind the occluder.
    pub hidden: bool,
}

/// The size/type code of a container type.
pub fn size_type(container: ContainerType) -> &'static str {
    match container {
        ContainerType::Twenty => "22G1",
        ContainerType::Forty => "42G1",
        ContainerType::FortyHighCube => "45G1",
    }
}

pub use baylens_protocol::homography::{apply, from_points as homography_from_points, invert};

/// A random camera pose for a face: where its corners land in the frame.
fn pose(face_m: [f64; 2], opts: &CameraOptions, view: View, rng: &mut impl Rng) -> [[f64; 2]; 4] {
    let (fw, fh) = (f64::from(opts.width), f64::from(opts.height));
    let d = opts.difficulty;
    let aspect = face_m[0] / face_m[1];
    // The face fills 55 to 85 % of the frame's width or height, whichever binds.
    let fill = rng.random_range(0.55..0.85);
    let (mut w, mut h) = (fw * fill, fw * fill / aspect);
    if h > fh * fill {
        h = fh * fill;
        w = h * aspect;
    }
    let cx = fw / 2.0 + rng.random_range(-0.5..0.5) * (fw - w) * 0.8;
    let cy = fh / 2.0 + rng.random_range(-0.5..0.5) * (fh - h) * 0.8;
    // Yaw: one vertical edge shorter than the other; pitch: one horizontal edge shorter.
    let max_yaw = if view == View::Side { 0.25 } else { 0.3 };
    let yaw = rng.random_range(-max_yaw..max_yaw) * d;
    let pitch = rng.random_range(-0.12..0.12) * d;
    let roll: f64 = rng.random_range(-0.06..0.06) * d;
    let mut c = [
        [-w / 2.0, -h / 2.0 * (1.0 - yaw)],
        [w / 2.0, -h / 2.0 * (1.0 + yaw)],
        [w / 2.0, h / 2.0 * (1.0 + yaw)],
        [-w / 2.0, h / 2.0 * (1.0 - yaw)],
    ];
    for p in &mut c {
        p[0] *= 1.0 + pitch * p[1].signum();
        let jitter = 0.015 * d * w;
        p[0] += rng.random_range(-jitter..=jitter);
        p[1] += rng.random_range(-jitter..=jitter);
        let (s, co) = roll.sin_cos();
        *p = [p[0] * co - p[1] * s + cx, p[0] * s + p[1] * co + cy];
    }
    c
}

/// A busy bay background: concrete, a wall line, a kerb, some clutter.
fn background(opts: &CameraOptions, rng: &mut impl Rng) -> RgbImage {
    let (w, h) = (opts.width, opts.height);
    let horizon = rng.random_range(0.25..0.5) * f64::from(h);
    let sky = [
        rng.random_range(150..200u8),
        rng.random_range(160..205),
        rng.random_range(170..215),
    ];
    let ground = [rng.random_range(90..140u8); 3];
    let mut img = RgbImage::new(w, h);
    for y in 0..h {
        let c = if f64::from(y) < horizon { sky } else { ground };
        for x in 0..w {
            let n = ((x / 16 + y / 16) % 2) as u8 * 4;
            img.put_pixel(x, y, Rgb(c.map(|v| v.saturating_sub(n))));
        }
    }
    for _ in 0..rng.random_range(2..6) {
        let x0 = rng.random_range(0.0..f64::from(w));
        let y0 = rng.random_range(0.0..f64::from(h));
        let c = [rng.random_range(40..200u8); 3];
        fill_rect(
            &mut img,
            x0,
            y0,
            x0 + rng.random_range(20.0..200.0),
            y0 + rng.random_range(10.0..120.0),
            c,
        );
    }
    img
}

/// Renders one camera frame of a container with `code`.
pub fn render(
    view: View,
    container: ContainerType,
    code: &ContainerCode,
    opts: &CameraOptions,
    rng: &mut impl Rng,
) -> CameraFrame {
    paint(view, container, code, opts, rng).frame(opts, rng)
}

/// One face of one container, painted once (marking, corrugation, dirt): the frames of a truck
/// pass are [`Painted::frame`]s of it, each from its own pose, light, blur and noise.
#[derive(Debug, Clone)]
pub struct Painted {
    view: View,
    face_m: [f64; 2],
    face: RgbImage,
    code: ContainerCode,
    size_type: &'static str,
    vertical: bool,
    /// The marking's characters and their centres (face metres).
    glyphs: Vec<(char, [f64; 2])>,
}

/// Paints the `view` face of a container with `code`, in the bundled typeface.
pub fn paint(
    view: View,
    container: ContainerType,
    code: &ContainerCode,
    opts: &CameraOptions,
    rng: &mut impl Rng,
) -> Painted {
    paint_in(view, container, code, &Typeface::bundled(), opts, rng)
}

/// Paints the `view` face of a container with `code`, marked in `typeface`.
pub fn paint_in(
    view: View,
    container: ContainerType,
    code: &ContainerCode,
    typeface: &Typeface,
    opts: &CameraOptions,
    rng: &mut impl Rng,
) -> Painted {
    let [length, width, height] = container.exterior().map(|v| v / 1000.0);
    let face_m = match view {
        View::Door => [width, height],
        View::Side => [length, height],
    };
    let vertical = view == View::Door && rng.random_bool(opts.vertical_share);
    let st = size_type(container);
    let (face, glyphs) = paint_face(
        view,
        typeface,
        face_m,
        code,
        st,
        vertical,
        rng,
        opts.difficulty,
    );
    let ppm = f64::from(face.width()) / face_m[0];
    Painted {
        view,
        face_m,
        face,
        code: code.clone(),
        size_type: st,
        vertical,
        glyphs: glyphs
            .into_iter()
            .map(|(c, [x, y])| (c, [x / ppm, y / ppm]))
            .collect(),
    }
}

impl Painted {
    /// Whether the code is stacked vertically on the door post.
    pub fn vertical(&self) -> bool {
        self.vertical
    }

    /// One camera frame of the face, from a random pose.
    pub fn frame(&self, opts: &CameraOptions, rng: &mut impl Rng) -> CameraFrame {
        let (view, face_m, face) = (self.view, self.face_m, &self.face);
        let (code, st, vertical) = (&self.code, self.size_type, self.vertical);
        let d = opts.difficulty;
        let corners = pose(face_m, opts, view, rng);
        let face_corners = [
            [0.0, 0.0],
            [face_m[0], 0.0],
            [face_m[0], face_m[1]],
            [0.0, face_m[1]],
        ];
        let homography = homography_from_points(&face_corners, &corners).expect("a convex pose");
        let inverse = invert(&homography).expect("an invertible pose");
        let ppm = f64::from(face.width()) / face_m[0];
        let mut img = background(opts, rng);
        // Lighting: a gain, a linear gradient across the frame and a gamma.
        let gain = 1.0 + rng.random_range(-0.45..0.25) * d;
        let (gx, gy) = (
            rng.random_range(-0.5..0.5) * d,
            rng.random_range(-0.3..0.3) * d,
        );
        let gamma = 1.0 + rng.random_range(-0.3..0.3) * d;
        let (fw, fh) = (f64::from(opts.width), f64::from(opts.height));
        for y in 0..opts.height {
            for x in 0..opts.width {
                let [u, v] = apply(&inverse, [f64::from(x) + 0.5, f64::from(y) + 0.5]);
                let (tx, ty) = (u * ppm - 0.5, v * ppm - 0.5);
                if tx >= 0.0
                    && ty >= 0.0
                    && tx < f64::from(face.width() - 1)
                    && ty < f64::from(face.height() - 1)
                {
                    let (x0, y0) = (tx as u32, ty as u32);
                    let (ax, ay) = (tx - f64::from(x0), ty - f64::from(y0));
                    let mut out = [0u8; 3];
                    for (k, o) in out.iter_mut().enumerate() {
                        let p = |xx: u32, yy: u32| f64::from(face.get_pixel(xx, yy)[k]);
                        let top = p(x0, y0) * (1.0 - ax) + p(x0 + 1, y0) * ax;
                        let bot = p(x0, y0 + 1) * (1.0 - ax) + p(x0 + 1, y0 + 1) * ax;
                        *o = (top * (1.0 - ay) + bot * ay) as u8;
                    }
                    img.put_pixel(x, y, Rgb(out));
                }
                let light = (gain
                    * (1.0 + gx * (f64::from(x) / fw - 0.5) + gy * (f64::from(y) / fh - 0.5)))
                    .max(0.05);
                let p = img.get_pixel_mut(x, y);
                for k in 0..3 {
                    let v = (f64::from(p[k]) / 255.0 * light)
                        .clamp(0.0, 1.0)
                        .powf(gamma);
                    p[k] = (v * 255.0) as u8;
                }
            }
        }
        // An occluder: a post or a person in front of part of the face, never over the whole code.
        let occluded = rng.random_bool(0.3 * d);
        let mut occluder = None;
        if occluded {
            let side = if rng.random_bool(0.5) { 0 } else { 3 };
            let x = corners[side][0]
                + rng.random_range(-0.05..0.2) * (corners[1][0] - corners[0][0]).abs();
            let bw = rng.random_range(0.03..0.08) * fw;
            let c = [
                rng.random_range(20..90u8),
                rng.random_range(20..90),
                rng.random_range(20..90),
            ];
            let top = rng.random_range(0.2..0.6) * fh;
            fill_rect(&mut img, x, top, x + bw, fh, c);
            occluder = Some([x, top, x + bw, fh]);
        }
        // Blur (a few box passes approximate a Gaussian) and sensor noise.
        let sigma = rng.random_range(0.0..2.0) * d;
        if sigma > 0.4 {
            img = image::imageops::blur(&img, sigma as f32);
        }
        let noise =
            Normal::new(0.0, 1.0 + 6.0 * d * rng.random_range(0.0..1.0)).expect("positive sigma");
        for p in img.pixels_mut() {
            let n: f64 = noise.sample(rng);
            for k in 0..3 {
                p[k] = (f64::from(p[k]) + n).clamp(0.0, 255.0) as u8;
            }
        }
        CameraFrame {
            image: img,
            code: code.clone(),
            size_type: st,
            vertical,
            face_m,
            corners,
            homography,
            occluded,
            glyphs: self
                .glyphs
                .iter()
                .map(|&(ch, p)| {
                    let at = apply(&homography, p);
                    let behind = occluder.is_some_and(|[x0, y0, x1, y1]: [f64; 4]| {
                        (x0..x1).contains(&at[0]) && (y0..y1).contains(&at[1])
                    });
                    let outside = !(0.0..fw).contains(&at[0]) || !(0.0..fh).contains(&at[1]);
                    Glyph {
                        ch,
                        at,
                        hidden: behind || outside,
                    }
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_frame_shows_the_face_where_the_truth_says() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let code = ContainerCode::parse("MSKU9070323").unwrap();
        let opts = CameraOptions {
            difficulty: 0.0,
            ..CameraOptions::default()
        };
        let f = render(View::Side, ContainerType::Forty, &code, &opts, &mut rng);
        assert_eq!(f.image.dimensions(), (1280, 720));
        // The centre of the face is paint, not background: it differs from a pixel far outside.
        let c = apply(&f.homography, [6.0, 1.3]);
        assert!(c[0] > 0.0 && c[0] < 1280.0 && c[1] > 0.0 && c[1] < 720.0);
        assert_eq!(f.size_type, "42G1");
    }

    #[test]
    fn the_glyph_truth_spells_the_marking_in_reading_order() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let code = ContainerCode::parse("MSKU9070323").unwrap();
        let opts = CameraOptions {
            difficulty: 0.0,
            vertical_share: 0.0,
            ..CameraOptions::default()
        };
        let f = render(View::Door, ContainerType::Forty, &code, &opts, &mut rng);
        let text: String = f.glyphs.iter().map(|g| g.ch).collect();
        assert!(text.starts_with("MSKU907032342G1MAXGROSS"), "{text}");
        // Along the code line, left to right, and on the right-hand door.
        let line = &f.glyphs[..11];
        assert!(line.windows(2).all(|w| w[1].at[0] > w[0].at[0]));
        let mid = apply(&f.homography, [f.face_m[0] / 2.0, 0.0]);
        assert!(line.iter().all(|g| g.at[0] > mid[0] && !g.hidden));
        // A glyph's centre is on its character: the frame darkens or lightens around it.
        let px = |p: [f64; 2]| f.image.get_pixel(p[0] as u32, p[1] as u32).0;
        let contrast = line
            .iter()
            .filter(|g| {
                let (x, y) = (g.at[0], g.at[1]);
                let a = px([x, y - 6.0]);
                let b = px([x + 30.0, y - 60.0]);
                (i32::from(a[0]) - i32::from(b[0])).abs() > 40
                    || (i32::from(px([x, y])[0]) - i32::from(b[0])).abs() > 40
            })
            .count();
        assert!(contrast >= 6, "{contrast} of 11 glyph centres on ink");
    }
}
