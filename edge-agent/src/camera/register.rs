//! AR registration: where the container's side face is in a camera frame, as a homography from
//! face metres to frame pixels, and from there from scan pixels to frame pixels.
//!
//! 1. **Candidate quadrilaterals** from edges and contours: Canny edges (thresholds from the
//!    frame's median), closed with a dilation; every contour; the convex hull of each large one
//!    simplified (`approxPolyDP`) until it has four corners. A candidate must have a plausible
//!    aspect for the face and edges along at least half of each side (a horizon line that
//!    touches the container makes a large contour whose sides run through empty sky); the
//!    largest, best-supported one wins.
//! 2. **Sides refined with RANSAC.** For each side, the edge pixels in a band around it vote for
//!    a line (RANSAC, 1.5 px); a post or a person in front of the container votes for other
//!    lines and loses. Where the frame rail shows as two parallel edges, the outer one is taken.
//!    The corners are where the lines meet.
//! 3. **Homography with RANSAC.** The corners and every side's edge pixels, each paired with
//!    the nearest point of its side of the face, go to `findHomography` with RANSAC (3 px).
//!
//! Fiducial markers at the bay were the alternative. We chose the face itself: containers come
//! in three heights and two lengths that the scan already tells us, bays would need markers
//! surveyed and kept clean, and the face's outline is the thing the overlay must sit on anyway.
//! The reprojection error on simulated views is measured by `examples/ar_eval.rs`.

use opencv::core::{Mat, Point, Point2f, Size, Vector};
use opencv::prelude::*;
use opencv::{calib3d, imgproc};

/// Four corners: top-left, top-right, bottom-right, bottom-left.
pub type Quad = [[f64; 2]; 4];
/// A quadrilateral and each side's edge pixels.
type RefinedQuad = (Quad, Vec<Vec<[f64; 2]>>);

/// A face found in a frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    /// Face metres (x right, y down from the top-left corner) to frame pixels, row-major.
    pub homography: [f64; 9],
    /// The face's corners in the frame: top-left, top-right, bottom-right, bottom-left.
    pub corners: [[f64; 2]; 4],
    /// Outline points that agreed with the homography, and how many were tried.
    pub inliers: usize,
    /// Outline points tried.
    pub points: usize,
}

pub use baylens_protocol::homography::{apply, compose, invert};

fn to_array(m: &Mat) -> opencv::Result<Option<[f64; 9]>> {
    if m.empty() || m.rows() != 3 || m.cols() != 3 {
        return Ok(None);
    }
    let mut h = [0.0; 9];
    for r in 0..3 {
        for c in 0..3 {
            h[r * 3 + c] = *m.at_2d::<f64>(r as i32, c as i32)?;
        }
    }
    Ok(Some(h))
}

/// Orders four points top-left, top-right, bottom-right, bottom-left.
fn order(points: &[[f64; 2]]) -> [[f64; 2]; 4] {
    let by = |f: &dyn Fn(&[f64; 2]) -> f64, max: bool| {
        let mut best = points[0];
        for p in points {
            if (max && f(p) > f(&best)) || (!max && f(p) < f(&best)) {
                best = *p;
            }
        }
        best
    };
    [
        by(&|p| p[0] + p[1], false),
        by(&|p| p[0] - p[1], true),
        by(&|p| p[0] + p[1], true),
        by(&|p| p[0] - p[1], false),
    ]
}

fn solve(
    src: &[[f64; 2]],
    dst: &[[f64; 2]],
    ransac: bool,
) -> opencv::Result<(Option<[f64; 9]>, usize)> {
    let s: Vector<Point2f> = src
        .iter()
        .map(|p| Point2f::new(p[0] as f32, p[1] as f32))
        .collect();
    let d: Vector<Point2f> = dst
        .iter()
        .map(|p| Point2f::new(p[0] as f32, p[1] as f32))
        .collect();
    let mut mask = Mat::default();
    let m = if ransac {
        calib3d::find_homography(&s, &d, &mut mask, calib3d::RANSAC, 3.0)?
    } else {
        calib3d::find_homography(&s, &d, &mut mask, 0, 0.0)?
    };
    let inliers = if mask.empty() {
        0
    } else {
        opencv::core::count_non_zero(&mask)? as usize
    };
    Ok((to_array(&m)?, inliers))
}

