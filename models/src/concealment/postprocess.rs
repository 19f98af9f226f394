//! Postprocessing: from a probability map to regions an officer can look at.

use ndarray::ArrayView2;

/// One flagged region of the scan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// Left column.
    pub x: u32,
    /// Top row.
    pub y: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Highest probability inside the region.
    pub score: f32,
    /// Pixels above the threshold in the region.
    pub pixels: usize,
}

/// Connected regions (4-neighbour) of pixels above `threshold`, ignoring regions smaller than
/// `min_pixels`, highest score first.
pub fn regions(prob: ArrayView2<'_, f32>, threshold: f32, min_pixels: usize) -> Vec<Detection> {
    let (h, w) = prob.dim();
    let mut seen = vec![false; h * w];
    let mut out = Vec::new();
    let mut stack = Vec::new();
    for start in 0..h * w {
        if seen[start] || prob[[start / w, start % w]] <= threshold {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let (mut r0, mut r1, mut c0, mut c1) = (h, 0, w, 0);
        let mut score = 0.0f32;
        let mut pixels = 0;
        while let Some(i) = stack.pop() {
            let (r, c) = (i / w, i % w);
            pixels += 1;
            score = score.max(prob[[r, c]]);
            r0 = r0.min(r);
            r1 = r1.max(r);
            c0 = c0.min(c);
            c1 = c1.max(c);
            let mut visit = |rr: usize, cc: usize| {
                let j = rr * w + cc;
                if !seen[j] && prob[[rr, cc]] > threshold {
                    seen[j] = true;
                    stack.push(j);
                }
            };
            if r > 0 {
                visit(r - 1, c);
            }
            if r + 1 < h {
                visit(r + 1, c);
            }
            if c > 0 {
                visit(r, c - 1);
            }
            if c + 1 < w {
                visit(r, c + 1);
            }
        }
        if pixels >= min_pixels {
            out.push(Detection {
                x: c0 as u32,
                y: r0 as u32,
                width: (c1 - c0 + 1) as u32,
                height: (r1 - r0 + 1) as u32,
                score,
                pixels,
            });
        }
    }
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn separate_blobs_become_separate_regions_with_their_boxes() {
        let mut p = Array2::<f32>::zeros((10, 12));
        for r in 1..4 {
            for c in 2..6 {
                p[[r, c]] = 0.8;
            }
        }
        p[[2, 3]] = 0.95;
        for r in 6..9 {
            for c in 8..11 {
                p[[r, c]] = 0.6;
            }
        }
        p[[0, 11]] = 0.99; // a single hot pixel: noise
        let found = regions(p.view(), 0.5, 4);
        assert_eq!(found.len(), 2);
        assert_eq!(
            (found[0].x, found[0].y, found[0].width, found[0].height),
            (2, 1, 4, 3)
        );
        assert_eq!(found[0].score, 0.95);
        assert_eq!(found[0].pixels, 12);
        assert_eq!(
            (found[1].x, found[1].y, found[1].width, found[1].height),
            (8, 6, 3, 3)
        );
    }

    #[test]
    fn diagonal_touching_pixels_are_not_connected() {
        let mut p = Array2::<f32>::zeros((4, 4));
        p[[0, 0]] = 1.0;
        p[[1, 1]] = 1.0;
        assert_eq!(regions(p.view(), 0.5, 1).len(), 2);
    }

    #[test]
    fn nothing_above_threshold_gives_nothing() {
        let p = Array2::<f32>::from_elem((5, 5), 0.5);
        assert!(regions(p.view(), 0.5, 1).is_empty());
    }
}
