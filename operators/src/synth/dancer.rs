//! The dancer: a jointed stick figure with textured limbs on a textured,
//! static background (texture everywhere so optical flow has something to track).

use super::{SplitMix64, Style};

/// Joint angles of the figure, radians from straight down (positive turns
/// toward +x), plus the pelvis offset and lean. Units of length are the
/// figure's height.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pose {
    pub root_dx: f64,
    pub root_dy: f64,
    pub lean: f64,
    pub left_upper_arm: f64,
    pub left_forearm: f64,
    pub right_upper_arm: f64,
    pub right_forearm: f64,
    pub left_thigh: f64,
    pub left_shin: f64,
    pub right_thigh: f64,
    pub right_shin: f64,
}

impl Pose {
    fn to_array(self) -> [f64; 11] {
        [
            self.root_dx,
            self.root_dy,
            self.lean,
            self.left_upper_arm,
            self.left_forearm,
            self.right_upper_arm,
            self.right_forearm,
            self.left_thigh,
            self.left_shin,
            self.right_thigh,
            self.right_shin,
        ]
    }

    fn from_array(a: [f64; 11]) -> Pose {
        Pose {
            root_dx: a[0],
            root_dy: a[1],
            lean: a[2],
            left_upper_arm: a[3],
            left_forearm: a[4],
            right_upper_arm: a[5],
            right_forearm: a[6],
            left_thigh: a[7],
            left_shin: a[8],
            right_thigh: a[9],
            right_shin: a[10],
        }
    }

    /// A key pose drawn from the style's range of motion.
    pub(super) fn random(style: Style, rng: &mut SplitMix64) -> Pose {
        let amp = match style {
            Style::Ballet => 1.0,
            Style::Breaking => 1.25,
            _ => 0.85,
        };
        let left_upper_arm = -amp * rng.range(0.3, 2.8);
        let right_upper_arm = amp * rng.range(0.3, 2.8);
        let left_thigh = -amp * rng.range(0.0, 0.6);
        let right_thigh = amp * rng.range(0.0, 0.6);
        Pose {
            root_dx: amp * rng.range(-0.12, 0.12),
            root_dy: amp * rng.range(0.0, 0.08),
            lean: amp * rng.range(-0.25, 0.25),
            left_upper_arm,
            left_forearm: left_upper_arm - amp * rng.range(-0.3, 1.2),
            right_upper_arm,
            right_forearm: right_upper_arm + amp * rng.range(-0.3, 1.2),
            left_thigh,
            left_shin: left_thigh + amp * rng.range(-0.1, 0.6),
            right_thigh,
            right_shin: right_thigh - amp * rng.range(-0.1, 0.6),
        }
    }

    /// `self + (other - self) * w`.
    pub fn lerp(&self, other: &Pose, w: f64) -> Pose {
        let (a, b) = (self.to_array(), other.to_array());
        Pose::from_array(std::array::from_fn(|i| a[i] + (b[i] - a[i]) * w))
    }

    /// Euclidean distance between the two parameter vectors.
    pub fn distance(&self, other: &Pose) -> f64 {
        let (a, b) = (self.to_array(), other.to_array());
        a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt()
    }
}

const TORSO: f64 = 0.30;
const NECK: f64 = 0.05;
const HEAD_RADIUS: f64 = 0.07;
const UPPER_ARM: f64 = 0.15;
const FOREARM: f64 = 0.14;
const THIGH: f64 = 0.21;
const SHIN: f64 = 0.21;
const HIP_HALF_WIDTH: f64 = 0.04;
const LIMB_RADIUS: f64 = 0.028;

/// Where the figure stands in the frame and how large it is.
#[derive(Clone, Copy, Debug)]
pub struct Skeleton {
    /// Pixels per unit of figure height.
    scale: f64,
    pelvis_x: f64,
    pelvis_y: f64,
}

impl Skeleton {
    pub fn for_frame(width: u32, height: u32) -> Skeleton {
        let scale = 0.78 * height.min(width * 4 / 3) as f64;
        let top = 0.08 * height as f64;
        Skeleton { scale, pelvis_x: width as f64 / 2.0, pelvis_y: top + (2.0 * HEAD_RADIUS + NECK + TORSO) * scale }
    }

