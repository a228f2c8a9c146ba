//! Frame pairs with known flow, for tests and benchmarks: textures, and
//! warps of them whose exact forward flow is known.

use super::flow::Flow;
use super::image::Gray;
use crate::synth::SplitMix64;

/// Smooth random texture: value noise at three scales, values in [0, 240).
pub fn value_noise(width: usize, height: usize, seed: u64) -> Gray {
    let mut rng = SplitMix64::new(seed);
    let mut data = vec![0f32; width * height];
    for cell in [32usize, 12, 5] {
        let (gw, gh) = (width / cell + 2, height / cell + 2);
        let lattice = Gray::new(gw, gh, (0..gw * gh).map(|_| rng.range(0.0, 80.0) as f32).collect());
        for y in 0..height {
            for x in 0..width {
                data[y * width + x] += lattice.sample(x as f32 / cell as f32, y as f32 / cell as f32);
            }
        }
    }
    Gray::new(width, height, data)
}

/// The second frame of an affine motion about the image centre, and its true
/// flow: `I1(c + A·(x − c) + t) = I0(x)`, so `flow(x) = A·(x − c) + t − (x − c)`.
pub fn affine_pair(i0: &Gray, a: [[f32; 2]; 2], t: (f32, f32)) -> (Gray, Flow) {
    let (w, h) = (i0.width, i0.height);
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    let det = a[0][0] * a[1][1] - a[0][1] * a[1][0];
    let inv = [[a[1][1] / det, -a[0][1] / det], [-a[1][0] / det, a[0][0] / det]];
    let mut i1 = vec![0f32; w * h];
    let mut flow = Flow::zeros(w, h);
    for y in 0..h {
        for x in 0..w {
            // Where the pixel of I1 at (x, y) came from in I0.
            let (dx, dy) = (x as f32 - cx - t.0, y as f32 - cy - t.1);
            i1[y * w + x] = i0.sample(inv[0][0] * dx + inv[0][1] * dy + cx, inv[1][0] * dx + inv[1][1] * dy + cy);
            let (px, py) = (x as f32 - cx, y as f32 - cy);
            let i = 2 * (y * w + x);
            flow.uv[i] = a[0][0] * px + a[0][1] * py + t.0 - px;
            flow.uv[i + 1] = a[1][0] * px + a[1][1] * py + t.1 - py;
        }
    }
    (Gray::new(w, h, i1), flow)
}

/// The second frame of a smooth random motion of up to `magnitude` pixels,
/// and its true forward flow (found by fixed-point iteration of
/// `f(x) = g(x + f(x))`, where `I1(y) = I0(y − g(y))`).
pub fn smooth_field_pair(i0: &Gray, magnitude: f32, seed: u64) -> (Gray, Flow) {
    let (w, h) = (i0.width, i0.height);
    // The backward displacement g: value noise rescaled to ±magnitude.
    let gu = value_noise(w, h, seed);
    let gv = value_noise(w, h, seed + 1);
    let scale = |v: f32| (v / 240.0 - 0.5) * 2.0 * magnitude;
    let g = |x: f32, y: f32| (scale(gu.sample(x, y)), scale(gv.sample(x, y)));
    let mut i1 = vec![0f32; w * h];
    let mut flow = Flow::zeros(w, h);
    for y in 0..h {
        for x in 0..w {
            let (bx, by) = g(x as f32, y as f32);
            i1[y * w + x] = i0.sample(x as f32 - bx, y as f32 - by);
            let mut f = (bx, by);
            for _ in 0..20 {
                f = g(x as f32 + f.0, y as f32 + f.1);
            }
            let i = 2 * (y * w + x);
            (flow.uv[i], flow.uv[i + 1]) = f;
        }
    }
    (Gray::new(w, h, i1), flow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pure_shift_moves_every_pixel() {
        let i0 = value_noise(40, 30, 3);
        let (i1, flow) = affine_pair(&i0, [[1.0, 0.0], [0.0, 1.0]], (2.0, 1.0));
        assert!(flow.vectors().all(|v| v == (2.0, 1.0)));
        assert_eq!(i1.at(12, 11), i0.at(10, 10));
    }

    #[test]
    fn smooth_field_flow_maps_i0_onto_i1() {
        let i0 = value_noise(64, 64, 9);
        let (i1, flow) = smooth_field_pair(&i0, 3.0, 4);
        // I1(x + f(x)) = I0(x) up to interpolation, away from the borders: far
        // closer than assuming no motion (the texture's finest octave makes
        // the double interpolation itself cost ~0.5 grey levels).
        let mean_error = |flow_at: &dyn Fn(usize, usize) -> (f32, f32)| {
            let mut total = 0f32;
            for y in 8..56 {
                for x in 8..56 {
                    let (u, v) = flow_at(x, y);
                    total += (i1.sample(x as f32 + u, y as f32 + v) - i0.at(x, y)).abs();
                }
            }
            total / (48.0 * 48.0)
        };
        let with = mean_error(&|x, y| flow.at(x, y));
        let without = mean_error(&|_, _| (0.0, 0.0));
        assert!(with < 1.0 && with < 0.2 * without, "{with} with the flow, {without} without");
        assert!(flow.vectors().any(|(u, v)| u.hypot(v) > 1.0));
    }
}
