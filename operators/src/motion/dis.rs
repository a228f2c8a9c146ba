//! Dense Inverse Search optical flow (Kroeger et al. 2016), the weight-free
//! CPU flow. Coarse to fine, each scale
//!
//! 1. fits a grid of overlapping patches by inverse-compositional
//!    Lucas–Kanade (Sec. 2.1), each patch starting from the coarser scale's
//!    flow (with `spatial_propagation`, from the best of that and its already
//!    fitted neighbours' flows, in a forward and a backward sweep, as OpenCV's
//!    `DISOpticalFlow` does);
//! 2. blends the patch flows into a dense field, weighting each patch at each
//!    pixel by how well it explains that pixel (Sec. 2.2);
//! 3. refines the dense field variationally (Sec. 2.2; `variational.rs`).
//!
//! Parameters are named after OpenCV's and default to its medium preset, but
//! for spatial propagation (see [`DisParams::spatial_propagation`]). Every step
//! is cut into bands that do not depend on the number of threads, so the flow
//! is the same, bit for bit, for any `threads`.

use std::ops::Range;

use super::flow::Flow;
use super::image::Gray;
use super::parallel;
use super::variational::{self, Energy};

/// Parameters (names after OpenCV's `DISOpticalFlow`; defaults: its medium preset).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DisParams {
    /// Finest pyramid level computed (0: full resolution); the result is upsampled from it.
    pub finest_scale: usize,
    /// Side of the square patches, in pixels.
    pub patch_size: usize,
    /// Distance between neighbouring patches.
    pub patch_stride: usize,
    /// Gauss–Newton iterations per patch, shared among the sweeps.
    pub gradient_iterations: usize,
    /// Compare zero-mean patches, for robustness to brightness changes.
    pub mean_normalization: bool,
    /// Start each patch from the best of its own and its neighbours' flows,
    /// sweeping forwards then backwards. Off by default, unlike OpenCV: on
    /// the benchmark's noisy textures it copies one patch's error to its
    /// neighbours, where independent errors would average out.
    pub spatial_propagation: bool,
    /// Fixed-point iterations of the variational refinement at each scale (0: none).
    pub variational_refinement_iterations: usize,
    /// Weight of the smoothness term.
    pub variational_refinement_alpha: f32,
    /// Weight of the brightness constancy term.
    pub variational_refinement_delta: f32,
    /// Weight of the gradient constancy term.
    pub variational_refinement_gamma: f32,
    /// Worker threads (the flow does not depend on it).
    pub threads: usize,
}

impl Default for DisParams {
    fn default() -> Self {
        DisParams {
            finest_scale: 1,
            patch_size: 8,
            patch_stride: 3,
            gradient_iterations: 25,
            mean_normalization: true,
            spatial_propagation: false,
            variational_refinement_iterations: 5,
            variational_refinement_alpha: 20.0,
            variational_refinement_delta: 5.0,
            variational_refinement_gamma: 10.0,
            threads: parallel::available_threads(),
        }
    }
}

/// Patch rows are searched in this many bands whatever the number of threads;
/// spatial propagation stays inside a band.
const SEARCH_BANDS: usize = 8;

/// Flow from `i0` to `i1` (same size).
pub fn dis_flow(i0: &Gray, i1: &Gray, params: &DisParams) -> Flow {
    assert_eq!((i0.width, i0.height), (i1.width, i1.height), "frames must have the same size");
    let ps = params.patch_size;
    let threads = params.threads.max(1);
    // Coarsest level: the patch still spans a few per cent of the image.
    let mut levels = vec![(i0.clone(), i1.clone())];
    while levels.last().is_some_and(|(a, _)| a.width.min(a.height) >= 4 * ps) && levels.len() < 8 {
        let (a, b) = levels.last().unwrap();
        levels.push((a.downsample(), b.downsample()));
    }
    let coarsest = levels.len() - 1;
    let finest = params.finest_scale.min(coarsest);
    let energy = Energy {
        fixed_point_iterations: params.variational_refinement_iterations,
        alpha: params.variational_refinement_alpha,
        delta: params.variational_refinement_delta,
        gamma: params.variational_refinement_gamma,
    };
    let mut flow: Option<Flow> = None;
    for level in (finest..=coarsest).rev() {
        let (a, b) = &levels[level];
        let initial = match flow {
            Some(f) => upsample(&f, a.width, a.height, threads),
            None => Flow::zeros(a.width, a.height),
        };
        let mut dense = match_patches(a, b, &initial, params);
        variational::refine(a, b, &mut dense, &energy, threads);
        flow = Some(dense);
    }
    let flow = flow.expect("at least one level");
    if finest == 0 { flow } else { upsample(&flow, i0.width, i0.height, threads) }
}