/// Share of sample points along a segment that have an edge pixel within 2 px. The frame's own
/// border (drawn in to close cut regions) never counts.
fn support(edges: &[u8], w: usize, h: usize, a: [f64; 2], b: [f64; 2]) -> f64 {
    let n = 48;
    let mut hit = 0;
    for k in 0..n {
        let t = (f64::from(k) + 0.5) / f64::from(n);
        let (x, y) = (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t);
        if x < 4.0 || y < 4.0 || x > w as f64 - 5.0 || y > h as f64 - 5.0 {
            continue;
        }
        let mut found = false;
        'look: for dy in -2i64..=2 {
            for dx in -2i64..=2 {
                let (xx, yy) = (x as i64 + dx, y as i64 + dy);
                if xx >= 0
                    && yy >= 0
                    && (xx as usize) < w
                    && (yy as usize) < h
                    && edges[yy as usize * w + xx as usize] > 0
                {
                    found = true;
                    break 'look;
                }
            }
        }
        if found {
            hit += 1;
        }
    }
    f64::from(hit) / f64::from(n)
}

/// A line `n·p = d` with unit normal `n`.
#[derive(Debug, Clone, Copy)]
struct Line {
    n: [f64; 2],
    d: f64,
}

impl Line {
    fn through(a: [f64; 2], b: [f64; 2]) -> Option<Self> {
        let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
        let len = (dx * dx + dy * dy).sqrt();
        if len < 1e-9 {
            return None;
        }
        let n = [-dy / len, dx / len];
        Some(Self {
            n,
            d: n[0] * a[0] + n[1] * a[1],
        })
    }
    fn dist(&self, p: [f64; 2]) -> f64 {
        self.n[0] * p[0] + self.n[1] * p[1] - self.d
    }
    /// Least squares through `points` (total least squares via the covariance's principal axis).
    fn fit(points: &[[f64; 2]]) -> Option<Self> {
        let n = points.len() as f64;
        if points.len() < 2 {
            return None;
        }
        let (mx, my) = points
            .iter()
            .fold((0.0, 0.0), |(a, b), p| (a + p[0], b + p[1]));
        let (mx, my) = (mx / n, my / n);
        let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
        for p in points {
            let (dx, dy) = (p[0] - mx, p[1] - my);
            sxx += dx * dx;
            syy += dy * dy;
            sxy += dx * dy;
        }
        let angle = 0.5 * (2.0 * sxy).atan2(sxx - syy);
        let dir = [angle.cos(), angle.sin()];
        Self::through([mx, my], [mx + dir[0], my + dir[1]])
    }
    fn meet(&self, o: &Self) -> Option<[f64; 2]> {
        let det = self.n[0] * o.n[1] - self.n[1] * o.n[0];
        if det.abs() < 1e-9 {
            return None;
        }
        Some([
            (self.d * o.n[1] - self.n[1] * o.d) / det,
            (self.n[0] * o.d - self.d * o.n[0]) / det,
        ])
    }
}

