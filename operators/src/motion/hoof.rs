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
    bin_of(fast_angle(u, v, params.symmetric), u, v, params)
}

/// [`fast_atan2`] of `(v, u)`, or of `(v, |u|)` under symmetry.
#[inline(always)]
fn fast_angle(u: f32, v: f32, symmetric: bool) -> f32 {
    fast_atan2(v, if symmetric { u.abs() } else { u })
}

/// [`orientation_bin`] given the vector's [`fast_angle`].
#[inline(always)]
fn bin_of(fast: f32, u: f32, v: f32, params: &HoofParams) -> usize {
    let b = params.bins as f32;
    // atan2 dominates HOOF's cost: a polynomial within 1e-5 rad decides every
    // vector that is not within 5e-5 rad of a bin edge, atan2 the rest.
    let (offset, span) = if params.symmetric { (PI / 2.0, PI) } else { (PI, 2.0 * PI) };
    let approximate = (fast + offset) * (b / span);
    let margin = 5e-5 / span * b;
    // Casts, not floor/round: those are library calls on baseline x86-64.
    let whole = approximate as i32;
    let fraction = approximate - whole as f32;
    let k = if fast.is_finite() && fraction > margin && fraction < 1.0 - margin {
        whole as isize
    } else {
        let exact = if params.symmetric { v.atan2(u.abs()) } else { v.atan2(u) };
        ((exact + offset) / span * b).floor() as isize
    };
    // φ = π (or π/2) lands on the upper edge: it belongs to the last bin.
    k.clamp(0, params.bins as isize - 1) as usize
}

/// atan2(y, x) within 1e-5 rad (Abramowitz & Stegun 4.4.47 on the octant);
/// NaN at the origin. Branch-free, so that loops over it vectorise.
#[inline(always)]
fn fast_atan2(y: f32, x: f32) -> f32 {
    let (ax, ay) = (x.abs(), y.abs());
    let t = ax.min(ay) / ax.max(ay);
    let t2 = t * t;
    let a = t * (0.999_866 + t2 * (-0.330_299_5 + t2 * (0.180_141 + t2 * (-0.085_133 + t2 * 0.020_835_1))));
    let a = if ay > ax { PI / 2.0 - a } else { a };
    let a = if x.is_sign_negative() { PI - a } else { a };
    if y.is_sign_negative() { -a } else { a }
}

/// `√(u² + v²)` rounded once from double precision: `hypotf`'s value for
/// finite vectors (squares and their sum are exact or rounded once in f64),
/// without its library call.
#[inline(always)]
pub(crate) fn hypot(u: f32, v: f32) -> f32 {
    let (u, v) = (u as f64, v as f64);
    (u * u + v * v).sqrt() as f32
}

/// Vectors per block of [`for_each_binned`]'s vectorised pass.
const BLOCK: usize = 64;

/// Calls `add(i, bin, magnitude)` for every vector `i` of `flow`, in order,
/// whose `magnitude(u, v)` is above `min_magnitude` and finite. Angles and
/// magnitudes are computed a block at a time in loops that vectorise; only
/// the binning is per vector.
#[inline(always)]
pub(crate) fn for_each_binned(
    flow: &Flow,
    params: &HoofParams,
    magnitude: impl Fn(f32, f32) -> f32,
    mut add: impl FnMut(usize, usize, f32),
) {
    let (mut angles, mut magnitudes) = ([0f32; BLOCK], [0f32; BLOCK]);
    for (b, block) in flow.uv.chunks(2 * BLOCK).enumerate() {
        for ((uv, angle), m) in block.chunks_exact(2).zip(&mut angles).zip(&mut magnitudes) {
            *angle = fast_angle(uv[0], uv[1], params.symmetric);
            *m = magnitude(uv[0], uv[1]);
        }
        for (k, uv) in block.chunks_exact(2).enumerate() {
            let m = magnitudes[k];
            if m > params.min_magnitude && m.is_finite() {
                add(b * BLOCK + k, bin_of(angles[k], uv[0], uv[1], params), m);
            }
        }
    }
}

/// HOOF of one flow field (Eq. 3): `H[k] = Σ_{x,y} M(x,y)·1[P(x,y) ∈ bin k]`,
/// normalised to sum 1. A field without motion gives all zeros.
pub fn hoof(flow: &Flow, params: &HoofParams) -> Vec<f32> {
    // Neighbouring pixels mostly share a bin: four interleaved histograms keep
    // their additions from waiting on each other.
    let mut lanes = vec![[0f64; 4]; params.bins];
    for_each_binned(flow, params, |u, v| (u * u + v * v).sqrt(), |i, bin, m| lanes[bin][i % 4] += m as f64);
    let histogram: Vec<f64> = lanes.iter().map(|l| (l[0] + l[1]) + (l[2] + l[3])).collect();
    let total: f64 = histogram.iter().sum();
    histogram.iter().map(|&h| if total > 0.0 { (h / total) as f32 } else { 0.0 }).collect()
}

/// Mean flow magnitude (pixels per frame): how much moves.
pub fn motion_energy(flow: &Flow) -> f32 {
    let n = flow.width * flow.height;
    (flow.vectors().map(|(u, v)| hypot(u, v) as f64).sum::<f64>() / n.max(1) as f64) as f32
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
    fn fast_binning_equals_atan2_binning() {
        let mut rng = crate::synth::SplitMix64::new(17);
        let mut vectors: Vec<(f32, f32)> = (0..200_000).map(|_| (rng.signed() * 30.0, rng.signed() * 30.0)).collect();
        // On and next to the edges of 360 bins (which include those of 4, 8, 30, 36), signed zeros.
        for k in 0..720 {
            let edge = -PI + k as f32 * PI / 360.0;
            for nudge in [-1e-6, 0.0, 1e-6, 3e-5, -3e-5] {
                vectors.push(((edge + nudge).cos() * 2.0, (edge + nudge).sin() * 2.0));
            }
        }
        vectors.extend([(0.0, 0.0), (-0.0, 1.0), (-1.0, -0.0), (-1.0, 0.0), (1.0, -0.0), (0.0, -3.0)]);
        for bins in [4, 8, 30, 36, 360] {
            for symmetric in [false, true] {
                let p = HoofParams { bins, symmetric, ..Default::default() };
                for &(u, v) in &vectors {
                    let phi = if symmetric { v.atan2(u.abs()) } else { v.atan2(u) };
                    let (offset, span) = if symmetric { (PI / 2.0, PI) } else { (PI, 2.0 * PI) };
                    let want = (((phi + offset) / span * bins as f32).floor() as isize).clamp(0, bins as isize - 1);
                    assert_eq!(
                        orientation_bin(u, v, &p),
                        want as usize,
                        "({u}, {v}), {bins} bins, symmetric {symmetric}"
                    );
                }
            }
        }
    }

    #[test]
    fn hypot_is_libm_hypot() {
        let mut rng = crate::synth::SplitMix64::new(5);
        for scale in [1e-30, 1e-3, 1.0, 30.0, 1e6, 1e30] {
            for _ in 0..100_000 {
                let (u, v) = ((rng.signed() as f64 * scale) as f32, (rng.signed() as f64 * scale) as f32);
                assert_eq!(hypot(u, v), u.hypot(v), "({u}, {v})");
            }
        }
        assert_eq!(hypot(-0.0, 0.0), 0.0);
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