/// Flows of several pairs (each from its first frame to its second), the
/// same as [`dis_flow`] on each. With more pairs than one and threads to
/// spare, whole pairs run side by side, each on threads of its own: a pair
/// spends most of its time in short phases whose meetings cost more than the
/// phases once the threads outnumber the free cores, while pairs need none.
/// Groups of up to `threads` pairs run at once, their threads shared out.
pub fn dis_flows(pairs: &[(&Gray, &Gray)], params: &DisParams) -> Vec<Flow> {
    let threads = params.threads.max(1);
    let mut flows = Vec::with_capacity(pairs.len());
    for group in pairs.chunks(threads) {
        let share =
            |k: usize| DisParams { threads: threads / group.len() + (k < threads % group.len()) as usize, ..*params };
        if group.len() == 1 {
            flows.push(dis_flow(group[0].0, group[0].1, &share(0)));
            continue;
        }
        std::thread::scope(|s| {
            let others: Vec<_> = group[1..]
                .iter()
                .enumerate()
                .map(|(k, (a, b))| {
                    let params = share(k + 1);
                    s.spawn(move || dis_flow(a, b, &params))
                })
                .collect();
            flows.push(dis_flow(group[0].0, group[0].1, &share(0)));
            flows.extend(others.into_iter().map(|h| h.join().expect("a flow thread panicked")));
        });
    }
    flows
}

/// Bilinear resize of a flow field to `width`×`height`, scaling the vectors with it.
fn upsample(flow: &Flow, width: usize, height: usize, threads: usize) -> Flow {
    let (sx, sy) = (width as f32 / flow.width as f32, height as f32 / flow.height as f32);
    let columns = resampling(width, flow.width);
    let rows = resampling(height, flow.height);
    let mut out = Flow::zeros(width, height);
    parallel::for_each_row(threads, &mut out.uv, 2 * width, |y, row| {
        let (y0, y1, fy) = rows[y];
        let (above, below) = (&flow.uv[2 * y0 * flow.width..], &flow.uv[2 * y1 * flow.width..]);
        for (uv, &(x0, x1, fx)) in row.chunks_exact_mut(2).zip(&columns) {
            for (c, scale) in [(0, sx), (1, sy)] {
                let top = above[2 * x0 + c] + (above[2 * x1 + c] - above[2 * x0 + c]) * fx;
                let bottom = below[2 * x0 + c] + (below[2 * x1 + c] - below[2 * x0 + c]) * fx;
                uv[c] = (top + (bottom - top) * fy) * scale;
            }
        }
    });
    out
}

