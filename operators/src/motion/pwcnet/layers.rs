//! The building blocks of PWC-Net (Sun et al. 2018, Sec. 3): convolutions
//! with leaky ReLU, backward warping, the cost volume.

use tch::{Kind, Tensor, nn};

/// Slope of the leaky ReLU after every convolution but the flow predictors.
const LEAKY_SLOPE: f64 = 0.1;

pub(super) fn leaky_relu(xs: &Tensor) -> Tensor {
    // max(x, 0.1·x) is the leaky ReLU for slopes below 1; tch's own has a fixed 0.01.
    xs.maximum(&(xs * LEAKY_SLOPE))
}

/// A 3x3 convolution (the only kernel size PWC-Net uses besides its 4x4
/// transposed ones), "same" padding for the given dilation.
pub(super) fn conv3x3(vs: nn::Path, c_in: i64, c_out: i64, stride: i64, dilation: i64) -> nn::Conv2D {
    let config = nn::ConvConfig { stride, padding: dilation, dilation, ..Default::default() };
    nn::conv2d(vs, c_in, c_out, 3, config)
}

/// The 4x4 stride-2 transposed convolution that doubles a map's resolution.
pub(super) fn upconv(vs: nn::Path, c_in: i64, c_out: i64) -> nn::ConvTranspose2D {
    let config = nn::ConvTransposeConfig { stride: 2, padding: 1, ..Default::default() };
    nn::conv_transpose2d(vs, c_in, c_out, 4, config)
}

/// Warping layer (Sec. 3, "Warping layer"): samples `features` \[B, C, H, W\] at
/// x + flow(x), bilinearly, with flow \[B, 2, H, W\] in pixels of this level.
///
/// Locations whose bilinear footprint leaves the map come out zero, not
/// partly blended with the zero padding: like the public implementations, a
/// warped map of ones marks them (below 0.999).
pub fn backward_warp(features: &Tensor, flow: &Tensor) -> Tensor {
    let (b, _, h, w) = features.size4().expect("features are [B,C,H,W]");
    let options = (flow.kind(), flow.device());
    let xs = Tensor::arange(w, options).view([1, 1, w]).expand([b, h, w], false);
    let ys = Tensor::arange(h, options).view([1, h, 1]).expand([b, h, w], false);
    // grid_sampler wants coordinates in [-1, 1], corners at pixel centres.
    let to_unit = |coords: Tensor, size: i64| coords * (2.0 / (size - 1).max(1) as f64) - 1.0;
    let grid = Tensor::stack(&[to_unit(xs + flow.select(1, 0), w), to_unit(ys + flow.select(1, 1), h)], 3);
    const BILINEAR: i64 = 0;
    const ZEROS: i64 = 0;
    let warped = features.grid_sampler(&grid, BILINEAR, ZEROS, true);
    let ones = Tensor::ones([b, 1, h, w], (features.kind(), features.device()));
    let inside = ones.grid_sampler(&grid, BILINEAR, ZEROS, true).ge(0.999).to_kind(features.kind());
    warped * inside
}

/// Cost volume (Sec. 3, Eq. 1): the correlation of `first`'s feature at x
/// with `second`'s at x + d, for every displacement d in [-range, range]²,
/// averaged over channels: \[B, C, H, W\] twice → \[B, (2·range+1)², H, W\], channel
/// `(dy + range)·(2·range + 1) + (dx + range)`. Outside `second`, zero.
pub fn cost_volume(first: &Tensor, second: &Tensor, range: i64) -> Tensor {
    let (_, c, h, w) = first.size4().expect("features are [B,C,H,W]");
    let padded = second.constant_pad_nd([range, range, range, range]);
    let side = 2 * range + 1;
    let costs: Vec<Tensor> = (0..side * side)
        .map(|d| {
            let shifted = padded.narrow(2, d / side, h).narrow(3, d % side, w);
            (first * shifted).sum_dim_intlist(1, true, Kind::Float).to_kind(first.kind())
        })
        .collect();
    Tensor::cat(&costs, 1) / c as f64
}
