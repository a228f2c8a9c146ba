//! Dense optical flow fields, their Middlebury `.flo` files, and the usual
//! colour coding (Baker et al. 2011).

use std::io::{Read, Write};

/// A flow field: per pixel, the displacement `(u, v)` in pixels from the first
/// frame to the second, `u` to the right, `v` downwards. Row-major, interleaved.
#[derive(Clone, Debug, PartialEq)]
pub struct Flow {
    pub width: usize,
    pub height: usize,
    pub uv: Vec<f32>,
}

/// Why a `.flo` file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum FloError {
    #[error("not a Middlebury .flo file (tag {0} instead of 202021.25)")]
    Tag(f32),
    #[error("implausible .flo size {0}x{1}")]
    Size(i32, i32),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The `.flo` magic number, "PIEH" read as a little-endian f32.
const FLO_TAG: f32 = 202021.25;

impl Flow {
    pub fn zeros(width: usize, height: usize) -> Flow {
        Flow { width, height, uv: vec![0.0; 2 * width * height] }
    }

    /// `(u, v)` at column `x`, row `y`.
    pub fn at(&self, x: usize, y: usize) -> (f32, f32) {
        let i = 2 * (y * self.width + x);
        (self.uv[i], self.uv[i + 1])
    }

    pub fn vectors(&self) -> impl Iterator<Item = (f32, f32)> + '_ {
        self.uv.chunks_exact(2).map(|c| (c[0], c[1]))
    }

    /// Writes the Middlebury format: tag, width, height (little-endian), then `u, v` per pixel.
    pub fn write_flo(&self, mut w: impl Write) -> std::io::Result<()> {
        w.write_all(&FLO_TAG.to_le_bytes())?;
        w.write_all(&(self.width as i32).to_le_bytes())?;
        w.write_all(&(self.height as i32).to_le_bytes())?;
        let bytes: Vec<u8> = self.uv.iter().flat_map(|x| x.to_le_bytes()).collect();
        w.write_all(&bytes)
    }

    pub fn read_flo(mut r: impl Read) -> Result<Flow, FloError> {
        let mut header = [0u8; 12];
        r.read_exact(&mut header)?;
        let tag = f32::from_le_bytes(header[0..4].try_into().unwrap());
        if tag != FLO_TAG {
            return Err(FloError::Tag(tag));
        }
        let width = i32::from_le_bytes(header[4..8].try_into().unwrap());
        let height = i32::from_le_bytes(header[8..12].try_into().unwrap());
        if !(1..=1 << 16).contains(&width) || !(1..=1 << 16).contains(&height) {
            return Err(FloError::Size(width, height));
        }
        let mut bytes = vec![0u8; 8 * width as usize * height as usize];
        r.read_exact(&mut bytes)?;
        let uv = bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        Ok(Flow { width: width as usize, height: height as usize, uv })
    }

    /// Colour-coded RGB: hue is the direction, saturation the magnitude
    /// relative to the largest (or `max_magnitude`), as in the Middlebury benchmark.
    pub fn to_rgb(&self, max_magnitude: Option<f32>) -> Vec<u8> {
        let largest = self.vectors().map(|(u, v)| u.hypot(v)).filter(|m| m.is_finite()).fold(0f32, f32::max);
        let scale = max_magnitude.unwrap_or(largest).max(f32::EPSILON);
        let wheel = color_wheel();
        self.vectors()
            .flat_map(|(u, v)| {
                if !(u.is_finite() && v.is_finite()) {
                    return [0, 0, 0];
                }
                let (u, v) = (u / scale, v / scale);
                let radius = u.hypot(v);
                let angle = (-v).atan2(-u) / std::f32::consts::PI; // in [-1, 1]
                let position = (angle + 1.0) / 2.0 * (wheel.len() - 1) as f32;
                let (k0, frac) = (position.floor() as usize, position.fract());
                let k1 = (k0 + 1) % wheel.len();
                std::array::from_fn(|c| {
                    let col = ((1.0 - frac) * wheel[k0][c] + frac * wheel[k1][c]) / 255.0;
                    let col = if radius <= 1.0 { 1.0 - radius * (1.0 - col) } else { col * 0.75 };
                    (255.0 * col).round() as u8
                })
            })
            .collect()
    }
}

/// The 55-colour wheel of the Middlebury flow colour code.
fn color_wheel() -> Vec<[f32; 3]> {
    let segments = [
        (15, [255.0, 0.0, 0.0], 1, true),
        (6, [255.0, 255.0, 0.0], 0, false),
        (4, [0.0, 255.0, 0.0], 2, true),
        (11, [0.0, 255.0, 255.0], 1, false),
        (13, [0.0, 0.0, 255.0], 0, true),
        (6, [255.0, 0.0, 255.0], 2, false),
    ];
    let mut wheel = Vec::new();
    for (n, start, channel, rising) in segments {
        for i in 0..n {
            let mut c: [f32; 3] = start;
            let t = (255.0 * i as f32 / n as f32).floor();
            c[channel] = if rising { t } else { 255.0 - t };
            wheel.push(c);
        }
    }
    wheel
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flo_roundtrip_and_bad_tags() {
        let flow = Flow { width: 3, height: 2, uv: (0..12).map(|i| i as f32 * 0.5 - 2.0).collect() };
        let mut bytes = Vec::new();
        flow.write_flo(&mut bytes).unwrap();
        assert_eq!(bytes.len(), 12 + 4 * 12);
        assert_eq!(&bytes[..4], b"PIEH");
        assert_eq!(Flow::read_flo(bytes.as_slice()).unwrap(), flow);
        assert!(matches!(Flow::read_flo(&b"XXXXXXXXXXXX"[..]), Err(FloError::Tag(_))));
        assert!(matches!(Flow::read_flo(&bytes[..20]), Err(FloError::Io(_))));
    }

    #[test]
    fn colour_code_is_white_at_rest_and_hue_by_direction() {
        let flow = Flow { width: 3, height: 1, uv: vec![0.0, 0.0, 1.0, 0.0, -1.0, 0.0] };
        let rgb = flow.to_rgb(None);
        assert_eq!(&rgb[..3], &[255, 255, 255]);
        assert_ne!(&rgb[3..6], &rgb[6..9]);
        assert_eq!(color_wheel().len(), 55);
    }
}