/// For each of `size` output positions along an axis, the two source
/// positions (of `source` ones) and the weight of the second, pixel centres
/// lined up: `x_src = (x + 0.5) · source / size − 0.5`, clamped to the edge.
fn resampling(size: usize, source: usize) -> Vec<(usize, usize, f32)> {
    let scale = source as f32 / size as f32;
    (0..size)
        .map(|x| {
            let position = ((x as f32 + 0.5) * scale - 0.5).clamp(0.0, (source - 1) as f32);
            let x0 = position as usize;
            (x0, (x0 + 1).min(source - 1), position - x0 as f32)
        })
        .collect()
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

/// Inverse search for every patch of one level, then densification.
fn match_patches(i0: &Gray, i1: &Gray, initial: &Flow, params: &DisParams) -> Flow {
    let ps = params.patch_size.min(i0.width).min(i0.height);
    // Sobel rather than central differences: smoothing across each derivative
    // steadies the patch Hessians on noisy texture.
    let (gx, gy) = i0.sobel_gradients();
    let search = Search {
        i0,
        gx,
        gy,
        i1: Padded::new(i1, ps),
        ps,
        xs: patch_origins(i0.width, ps, params.patch_stride),
        ys: patch_origins(i0.height, ps, params.patch_stride),
        params,
    };
    let bands = parallel::bands(search.ys.len(), SEARCH_BANDS);
    let threads = params.threads.clamp(1, bands.len());
    let per_member = parallel::team(threads, |member| {
        bands[member.share(bands.len())].iter().flat_map(|band| search.band(band.clone(), initial)).collect::<Vec<_>>()
    });
    let patch_flows: Vec<(f32, f32)> = per_member.into_iter().flatten().collect();
    search.densify(&patch_flows)
}

/// `i1` with a replicated border as wide as a patch, so that a patch placed
/// partly off the image needs no bounds checks.
struct Padded {
    data: Vec<f32>,
    stride: usize,
    border: usize,
}

impl Padded {
    fn new(image: &Gray, border: usize) -> Padded {
        let (w, h) = (image.width, image.height);
        let stride = w + 2 * border;
        let mut data = Vec::with_capacity(stride * (h + 2 * border));
        for y in 0..h + 2 * border {
            let row = &image.data[y.saturating_sub(border).min(h - 1) * w..][..w];
            data.extend(std::iter::repeat_n(row[0], border));
            data.extend_from_slice(row);
            data.extend(std::iter::repeat_n(row[w - 1], border));
        }
        Padded { data, stride, border }
    }
}

/// What the inverse search of one level reads.
struct Search<'a> {
    i0: &'a Gray,
    gx: Gray,
    gy: Gray,
    i1: Padded,
    ps: usize,
    xs: Vec<usize>,
    ys: Vec<usize>,
    params: &'a DisParams,
}

/// A patch of `i0` and what its Gauss–Newton steps need, computed once.
struct Patch {
    x: usize,
    y: usize,
    /// Mean gradient over the patch (zero without mean normalisation).
    mean_gradient: (f32, f32),
    /// Inverse of the (damped) Gauss–Newton Hessian: `[xx, xy, yy]`.
    inverse_hessian: [f32; 3],
}

/// How badly a patch matches at one displacement: the sum of squared
/// differences and its gradient `Σ d·∇I0` (both of zero-mean patches under
/// mean normalisation).
#[derive(Clone, Copy)]
struct Mismatch {
    ssd: f32,
    bx: f32,
    by: f32,
}

