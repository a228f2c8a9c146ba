//! The model's dimensions and loss weights, with the paper's set-up and a
//! tiny one for CPU tests and demos as presets.

use serde::{Deserialize, Serialize};

use crate::motion::pwcnet::PYRAMID_CHANNELS;

/// How the explicit pathway turns per-frame features into visual rhythm
/// (paper Table 1: the full model and its three ablations).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RhythmHead {
    /// Eq. 15's classifier trained with the focal loss (Eq. 19): the full model.
    Focal,
    /// Eq. 15's classifier trained with plain binary cross-entropy.
    Bce,
    /// Eq. 15's output regressed onto the onset envelope; rhythm frames are
    /// the peaks of its output.
    Regression,
    /// Eq. 15's features through a BiLSTM and a two-tag CRF.
    BiLstmCrf,
}

impl std::str::FromStr for RhythmHead {
    type Err = String;

    fn from_str(s: &str) -> Result<RhythmHead, String> {
        match s {
            "focal" => Ok(RhythmHead::Focal),
            "bce" => Ok(RhythmHead::Bce),
            "regression" => Ok(RhythmHead::Regression),
            "bilstm-crf" => Ok(RhythmHead::BiLstmCrf),
            _ => Err(format!("unknown rhythm head '{s}' (focal, bce, regression, bilstm-crf)")),
        }
    }
}

/// What the implicit pathway's visual transformer reads per frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VisualStreamInput {
    /// How much the picture changes into each frame (the mean absolute
    /// difference from the frame before) and the change of that (its first
    /// difference), standardised over the clip as the audio input is: when
    /// the dancer moves and stops, whatever the direction or pose, which
    /// is what a dance shares with its music. The default: it is what makes
    /// the embeddings of held-out dances find their own music (README,
    /// "The implicit pathway").
    FrameDifference,
    /// The frame's HOOF (the explicit pathway's motion features),
    /// standardised over the clip: the directions of the motion, which
    /// differ from dance to dance, and not its amount (HOOF sums to 1).
    Motion,
    /// The paper's: the last pyramid level of each frame, averaged over
    /// positions (meant for a pyramid from PWC-Net weights, `--pyramid-weights`).
    Pyramid,
}

impl std::str::FromStr for VisualStreamInput {
    type Err = String;

    fn from_str(s: &str) -> Result<VisualStreamInput, String> {
        match s {
            "frame-difference" => Ok(VisualStreamInput::FrameDifference),
            "motion" => Ok(VisualStreamInput::Motion),
            "pyramid" => Ok(VisualStreamInput::Pyramid),
            _ => Err(format!("unknown visual stream input '{s}' (frame-difference, motion, pyramid)")),
        }
    }
}

/// What the audio encoder reads of each audio frame's features
/// (mel ‖ beat ‖ onset envelope ‖ tempogram).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AudioStreamInput {
    /// All of them, the paper's input. Checkpoints made before this setting
    /// existed read as this.
    #[default]
    Full,
    /// The beat and onset-envelope columns: when the music's events fall,
    /// without the song's timbre (mel) and tempo (tempogram), which no
    /// held-out song shares. The presets' choice: with all columns the
    /// embeddings of held-out dances found their own music in 80-91% of
    /// triplets, with these in 90-95% (README, "The implicit pathway").
    Rhythm,
}

impl std::str::FromStr for AudioStreamInput {
    type Err = String;

    fn from_str(s: &str) -> Result<AudioStreamInput, String> {
        match s {
            "full" => Ok(AudioStreamInput::Full),
            "rhythm" => Ok(AudioStreamInput::Rhythm),
            _ => Err(format!("unknown audio stream input '{s}' (full, rhythm)")),
        }
    }
}

