//! Dense Inverse Search optical flow (Kroeger et al. 2016), the weight-free
//! CPU flow: coarse to fine, each scale fits a grid of overlapping patches by
//! inverse-compositional Lucas–Kanade from the coarser scale's flow, then
//! blends the patch flows into a dense field, weighting each patch at each
//! pixel by how well it explains that pixel.
//!
//! Work in progress: the variational refinement of the paper (and of OpenCV's
//! DIS presets) is not implemented yet.

use super::flow::Flow;
use super::image::Gray;

/// Parameters (names after OpenCV's `DISOpticalFlow`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DisParams {
    /// Finest pyramid level computed (0: full resolution); the result is upsampled from it.
    pub finest_scale: usize,
    /// Side of the square patches, in pixels.
    pub patch_size: usize,
    /// Distance between neighbouring patches.
    pub patch_stride: usize,
    /// Gauss–Newton iterations per patch.
    pub gradient_iterations: usize,
    /// Compare zero-mean patches, for robustness to brightness changes.
    pub mean_normalization: bool,
}

impl Default for DisParams {
    fn default() -> Self {
        DisParams { finest_scale: 1, patch_size: 8, patch_stride: 4, gradient_iterations: 16, mean_normalization: true }
    }
}

/// Flow from `i0` to `i1` (same size).
pub fn dis_flow(i0: &Gray, i1: &Gray, params: &DisParams) -> Flow {
    assert_eq!((i0.width, i0.height), (i1.width, i1.height), "frames must have the same size");
    let ps = params.patch_size;
    // Coarsest level: the patch still spans a few per cent of the image.
    let mut levels = vec![(i0.clone(), i1.clone())];
    while levels.last().is_some_and(|(a, _)| a.width.min(a.height) >= 4 * ps) && levels.len() < 8 {
        let (a, b) = levels.last().unwrap();
        levels.push((a.downsample(), b.downsample()));
    }
    let coarsest = levels.len() - 1;
    let finest = params.finest_scale.min(coarsest);
    let mut flow: Option<Flow> = None;
    for level in (finest..=coarsest).rev() {
        let (a, b) = &levels[level];
        let initial = match flow {
            Some(f) => upsample(&f, a.width, a.height),
            None => Flow::zeros(a.width, a.height),
        };
        flow = Some(refine_level(a, b, &initial, params));
    }
    let flow = flow.expect("at least one level");
    if finest == 0 { flow } else { upsample(&flow, i0.width, i0.height) }
}

/// Bilinear resize of a flow field to `width`×`height`, scaling the vectors with it.
fn upsample(flow: &Flow, width: usize, height: usize) -> Flow {
    let (sx, sy) = (width as f32 / flow.width as f32, height as f32 / flow.height as f32);
    let u = Gray::new(flow.width, flow.height, flow.vectors().map(|(u, _)| u).collect());
    let v = Gray::new(flow.width, flow.height, flow.vectors().map(|(_, v)| v).collect());
    let mut out = Flow::zeros(width, height);
    for y in 0..height {
        for x in 0..width {
            // Pixel centres line up: x_src = (x + 0.5) / s − 0.5.
            let (xs, ys) = ((x as f32 + 0.5) / sx - 0.5, (y as f32 + 0.5) / sy - 0.5);
            let i = 2 * (y * width + x);
            out.uv[i] = u.sample(xs, ys) * sx;
            out.uv[i + 1] = v.sample(xs, ys) * sy;
        }
    }
    out
}

/// Patch origins along one axis: every `stride`, the last one flush with the edge.
fn patch_origins(size: usize, patch: usize, stride: usize) -> Vec<usize> {
    if size <= patch {
        return vec![0];
    }
    let mut origins: Vec<usize> = (0..=size - patch).step_by(stride.max(1)).collect();
    if *origins.last().unwrap() != size - patch {
        origins.push(size - patch);
    }
    origins
}

