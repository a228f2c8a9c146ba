//! Variational refinement of a dense flow, the last step of DIS at every
//! scale (Kroeger et al. 2016, Sec. 2.2): the energy of Brox et al. (2004),
//! brightness and gradient constancy plus a smoothness term, each under the
//! robust penaliser `Ψ(s²) = √(s² + ε²)`, with the data terms normalised by
//! the local gradient magnitude (Zimmer et al. 2011). The constraints are
//! linearised once around the input flow; fixed-point iterations update the
//! lagged robust weights and red-black SOR solves each linear system for the
//! flow increment.
//!
//! Every array lives on a [`Checkerboard`]: one colour's pixels depend only on
//! the other colour's, so a colour is updated with contiguous, branch-free
//! loops, and row bands of it by different threads in any order.
//!
//! Unlike OpenCV's `VariationalRefinement`, the derivatives are true
//! derivatives (OpenCV's unnormalised `[-1 0 1]` kernels double them, which
//! halves every data-term step), and pixels whose match falls outside the
//! second frame get no data term.

use std::ops::Range;
use std::sync::{RwLock, RwLockReadGuard};

use super::flow::Flow;
use super::image::Gray;
use super::parallel::{self, Member};

/// Weights of the energy `δ·Ψ(brightness) + γ·Ψ(gradient) + α·Ψ(|∇u|² + |∇v|²)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Energy {
    pub fixed_point_iterations: usize,
    pub alpha: f32,
    pub delta: f32,
    pub gamma: f32,
}

/// Inner SOR sweeps per fixed-point iteration and their over-relaxation (as OpenCV's DIS).
const SOR_ITERATIONS: usize = 5;
const OMEGA: f32 = 1.6;
/// Keeps the normalisation finite in flat regions (ζ² of Zimmer et al.).
const ZETA_SQUARED: f32 = 0.01;
/// ε² of the robust penaliser.
const EPSILON_SQUARED: f32 = 1e-6;
/// Fewer rows a thread than this cost more in meetings than they save.
const MIN_ROWS_PER_THREAD: usize = 8;

/// Refines `flow` (from `i0` to `i1`, same size) in place.
pub(crate) fn refine(i0: &Gray, i1: &Gray, flow: &mut Flow, energy: &Energy, threads: usize) {
    if energy.fixed_point_iterations == 0 {
        return;
    }
    let board = Checkerboard::new(i0.width, i0.height);
    let fixed = Fixed::new(&board, i0, i1, flow, threads);
    let members = threads.min(board.height / MIN_ROWS_PER_THREAD).max(1);
    let bands: Vec<Band> =
        parallel::bands(board.height, members).into_iter().map(|rows| Band::new(&board, rows)).collect();
    let solver = Solver { board: &board, fixed: &fixed, energy, bands: &bands, zeros: vec![0.0; 2 * board.stride] };
    parallel::team(members, |member| solver.run(member));
    for band in bands {
        for (colour, increments) in band.increments.into_iter().enumerate() {
            let increments = increments.into_inner().expect("no member panicked");
            for (y, row) in band.rows.clone().zip(increments.chunks_exact(2 * board.stride)) {
                let (du, dv) = row.split_at(board.stride);
                for (x, j) in board.pixels(y, colour) {
                    let i = 2 * (y * board.width + x);
                    flow.uv[i] += du[1 + j];
                    flow.uv[i + 1] += dv[1 + j];
                }
            }
        }
    }
}

/// Layout of one colour of the checkerboard `(x + y) % 2 == colour`: row `y`
/// holds `x = 2j + (y + colour) % 2` at index `1 + j`, between two zero cells,
/// and full-image arrays have a zero row above and below. Links that leave
/// the image get zero weight and read those zeros; when the width is odd,
/// a colour's last cell of some rows lies outside the image and stays zero.
#[derive(Debug)]
struct Checkerboard {
    width: usize,
    height: usize,
    /// Cells of one colour per row.
    half: usize,
    stride: usize,
}

impl Checkerboard {
    fn new(width: usize, height: usize) -> Checkerboard {
        let half = width.div_ceil(2);
        Checkerboard { width, height, half, stride: half + 2 }
    }