/// Everything that fixes the shapes of MuDaR's weights and its losses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Video frames per clip (`clip seconds × fps`).
    pub frames: i64,
    /// Video frame rate, for the rhythm targets and Eq. 17.
    pub fps: f64,
    /// Side of the square RGB frames.
    pub frame_size: i64,
    /// HOOF bins per frame (the motion features of Eq. 15).
    pub hoof_bins: i64,
    /// Audio input frames per clip (STFT frames of the 8 s clip).
    pub audio_frames: i64,
    /// Features per audio frame: mel ‖ beat ‖ onset envelope ‖ tempogram.
    pub audio_features: i64,
    /// Which of them the audio encoder reads.
    #[serde(default)]
    pub audio_input: AudioStreamInput,
    /// Channels of the audio encoder's 2-D convolutions.
    pub audio_channels: Vec<i64>,
    /// Width of the transformer layers of both modalities.
    pub model_dim: i64,
    /// K, transformer encoder layers per modality.
    pub layers: i64,
    pub heads: i64,
    /// Hidden width of the transformers' feed-forward blocks.
    pub feed_forward_dim: i64,
    /// What the visual transformer of the implicit pathway reads per frame.
    pub visual_input: VisualStreamInput,
    /// Width of the audio-visual embedding per video frame; a clip's
    /// embedding is [`Self::embedding_len`] long.
    pub embedding_dim: i64,
    /// Width of the audio-guided attention's joint space (Eq. 7).
    pub attention_dim: i64,
    /// Heads of the injector's self-attention (Eq. 14); divides the pyramid's channels.
    pub injector_heads: i64,
    /// Eq. 14's attention adds its input back, as a transformer layer does
    /// (see `RgbInjector::forward`). Checkpoints made before this existed
    /// were trained without it and read as false, so they run as trained.
    #[serde(default)]
    pub injector_residual: bool,
    /// Width of U_mot and U_inj (Eq. 15).
    pub rhythm_dim: i64,
    /// p of the audio dropout gate (Eq. 9-10).
    pub audio_dropout: f64,
    /// Dropout inside the transformer layers while training.
    pub dropout: f64,
    pub head: RhythmHead,
    /// α of the triplet loss (Eq. 18), on unit-length embeddings.
    pub triplet_margin: f64,
    /// α and γ of the focal loss (Eq. 19).
    pub focal_alpha: f64,
    pub focal_gamma: f64,
    /// λ₁, λ₂ of the joint loss (Eq. 20).
    pub lambda_implicit: f64,
    pub lambda_explicit: f64,
}

impl ModelConfig {
    /// Sec. 4.1: 8 s clips at 8 fps of 256×256 frames, 16 kHz audio with
    /// librosa's hop of 512 (251 frames), HOOF of 30 bins. The paper does not
    /// give the widths; these are a transformer of the usual proportions.
    pub fn paper() -> ModelConfig {
        ModelConfig {
            frames: 64,
            fps: 8.0,
            frame_size: 256,
            hoof_bins: 30,
            audio_frames: 251,
            audio_features: 128 + 2 + 384,
            audio_input: AudioStreamInput::Rhythm,
            audio_channels: vec![32, 64, 128, 128],
            model_dim: 512,
            layers: 4,
            heads: 8,
            feed_forward_dim: 2048,
            visual_input: VisualStreamInput::FrameDifference,
            embedding_dim: 32,
            attention_dim: 256,
            injector_heads: 4,
            injector_residual: true,
            rhythm_dim: 128,
            audio_dropout: 0.3,
            dropout: 0.1,
            head: RhythmHead::Focal,
            triplet_margin: 0.5,
            focal_alpha: 0.25,
            focal_gamma: 2.0,
            lambda_implicit: 1.0,
            lambda_explicit: 1.0,
        }
    }