/// One pyramid level: inverse search for every patch, then densification.
fn refine_level(i0: &Gray, i1: &Gray, initial: &Flow, params: &DisParams) -> Flow {
    let ps = params.patch_size.min(i0.width).min(i0.height);
    let (gx, gy) = i0.gradients();
    let xs = patch_origins(i0.width, ps, params.patch_stride);
    let ys = patch_origins(i0.height, ps, params.patch_stride);
    let mut patches = Vec::with_capacity(xs.len() * ys.len());
    for &py in &ys {
        for &px in &xs {
            let start = initial.at(px + ps / 2, py + ps / 2);
            patches.push((px, py, inverse_search(i0, i1, &gx, &gy, px, py, ps, start, params)));
        }
    }
    densify(i0, i1, initial, &patches, ps)
}

/// Inverse-compositional Lucas–Kanade for the translation of one patch.
#[allow(clippy::too_many_arguments)]
fn inverse_search(
    i0: &Gray,
    i1: &Gray,
    gx: &Gray,
    gy: &Gray,
    px: usize,
    py: usize,
    ps: usize,
    start: (f32, f32),
    params: &DisParams,
) -> (f32, f32) {
    let n = ps * ps;
    let mut template = Vec::with_capacity(n);
    let mut grad = Vec::with_capacity(n);
    for y in py..py + ps {
        for x in px..px + ps {
            template.push(i0.at(x, y));
            grad.push((gx.at(x, y), gy.at(x, y)));
        }
    }
    if params.mean_normalization {
        center(&mut template);
        let (mx, my) = grad.iter().fold((0.0, 0.0), |(a, b), g| (a + g.0, b + g.1));
        let (mx, my) = (mx / n as f32, my / n as f32);
        grad.iter_mut().for_each(|g| *g = (g.0 - mx, g.1 - my));
    }
    let (mut hxx, mut hxy, mut hyy) = (0f64, 0f64, 0f64);
    for &(a, b) in &grad {
        hxx += (a * a) as f64;
        hxy += (a * b) as f64;
        hyy += (b * b) as f64;
    }
    // A little damping keeps textureless patches from flying off.
    let damping = 1e-3 * (hxx + hyy) + 1e-6;
    let (hxx, hyy) = (hxx + damping, hyy + damping);
    let det = hxx * hyy - hxy * hxy;
    let mut u = start;
    let mut warped = vec![0f32; n];
    let mut best = (f32::INFINITY, start);
    for _ in 0..params.gradient_iterations {
        warp_patch(i1, px, py, ps, u, params.mean_normalization, &mut warped);
        let (mut bx, mut by, mut ssd) = (0f64, 0f64, 0f32);
        for ((&w, &t), &(a, b)) in warped.iter().zip(&template).zip(&grad) {
            let e = w - t;
            ssd += e * e;
            bx += (a * e) as f64;
            by += (b * e) as f64;
        }
        if ssd < best.0 {
            best = (ssd, u);
        }
        let dx = ((hyy * bx - hxy * by) / det) as f32;
        let dy = ((hxx * by - hxy * bx) / det) as f32;
        u = (u.0 - dx, u.1 - dy);
        if dx * dx + dy * dy < 1e-4 {
            break;
        }
    }
    // Evaluate the last step too, then keep the best estimate seen.
    warp_patch(i1, px, py, ps, u, params.mean_normalization, &mut warped);
    let ssd: f32 = warped.iter().zip(&template).map(|(w, t)| (w - t) * (w - t)).sum();
    if ssd < best.0 {
        best = (ssd, u);
    }
    let u = best.1;
    // A patch that wandered further than its own size has lost its way.
    if (u.0 - start.0).hypot(u.1 - start.1) > ps as f32 { start } else { u }
}

/// The `ps`×`ps` patch of `i1` at `(px, py)` displaced by `u` (bilinear), zero-mean if `normalize`.
fn warp_patch(i1: &Gray, px: usize, py: usize, ps: usize, u: (f32, f32), normalize: bool, out: &mut [f32]) {
    for (k, w) in out.iter_mut().enumerate() {
        *w = i1.sample((px + k % ps) as f32 + u.0, (py + k / ps) as f32 + u.1);
    }
    if normalize {
        center(out);
    }
}

