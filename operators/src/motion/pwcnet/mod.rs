//! PWC-Net optical flow (Sun et al., "PWC-Net: CNNs for Optical Flow Using
//! Pyramid, Warping, and Cost Volume", CVPR 2018), the PWC-DC variant with
//! dense connections and the dilated context network, in tch.
//!
//! Layer shapes are those of the public checkpoints (NVlabs' PyTorch port and
//! sniklaus/pytorch-pwc): `scripts/convert_pwcnet.py` turns either into the
//! safetensors file [`PwcNet::load`] reads. Names under the network's path:
//!
//! - `pyramid.level{1..6}.conv{0,1,2}`: the feature pyramid ([`FeaturePyramid`]);
//! - `decoder{2..6}.dense{0..4}`, `.predict_flow`, and for levels 3 to 6
//!   `.upsample_flow`, `.upsample_features`: the flow estimators;
//! - `context.conv{1..7}`: the context network.
//!
//! Every convolution has a `weight` and a `bias`.

mod layers;
mod pyramid;

use std::path::Path;

use tch::{Device, Kind, Tensor, nn};

pub use layers::{backward_warp, cost_volume};
pub use pyramid::{FeaturePyramid, PYRAMID_CHANNELS};

use super::flow::Flow;
use crate::weights::{self, WeightsError};
use layers::{conv3x3, leaky_relu, upconv};

/// Search range of the cost volume, in pixels of each level ("d = 4").
pub const SEARCH_RANGE: i64 = 4;
/// The networks predict flow divided by 20, the scaling of their training targets.
const FLOW_SCALE: f64 = 20.0;
/// Inputs are resized to multiples of this (2^6, the coarsest level).
const SIZE_MULTIPLE: i64 = 64;
/// Output channels of each estimator's densely connected convolutions.
const DENSE_CHANNELS: [i64; 5] = [128, 128, 96, 64, 32];
/// Context network: (output channels, dilation) of its convolutions before the flow.
const CONTEXT_LAYERS: [(i64, i64); 6] = [(128, 1), (128, 2), (128, 4), (96, 8), (64, 16), (32, 1)];

/// The optical flow estimator at one pyramid level (Sec. 3, "Optical flow
/// estimator"): five densely connected convolutions, each one's output
/// stacked in front of its input, then a 3x3 flow predictor; levels above 2
/// also upsample their flow and features for the next finer level.
#[derive(Debug)]
struct FlowEstimator {
    dense: Vec<nn::Conv2D>,
    predict_flow: nn::Conv2D,
    upsample: Option<(nn::ConvTranspose2D, nn::ConvTranspose2D)>,
}

/// Channels of the estimator input at `level`: the cost volume, then below
/// the top level the first image's features, the upsampled flow and the two
/// upsampled feature channels.
fn estimator_input_channels(level: usize) -> i64 {
    let cost = (2 * SEARCH_RANGE + 1).pow(2);
    if level == 6 { cost } else { cost + PYRAMID_CHANNELS[level - 1] + 2 + 2 }
}

/// Channels out of an estimator's dense block (its input and all five outputs).
fn dense_output_channels(level: usize) -> i64 {
    estimator_input_channels(level) + DENSE_CHANNELS.iter().sum::<i64>()
}

impl FlowEstimator {
    fn new(vs: &nn::Path, level: usize) -> FlowEstimator {
        let mut channels = estimator_input_channels(level);
        let dense = DENSE_CHANNELS
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let conv = conv3x3(vs / format!("dense{i}"), channels, c, 1, 1);
                channels += c;
                conv
            })
            .collect();
        let upsample =
            (level > 2).then(|| (upconv(vs / "upsample_flow", 2, 2), upconv(vs / "upsample_features", channels, 2)));
        FlowEstimator { dense, predict_flow: conv3x3(vs / "predict_flow", channels, 2, 1, 1), upsample }
    }

    /// (dense features, flow) from the estimator input.
    fn forward(&self, input: Tensor) -> (Tensor, Tensor) {
        let features = self.dense.iter().fold(input, |x, conv| Tensor::cat(&[leaky_relu(&x.apply(conv)), x], 1));
        let flow = features.apply(&self.predict_flow);
        (features, flow)
    }
}

/// Context network (Sec. 3, "Context network"): dilated convolutions over
/// the finest estimator's features, predicting a residual flow.
#[derive(Debug)]
struct ContextNetwork {
    convs: Vec<nn::Conv2D>,
    predict_flow: nn::Conv2D,
}

impl ContextNetwork {
    fn new(vs: &nn::Path) -> ContextNetwork {
        let mut channels = dense_output_channels(2);
        let convs = CONTEXT_LAYERS
            .iter()
            .enumerate()
            .map(|(i, &(c, dilation))| {
                let conv = conv3x3(vs / format!("conv{}", i + 1), channels, c, 1, dilation);
                channels = c;
                conv
            })
            .collect();
        let predict_flow = conv3x3(vs / format!("conv{}", CONTEXT_LAYERS.len() + 1), channels, 2, 1, 1);
        ContextNetwork { convs, predict_flow }
    }

    fn forward(&self, features: &Tensor) -> Tensor {
        let x = self.convs.iter().fold(features.shallow_clone(), |x, conv| leaky_relu(&x.apply(conv)));
        x.apply(&self.predict_flow)
    }
}

/// PWC-Net: feature pyramid, then from level 6 down to level 2 a warping
/// layer, a cost volume and a flow estimator, then the context network.
#[derive(Debug)]
pub struct PwcNet {
    pyramid: FeaturePyramid,
    /// Levels 2 to 6, in that order.
    estimators: Vec<FlowEstimator>,
    context: ContextNetwork,
}

