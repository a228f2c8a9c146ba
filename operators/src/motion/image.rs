//! Grey-level images for flow estimation: conversion, pyramids, bilinear
//! sampling and gradients.

/// A single-channel f32 image, row-major, values in [0, 255].
#[derive(Clone, Debug, PartialEq)]
pub struct Gray {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

impl Gray {
    pub fn new(width: usize, height: usize, data: Vec<f32>) -> Gray {
        assert_eq!(data.len(), width * height, "{width}x{height} image needs {} values", width * height);
        Gray { width, height, data }
    }

    /// Luma of packed RGB (BT.601 weights, as OpenCV's `COLOR_RGB2GRAY`).
    pub fn from_rgb(rgb: &[u8], width: usize, height: usize) -> Gray {
        assert_eq!(rgb.len(), 3 * width * height, "{width}x{height} RGB needs {} bytes", 3 * width * height);
        let mut data = vec![0f32; width * height];
        // A loop over fixed-size pixels, which the compiler vectorises.
        for (g, p) in data.iter_mut().zip(rgb.as_chunks::<3>().0) {
            *g = 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32;
        }
        Gray::new(width, height, data)
    }

    pub fn at(&self, x: usize, y: usize) -> f32 {
        self.data[y * self.width + x]
    }

    /// Bilinear sample at `(x, y)`, clamped to the border.
    pub fn sample(&self, x: f32, y: f32) -> f32 {
        let x = x.clamp(0.0, (self.width - 1) as f32);
        let y = y.clamp(0.0, (self.height - 1) as f32);
        // Non-negative after the clamp, so truncation is the floor (and much cheaper than `floor`).
        let (x0, y0) = (x as usize, y as usize);
        let (x1, y1) = ((x0 + 1).min(self.width - 1), (y0 + 1).min(self.height - 1));
        let (fx, fy) = (x - x0 as f32, y - y0 as f32);
        let top = self.at(x0, y0) + (self.at(x1, y0) - self.at(x0, y0)) * fx;
        let bottom = self.at(x0, y1) + (self.at(x1, y1) - self.at(x0, y1)) * fx;
        top + (bottom - top) * fy
    }

    /// Half size, each pixel the mean of a 2×2 block (odd edges repeat the last row/column).
    pub fn downsample(&self) -> Gray {
        let (w, h) = (self.width.div_ceil(2), self.height.div_ceil(2));
        let mut data = Vec::with_capacity(w * h);
        for y in 0..h {
            for x in 0..w {
                let (x0, y0) = (2 * x, 2 * y);
                let (x1, y1) = ((x0 + 1).min(self.width - 1), (y0 + 1).min(self.height - 1));
                data.push(0.25 * (self.at(x0, y0) + self.at(x1, y0) + self.at(x0, y1) + self.at(x1, y1)));
            }
        }
        Gray::new(w, h, data)
    }

    /// Horizontal and vertical derivatives by central differences (one-sided at the border).
    pub fn gradients(&self) -> (Gray, Gray) {
        let (w, h) = (self.width, self.height);
        let mut gx = vec![0f32; w * h];
        let mut gy = vec![0f32; w * h];
        let difference = |next: f32, previous: f32, span: usize| (next - previous) / span.max(1) as f32;
        for y in 0..h {
            let row = &self.data[y * w..(y + 1) * w];
            let out = &mut gx[y * w..(y + 1) * w];
            for x in 1..w.saturating_sub(1) {
                out[x] = 0.5 * (row[x + 1] - row[x - 1]);
            }
            out[0] = difference(row[1.min(w - 1)], row[0], 1.min(w - 1));
            out[w - 1] = difference(row[w - 1], row[w.saturating_sub(2)], 1.min(w - 1));
            let (up, down) = (y.saturating_sub(1), (y + 1).min(h - 1));
            // Spans are 1 or 2, whose reciprocals are exact.
            let scale = 1.0 / (down - up).max(1) as f32;
            let (above, below) = (&self.data[up * w..(up + 1) * w], &self.data[down * w..(down + 1) * w]);
            for ((g, b), a) in gy[y * w..(y + 1) * w].iter_mut().zip(below).zip(above) {
                *g = (b - a) * scale;
            }
        }
        (Gray::new(w, h, gx), Gray::new(w, h, gy))
    }

    /// Derivatives by the 3×3 Sobel operator scaled to unit gradient (central
    /// differences smoothed by `[1 2 1] / 4` across them, replicated border).
    pub fn sobel_gradients(&self) -> (Gray, Gray) {
        let (w, h) = (self.width, self.height);
        let (dx, dy) = self.gradients();
        let mut gx = vec![0f32; w * h];
        for y in 0..h {
            let (up, down) = (y.saturating_sub(1), (y + 1).min(h - 1));
            let rows = [up, y, down].map(|r| &dx.data[r * w..(r + 1) * w]);
            for (x, g) in gx[y * w..(y + 1) * w].iter_mut().enumerate() {
                *g = 0.25 * (rows[0][x] + 2.0 * rows[1][x] + rows[2][x]);
            }
        }
        let mut gy = vec![0f32; w * h];
        for (row, out) in dy.data.chunks_exact(w).zip(gy.chunks_exact_mut(w)) {
            for (x, g) in out.iter_mut().enumerate() {
                let (left, right) = (row[x.saturating_sub(1)], row[(x + 1).min(w - 1)]);
                *g = 0.25 * (left + 2.0 * row[x] + right);
            }
        }
        (Gray::new(w, h, gx), Gray::new(w, h, gy))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_sampling_and_gradients_of_a_ramp() {
        // f(x, y) = 2x + 3y.
        let img = Gray::new(5, 4, (0..4).flat_map(|y| (0..5).map(move |x| (2 * x + 3 * y) as f32)).collect());
        assert_eq!(img.sample(1.5, 2.25), 2.0 * 1.5 + 3.0 * 2.25);
        assert_eq!(img.sample(-3.0, 0.0), 0.0);
        let (gx, gy) = img.gradients();
        assert!(gx.data.iter().all(|&g| g == 2.0) && gy.data.iter().all(|&g| g == 3.0));
        let (sx, sy) = img.sobel_gradients();
        assert!(sx.data.iter().all(|&g| g == 2.0) && sy.data.iter().all(|&g| g == 3.0));
        let half = img.downsample();
        assert_eq!((half.width, half.height), (3, 2));
        assert_eq!(half.at(0, 0), (0.0 + 2.0 + 3.0 + 5.0) / 4.0);
    }

    #[test]
    fn luma_weights() {
        let g = Gray::from_rgb(&[255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255], 4, 1);
        assert!((g.data[0] - 76.245).abs() < 1e-3 && (g.data[3] - 255.0).abs() < 1e-3);
    }
}
