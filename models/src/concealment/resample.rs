//! Resampling between a scanner's pixel grid and the grid a model was trained on.
//!
//! A model trained at 10 mm pitch sees a 5 mm scan at twice the scale it learnt: a pallet looks
//! like two, a stack edge like a package. So the scan goes to the model's pitch first, and the
//! model's probabilities come back to the scan's own pixels, so that findings, boxes and masses
//! stay in the scan's coordinates.
//!
//! The filter is a separable triangle whose half-width is one output pixel when shrinking and
//! one input pixel when enlarging (PIL's antialiased "bilinear"): going down it averages every
//! input pixel under an output pixel, as a coarser detector element would, and going up it is
//! plain linear interpolation. Edges use the pixels that exist (weights renormalised), so no
//! artificial border appears.

/// Resampling weights from `n_in` samples to `n_out`: for each output sample, the first input
/// index and the weights of the inputs from there on (summing to 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    taps: Vec<(usize, Vec<f32>)>,
}

impl Weights {
    /// The triangle filter from `n_in` to `n_out` samples (both at least 1).
    pub fn new(n_in: usize, n_out: usize) -> Self {
        let (n_in, n_out) = (n_in.max(1), n_out.max(1));
        let scale = n_in as f64 / n_out as f64;
        let support = scale.max(1.0);
        let taps = (0..n_out)
            .map(|o| {
                let centre = (o as f64 + 0.5) * scale;
                let lo = ((centre - support).floor().max(0.0)) as usize;
                let hi = ((centre + support).ceil() as usize).min(n_in);
                let mut w: Vec<f64> = (lo..hi)
                    .map(|i| (1.0 - ((i as f64 + 0.5 - centre) / support).abs()).max(0.0))
                    .collect();
                let sum: f64 = w.iter().sum();
                if sum > 0.0 {
                    w.iter_mut().for_each(|x| *x /= sum);
                } else {
                    // Cannot happen for support >= 1, but never divide by zero.
                    w = vec![0.0; hi - lo];
                    w[0] = 1.0;
                }
                (lo, w.into_iter().map(|x| x as f32).collect())
            })
            .collect();
        Self { taps }
    }

    /// Output samples.
    pub fn len(&self) -> usize {
        self.taps.len()
    }

    /// Whether there are no output samples (never, for a filter made by [`Weights::new`]).
    pub fn is_empty(&self) -> bool {
        self.taps.is_empty()
    }
}

/// Resamples a row-major `w` x `h` image to `new_w` x `new_h`.
pub fn resample(values: &[f32], w: usize, h: usize, new_w: usize, new_h: usize) -> Vec<f32> {
    if (w, h) == (new_w, new_h) {
        return values.to_vec();
    }
    let wx = Weights::new(w, new_w);
    let wy = Weights::new(h, new_h);
    // Along the rows first, then down the columns.
    let mut across = vec![0.0f32; new_w * h];
    for (src, dst) in values.chunks_exact(w).zip(across.chunks_exact_mut(new_w)) {
        for (d, (lo, weights)) in dst.iter_mut().zip(&wx.taps) {
            *d = src[*lo..]
                .iter()
                .zip(weights)
                .map(|(v, k)| v * k)
                .sum::<f32>();
        }
    }
    let mut out = vec![0.0f32; new_w * new_h];
    for (dst, (lo, weights)) in out.chunks_exact_mut(new_w).zip(&wy.taps) {
        for (k, &weight) in weights.iter().enumerate() {
            let src = &across[(lo + k) * new_w..][..new_w];
            for (d, s) in dst.iter_mut().zip(src) {
                *d += weight * s;
            }
        }
    }
    out
}

/// The size of a scan of `n` pixels at `pitch_mm` once resampled to `target_mm`.
pub fn resampled_len(n: usize, pitch_mm: f64, target_mm: f64) -> usize {
    ((n as f64 * pitch_mm / target_mm).round() as usize).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_is_a_copy_and_a_constant_stays_constant_either_way() {
        let v: Vec<f32> = (0..12).map(|i| i as f32).collect();
        assert_eq!(resample(&v, 4, 3, 4, 3), v);
        let c = vec![2.5f32; 30 * 20];
        for (nw, nh) in [(15, 10), (60, 40), (45, 7), (31, 29)] {
            let r = resample(&c, 30, 20, nw, nh);
            assert_eq!(r.len(), nw * nh);
            assert!(r.iter().all(|x| (x - 2.5).abs() < 1e-5), "{nw} x {nh}");
        }
    }

    #[test]
    fn halving_averages_pairs_and_doubling_interpolates() {
        // Shrinking by two: each output is a weighted mean of the pairs under it and their
        // neighbours, symmetric about the pair.
        let v = [0.0f32, 0.0, 4.0, 4.0, 8.0, 8.0, 8.0, 8.0];
        let half = resample(&v, 8, 1, 4, 1);
        assert!((half[1] - 4.0).abs() < 1e-5, "{half:?}");
        assert!(half[0] < half[1] && half[1] < half[2], "{half:?}");
        // Growing by two: linear between samples.
        let up = resample(&[0.0, 4.0], 2, 1, 4, 1);
        assert!(
            (up[1] - 1.0).abs() < 1e-5 && (up[2] - 3.0).abs() < 1e-5,
            "{up:?}"
        );
        // A ramp stays a ramp in the middle, at any scale.
        let ramp: Vec<f32> = (0..100).map(|i| i as f32).collect();
        let r = resample(&ramp, 100, 1, 40, 1);
        for (o, got) in r.iter().enumerate().take(37).skip(3) {
            let want = (o as f32 + 0.5) * 2.5 - 0.5;
            // Within a sample of the filter's discretisation at a non-integer scale.
            assert!((got - want).abs() < 0.02, "{o}: {got} vs {want}");
        }
    }

    #[test]
    fn a_spot_keeps_its_mass_and_place_when_shrunk() {
        let (w, h) = (40, 40);
        let mut v = vec![0.0f32; w * h];
        for y in 20..24 {
            for x in 10..14 {
                v[y * w + x] = 1.0;
            }
        }
        let r = resample(&v, w, h, 20, 20);
        let total: f32 = r.iter().sum();
        assert!((total * 4.0 - 16.0).abs() < 0.2, "mass {}", total * 4.0);
        // Its centre (in output pixels, edges at integers) is where it was: x 12/2, y 22/2.
        let centre = |axis: fn(usize) -> usize| {
            r.iter()
                .enumerate()
                .map(|(i, v)| v * (axis(i) as f32 + 0.5))
                .sum::<f32>()
                / total
        };
        assert!((centre(|i| i % 20) - 6.0).abs() < 1e-3);
        assert!((centre(|i| i / 20) - 11.0).abs() < 1e-3);
    }

    #[test]
    fn resampled_lengths_follow_the_pitch() {
        assert_eq!(resampled_len(2000, 5.0, 10.0), 1000);
        assert_eq!(resampled_len(333, 15.0, 10.0), 500);
        assert_eq!(resampled_len(1, 1.0, 10.0), 1);
    }
}