    /// Paints the figure in `pose` over `rgb` (packed RGB, `width * height`).
    pub fn draw(&self, pose: &Pose, style: Style, width: u32, height: u32, rgb: &mut [u8]) {
        let s = self.scale;
        let limb = |from: (f64, f64), angle: f64, length: f64| {
            (from.0 + angle.sin() * length * s, from.1 + angle.cos() * length * s)
        };
        let pelvis = (self.pelvis_x + pose.root_dx * s, self.pelvis_y + pose.root_dy * s);
        let neck = (pelvis.0 + pose.lean.sin() * TORSO * s, pelvis.1 - pose.lean.cos() * TORSO * s);
        let head =
            (neck.0 + pose.lean.sin() * (NECK + HEAD_RADIUS) * s, neck.1 - pose.lean.cos() * (NECK + HEAD_RADIUS) * s);
        let left_hip = (pelvis.0 - HIP_HALF_WIDTH * s, pelvis.1);
        let right_hip = (pelvis.0 + HIP_HALF_WIDTH * s, pelvis.1);
        let left_elbow = limb(neck, pose.left_upper_arm, UPPER_ARM);
        let right_elbow = limb(neck, pose.right_upper_arm, UPPER_ARM);
        let left_knee = limb(left_hip, pose.left_thigh, THIGH);
        let right_knee = limb(right_hip, pose.right_thigh, THIGH);
        let [shirt, trousers, skin] = palette(style);
        let mut canvas = Canvas { rgb, width: width as usize, height: height as usize };
        let r = LIMB_RADIUS * s;
        canvas.capsule(left_hip, left_knee, r * 1.2, trousers);
        canvas.capsule(left_knee, limb(left_knee, pose.left_shin, SHIN), r, trousers);
        canvas.capsule(right_hip, right_knee, r * 1.2, trousers);
        canvas.capsule(right_knee, limb(right_knee, pose.right_shin, SHIN), r, trousers);
        canvas.capsule(pelvis, neck, r * 2.2, shirt);
        canvas.capsule(neck, left_elbow, r, shirt);
        canvas.capsule(left_elbow, limb(left_elbow, pose.left_forearm, FOREARM), r * 0.9, skin);
        canvas.capsule(neck, right_elbow, r, shirt);
        canvas.capsule(right_elbow, limb(right_elbow, pose.right_forearm, FOREARM), r * 0.9, skin);
        canvas.capsule(head, head, HEAD_RADIUS * s, skin);
    }
}

/// Shirt, trousers and skin colours of a style.
fn palette(style: Style) -> [[f32; 3]; 3] {
    let skin = [224.0, 172.0, 140.0];
    match style {
        Style::Hiphop => [[220.0, 40.0, 40.0], [40.0, 60.0, 160.0], skin],
        Style::House => [[250.0, 210.0, 30.0], [30.0, 30.0, 30.0], skin],
        Style::Waltz => [[30.0, 30.0, 60.0], [30.0, 30.0, 60.0], skin],
        Style::Ballet => [[250.0, 170.0, 200.0], [245.0, 235.0, 240.0], skin],
        Style::Breaking => [[40.0, 200.0, 90.0], [90.0, 90.0, 90.0], skin],
    }
}

struct Canvas<'a> {
    rgb: &'a mut [u8],
    width: usize,
    height: usize,
}