    /// Where the pixels of `colour` start in row `y`: `x = 2j + offset`.
    fn offset(y: usize, colour: usize) -> usize {
        (y + colour) % 2
    }

    /// `(x, j)` of the pixels of `colour` in row `y`.
    fn pixels(&self, y: usize, colour: usize) -> impl Iterator<Item = (usize, usize)> {
        let offset = Self::offset(y, colour);
        (0..self.half).map(move |j| (2 * j + offset, j)).filter(|&(x, _)| x < self.width)
    }

    /// The colour of pixel `(x, y)` and its index in a full-image array of that colour.
    fn cell(&self, x: usize, y: usize) -> (usize, usize) {
        ((x + y) % 2, (y + 1) * self.stride + 1 + x / 2)
    }

    /// A full-image array of each colour, all zeros.
    fn zeros(&self) -> [Vec<f32>; 2] {
        std::array::from_fn(|_| vec![0.0; (self.height + 2) * self.stride])
    }

    /// The `half` cells of row `y` (`-1` and `height` are the zero rows) of a full-image array.
    fn row<'c>(&self, cells: &'c [f32], y: isize) -> &'c [f32] {
        let start = (y + 1) as usize * self.stride;
        &cells[start..start + self.stride]
    }
}

/// Everything that stays fixed during the refinement, per colour.
struct Fixed {
    /// The flow being refined.
    u: [Vec<f32>; 2],
    v: [Vec<f32>; 2],
    /// 1 where the pixel has a right (lower) neighbour, else 0.
    has_right: [Vec<f32>; 2],
    has_down: [Vec<f32>; 2],
    /// The linearised, normalised constraints: brightness, then constancy of the
    /// horizontal and of the vertical derivative, each as `(a, b, c)` for the
    /// residual `a·du + b·dv + c`.
    constraints: [[[Vec<f32>; 2]; 3]; 3],
}

impl Fixed {
    fn new(board: &Checkerboard, i0: &Gray, i1: &Gray, flow: &Flow, threads: usize) -> Fixed {
        let (w, h) = (board.width, board.height);
        let mut warped = vec![0f32; w * h];
        parallel::for_each_row(threads, &mut warped, w, |y, row| {
            for (x, value) in row.iter_mut().enumerate() {
                let (u, v) = flow.at(x, y);
                *value = i1.sample(x as f32 + u, y as f32 + v);
            }
        });
        // Spatial derivatives of the mean of both frames, as Brox et al.: symmetric in time.
        let mean = Gray::new(w, h, i0.data.iter().zip(&warped).map(|(a, b)| 0.5 * (a + b)).collect());
        let temporal = Gray::new(w, h, warped.iter().zip(&i0.data).map(|(b, a)| b - a).collect());
        let (ix, iy) = mean.gradients();
        let (ixx, ixy) = ix.gradients();
        let (_, iyy) = iy.gradients();
        let (izx, izy) = temporal.gradients();
        let mut fixed = Fixed {
            u: board.zeros(),
            v: board.zeros(),
            has_right: board.zeros(),
            has_down: board.zeros(),
            constraints: std::array::from_fn(|_| std::array::from_fn(|_| board.zeros())),
        };
        for y in 0..h {
            for x in 0..w {
                let (colour, cell) = board.cell(x, y);
                let i = y * w + x;
                (fixed.u[colour][cell], fixed.v[colour][cell]) = (flow.uv[2 * i], flow.uv[2 * i + 1]);
                fixed.has_right[colour][cell] = (x + 1 < w) as u8 as f32;
                fixed.has_down[colour][cell] = (y + 1 < h) as u8 as f32;
                let terms = [
                    [ix.data[i], iy.data[i], temporal.data[i]],
                    [ixx.data[i], ixy.data[i], izx.data[i]],
                    [ixy.data[i], iyy.data[i], izy.data[i]],
                ];
                // A pixel whose match lies outside `i1` has no data: the smoothness term fills it in.
                let (tx, ty) = (x as f32 + flow.uv[2 * i], y as f32 + flow.uv[2 * i + 1]);
                let seen = (0.0..=(w - 1) as f32).contains(&tx) && (0.0..=(h - 1) as f32).contains(&ty);
                for (constraint, [a, b, c]) in fixed.constraints.iter_mut().zip(terms) {
                    let norm = if seen { (a * a + b * b + ZETA_SQUARED).sqrt().recip() } else { 0.0 };
                    for (term, value) in constraint.iter_mut().zip([a, b, c]) {
                        term[colour][cell] = value * norm;
                    }
                }
            }
        }
        fixed
    }
}