impl PwcNet {
    pub fn new(vs: &nn::Path) -> PwcNet {
        PwcNet {
            pyramid: FeaturePyramid::new(&(vs / "pyramid")),
            estimators: (2..=6).map(|level| FlowEstimator::new(&(vs / format!("decoder{level}")), level)).collect(),
            context: ContextNetwork::new(&(vs / "context")),
        }
    }

    /// Creates a network on `device` with the weights of a safetensors file,
    /// frozen for inference (use [`PwcNet::new`] and your own `VarStore` to train).
    pub fn load(path: &Path, device: Device) -> Result<(PwcNet, nn::VarStore), WeightsError> {
        let mut vs = nn::VarStore::new(device);
        let net = PwcNet::new(&vs.root());
        weights::load_safetensors(&mut vs, path)?;
        vs.freeze();
        Ok((net, vs))
    }

    /// The feature pyramid, reusable as a visual encoder.
    pub fn pyramid(&self) -> &FeaturePyramid {
        &self.pyramid
    }

    /// Flow from `first` to `second`, RGB batches \[B, 3, H, W\] with values in
    /// [0, 1], of any size: \[B, 2, H, W\] float, (u, v) in pixels of the input.
    ///
    /// As the public checkpoints' own scripts do, the images are resized
    /// bilinearly to the next multiple of 64 and the flow, predicted at a
    /// quarter of that size, is resized back and its components rescaled.
    /// Runs in the precision of the weights (see `VarStore::half`), without autograd.
    pub fn flow(&self, first: &Tensor, second: &Tensor) -> Tensor {
        let (_, channels, height, width) = first.size4().expect("images are [B,3,H,W]");
        assert_eq!(channels, 3, "images are RGB");
        assert_eq!(first.size(), second.size(), "both batches must have the same shape");
        let round_up = |n: i64| (n + SIZE_MULTIPLE - 1) / SIZE_MULTIPLE * SIZE_MULTIPLE;
        let (padded_height, padded_width) = (round_up(height), round_up(width));
        let kind = self.pyramid.kind();
        let prepare = |images: &Tensor| {
            let images = images.to_kind(Kind::Float);
            let resized = if (padded_height, padded_width) == (height, width) {
                images
            } else {
                images.upsample_bilinear2d([padded_height, padded_width], false, None, None)
            };
            resized.to_kind(kind)
        };
        tch::no_grad(|| {
            let quarter = self.forward(&prepare(first), &prepare(second)).to_kind(Kind::Float);
            let flow = quarter.upsample_bilinear2d([height, width], false, None, None) * FLOW_SCALE;
            let rescale = [width as f32 / padded_width as f32, height as f32 / padded_height as f32];
            flow * Tensor::from_slice(&rescale).to_device(first.device()).view([1, 2, 1, 1])
        })
    }

    /// The network proper, on images whose sides are multiples of 64: flow at
    /// a quarter of the input resolution, divided by `FLOW_SCALE` (20).
    pub fn forward(&self, first: &Tensor, second: &Tensor) -> Tensor {
        let (ones, twos) = (self.pyramid.features(first), self.pyramid.features(second));
        let mut upsampled: Option<(Tensor, Tensor)> = None;
        let mut finest = None;
        for level in (2..=6).rev() {
            let (one, two) = (&ones[level - 1], &twos[level - 1]);
            let input = match &upsampled {
                None => leaky_relu(&cost_volume(one, two, SEARCH_RANGE)),
                Some((flow, features)) => {
                    // Flow is in units of 20 input pixels; this level's pixels are 2^level of those.
                    let warped = backward_warp(two, &(flow * (FLOW_SCALE / (1 << level) as f64)));
                    let costs = leaky_relu(&cost_volume(one, &warped, SEARCH_RANGE));
                    Tensor::cat(&[&costs, one, flow, features], 1)
                }
            };
            let estimator = &self.estimators[level - 2];
            let (features, flow) = estimator.forward(input);
            upsampled = estimator
                .upsample
                .as_ref()
                .map(|(up_flow, up_features)| (flow.apply(up_flow), features.apply(up_features)));
            finest = Some((features, flow));
        }
        let (features, flow) = finest.expect("five levels");
        flow + self.context.forward(&features)
    }
}

/// RGB frames (interleaved 8-bit rows, as ingestion and `image` give them)
/// as a batch \[B, 3, H, W\] of floats in [0, 1] on the CPU.
pub fn rgb_batch(frames: &[&[u8]], width: usize, height: usize) -> Tensor {
    let mut bytes = Vec::with_capacity(frames.len() * width * height * 3);
    for frame in frames {
        assert_eq!(frame.len(), width * height * 3, "every frame must be {width}x{height} RGB");
        bytes.extend_from_slice(frame);
    }
    Tensor::from_slice(&bytes)
        .view([frames.len() as i64, height as i64, width as i64, 3])
        .permute([0, 3, 1, 2])
        .to_kind(Kind::Float)
        / 255.0
}

/// A batch of flows \[B, 2, H, W\] as [`Flow`] fields.
pub fn flow_fields(flows: &Tensor) -> Vec<Flow> {
    let (batch, _, height, width) = flows.size4().expect("flows are [B,2,H,W]");
    let interleaved = flows.to_kind(Kind::Float).to_device(Device::Cpu).permute([0, 2, 3, 1]).contiguous();
    let values = Vec::<f32>::try_from(interleaved.view([-1])).expect("a float tensor");
    let per_field = (height * width * 2) as usize;
    values
        .chunks_exact(per_field.max(1))
        .take(batch as usize)
        .map(|uv| Flow { width: width as usize, height: height as usize, uv: uv.to_vec() })
        .collect()
}
