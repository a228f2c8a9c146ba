//! Histogram of Oriented Optical Flow (paper Eq. 3–4; Chaudhry et al. 2009)
//! and the first-order differences the visual rhythm estimator uses (Eq. 15).

use std::f32::consts::PI;

use super::flow::Flow;

/// How flow directions are binned.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HoofParams {
    /// `B`, the number of orientation bins. The paper does not state its value;
    /// 30 is our default.
    pub bins: usize,
    /// Chaudhry's horizontal symmetry: a vector and its mirror image about the
    /// vertical axis fall in the same bin, so `B` bins cover `[−π/2, π/2]`
    /// (left and right motion count alike). Off: `B` bins cover the full circle.
    pub symmetric: bool,
    /// Vectors shorter than this (pixels) are ignored, as noise.
    pub min_magnitude: f32,
}

impl Default for HoofParams {
    fn default() -> Self {
        HoofParams { bins: 30, symmetric: false, min_magnitude: 0.0 }
    }
}

/// The bin of a flow vector's angle `φ = atan2(v, u)` (image axes: `v` down).
///
/// Eq. 4 assigns `φ` to bin `θ_k` when `|θ_k − φ|` is within the bin; we read
/// `2π/B` as the bin's width, so the bins partition the circle: bin `k` is
/// `[−π + 2πk/B, −π + 2π(k+1)/B)`. With symmetry, `φ` is first mirrored into
/// `[−π/2, π/2]` and bin `k` is `[−π/2 + πk/B, −π/2 + π(k+1)/B)`.
pub fn orientation_bin(u: f32, v: f32, params: &HoofParams) -> usize {
    let b = params.bins;
    let k = if params.symmetric {
        let phi = v.atan2(u.abs()); // in [−π/2, π/2]
        ((phi + PI / 2.0) / PI * b as f32).floor() as isize
    } else {
        let phi = v.atan2(u); // in [−π, π]
        ((phi + PI) / (2.0 * PI) * b as f32).floor() as isize
    };
    // φ = π (or π/2) lands on the upper edge: it belongs to the last bin.
    k.clamp(0, b as isize - 1) as usize
}

/// HOOF of one flow field (Eq. 3): `H[k] = Σ_{x,y} M(x,y)·1[P(x,y) ∈ bin k]`,
/// normalised to sum 1. A field without motion gives all zeros.
pub fn hoof(flow: &Flow, params: &HoofParams) -> Vec<f32> {
    let mut histogram = vec![0f64; params.bins];
    for (u, v) in flow.vectors() {
        let magnitude = u.hypot(v);
        if magnitude > params.min_magnitude && magnitude.is_finite() {
            histogram[orientation_bin(u, v, params)] += magnitude as f64;
        }
    }
    let total: f64 = histogram.iter().sum();
    histogram.iter().map(|&h| if total > 0.0 { (h / total) as f32 } else { 0.0 }).collect()
}

/// Mean flow magnitude (pixels per frame): how much moves.
pub fn motion_energy(flow: &Flow) -> f32 {
    let n = flow.width * flow.height;
    (flow.vectors().map(|(u, v)| u.hypot(v) as f64).sum::<f64>() / n.max(1) as f64) as f32
}

/// First-order differences over time (Eq. 15's `f'`): `f'[t] = f[t] − f[t−1]`,
/// with `f'[0] = 0`. Each row is one frame's feature vector.
pub fn first_difference(features: &[Vec<f32>]) -> Vec<Vec<f32>> {
    features
        .iter()
        .enumerate()
        .map(|(t, f)| match t {
            0 => vec![0.0; f.len()],
            t => f.iter().zip(&features[t - 1]).map(|(a, b)| a - b).collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uniform(u: f32, v: f32) -> Flow {
        Flow { width: 4, height: 3, uv: [u, v].repeat(12) }
    }

    #[test]
    fn bins_partition_the_circle() {
        let p = HoofParams { bins: 4, ..Default::default() };
        // Bins: [−π, −π/2), [−π/2, 0), [0, π/2), [π/2, π]; v points down.
        assert_eq!(orientation_bin(1.0, 0.5, &p), 2);
        assert_eq!(orientation_bin(1.0, -0.5, &p), 1);
        assert_eq!(orientation_bin(-1.0, -0.5, &p), 0);
        assert_eq!(orientation_bin(-1.0, 0.5, &p), 3);
        assert_eq!(orientation_bin(-1.0, 0.0, &p), 3);
        assert_eq!(orientation_bin(1.0, 0.0, &p), 2);
    }

    #[test]
    fn symmetric_binning_mirrors_left_and_right() {
        let p = HoofParams { bins: 6, symmetric: true, ..Default::default() };
        for (u, v) in [(1.0, 0.3), (2.0, -1.0), (0.1, 5.0)] {
            assert_eq!(orientation_bin(u, v, &p), orientation_bin(-u, v, &p));
        }
        assert_eq!(orientation_bin(0.0, -1.0, &p), 0);
        assert_eq!(orientation_bin(0.0, 1.0, &p), 5);
    }

    #[test]
    fn hoof_is_magnitude_weighted_and_sums_to_one() {
        let p = HoofParams { bins: 4, ..Default::default() };
        // Two thirds of the magnitude to the right-down bin, one third left-up.
        let mut flow = uniform(2.0, 0.0);
        flow.uv[0] = -2.0;
        flow.uv[1] = -0.0001;
        flow.uv[2] = -2.0;
        flow.uv[3] = -0.0001;
        let h = hoof(&flow, &p);
        assert!((h.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((h[0] - 2.0 / 12.0).abs() < 1e-4 && (h[2] - 10.0 / 12.0).abs() < 1e-4, "{h:?}");
        assert_eq!(hoof(&uniform(0.0, 0.0), &p), vec![0.0; 4]);
        assert_eq!(motion_energy(&uniform(3.0, 4.0)), 5.0);
    }

    #[test]
    fn differences_start_at_zero() {
        let d = first_difference(&[vec![1.0, 2.0], vec![1.5, 1.0], vec![0.0, 0.0]]);
        assert_eq!(d, vec![vec![0.0, 0.0], vec![0.5, -1.0], vec![-1.5, -1.0]]);
    }
}
