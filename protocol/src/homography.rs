//! Plane-to-plane homographies (3 x 3, row-major, `h33 = 1`): the camera's view of a container
//! face, used by the simulator to render it and by the agent to anchor the scan on it.

/// A homography, row-major.
pub type Homography = [f64; 9];

/// Applies `h` to a point.
pub fn apply(h: &Homography, [x, y]: [f64; 2]) -> [f64; 2] {
    let w = h[6] * x + h[7] * y + h[8];
    [
        (h[0] * x + h[1] * y + h[2]) / w,
        (h[3] * x + h[4] * y + h[5]) / w,
    ]
}

/// The inverse of `h`, if it has one.
pub fn invert(h: &Homography) -> Option<Homography> {
    let [a, b, c, d, e, f, g, hh, i] = *h;
    let det = a * (e * i - f * hh) - b * (d * i - f * g) + c * (d * hh - e * g);
    if det.abs() < 1e-15 {
        return None;
    }
    Some([
        (e * i - f * hh) / det,
        (c * hh - b * i) / det,
        (b * f - c * e) / det,
        (f * g - d * i) / det,
        (a * i - c * g) / det,
        (c * d - a * f) / det,
        (d * hh - e * g) / det,
        (b * g - a * hh) / det,
        (a * e - b * d) / det,
    ])
}

/// `a ∘ b`: first `b`, then `a`; scaled so that `h33 = 1`.
pub fn compose(a: &Homography, b: &Homography) -> Homography {
    let mut out = [0.0; 9];
    for r in 0..3 {
        for c in 0..3 {
            out[r * 3 + c] = (0..3).map(|k| a[r * 3 + k] * b[k * 3 + c]).sum();
        }
    }
    let s = out[8];
    if s.abs() > 1e-12 {
        for v in &mut out {
            *v /= s;
        }
    }
    out
}

/// The homography taking `src[i]` to `dst[i]` (four point pairs, no three collinear).
pub fn from_points(src: &[[f64; 2]; 4], dst: &[[f64; 2]; 4]) -> Option<Homography> {
    let mut a = [[0.0f64; 9]; 8];
    for i in 0..4 {
        let ([x, y], [u, v]) = (src[i], dst[i]);
        a[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
        a[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
    }
    // Gauss-Jordan elimination with partial pivoting on the 8 x 9 augmented matrix.
    for col in 0..8 {
        let pivot = (col..8).max_by(|&p, &q| a[p][col].abs().total_cmp(&a[q][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        let pivot_row = a[col];
        for (row, r) in a.iter_mut().enumerate() {
            if row != col {
                let f = r[col] / pivot_row[col];
                for (x, p) in r[col..].iter_mut().zip(&pivot_row[col..]) {
                    *x -= f * p;
                }
            }
        }
    }
    let mut h = [0.0; 9];
    for (i, (hi, r)) in h.iter_mut().zip(&a).enumerate() {
        *hi = r[8] / r[i];
    }
    h[8] = 1.0;
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_points_map_exactly_and_the_inverse_maps_back() {
        let src = [[0.0, 0.0], [12.0, 0.0], [12.0, 2.6], [0.0, 2.6]];
        let dst = [
            [100.0, 80.0],
            [1100.0, 120.0],
            [1080.0, 600.0],
            [130.0, 640.0],
        ];
        let h = from_points(&src, &dst).unwrap();
        let inv = invert(&h).unwrap();
        for (s, d) in src.iter().zip(&dst) {
            let p = apply(&h, *s);
            assert!((p[0] - d[0]).abs() < 1e-6 && (p[1] - d[1]).abs() < 1e-6);
            let q = apply(&inv, *d);
            assert!((q[0] - s[0]).abs() < 1e-6 && (q[1] - s[1]).abs() < 1e-6);
        }
        let id = compose(&h, &inv);
        for (k, v) in id.iter().enumerate() {
            let want = if k % 4 == 0 { 1.0 } else { 0.0 };
            assert!((v - want).abs() < 1e-9, "{id:?}");
        }
        assert!(from_points(&src, &[[0.0, 0.0]; 4]).is_none());
    }
}