/// The side of the face between `a` and `b`, refined on the edge pixels near it: RANSAC picks the
/// line most edge pixels agree with (an occluder's edges do not), and where the container's
/// frame rail shows as two parallel edges, the outer one is taken (`outward` points away from
/// the face).
fn refine_side(
    edge_points: &[[f64; 2]],
    a: [f64; 2],
    b: [f64; 2],
    outward: [f64; 2],
    band: f64,
) -> Option<(Line, Vec<[f64; 2]>)> {
    let base = Line::through(a, b)?;
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len2 = dx * dx + dy * dy;
    let near: Vec<[f64; 2]> = edge_points
        .iter()
        .copied()
        .filter(|p| {
            let t = ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2;
            (0.06..0.94).contains(&t) && base.dist(*p).abs() < band
        })
        .collect();
    if near.len() < 20 {
        return None;
    }
    let ransac = |pts: &[[f64; 2]]| -> Option<(Line, Vec<[f64; 2]>)> {
        let mut best: Option<(Line, usize)> = None;
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..150 {
            let (i, j) = (next(pts.len()), next(pts.len()));
            let Some(l) = Line::through(pts[i], pts[j]) else {
                continue;
            };
            // Stay roughly parallel to the candidate side.
            if (l.n[0] * base.n[0] + l.n[1] * base.n[1]).abs() < 0.97 {
                continue;
            }
            let count = pts.iter().filter(|p| l.dist(**p).abs() < 1.5).count();
            if best.is_none_or(|(_, c)| count > c) {
                best = Some((l, count));
            }
        }
        let (l, _) = best?;
        let inliers: Vec<[f64; 2]> = pts
            .iter()
            .copied()
            .filter(|p| l.dist(*p).abs() < 1.5)
            .collect();
        Some((Line::fit(&inliers)?, inliers))
    };
    let (line, inliers) = ransac(&near)?;
    // Orient the normal outward.
    let sign = if line.n[0] * outward[0] + line.n[1] * outward[1] >= 0.0 {
        1.0
    } else {
        -1.0
    };
    let outer: Vec<[f64; 2]> = near
        .iter()
        .copied()
        .filter(|p| sign * line.dist(*p) > 3.0)
        .collect();
    if outer.len() >= inliers.len() / 2
        && let Some((o, o_in)) = ransac(&outer)
        && o_in.len() >= inliers.len() / 2
    {
        return Some((o, o_in));
    }
    Some((line, inliers))
}

/// Refines a rough quadrilateral (ordered) side by side; the corners are where the refined
/// lines meet. Returns the corners and each side's edge pixels.
fn refine_quad(edge_points: &[[f64; 2]], rough: [[f64; 2]; 4], band: f64) -> Option<RefinedQuad> {
    let centre = [
        rough.iter().map(|p| p[0]).sum::<f64>() / 4.0,
        rough.iter().map(|p| p[1]).sum::<f64>() / 4.0,
    ];
    let mut lines = Vec::new();
    let mut side_points: Vec<Vec<[f64; 2]>> = Vec::new();
    for k in 0..4 {
        let (a, b) = (rough[k], rough[(k + 1) % 4]);
        let mid = [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0];
        let outward = [mid[0] - centre[0], mid[1] - centre[1]];
        match refine_side(edge_points, a, b, outward, band) {
            Some((l, pts)) => {
                lines.push(l);
                side_points.push(pts);
            }
            None => {
                lines.push(Line::through(a, b)?);
                side_points.push(Vec::new());
            }
        }
    }
    let mut corners = rough;
    for k in 0..4 {
        // Corner k joins side k-1 (into it) and side k (out of it).
        corners[k] = lines[(k + 3) % 4].meet(&lines[k])?;
        // A corner far from where it was roughly found is a wrong line, not a better corner.
        if len2(corners[k], rough[k]) > (4.0 * band).powi(2) {
            return None;
        }
    }
    Some((corners, side_points))
}

fn len2(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)
}