    /// Small enough to train on a CPU in minutes: 2 s clips at 8 fps of
    /// 96×96 frames (a 2×2 visual feature map, so the spatial attention
    /// still chooses among positions), narrow layers.
    pub fn tiny() -> ModelConfig {
        ModelConfig {
            frames: 16,
            frame_size: 96,
            audio_frames: 63,
            audio_channels: vec![8, 16],
            model_dim: 64,
            layers: 2,
            heads: 4,
            feed_forward_dim: 128,
            embedding_dim: 32,
            attention_dim: 32,
            rhythm_dim: 32,
            dropout: 0.0,
            ..ModelConfig::paper()
        }
    }

    /// Values in a clip's embedding: `embedding_dim` per video frame.
    pub fn embedding_len(&self) -> i64 {
        self.frames * self.embedding_dim
    }

    /// Channels of the visual feature map (PWC-Net's last pyramid level).
    pub fn visual_channels(&self) -> i64 {
        PYRAMID_CHANNELS[PYRAMID_CHANNELS.len() - 1]
    }

    /// Positions k of the visual feature map: the frame side halved six times.
    pub fn visual_positions(&self) -> i64 {
        let side = (0..PYRAMID_CHANNELS.len()).fold(self.frame_size, |side, _| (side + 1) / 2);
        side * side
    }

    /// What is wrong with this configuration, if anything.
    pub fn check(&self) -> Result<(), String> {
        let positive = [
            ("frames", self.frames),
            ("frame_size", self.frame_size),
            ("hoof_bins", self.hoof_bins),
            ("audio_frames", self.audio_frames),
            ("audio_features", self.audio_features),
            ("model_dim", self.model_dim),
            ("heads", self.heads),
            ("feed_forward_dim", self.feed_forward_dim),
            ("embedding_dim", self.embedding_dim),
            ("attention_dim", self.attention_dim),
            ("injector_heads", self.injector_heads),
            ("rhythm_dim", self.rhythm_dim),
        ];
        if let Some((name, value)) = positive.iter().find(|(_, v)| *v < 1) {
            return Err(format!("{name} must be at least 1, not {value}"));
        }
        if !(self.fps > 0.0 && self.fps.is_finite()) {
            return Err(format!("fps must be positive, not {}", self.fps));
        }
        if self.frames < 2 {
            return Err(format!("a clip needs at least 2 frames for first differences, not {}", self.frames));
        }
        if self.model_dim % self.heads != 0 {
            return Err(format!("model_dim {} is not a multiple of heads {}", self.model_dim, self.heads));
        }
        if self.visual_channels() % self.injector_heads != 0 {
            return Err(format!(
                "the visual features' {} channels are not a multiple of injector_heads {}",
                self.visual_channels(),
                self.injector_heads
            ));
        }
        if self.audio_channels.is_empty() || self.audio_channels.iter().any(|&c| c < 1) {
            return Err("audio_channels needs at least one layer, each of at least 1 channel".into());
        }
        if !(0.0..=1.0).contains(&self.audio_dropout) || !(0.0..1.0).contains(&self.dropout) {
            return Err("audio_dropout must be in [0, 1] and dropout in [0, 1)".into());
        }
        if !(0.0..=1.0).contains(&self.focal_alpha) || self.focal_gamma < 0.0 || self.triplet_margin < 0.0 {
            return Err("focal_alpha must be in [0, 1], focal_gamma and triplet_margin at least 0".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_from_before_a_setting_existed_run_as_they_were_trained() {
        let mut json = serde_json::to_value(ModelConfig::tiny()).unwrap();
        assert_eq!(json["injector_residual"], true, "the presets add Eq. 14's input back");
        assert_eq!(json["audio_input"], "rhythm", "the presets read the beat and onset columns");
        for field in ["injector_residual", "audio_input"] {
            json.as_object_mut().unwrap().remove(field);
        }
        let old: ModelConfig = serde_json::from_value(json).unwrap();
        let as_trained =
            ModelConfig { injector_residual: false, audio_input: AudioStreamInput::Full, ..ModelConfig::tiny() };
        assert_eq!(old, as_trained);
    }
}