/// One thread's rows of the arrays that change: per colour, each row is the
/// row's `du` cells then its `dv` cells, and the weights of the links to the
/// right and lower neighbours likewise.
struct Band {
    rows: Range<usize>,
    increments: [RwLock<Vec<f32>>; 2],
    links: [RwLock<Vec<f32>>; 2],
}

impl Band {
    fn new(board: &Checkerboard, rows: Range<usize>) -> Band {
        let cells = || RwLock::new(vec![0f32; rows.len() * 2 * board.stride]);
        Band { increments: [cells(), cells()], links: [cells(), cells()], rows }
    }
}

/// A band's rows and a read guard on one of its arrays.
type BandView<'a> = (Range<usize>, RwLockReadGuard<'a, Vec<f32>>);

/// Read access to one colour of a banded array around a member's band.
struct Nearby<'a> {
    /// The bands above, of and below the member (where they exist).
    guards: [Option<BandView<'a>>; 3],
    zeros: &'a [f32],
    stride: usize,
}

impl Nearby<'_> {
    /// The two halves of row `y` (zeros outside the image).
    fn row(&self, y: isize) -> (&[f32], &[f32]) {
        let width = 2 * self.stride;
        let cells = usize::try_from(y)
            .ok()
            .and_then(|y| {
                let (rows, cells) = self.guards.iter().flatten().find(|(rows, _)| rows.contains(&y))?;
                Some(&cells[(y - rows.start) * width..][..width])
            })
            .unwrap_or(self.zeros);
        cells.split_at(self.stride)
    }
}

/// The linear system of one member's rows of one colour, diagonal inverted for SOR.
#[derive(Default)]
struct System {
    inv_a11: Vec<f32>,
    a12: Vec<f32>,
    inv_a22: Vec<f32>,
    b1: Vec<f32>,
    b2: Vec<f32>,
}

struct Solver<'a> {
    board: &'a Checkerboard,
    fixed: &'a Fixed,
    energy: &'a Energy,
    bands: &'a [Band],
    zeros: Vec<f32>,
}