fn center(values: &mut [f32]) {
    let mean = values.iter().sum::<f32>() / values.len() as f32;
    values.iter_mut().for_each(|v| *v -= mean);
}

/// Blends patch flows: each pixel takes the average of the patches covering
/// it, each weighted by `1 / max(1, |I1(x + u) − I0(x)|)`.
fn densify(i0: &Gray, i1: &Gray, initial: &Flow, patches: &[(usize, usize, (f32, f32))], ps: usize) -> Flow {
    let (w, h) = (i0.width, i0.height);
    let mut sum = vec![(0f32, 0f32, 0f32); w * h];
    for &(px, py, (u, v)) in patches {
        for y in py..py + ps {
            for x in px..px + ps {
                let residual = (i1.sample(x as f32 + u, y as f32 + v) - i0.at(x, y)).abs();
                let weight = 1.0 / residual.max(1.0);
                let s = &mut sum[y * w + x];
                *s = (s.0 + weight * u, s.1 + weight * v, s.2 + weight);
            }
        }
    }
    let mut flow = initial.clone();
    for (i, &(su, sv, sw)) in sum.iter().enumerate() {
        if sw > 0.0 {
            flow.uv[2 * i] = su / sw;
            flow.uv[2 * i + 1] = sv / sw;
        }
    }
    flow
}

/// Average end-point error between two flow fields.
pub fn average_epe(a: &Flow, b: &Flow) -> f32 {
    let n = a.width * a.height;
    (a.vectors().zip(b.vectors()).map(|((u0, v0), (u1, v1))| ((u0 - u1).hypot(v0 - v1)) as f64).sum::<f64>() / n as f64)
        as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::motion::warp::{affine_pair, value_noise};

    /// EPE over the interior (borders lose content to the warp).
    fn interior_epe(a: &Flow, b: &Flow, margin: usize) -> f32 {
        let mut total = 0f64;
        let mut n = 0;
        for y in margin..a.height - margin {
            for x in margin..a.width - margin {
                let ((u0, v0), (u1, v1)) = (a.at(x, y), b.at(x, y));
                total += (u0 - u1).hypot(v0 - v1) as f64;
                n += 1;
            }
        }
        (total / n as f64) as f32
    }

    #[test]
    fn recovers_translations_rotations_and_zooms() {
        let i0 = value_noise(128, 128, 5);
        let identity = [[1.0, 0.0], [0.0, 1.0]];
        let (c, s) = (0.05f32.cos(), 0.05f32.sin());
        for (name, a, t, limit) in [
            ("subpixel shift", identity, (1.4, -0.7), 0.1),
            ("large shift", identity, (6.3, 4.1), 0.1),
            ("rotation", [[c, -s], [s, c]], (0.0, 0.0), 0.2),
            ("zoom", [[1.05, 0.0], [0.0, 1.05]], (1.0, 0.0), 0.2),
        ] {
            let (i1, truth) = affine_pair(&i0, a, t);
            let flow = dis_flow(&i0, &i1, &DisParams { finest_scale: 0, ..Default::default() });
            let epe = interior_epe(&flow, &truth, 12);
            assert!(epe < limit, "{name}: EPE {epe}");
        }
    }

    #[test]
    fn still_frames_give_no_motion() {
        let i0 = value_noise(64, 48, 1);
        let flow = dis_flow(&i0, &i0, &DisParams::default());
        assert_eq!((flow.width, flow.height), (64, 48));
        assert!(flow.vectors().all(|(u, v)| u.hypot(v) < 0.05));
        assert_eq!(average_epe(&flow, &flow), 0.0);
    }

    #[test]
    fn patch_grid_covers_the_image() {
        assert_eq!(patch_origins(20, 8, 4), vec![0, 4, 8, 12]);
        assert_eq!(patch_origins(21, 8, 4), vec![0, 4, 8, 12, 13]);
        assert_eq!(patch_origins(5, 8, 4), vec![0]);
    }
}