impl Search<'_> {
    fn patch(&self, x: usize, y: usize) -> Patch {
        let (mut sx, mut sy, mut sxx, mut sxy, mut syy) = (0f32, 0f32, 0f32, 0f32, 0f32);
        for row in y..y + self.ps {
            let o = row * self.i0.width + x;
            for (&a, &b) in self.gx.data[o..o + self.ps].iter().zip(&self.gy.data[o..o + self.ps]) {
                (sx, sy) = (sx + a, sy + b);
                (sxx, sxy, syy) = (sxx + a * a, sxy + a * b, syy + b * b);
            }
        }
        let n = (self.ps * self.ps) as f32;
        let mean_gradient = if self.params.mean_normalization { (sx / n, sy / n) } else { (0.0, 0.0) };
        // Gradients of the zero-mean patch: Σ(g − ḡ)(g − ḡ)ᵀ = Σ g gᵀ − n ḡ ḡᵀ.
        let (mx, my) = mean_gradient;
        let (hxx, hxy, hyy) = (sxx - n * mx * mx, sxy - n * mx * my, syy - n * my * my);
        // A little damping keeps textureless patches from flying off.
        let damping = 1e-3 * (hxx + hyy) + 1e-6;
        let (hxx, hyy) = (hxx + damping, hyy + damping);
        let det = hxx * hyy - hxy * hxy;
        Patch { x, y, mean_gradient, inverse_hessian: [hyy / det, -hxy / det, hxx / det] }
    }

    /// The flows of the patches in rows `band` of the grid, row-major.
    fn band(&self, band: Range<usize>, initial: &Flow) -> Vec<(f32, f32)> {
        let (nx, half) = (self.xs.len(), self.ps / 2);
        let patches: Vec<Patch> = self.ys[band]
            .iter()
            .flat_map(|&y| self.xs.iter().map(move |&x| (x, y)))
            .map(|(x, y)| self.patch(x, y))
            .collect();
        let mut flows: Vec<(f32, f32)> = patches.iter().map(|p| initial.at(p.x + half, p.y + half)).collect();
        let sweeps = if self.params.spatial_propagation { 2 } else { 1 };
        let iterations = (self.params.gradient_iterations / sweeps).max(1);
        let n = patches.len();
        for sweep in 0..sweeps {
            let forward = sweep % 2 == 0;
            for step in 0..n {
                let k = if forward { step } else { n - 1 - step };
                let (column, row) = (k % nx, k / nx);
                // Neighbours already fitted in this sweep: before `k` in sweep order.
                let (beside, across) = if forward {
                    ((column > 0).then(|| k - 1), (row > 0).then(|| k - nx))
                } else {
                    ((column + 1 < nx).then(|| k + 1), (k + nx < n).then(|| k + nx))
                };
                let patch = &patches[k];
                let mut start = (flows[k], self.mismatch(patch, flows[k]));
                if self.params.spatial_propagation {
                    for candidate in [beside, across].into_iter().flatten().map(|j| flows[j]) {
                        let mismatch = self.mismatch(patch, candidate);
                        if mismatch.ssd < start.1.ssd {
                            start = (candidate, mismatch);
                        }
                    }
                }
                flows[k] = self.descend(patch, start.0, start.1, iterations);
            }
        }
        flows
    }

    /// Gauss–Newton from `start` while the mismatch keeps falling, halving a
    /// step that overshoots (the first step from a neighbour's flow often does).
    fn descend(&self, patch: &Patch, start: (f32, f32), mismatch: Mismatch, iterations: usize) -> (f32, f32) {
        let [ixx, ixy, iyy] = patch.inverse_hessian;
        let (mut u, mut current, mut scale) = (start, mismatch, 1.0);
        for _ in 0..iterations {
            let (dx, dy) =
                (scale * (ixx * current.bx + ixy * current.by), scale * (ixy * current.bx + iyy * current.by));
            let next = (u.0 - dx, u.1 - dy);
            let mismatch = self.mismatch(patch, next);
            if mismatch.ssd < current.ssd {
                (u, current, scale) = (next, mismatch, 1.0);
            } else {
                scale *= 0.5;
            }
            if (dx * dx + dy * dy) < 1e-4 {
                break;
            }
        }
        // A patch that wandered further than its own size has lost its way.
        if (u.0 - start.0).hypot(u.1 - start.1) > self.ps as f32 { start } else { u }
    }

    /// Where the patch at `(x, y)` displaced by `u` lies in the padded `i1`:
    /// the top-left sample and the bilinear weights, shared by the whole patch
    /// since the motion is a translation. A patch pushed off the image stops
    /// one pixel short of its own size beyond the edge, inside the border.
    #[inline]
    fn placement(&self, x: usize, y: usize, u: (f32, f32)) -> (usize, usize, [f32; 4]) {
        let border = self.i1.border as f32;
        let x = (x as f32 + u.0).clamp(1.0 - border, (self.i0.width - 1) as f32) + border;
        let y = (y as f32 + u.1).clamp(1.0 - border, (self.i0.height - 1) as f32) + border;
        let (x0, y0) = (x as usize, y as usize);
        // Non-negative, so truncation is the floor.
        let (fx, fy) = (x - x0 as f32, y - y0 as f32);
        (x0, y0, [(1.0 - fx) * (1.0 - fy), fx * (1.0 - fy), (1.0 - fx) * fy, fx * fy])
    }

    fn mismatch(&self, patch: &Patch, u: (f32, f32)) -> Mismatch {
        // The default patch size gets a fully unrolled loop.
        if self.ps == 8 { self.mismatch_of_size::<8>(patch, u) } else { self.mismatch_of_size::<0>(patch, u) }
    }

    /// [`Self::mismatch`] for patches of side `N` (0: any side).
    #[inline(always)]
    fn mismatch_of_size<const N: usize>(&self, patch: &Patch, u: (f32, f32)) -> Mismatch {
        const LANES: usize = 8;
        let ps = if N == 0 { self.ps } else { N };
        let w = self.i0.width;
        let (x0, y0, [w00, w01, w10, w11]) = self.placement(patch.x, patch.y, u);
        let stride = self.i1.stride;
        // Per-lane sums keep the loop free of a serial reduction.
        let (mut sum_d, mut sum_dd, mut sum_dx, mut sum_dy) =
            ([0f32; LANES], [0f32; LANES], [0f32; LANES], [0f32; LANES]);
        for r in 0..ps {
            let top = (y0 + r) * stride + x0;
            let above = &self.i1.data[top..top + ps + 1];
            let below = &self.i1.data[top + stride..top + stride + ps + 1];
            let o = (patch.y + r) * w + patch.x;
            let (template, gx, gy) = (&self.i0.data[o..o + ps], &self.gx.data[o..o + ps], &self.gy.data[o..o + ps]);
            for k in 0..ps {
                let warped = w00 * above[k] + w01 * above[k + 1] + w10 * below[k] + w11 * below[k + 1];
                let d = warped - template[k];
                let lane = k % LANES;
                sum_d[lane] += d;
                sum_dd[lane] += d * d;
                sum_dx[lane] += d * gx[k];
                sum_dy[lane] += d * gy[k];
            }
        }
        let [sd, sdd, sdx, sdy] = [sum_d, sum_dd, sum_dx, sum_dy].map(|lanes| lanes.iter().sum::<f32>());
        let (mx, my) = patch.mean_gradient;
        let ssd = if self.params.mean_normalization { sdd - sd * sd / (ps * ps) as f32 } else { sdd };
        Mismatch { ssd, bx: sdx - mx * sd, by: sdy - my * sd }
    }

    /// Blends the patch flows: each pixel takes the average of the patches
    /// covering it, each weighted by `1 / max(1, |I1(x + u) − I0(x)|)`.
    fn densify(&self, patch_flows: &[(f32, f32)]) -> Flow {
        let (w, ps, nx, stride) = (self.i0.width, self.ps, self.xs.len(), self.i1.stride);
        let mut flow = Flow::zeros(w, self.i0.height);
        parallel::for_each_band(self.params.threads.max(1), &mut flow.uv, 2 * w, |rows, out| {
            let mut sums: [Vec<f32>; 3] = std::array::from_fn(|_| vec![0.0; rows.len() * w]);
            // Patches in grid order, so that every pixel adds up its terms in the
            // same order whatever the bands.
            for (r, &py) in self.ys.iter().enumerate() {
                let overlap = py.max(rows.start)..(py + ps).min(rows.end);
                for (&px, &u) in self.xs.iter().zip(&patch_flows[r * nx..(r + 1) * nx]) {
                    let (x0, y0, bilinear) = self.placement(px, py, u);
                    for y in overlap.clone() {
                        let top = (y0 + y - py) * stride + x0;
                        let start = (y - rows.start) * w + px;
                        let [su, sv, sw] = sums.each_mut().map(|s| &mut s[start..start + ps]);
                        let warped =
                            [&self.i1.data[top..top + ps + 1], &self.i1.data[top + stride..top + stride + ps + 1]];
                        add_weighted(su, sv, sw, u, bilinear, warped, &self.i0.data[y * w + px..][..ps]);
                    }
                }
            }
            let [su, sv, sw] = &sums;
            for (k, uv) in out.chunks_exact_mut(2).enumerate() {
                (uv[0], uv[1]) = (su[k] / sw[k], sv[k] / sw[k]);
            }
        });
        flow
    }
}