impl Canvas<'_> {
    /// An anti-aliased capsule from `a` to `b`, striped across its axis so
    /// that its texture moves with it.
    fn capsule(&mut self, a: (f64, f64), b: (f64, f64), radius: f64, color: [f32; 3]) {
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let len2 = dx * dx + dy * dy;
        let x0 = (a.0.min(b.0) - radius - 1.0).floor().max(0.0) as usize;
        let y0 = (a.1.min(b.1) - radius - 1.0).floor().max(0.0) as usize;
        let x1 = ((a.0.max(b.0) + radius + 2.0).ceil().max(0.0) as usize).min(self.width);
        let y1 = ((a.1.max(b.1) + radius + 2.0).ceil().max(0.0) as usize).min(self.height);
        let stripe_period = (radius * 1.5).max(2.0);
        for y in y0..y1 {
            for x in x0..x1 {
                let (px, py) = (x as f64 + 0.5 - a.0, y as f64 + 0.5 - a.1);
                let u = if len2 > 0.0 { ((px * dx + py * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
                let (ex, ey) = (px - u * dx, py - u * dy);
                let coverage = (radius + 0.5 - (ex * ex + ey * ey).sqrt()).clamp(0.0, 1.0) as f32;
                if coverage == 0.0 {
                    continue;
                }
                // Stripes along the axis, plus shading across it.
                let along = u * len2.sqrt() + if len2 == 0.0 { px } else { 0.0 };
                let stripe = if (along / stripe_period).floor() as i64 % 2 == 0 { 1.0 } else { 0.72 };
                let across = ((ex * ex + ey * ey).sqrt() / radius).min(1.0) as f32;
                let shade = stripe * (1.0 - 0.35 * across * across);
                let i = 3 * (y * self.width + x);
                for (channel, target) in self.rgb[i..i + 3].iter_mut().zip(color) {
                    let old = *channel as f32;
                    *channel = (old + (target * shade - old) * coverage).round().clamp(0.0, 255.0) as u8;
                }
            }
        }
    }
}

/// A static backdrop: smooth colour blobs (value noise) over fine grain, and
/// a darker floor.
pub(super) fn render_background(width: u32, height: u32, rng: &mut SplitMix64) -> Vec<u8> {
    let (w, h) = (width as usize, height as usize);
    const CELLS: usize = 6;
    let lattice: Vec<[f64; 3]> = (0..(CELLS + 1) * (CELLS + 1))
        .map(|_| [rng.range(90.0, 200.0), rng.range(90.0, 200.0), rng.range(90.0, 200.0)])
        .collect();
    let mut rgb = vec![0u8; w * h * 3];
    let floor = 0.8 * h as f64;
    for y in 0..h {
        for x in 0..w {
            let (gx, gy) = (x as f64 / w as f64 * CELLS as f64, y as f64 / h as f64 * CELLS as f64);
            let (ix, iy) = ((gx as usize).min(CELLS - 1), (gy as usize).min(CELLS - 1));
            let (fx, fy) = (smooth(gx - ix as f64), smooth(gy - iy as f64));
            let grain = rng.range(-12.0, 12.0);
            let shade = if (y as f64) > floor { 0.6 } else { 1.0 };
            for c in 0..3 {
                let at = |i: usize, j: usize| lattice[j * (CELLS + 1) + i][c];
                let top = at(ix, iy) + (at(ix + 1, iy) - at(ix, iy)) * fx;
                let bottom = at(ix, iy + 1) + (at(ix + 1, iy + 1) - at(ix, iy + 1)) * fx;
                let v = (top + (bottom - top) * fy) * shade + grain;
                rgb[3 * (y * w + x) + c] = v.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    rgb
}

fn smooth(t: f64) -> f64 {
    t * t * (3.0 - 2.0 * t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lerp_ends_and_distance() {
        let mut rng = SplitMix64::new(2);
        let (a, b) = (Pose::random(Style::House, &mut rng), Pose::random(Style::House, &mut rng));
        assert!(a.lerp(&b, 0.0).distance(&a) < 1e-12);
        assert!(a.lerp(&b, 1.0).distance(&b) < 1e-12);
        assert!((a.lerp(&b, 0.5).distance(&a) - 0.5 * a.distance(&b)).abs() < 1e-12);
    }

    #[test]
    fn figure_is_drawn_inside_the_frame_with_its_colours() {
        let (w, h) = (96u32, 128u32);
        let mut rgb = vec![0u8; (w * h * 3) as usize];
        // Arms out sideways, so nothing covers the chest.
        let rest = Pose {
            left_upper_arm: -1.5,
            left_forearm: -1.5,
            right_upper_arm: 1.5,
            right_forearm: 1.5,
            ..Pose::from_array([0.0; 11])
        };
        Skeleton::for_frame(w, h).draw(&rest, Style::Hiphop, w, h, &mut rgb);
        // The head sits on the centre column, near the top; the torso shirt is red.
        let px = |x: u32, y: u32| &rgb[(3 * (y * w + x)) as usize..(3 * (y * w + x) + 3) as usize];
        let sk = Skeleton::for_frame(w, h);
        let head_y = (sk.pelvis_y - (TORSO + NECK + HEAD_RADIUS) * sk.scale) as u32;
        assert!(px(w / 2, head_y)[0] > 150, "head at {head_y}: {:?}", px(w / 2, head_y));
        let chest = px(w / 2, (sk.pelvis_y - 0.5 * TORSO * sk.scale) as u32);
        assert!(chest[0] > 120 && chest[1] < 60 && chest[2] < 60, "{chest:?}");
        assert_eq!(px(1, 1), [0, 0, 0]);
    }
}
