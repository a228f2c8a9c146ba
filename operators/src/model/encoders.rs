//! The implicit pathway's encoders (paper Sec. 3.2): PWC-Net's feature
//! pyramid for the frames, 2-D convolutions for the audio input, each
//! followed by its own K transformer layers and a projection into the shared
//! embedding space. No layer sees the other modality.

use tch::{Tensor, nn};

use super::attention::TemporalEncoder;
use super::config::ModelConfig;
use crate::motion::pwcnet::FeaturePyramid;

/// Frames → the last pyramid feature map per frame (`f_rgb`, the explicit
/// pathway's input too) and the visual embedding.
#[derive(Debug)]
pub struct VisualEncoder {
    pyramid: FeaturePyramid,
    input: nn::Linear,
    temporal: TemporalEncoder,
    projection: nn::Linear,
}

/// What the visual stream gives the rest of the model.
#[derive(Debug)]
pub struct VisualFeatures {
    /// `f_rgb`, [B, T, k, C]: the k positions of the last pyramid level.
    pub feature_map: Tensor,
    /// f'_v, [B, E], unit length.
    pub embedding: Tensor,
}

impl VisualEncoder {
    /// Variables `pyramid.*` (PWC-Net's names, so a flow checkpoint's pyramid
    /// can initialise it), `input`, `temporal.layer{k}.*`, `projection`.
    pub fn new(vs: &nn::Path, config: &ModelConfig) -> VisualEncoder {
        VisualEncoder {
            pyramid: FeaturePyramid::new(&(vs / "pyramid")),
            input: nn::linear(vs / "input", config.visual_channels(), config.model_dim, Default::default()),
            temporal: temporal_encoder(&(vs / "temporal"), config),
            projection: nn::linear(vs / "projection", config.model_dim, config.embedding_dim, Default::default()),
        }
    }

    /// `frames` [B, T, 3, H, W], RGB in [0, 1].
    pub fn forward(&self, frames: &Tensor, train: bool) -> VisualFeatures {
        let size = frames.size();
        let (batch, time) = (size[0], size[1]);
        let flat = frames.view([batch * time, size[2], size[3], size[4]]);
        let last = self.pyramid.features(&flat).pop().expect("six pyramid levels");
        let (_, channels, height, width) = last.size4().expect("[B·T, C, h, w]");
        let feature_map = last.view([batch, time, channels, height * width]).transpose(2, 3);
        let per_frame = feature_map.mean_dim(2, false, feature_map.kind()).apply(&self.input);
        let embedding = embed(&self.temporal.forward(&per_frame, train), &self.projection);
        VisualFeatures { feature_map, embedding }
    }
}

/// The per-frame audio input → `f_a` at the video's frame rate and the audio
/// embedding.
#[derive(Debug)]
pub struct AudioEncoder {
    convs: Vec<nn::Conv2D>,
    input: nn::Linear,
    temporal: TemporalEncoder,
    projection: nn::Linear,
    frames: i64,
}

/// What the audio stream gives the rest of the model.
#[derive(Debug)]
pub struct AudioFeatures {
    /// `f_a`, [B, T, D]: the convolutional encoder's output at video frame rate.
    pub frame_features: Tensor,
    /// f'_a, [B, E], unit length.
    pub embedding: Tensor,
}

impl AudioEncoder {
    /// Variables `conv{i}`, `input`, `temporal.layer{k}.*`, `projection`.
    pub fn new(vs: &nn::Path, config: &ModelConfig) -> AudioEncoder {
        let mut c_in = 1;
        let convs = config
            .audio_channels
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                // Strided in frequency only: time keeps the audio frame rate until pooled to video frames.
                let conv_config = nn::ConvConfigND { stride: [1, 2], padding: [1, 1], ..Default::default() };
                let conv = nn::conv(vs / format!("conv{i}"), c_in, c, [3, 3], conv_config);
                c_in = c;
                conv
            })
            .collect();
        AudioEncoder {
            convs,
            input: nn::linear(vs / "input", c_in, config.model_dim, Default::default()),
            temporal: temporal_encoder(&(vs / "temporal"), config),
            projection: nn::linear(vs / "projection", config.model_dim, config.embedding_dim, Default::default()),
            frames: config.frames,
        }
    }

    /// `audio` [B, T_a, F]: the per-frame audio input of each clip.
    pub fn forward(&self, audio: &Tensor, train: bool) -> AudioFeatures {
        let kind = audio.kind();
        // Mel dB, 0/1 beats, the envelope and autocorrelations live on unrelated
        // scales: standardise each feature over the clip's frames.
        let mean = audio.mean_dim(1, true, kind);
        let spread = (audio.var_dim(1, false, true) + 1e-5).sqrt();
        let x = ((audio - mean) / spread).unsqueeze(1);
        let x = self.convs.iter().fold(x, |x, conv| x.apply(conv).relu());
        // [B, C, T_a, F'] → mean over frequency → pooled to the T video frames.
        let over_time = x.mean_dim(3, false, kind).adaptive_avg_pool1d(self.frames);
        let frame_features = over_time.transpose(1, 2).apply(&self.input);
        let embedding = embed(&self.temporal.forward(&frame_features, train), &self.projection);
        AudioFeatures { frame_features, embedding }
    }
}

fn temporal_encoder(vs: &nn::Path, config: &ModelConfig) -> TemporalEncoder {
    TemporalEncoder::new(vs, config.layers, config.model_dim, config.heads, config.feed_forward_dim, config.dropout)
}

/// Mean over time, projected and scaled to unit length, so that the squared
/// distances of the triplet loss (Eq. 18) lie in [0, 4] and its margin has a
/// fixed meaning.
fn embed(sequence: &Tensor, projection: &nn::Linear) -> Tensor {
    let pooled = sequence.mean_dim(1, false, sequence.kind()).apply(projection);
    let norm = pooled.square().sum_dim_intlist(-1, true, pooled.kind()).clamp_min(1e-12).sqrt();
    pooled / norm
}