/// One row of a patch's contribution to [`Search::densify`]: `I1(x + u)`
/// interpolated from the rows `warped` with the `bilinear` weights.
fn add_weighted(
    su: &mut [f32],
    sv: &mut [f32],
    sw: &mut [f32],
    u: (f32, f32),
    [w00, w01, w10, w11]: [f32; 4],
    [above, below]: [&[f32]; 2],
    reference: &[f32],
) {
    let n = su.len();
    let (sv, sw, reference, above, below) =
        (&mut sv[..n], &mut sw[..n], &reference[..n], &above[..n + 1], &below[..n + 1]);
    for k in 0..n {
        let warped = w00 * above[k] + w01 * above[k + 1] + w10 * below[k] + w11 * below[k + 1];
        let weight = 1.0 / (warped - reference[k]).abs().max(1.0);
        su[k] += weight * u.0;
        sv[k] += weight * u.1;
        sw[k] += weight;
    }
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
    use crate::motion::warp::{affine_pair, smooth_field_pair, value_noise};

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
    fn variational_refinement_lowers_the_error_of_smooth_motions() {
        let i0 = value_noise(128, 128, 21);
        let (c, s) = (0.05f32.cos(), 0.05f32.sin());
        // The random field varies on the texture's own scale, finer than a
        // patch, so the refinement can recover less of it.
        for (name, (i1, truth), gain) in [
            ("rotation", affine_pair(&i0, [[c, -s], [s, c]], (0.5, 0.0)), 0.8),
            ("zoom", affine_pair(&i0, [[1.05, 0.0], [0.0, 1.05]], (0.5, 0.0)), 0.85),
            ("random smooth field", smooth_field_pair(&i0, 1.0, 8), 0.97),
        ] {
            let epe = |iterations| {
                let params =
                    DisParams { variational_refinement_iterations: iterations, threads: 1, ..Default::default() };
                interior_epe(&dis_flow(&i0, &i1, &params), &truth, 12)
            };
            let (without, with) = (epe(0), epe(5));
            assert!(with < gain * without, "{name}: EPE {with} with the refinement, {without} without");
        }
    }

    #[test]
    fn the_flow_does_not_depend_on_the_number_of_threads() {
        let i0 = value_noise(136, 120, 4);
        let (i1, _) = smooth_field_pair(&i0, 3.0, 6);
        for spatial_propagation in [false, true] {
            let flow = |threads| {
                let params = DisParams { threads, spatial_propagation, finest_scale: 0, ..Default::default() };
                dis_flow(&i0, &i1, &params)
            };
            let one = flow(1);
            assert!(one.vectors().any(|(u, v)| u.hypot(v) > 1.0));
            for threads in [2, 3] {
                // Bit for bit: every thread count adds the same terms in the same order.
                assert!(one.uv == flow(threads).uv, "{threads} threads differ from one");
            }
        }
    }

    #[test]
    fn pairs_side_by_side_give_each_pair_its_own_flow() {
        let i0 = value_noise(72, 64, 8);
        let seconds: Vec<Gray> = (0..5).map(|k| smooth_field_pair(&i0, 1.0 + k as f32, k).0).collect();
        let pairs: Vec<(&Gray, &Gray)> = seconds.iter().map(|i1| (&i0, i1)).collect();
        let alone: Vec<Flow> =
            pairs.iter().map(|(a, b)| dis_flow(a, b, &DisParams { threads: 1, ..Default::default() })).collect();
        for threads in [1, 2, 3] {
            assert!(dis_flows(&pairs, &DisParams { threads, ..Default::default() }) == alone, "{threads} threads");
        }
    }

    #[test]
    fn patch_grid_covers_the_image() {
        assert_eq!(patch_origins(20, 8, 4), vec![0, 4, 8, 12]);
        assert_eq!(patch_origins(21, 8, 4), vec![0, 4, 8, 12, 13]);
        assert_eq!(patch_origins(5, 8, 4), vec![0]);
    }
}
