//! The implicit pathway's encoders (paper Sec. 3.2): PWC-Net's feature
//! pyramid for the frames (the explicit pathway's `f_rgb`), 2-D
//! convolutions for the audio input, each stream followed by its own K
//! transformer layers and a per-frame projection into the shared embedding
//! space. The visual transformer reads how much the frames change, their
//! motion (HOOF) or the pooled pyramid, as [`VisualStreamInput`] says. No
//! layer sees the other modality.

use tch::{Tensor, nn};

use super::attention::TemporalEncoder;
use super::config::{AudioStreamInput, ModelConfig, VisualStreamInput};
use super::estimator::first_difference;
use crate::motion::pwcnet::FeaturePyramid;
use crate::rhythm::features::rhythm_columns;

/// Frames → the last pyramid feature map per frame (`f_rgb`, the explicit
/// pathway's input) and the visual embedding of the frames' motion.
#[derive(Debug)]
pub struct VisualEncoder {
    pyramid: FeaturePyramid,
    stream_input: VisualStreamInput,
    input: nn::Linear,
    temporal: TemporalEncoder,
    projection: nn::Linear,
}

/// What the visual stream gives the rest of the model.
#[derive(Debug)]
pub struct VisualFeatures {
    /// `f_rgb`, [B, T, k, C]: the k positions of the last pyramid level.
    pub feature_map: Tensor,
    /// f'_v, [B, T·E]: E values per frame, unit length over the clip.
    pub embedding: Tensor,
}

impl VisualEncoder {
    /// Variables `pyramid.*` (PWC-Net's names, so a flow checkpoint's pyramid
    /// can initialise it), `input`, `temporal.layer{k}.*`, `projection`.
    pub fn new(vs: &nn::Path, config: &ModelConfig) -> VisualEncoder {
        let input_width = match config.visual_input {
            VisualStreamInput::FrameDifference => 2,
            VisualStreamInput::Motion => config.hoof_bins,
            VisualStreamInput::Pyramid => config.visual_channels(),
        };
        VisualEncoder {
            pyramid: FeaturePyramid::new(&(vs / "pyramid")),
            stream_input: config.visual_input,
            input: nn::linear(vs / "input", input_width, config.model_dim, Default::default()),
            temporal: temporal_encoder(&(vs / "temporal"), config),
            projection: nn::linear(vs / "projection", config.model_dim, config.embedding_dim, Default::default()),
        }
    }

    /// `frames` [B, T, 3, H, W], RGB in [0, 1]; `hoof` [B, T, bins].
    pub fn forward(&self, frames: &Tensor, hoof: &Tensor, train: bool) -> VisualFeatures {
        let size = frames.size();
        let (batch, time) = (size[0], size[1]);
        let flat = frames.view([batch * time, size[2], size[3], size[4]]);
        let last = self.pyramid.features(&flat).pop().expect("six pyramid levels");
        let (_, channels, height, width) = last.size4().expect("[B·T, C, h, w]");
        let feature_map = last.view([batch, time, channels, height * width]).transpose(2, 3);
        let per_frame = match self.stream_input {
            VisualStreamInput::FrameDifference => {
                let change = frame_difference(frames).unsqueeze(-1);
                // And its first difference (Eq. 15's f'): where moves start and stop.
                let delta = first_difference(&change);
                standardise_over_time(&Tensor::cat(&[change, delta], 2))
            }
            VisualStreamInput::Motion => standardise_over_time(hoof),
            VisualStreamInput::Pyramid => feature_map.mean_dim(2, false, feature_map.kind()),
        }
        .apply(&self.input);
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
    stream_input: AudioStreamInput,
    /// The beat and onset-envelope columns of the input.
    rhythm: std::ops::Range<usize>,
}

/// What the audio stream gives the rest of the model.
#[derive(Debug)]
pub struct AudioFeatures {
    /// `f_a`, [B, T, D]: the convolutional encoder's output at video frame rate.
    pub frame_features: Tensor,
    /// f'_a, [B, T·E]: E values per video frame, unit length over the clip.
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
            stream_input: config.audio_input,
            rhythm: rhythm_columns(config.audio_features as usize),
        }
    }

    /// `audio` [B, T_a, F]: the per-frame audio input of each clip.
    pub fn forward(&self, audio: &Tensor, train: bool) -> AudioFeatures {
        let kind = audio.kind();
        // Mel dB, 0/1 beats, the envelope and autocorrelations live on unrelated scales.
        let audio = match self.stream_input {
            AudioStreamInput::Full => audio.shallow_clone(),
            AudioStreamInput::Rhythm => audio.narrow(2, self.rhythm.start as i64, self.rhythm.len() as i64),
        };
        let x = standardise_over_time(&audio).unsqueeze(1);
        let x = self.convs.iter().fold(x, |x, conv| x.apply(conv).relu());
        // [B, C, T_a, F'] → mean over frequency → pooled to the T video frames.
        let over_time = x.mean_dim(3, false, kind).adaptive_avg_pool1d(self.frames);
        let frame_features = over_time.transpose(1, 2).apply(&self.input);
        let embedding = embed(&self.temporal.forward(&frame_features, train), &self.projection);
        AudioFeatures { frame_features, embedding }
    }
}

