//! PWC-Net's feature pyramid extractor (Sun et al. 2018, Sec. 3, "Feature
//! pyramid extractor"), also the visual encoder of MuDaR (paper Sec. 3.2).

use tch::{Kind, Tensor, nn};

use super::layers::{conv3x3, leaky_relu};

/// Channels of pyramid levels 1 (half resolution) to 6 (1/64).
pub const PYRAMID_CHANNELS: [i64; 6] = [16, 32, 64, 96, 128, 196];

/// Six levels, each three 3x3 convolutions, the first of stride 2.
#[derive(Debug)]
pub struct FeaturePyramid {
    levels: Vec<[nn::Conv2D; 3]>,
}

impl FeaturePyramid {
    /// Variables `level{1..6}.conv{0,1,2}.{weight,bias}` under `vs`.
    pub fn new(vs: &nn::Path) -> FeaturePyramid {
        let mut c_in = 3;
        let levels = PYRAMID_CHANNELS
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let level = vs / format!("level{}", i + 1);
                let conv = |name: &str, c_in, stride| conv3x3(&level / name, c_in, c, stride, 1);
                let convs = [conv("conv0", c_in, 2), conv("conv1", c, 1), conv("conv2", c, 1)];
                c_in = c;
                convs
            })
            .collect();
        FeaturePyramid { levels }
    }

    /// The kind (precision) of the weights.
    pub fn kind(&self) -> Kind {
        self.levels[0][0].ws.kind()
    }

    /// Feature maps of levels 1 to 6 for RGB images \[B, 3, H, W\] with values in
    /// [0, 1]; level l is [B, PYRAMID_CHANNELS[l-1], ⌈H/2^l⌉, ⌈W/2^l⌉].
    pub fn features(&self, rgb: &Tensor) -> Vec<Tensor> {
        // The public checkpoints were trained on BGR input (Caffe's channel order).
        let mut x = rgb.flip([1]);
        self.levels
            .iter()
            .map(|convs| {
                for conv in convs {
                    x = leaky_relu(&x.apply(conv));
                }
                x.shallow_clone()
            })
            .collect()
    }
}