impl Solver<'_> {
    fn run(&self, member: &Member) {
        let me = member.index;
        let rows = self.bands[me].rows.clone();
        let n = rows.len() * self.board.half;
        let mut systems: [System; 2] = std::array::from_fn(|_| System {
            inv_a11: vec![0.0; n],
            a12: vec![0.0; n],
            inv_a22: vec![0.0; n],
            b1: vec![0.0; n],
            b2: vec![0.0; n],
        });
        for _ in 0..self.energy.fixed_point_iterations {
            {
                let increments = [self.nearby(me, 0, true), self.nearby(me, 1, true)];
                for colour in 0..2 {
                    let mut links = self.bands[me].links[colour].write().expect("no member panicked");
                    for (y, row) in rows.clone().zip(links.chunks_exact_mut(2 * self.board.stride)) {
                        self.smoothness(y, colour, &increments, row);
                    }
                }
            }
            member.sync();
            {
                let links = [self.nearby(me, 0, false), self.nearby(me, 1, false)];
                for (colour, system) in systems.iter_mut().enumerate() {
                    let increments = self.nearby(me, colour, true);
                    for (k, y) in rows.clone().enumerate() {
                        self.assemble(y, colour, &increments, &links, system, k);
                    }
                }
            }
            for _ in 0..SOR_ITERATIONS {
                for (colour, system) in systems.iter().enumerate() {
                    {
                        let others = self.nearby(me, 1 - colour, true);
                        let links = [self.nearby(me, 0, false), self.nearby(me, 1, false)];
                        let mut own = self.bands[me].increments[colour].write().expect("no member panicked");
                        for (k, (y, row)) in rows.clone().zip(own.chunks_exact_mut(2 * self.board.stride)).enumerate() {
                            self.relax(y, colour, &others, &links, system, k, row);
                        }
                    }
                    member.sync();
                }
            }
        }
    }

    /// Read guards on `colour` of the increments (or link weights) of band `me` and its neighbours.
    fn nearby(&self, me: usize, colour: usize, increments: bool) -> Nearby<'_> {
        let guards = [me.checked_sub(1), Some(me), Some(me + 1)].map(|k| {
            let band = self.bands.get(k?)?;
            let lock = if increments { &band.increments[colour] } else { &band.links[colour] };
            Some((band.rows.clone(), lock.read().expect("no member panicked")))
        });
        Nearby { guards, zeros: &self.zeros, stride: self.board.stride }
    }

    /// `half` cells of row `y` of one colour of a fixed array, from storage index `from`
    /// (1: the row's own cells; 0 and 2: shifted one cell left or right).
    fn fixed_row<'a>(&self, cells: &'a [Vec<f32>; 2], colour: usize, y: isize, from: usize) -> &'a [f32] {
        &self.board.row(&cells[colour], y)[from..from + self.board.half]
    }

    /// `α/2 · Ψ'` of the smoothness term on the links from row `y` of `colour`
    /// to the right and lower neighbours, from forward differences of the refined flow.
    fn smoothness(&self, y: usize, colour: usize, increments: &[Nearby; 2], out: &mut [f32]) {
        let (n, stride) = (self.board.half, self.board.stride);
        let (other, offset) = (1 - colour, Checkerboard::offset(y, colour));
        let half_alpha = 0.5 * self.energy.alpha;
        let yi = y as isize;
        let f = self.fixed;
        let (u, v) = (self.fixed_row(&f.u, colour, yi, 1), self.fixed_row(&f.v, colour, yi, 1));
        let (du, dv) = increments[colour].row(yi);
        let (du, dv) = (&du[1..1 + n], &dv[1..1 + n]);
        let (ur, vr) = (self.fixed_row(&f.u, other, yi, 1 + offset), self.fixed_row(&f.v, other, yi, 1 + offset));
        let (dur, dvr) = increments[other].row(yi);
        let (dur, dvr) = (&dur[1 + offset..1 + offset + n], &dvr[1 + offset..1 + offset + n]);
        let (ud, vd) = (self.fixed_row(&f.u, other, yi + 1, 1), self.fixed_row(&f.v, other, yi + 1, 1));
        let (dud, dvd) = increments[other].row(yi + 1);
        let (dud, dvd) = (&dud[1..1 + n], &dvd[1..1 + n]);
        let (has_right, has_down) =
            (self.fixed_row(&f.has_right, colour, yi, 1), self.fixed_row(&f.has_down, colour, yi, 1));
        let (right, down) = out.split_at_mut(stride);
        smoothness_cells(
            &mut right[1..1 + n],
            &mut down[1..1 + n],
            [[u, du, ur, dur, ud, dud], [v, dv, vr, dvr, vd, dvd]],
            [has_right, has_down],
            half_alpha,
        );
    }

    /// Row `y` of the system for `colour`: data terms under their lagged robust
    /// weights, plus the smoothness links pulling towards the neighbours' base flow.
    fn assemble(
        &self,
        y: usize,
        colour: usize,
        increments: &Nearby,
        links: &[Nearby; 2],
        system: &mut System,
        k: usize,
    ) {
        let (n, other, offset) = (self.board.half, 1 - colour, Checkerboard::offset(y, colour));
        let yi = y as isize;
        let f = self.fixed;
        let (du, dv) = increments.row(yi);
        let (du, dv) = (&du[1..1 + n], &dv[1..1 + n]);
        let c = f.constraints.each_ref().map(|terms| terms.each_ref().map(|t| self.fixed_row(t, colour, yi, 1)));
        let (right, down) = links[colour].row(yi);
        let (right, down) = (&right[1..1 + n], &down[1..1 + n]);
        let (left, _) = links[other].row(yi);
        let left = &left[offset..offset + n];
        let (_, up) = links[other].row(yi - 1);
        let up = &up[1..1 + n];
        let base = [&f.u, &f.v].map(|b| {
            [
                self.fixed_row(b, colour, yi, 1),
                self.fixed_row(b, other, yi, 1 + offset),
                self.fixed_row(b, other, yi, offset),
                self.fixed_row(b, other, yi + 1, 1),
                self.fixed_row(b, other, yi - 1, 1),
            ]
        });
        let out = k * n..(k + 1) * n;
        let weights = Weights { half_delta: 0.5 * self.energy.delta, half_gamma: 0.5 * self.energy.gamma };
        assemble_cells(
            &mut system.inv_a11[out.clone()],
            &mut system.a12[out.clone()],
            &mut system.inv_a22[out.clone()],
            &mut system.b1[out.clone()],
            &mut system.b2[out],
            [du, dv],
            c,
            [right, left, down, up],
            base,
            weights,
        );
    }

    /// One SOR update of the cells of `colour` in row `y` (`k`-th of the band) from the other colour.
    #[allow(clippy::too_many_arguments)]
    fn relax(
        &self,
        y: usize,
        colour: usize,
        others: &Nearby,
        links: &[Nearby; 2],
        system: &System,
        k: usize,
        out: &mut [f32],
    ) {
        let (n, stride, other, offset) =
            (self.board.half, self.board.stride, 1 - colour, Checkerboard::offset(y, colour));
        let yi = y as isize;
        let (right, down) = links[colour].row(yi);
        let (right, down) = (&right[1..1 + n], &down[1..1 + n]);
        let (left, _) = links[other].row(yi);
        let left = &left[offset..offset + n];
        let (_, up) = links[other].row(yi - 1);
        let up = &up[1..1 + n];
        let (u_row, v_row) = others.row(yi);
        let (u_up, v_up) = others.row(yi - 1);
        let (u_down, v_down) = others.row(yi + 1);
        let (ur, ul, uu, ud) =
            (&u_row[1 + offset..1 + offset + n], &u_row[offset..offset + n], &u_up[1..1 + n], &u_down[1..1 + n]);
        let (vr, vl, vu, vd) =
            (&v_row[1 + offset..1 + offset + n], &v_row[offset..offset + n], &v_up[1..1 + n], &v_down[1..1 + n]);
        let s = k * n..(k + 1) * n;
        let (inv_a11, a12, inv_a22, b1, b2) = (
            &system.inv_a11[s.clone()],
            &system.a12[s.clone()],
            &system.inv_a22[s.clone()],
            &system.b1[s.clone()],
            &system.b2[s],
        );
        let (du, dv) = out.split_at_mut(stride);
        relax_cells(
            &mut du[1..1 + n],
            &mut dv[1..1 + n],
            [right, left, down, up],
            [[ur, ul, ud, uu], [vr, vl, vd, vu]],
            [inv_a11, a12, inv_a22, b1, b2],
        );
    }
}

