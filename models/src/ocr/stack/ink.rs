//! Ink that stands out from the paint, and the blobs it makes (see [`super`]).

/// A blob's bounds, inclusive, in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Blob {
    pub x0: usize,
    pub y0: usize,
    pub x1: usize,
    pub y1: usize,
}

impl Blob {
    pub(super) fn h(&self) -> f32 {
        (self.y1 - self.y0 + 1) as f32
    }
    pub(super) fn w(&self) -> f32 {
        (self.x1 - self.x0 + 1) as f32
    }
    pub(super) fn cx(&self) -> f32 {
        (self.x0 + self.x1) as f32 / 2.0
    }
    pub(super) fn cy(&self) -> f32 {
        (self.y0 + self.y1) as f32 / 2.0
    }
    /// No wider than a character of its height.
    pub(super) fn narrow(&self) -> bool {
        self.w() < 1.3 * self.h()
    }
    fn union(&self, o: &Blob) -> Blob {
        Blob {
            x0: self.x0.min(o.x0),
            y0: self.y0.min(o.y0),
            x1: self.x1.max(o.x1),
            y1: self.y1.max(o.y1),
        }
    }
}

/// How far (grey levels) a pixel must stand out from its neighbourhood's mean to count as ink.
pub(super) const INK: f32 = 22.0;

/// The mean of `v` over the `(2r+1)²` window around each pixel (clipped at the edges).
pub(super) fn box_mean(v: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    let mut sum = vec![0f64; (w + 1) * (h + 1)];
    for y in 0..h {
        let mut row = 0f64;
        for x in 0..w {
            row += f64::from(v[y * w + x]);
            sum[(y + 1) * (w + 1) + x + 1] = sum[y * (w + 1) + x + 1] + row;
        }
    }
    let mut out = vec![0f32; w * h];
    for y in 0..h {
        let (ya, yb) = (y.saturating_sub(r), (y + r + 1).min(h));
        for x in 0..w {
            let (xa, xb) = (x.saturating_sub(r), (x + r + 1).min(w));
            let s = sum[yb * (w + 1) + xb] - sum[ya * (w + 1) + xb] - sum[yb * (w + 1) + xa]
                + sum[ya * (w + 1) + xa];
            out[y * w + x] = (s / ((yb - ya) * (xb - xa)) as f64) as f32;
        }
    }
    out
}

/// Clears every run of ink longer than `max` pixels along a near-vertical line (leaning up to
/// 0.15 either way, as a bar does in a frame taken at an angle): a bar, a rib or an edge, never
/// a character. Ink painted over a bar goes with it; [`merge_rows`] joins what is left of a
/// character on either side.
pub(super) fn drop_long_runs(ink: &mut [bool], w: usize, h: usize, max: usize) {
    let mut clear = vec![false; w * h];
    let reach = (0.15 * h as f32).ceil() as i64;
    for step in -5i64..=5 {
        let lean = step as f32 * 0.03;
        let shift: Vec<i64> = (0..h).map(|y| (lean * y as f32).round() as i64).collect();
        for x0 in -reach..w as i64 + reach {
            let at = |y: usize| {
                let x = x0 + shift[y];
                (x >= 0 && x < w as i64).then(|| y * w + x as usize)
            };
            let mut start = None;
            for y in 0..=h {
                let inked = y < h && at(y).is_some_and(|i| ink[i]);
                match (start, inked) {
                    (None, true) => start = Some(y),
                    (Some(s), false) => {
                        if y - s > max {
                            for i in (s..y).filter_map(at) {
                                clear[i] = true;
                            }
                        }
                        start = None;
                    }
                    _ => {}
                }
            }
        }
    }
    for (v, c) in ink.iter_mut().zip(clear) {
        *v &= !c;
    }
}

/// The 8-connected blobs of ink no taller or wider than `max` and large enough to be part of a
/// character.
pub(super) fn blobs(ink: &[bool], w: usize, h: usize, max: usize) -> Vec<Blob> {
    let mut seen = vec![false; w * h];
    let mut out = Vec::new();
    let mut stack = Vec::new();
    for start in 0..w * h {
        if !ink[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let (mut b, mut n) = (
            Blob {
                x0: start % w,
                y0: start / w,
                x1: start % w,
                y1: start / w,
            },
            0usize,
        );
        while let Some(i) = stack.pop() {
            n += 1;
            let (x, y) = (i % w, i / w);
            b = b.union(&Blob {
                x0: x,
                y0: y,
                x1: x,
                y1: y,
            });
            for (dx, dy) in [
                (-1i64, -1i64),
                (0, -1),
                (1, -1),
                (-1, 0),
                (1, 0),
                (-1, 1),
                (0, 1),
                (1, 1),
            ] {
                let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                    continue;
                }
                let j = ny as usize * w + nx as usize;
                if ink[j] && !seen[j] {
                    seen[j] = true;
                    stack.push(j);
                }
            }
        }
        let big = b.h() > max as f32 || b.w() > max as f32;
        if !big && b.h() >= 6.0 && n >= 12 {
            out.push(b);
        }
    }
    out
}

/// Joins blobs that share a row and stand close side by side: the halves of a character a bar
/// runs through, a digit and the box around it.
pub(super) fn merge_rows(mut blobs: Vec<Blob>) -> Vec<Blob> {
    loop {
        let mut merged = false;
        'outer: for i in 0..blobs.len() {
            for j in i + 1..blobs.len() {
                let (a, b) = (blobs[i], blobs[j]);
                let overlap = (a.y1.min(b.y1) as f32 - a.y0.max(b.y0) as f32 + 1.0).max(0.0);
                let gap = (a.x0.max(b.x0) as f32 - a.x1.min(b.x1) as f32).max(0.0);
                let size = a.h().max(b.h());
                if overlap > 0.6 * a.h().min(b.h()) && gap < 0.45 * size {
                    let u = a.union(&b);
                    if u.w() < 1.6 * u.h() {
                        blobs[i] = u;
                        blobs.swap_remove(j);
                        merged = true;
                        break 'outer;
                    }
                }
            }
        }
        if !merged {
            return blobs;
        }
    }
}