/// Finds the face (`face_m`: width and height in metres) in a BGR frame.
pub fn register(bgr: &Mat, face_m: [f64; 2]) -> opencv::Result<Option<Registration>> {
    let size = bgr.size()?;
    let (fw, fh) = (size.width as usize, size.height as usize);
    let frame_area = f64::from(size.width) * f64::from(size.height);
    let mut gray = Mat::default();
    imgproc::cvt_color_def(bgr, &mut gray, imgproc::COLOR_BGR2GRAY)?;
    // Candidates are looked for at half resolution and smoothed hard, so that the wall's
    // corrugation and painted text do not cut the face into strips; the sides are then refined
    // on full-resolution edges.
    // In colour: a green container on grey concrete can have almost the same grey level.
    let mut half = Mat::default();
    imgproc::pyr_down_def(bgr, &mut half)?;
    let mut smooth = Mat::default();
    imgproc::gaussian_blur_def(&half, &mut smooth, Size::new(9, 9), 2.5)?;
    let mut blurred = Mat::default();
    imgproc::gaussian_blur_def(&gray, &mut blurred, Size::new(5, 5), 1.2)?;
    // Canny thresholds from the median grey level.
    let mut values: Vec<u8> = blurred.data_bytes()?.iter().step_by(7).copied().collect();
    values.sort_unstable();
    let median = f64::from(values[values.len() / 2]);
    let (lo, hi) = (
        (0.5 * median).clamp(15.0, 80.0),
        (1.2 * median).clamp(40.0, 200.0),
    );
    let mut edges = Mat::default();
    imgproc::canny(&blurred, &mut edges, lo, hi, 3, false)?;
    let mut channels: Vector<Mat> = Vector::new();
    opencv::core::split(&smooth, &mut channels)?;
    let mut coarse = Mat::default();
    for (k, channel) in channels.iter().enumerate() {
        let mut e = Mat::default();
        imgproc::canny(&channel, &mut e, 0.6 * lo, 0.6 * hi, 3, false)?;
        if k == 0 {
            coarse = e;
        } else {
            let mut both = Mat::default();
            opencv::core::bitwise_or_def(&coarse, &e, &mut both)?;
            coarse = both;
        }
    }
    let kernel = imgproc::get_structuring_element_def(imgproc::MORPH_RECT, Size::new(3, 3))?;
    let mut closed = Mat::default();
    imgproc::dilate_def(&coarse, &mut closed, &kernel)?;
    // The frame's border closes regions the frame cuts (a container partly out of view).
    let half_size = closed.size()?;
    imgproc::rectangle_def(
        &mut closed,
        opencv::core::Rect::new(0, 0, half_size.width, half_size.height),
        opencv::core::Scalar::all(255.0),
    )?;
    let mut contours: Vector<Vector<Point>> = Vector::new();
    imgproc::find_contours_def(
        &closed,
        &mut contours,
        imgproc::RETR_LIST,
        imgproc::CHAIN_APPROX_SIMPLE,
    )?;
    let aspect = face_m[0] / face_m[1];
    let len = |a: [f64; 2], b: [f64; 2]| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
    // Edge pixels at full resolution, for refining sides, and dilated, for checking them.
    let mut edge_points = Vec::new();
    let raw = edges.data_bytes()?;
    for y in 0..fh {
        for x in 0..fw {
            if raw[y * fw + x] > 0 {
                edge_points.push([x as f64, y as f64]);
            }
        }
    }
    let mut thick = Mat::default();
    imgproc::dilate_def(&edges, &mut thick, &kernel)?;
    let thick_px = thick.data_bytes()?.to_vec();
    let band = 0.02 * ((fw * fw + fh * fh) as f64).sqrt();
    // 1. Candidate quadrilaterals from the contours, each refined (2.) and then scored by area
    // and by how well edges support its sides.
    let mut best: Option<(RefinedQuad, f64)> = None;
    for c in contours.iter() {
        let mut hull: Vector<Point> = Vector::new();
        imgproc::convex_hull_def(&c, &mut hull)?;
        let area = imgproc::contour_area_def(&hull)?;
        if area * 4.0 < 0.04 * frame_area {
            continue;
        }
        let perimeter = imgproc::arc_length(&hull, true)?;
        let mut quad: Option<Vector<Point>> = None;
        for step in 1..=12 {
            let mut approx: Vector<Point> = Vector::new();
            imgproc::approx_poly_dp(&hull, &mut approx, 0.01 * f64::from(step) * perimeter, true)?;
            if approx.len() == 4 {
                quad = Some(approx);
                break;
            }
            if approx.len() < 4 {
                break;
            }
        }
        let Some(quad) = quad else { continue };
        let pts: Vec<[f64; 2]> = quad
            .iter()
            .map(|p| [2.0 * f64::from(p.x), 2.0 * f64::from(p.y)])
            .collect();
        let o = order(&pts);
        let w = (len(o[0], o[1]) + len(o[3], o[2])) / 2.0;
        let h = (len(o[0], o[3]) + len(o[1], o[2])) / 2.0;
        let seen = w / h.max(1.0);
        // Perspective changes the apparent aspect, but not by more than about 2x at a bay.
        if seen < aspect / 2.2 || seen > aspect * 2.2 {
            continue;
        }
        let Some((corners, side_points)) = refine_quad(&edge_points, o, band) else {
            continue;
        };
        let mut sides: Vec<f64> = (0..4)
            .map(|k| support(&thick_px, fw, fh, corners[k], corners[(k + 1) % 4]))
            .collect();
        sides.sort_by(f64::total_cmp);
        // One side may be partly hidden (a post, a person); the others must be there.
        if sides[0] < 0.3 || sides[1] < 0.6 {
            continue;
        }
        let quad_area = 0.5
            * (0..4)
                .map(|k| {
                    let (p, q) = (corners[k], corners[(k + 1) % 4]);
                    p[0] * q[1] - q[0] * p[1]
                })
                .sum::<f64>()
                .abs();
        let score = quad_area * sides[0] * sides[1];
        if best.as_ref().is_none_or(|(_, s)| score > *s) {
            best = Some(((corners, side_points), score));
        }
    }
    let Some(((corners, side_points), _)) = best else {
        return Ok(None);
    };
    let face = [
        [0.0, 0.0],
        [face_m[0], 0.0],
        [face_m[0], face_m[1]],
        [0.0, face_m[1]],
    ];
    let (Some(h0), _) = solve(&face, &corners, false)? else {
        return Ok(None);
    };
    // 3. The homography with RANSAC over every side's edge pixels, each paired with the nearest
    // point on its side of the face, and the four corners.
    let Some(inv) = invert(&h0) else {
        return Ok(None);
    };
    let mut src: Vec<[f64; 2]> = face.to_vec();
    let mut dst: Vec<[f64; 2]> = corners.to_vec();
    for (k, pts) in side_points.iter().enumerate() {
        for p in pts.iter().step_by(3) {
            let [u, v] = apply(&inv, *p);
            let snapped = match k {
                0 => [u.clamp(0.0, face_m[0]), 0.0],
                1 => [face_m[0], v.clamp(0.0, face_m[1])],
                2 => [u.clamp(0.0, face_m[0]), face_m[1]],
                _ => [0.0, v.clamp(0.0, face_m[1])],
            };
            src.push(snapped);
            dst.push(*p);
        }
    }
    let tried = src.len();
    let (h, inliers) = match solve(&src, &dst, true)? {
        (Some(refined), n) if n >= tried / 2 => (refined, n),
        _ => (h0, 4),
    };
    let corners = face.map(|p| apply(&h, p));
    Ok(Some(Registration {
        homography: h,
        corners,
        inliers,
        points: tried,
    }))
}

/// Mean and largest distance (frame pixels) between where two homographies put a 9 x 5 grid of
/// face points, and the face's apparent width in the frame (mean of its top and bottom edges
/// under `truth`).
pub fn reprojection_error(est: &[f64; 9], truth: &[f64; 9], face_m: [f64; 2]) -> (f64, f64, f64) {
    let mut sum = 0.0;
    let mut max: f64 = 0.0;
    let mut n = 0.0;
    for i in 0..9 {
        for j in 0..5 {
            let p = [
                face_m[0] * f64::from(i) / 8.0,
                face_m[1] * f64::from(j) / 4.0,
            ];
            let (a, b) = (apply(est, p), apply(truth, p));
            let d = ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
            sum += d;
            max = max.max(d);
            n += 1.0;
        }
    }
    let len = |a: [f64; 2], b: [f64; 2]| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
    let c = [
        [0.0, 0.0],
        [face_m[0], 0.0],
        [face_m[0], face_m[1]],
        [0.0, face_m[1]],
    ]
    .map(|p| apply(truth, p));
    let width = (len(c[0], c[1]) + len(c[3], c[2])) / 2.0;
    (sum / n, max, width)
}