// The loops over a row's cells live in functions of their own: with the
// outputs as `&mut` arguments the compiler knows they alias no input and
// vectorises the loops.

/// See [`Solver::smoothness`]; `flow` holds, for u then v: the base and
/// increment at the cells, at their right neighbours and at their lower ones.
fn smoothness_cells(
    right: &mut [f32],
    down: &mut [f32],
    flow: [[&[f32]; 6]; 2],
    [has_right, has_down]: [&[f32]; 2],
    half_alpha: f32,
) {
    let n = right.len();
    let [[u, du, ur, dur, ud, dud], [v, dv, vr, dvr, vd, dvd]] = flow.map(|c| c.map(|s| &s[..n]));
    let (has_right, has_down, down) = (&has_right[..n], &has_down[..n], &mut down[..n]);
    for j in 0..n {
        let (u0, v0) = (u[j] + du[j], v[j] + dv[j]);
        let (ux, vx) = (ur[j] + dur[j] - u0, vr[j] + dvr[j] - v0);
        let (uy, vy) = (ud[j] + dud[j] - u0, vd[j] + dvd[j] - v0);
        let squared = has_right[j] * (ux * ux + vx * vx) + has_down[j] * (uy * uy + vy * vy);
        let weight = half_alpha / (squared + EPSILON_SQUARED).sqrt();
        right[j] = weight * has_right[j];
        down[j] = weight * has_down[j];
    }
}

#[derive(Clone, Copy)]
struct Weights {
    half_delta: f32,
    half_gamma: f32,
}