/// How much the picture changes into each frame of `frames` \[B, T, 3, H, W\]:
/// the mean absolute difference from the frame before, over pixels and
/// channels, 0 at the first frame. \[B, T\].
pub fn frame_difference(frames: &Tensor) -> Tensor {
    let time = frames.size()[1];
    let step = frames.narrow(1, 1, time - 1) - frames.narrow(1, 0, time - 1);
    let change = step.abs().mean_dim(&[2i64, 3, 4][..], false, frames.kind());
    Tensor::cat(&[change.narrow(1, 0, 1).zeros_like(), change], 1)
}

fn temporal_encoder(vs: &nn::Path, config: &ModelConfig) -> TemporalEncoder {
    TemporalEncoder::new(vs, config.layers, config.model_dim, config.heads, config.feed_forward_dim, config.dropout)
}

/// Each feature of `x` [B, T, F] standardised over the clip's T frames:
/// what varies within the clip, on one scale.
fn standardise_over_time(x: &Tensor) -> Tensor {
    let mean = x.mean_dim(1, true, x.kind());
    let spread = (x.var_dim(1, false, true) + 1e-5).sqrt();
    (x - mean) / spread
}

/// Each frame projected, the frames in order, scaled to unit length over
/// the clip: the triplet loss (Eq. 18) compares clips frame by frame, so
/// the embedding keeps when things happen, which rhythm is about (a mean
/// over time would leave AVTS's shifted negatives nearly where the positive
/// is), and its squared distances lie in [0, 4], so the margin has a fixed
/// meaning.
fn embed(sequence: &Tensor, projection: &nn::Linear) -> Tensor {
    let frames = sequence.apply(projection).flatten(1, 2);
    let norm = frames.square().sum_dim_intlist(-1, true, frames.kind()).clamp_min(1e-12).sqrt();
    frames / norm
}

#[cfg(test)]
mod tests {
    use tch::{Device, Kind};

    use super::*;

    #[test]
    fn the_visual_stream_reads_what_the_configuration_names() {
        tch::manual_seed(0);
        let (clips, frames) = (2, 6);
        // A pattern per seed rather than a draw: other tests use torch's one
        // generator at the same time (initialising their weights).
        let video = |seed: i64| {
            let values = Tensor::arange(clips * frames * 3 * 96 * 96, (Kind::Float, Device::Cpu));
            (values * (0.1 + 0.37 * seed as f64)).sin().abs().view([clips, frames, 3, 96, 96])
        };
        let hoof = Tensor::rand([clips, frames, 30], (Kind::Float, Device::Cpu));
        let same = |a: &Tensor, b: &Tensor| a.allclose(b, 1e-5, 1e-6, false);
        for input in [VisualStreamInput::FrameDifference, VisualStreamInput::Motion, VisualStreamInput::Pyramid] {
            let config = ModelConfig { frames, visual_input: input, ..ModelConfig::tiny() };
            let vs = nn::VarStore::new(Device::Cpu);
            let encoder = VisualEncoder::new(&vs.root(), &config);
            let embed = |frames: &Tensor, hoof: &Tensor| encoder.forward(frames, hoof, false).embedding;
            let base = embed(&video(1), &hoof);
            assert_eq!(base.size(), [clips, config.embedding_len()]);
            let norms = base.square().sum_dim_intlist(1, false, Kind::Float);
            assert!(same(&norms, &Tensor::ones([clips], (Kind::Float, Device::Cpu))), "unit length per clip");
            let other_frames = embed(&video(2), &hoof);
            let other_motion = embed(&video(1), &hoof.flip([1]));
            // Standardised per clip: an offset of the motion does not matter.
            let rescaled_motion = embed(&video(1), &(&hoof + 1.0));
            // The same picture brighter by a constant: the same differences.
            let brighter = embed(&(video(1) * 0.5 + 0.25), &hoof);
            let dimmer = embed(&(video(1) * 0.5), &hoof);
            match input {
                VisualStreamInput::FrameDifference => {
                    assert!(same(&base, &other_motion) && same(&brighter, &dimmer));
                    assert!(!same(&base, &other_frames), "the frames' changes make the embedding");
                }
                VisualStreamInput::Motion => {
                    assert!(same(&base, &other_frames) && same(&base, &rescaled_motion));
                    assert!(!same(&base, &other_motion), "the motion, frame by frame, makes the embedding");
                }
                VisualStreamInput::Pyramid => {
                    assert!(same(&base, &other_motion) && !same(&base, &other_frames));
                }
            }
        }
    }

    #[test]
    fn the_rhythm_audio_stream_reads_only_the_beat_and_onset_columns() {
        use crate::rhythm::features::TEMPOGRAM_LAGS;

        let config = ModelConfig { audio_input: AudioStreamInput::Rhythm, ..ModelConfig::tiny() };
        let (clips, t_a, features) = (2, config.audio_frames, config.audio_features);
        let vs = nn::VarStore::new(Device::Cpu);
        let encoder = AudioEncoder::new(&vs.root(), &config);
        let embed = |audio: &Tensor| encoder.forward(audio, false).embedding;
        // Patterns rather than random draws: reseeding torch's one generator
        // here would race with the other tests that seed it.
        let pattern = |scale: f64| {
            (Tensor::arange(clips * t_a * features, (Kind::Float, Device::Cpu)) * scale)
                .sin()
                .view([clips, t_a, features])
        };
        let audio = pattern(0.37);
        let base = embed(&audio);
        let same = |a: &Tensor, b: &Tensor| a.allclose(b, 1e-5, 1e-6, false);
        let mel_bands = features - 2 - TEMPOGRAM_LAGS as i64;
        let lags = TEMPOGRAM_LAGS as i64;
        // New timbre and tempogram, the same beats and onset envelope.
        let other = audio.copy();
        let noise = pattern(1.91);
        other.narrow(2, 0, mel_bands).copy_(&noise.narrow(2, 0, mel_bands));
        other.narrow(2, mel_bands + 2, lags).copy_(&noise.narrow(2, mel_bands + 2, lags));
        assert!(same(&base, &embed(&other)), "the mel bands or the tempogram changed the embedding");
        let onsets_moved = audio.copy();
        onsets_moved.narrow(2, mel_bands + 1, 1).copy_(&audio.narrow(2, mel_bands + 1, 1).flip([1]));
        assert!(!same(&base, &embed(&onsets_moved)), "the onset envelope, frame by frame, makes the embedding");
        let full_config = ModelConfig { audio_input: AudioStreamInput::Full, ..ModelConfig::tiny() };
        let full = AudioEncoder::new(&(vs.root() / "full"), &full_config);
        assert!(
            !same(&full.forward(&audio, false).embedding, &full.forward(&other, false).embedding),
            "the full input reads the mel bands and the tempogram"
        );
    }

    #[test]
    fn frame_difference_by_hand() {
        // One clip of three 1×1×2 frames: (0, 0), (0.5, 0.25), (0.25, 0.25).
        let frames = Tensor::from_slice(&[0.0f32, 0.0, 0.5, 0.25, 0.25, 0.25]).view([1, 3, 1, 1, 2]);
        let change = frame_difference(&frames);
        // Means of |0.5|, |0.25| and of |−0.25|, |0|; nothing before the first frame.
        let expected = Tensor::from_slice(&[0.0f32, 0.375, 0.125]).view([1, 3]);
        assert!(change.allclose(&expected, 0.0, 1e-7, false), "{change}");
    }
}