/// See [`Solver::assemble`]; `links` are the weights to the right, left,
/// lower and upper neighbours, `base` the base flow (u, then v) at the cells
/// and at those neighbours.
#[allow(clippy::too_many_arguments)]
fn assemble_cells(
    inv_a11: &mut [f32],
    a12: &mut [f32],
    inv_a22: &mut [f32],
    b1: &mut [f32],
    b2: &mut [f32],
    [du, dv]: [&[f32]; 2],
    constraints: [[&[f32]; 3]; 3],
    links: [&[f32]; 4],
    base: [[&[f32]; 5]; 2],
    weights: Weights,
) {
    let n = inv_a11.len();
    let (a12, inv_a22, b1, b2) = (&mut a12[..n], &mut inv_a22[..n], &mut b1[..n], &mut b2[..n]);
    let (du, dv) = (&du[..n], &dv[..n]);
    let [[c0, c1, c2], [x0, x1, x2], [y0, y1, y2]] = constraints.map(|c| c.map(|s| &s[..n]));
    let [right, left, down, up] = links.map(|s| &s[..n]);
    let [[u, ur, ul, ud, uu], [v, vr, vl, vd, vu]] = base.map(|c| c.map(|s| &s[..n]));
    for j in 0..n {
        let r = c0[j] * du[j] + c1[j] * dv[j] + c2[j];
        let wb = weights.half_delta / (r * r + EPSILON_SQUARED).sqrt();
        let (rx, ry) = (x0[j] * du[j] + x1[j] * dv[j] + x2[j], y0[j] * du[j] + y1[j] * dv[j] + y2[j]);
        let wg = weights.half_gamma / (rx * rx + ry * ry + EPSILON_SQUARED).sqrt();
        let links = right[j] + left[j] + down[j] + up[j];
        let pull_u =
            right[j] * (ur[j] - u[j]) + left[j] * (ul[j] - u[j]) + down[j] * (ud[j] - u[j]) + up[j] * (uu[j] - u[j]);
        let pull_v =
            right[j] * (vr[j] - v[j]) + left[j] * (vl[j] - v[j]) + down[j] * (vd[j] - v[j]) + up[j] * (vu[j] - v[j]);
        // ζ² on the diagonal keeps a pixel without texture or neighbours solvable.
        let a11 = wb * c0[j] * c0[j] + wg * (x0[j] * x0[j] + y0[j] * y0[j]) + links + ZETA_SQUARED;
        let a22 = wb * c1[j] * c1[j] + wg * (x1[j] * x1[j] + y1[j] * y1[j]) + links + ZETA_SQUARED;
        inv_a11[j] = 1.0 / a11;
        inv_a22[j] = 1.0 / a22;
        a12[j] = wb * c0[j] * c1[j] + wg * (x0[j] * x1[j] + y0[j] * y1[j]);
        b1[j] = pull_u - wb * c0[j] * c2[j] - wg * (x0[j] * x2[j] + y0[j] * y2[j]);
        b2[j] = pull_v - wb * c1[j] * c2[j] - wg * (x1[j] * x2[j] + y1[j] * y2[j]);
    }
}

/// See [`Solver::relax`]; `links` as in [`assemble_cells`], `others` the
/// other colour's increments (u, then v) at the same neighbours.
fn relax_cells(du: &mut [f32], dv: &mut [f32], links: [&[f32]; 4], others: [[&[f32]; 4]; 2], system: [&[f32]; 5]) {
    let n = du.len();
    let dv = &mut dv[..n];
    let [right, left, down, up] = links.map(|s| &s[..n]);
    let [[ur, ul, ud, uu], [vr, vl, vd, vu]] = others.map(|c| c.map(|s| &s[..n]));
    let [inv_a11, a12, inv_a22, b1, b2] = system.map(|s| &s[..n]);
    for j in 0..n {
        let sum_u = right[j] * ur[j] + left[j] * ul[j] + down[j] * ud[j] + up[j] * uu[j];
        let sum_v = right[j] * vr[j] + left[j] * vl[j] + down[j] * vd[j] + up[j] * vu[j];
        let u = du[j] + OMEGA * ((b1[j] + sum_u - a12[j] * dv[j]) * inv_a11[j] - du[j]);
        dv[j] += OMEGA * ((b2[j] + sum_v - a12[j] * u) * inv_a22[j] - dv[j]);
        du[j] = u;
    }
}
