//! A trained MuDaR read back from its checkpoint, for `mudar eval` and
//! `mudar extract --model`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mudar_operators::model::checkpoint::{self, CheckpointInfo};
use mudar_operators::model::{DecisionThresholds, Inference, ModelConfig, MuDaR, SamplingParams};
use mudar_operators::rhythm::RhythmParams;
use tch::{Device, Kind, Tensor, nn};

use super::clips::{CachedClip, TrainingClipParams};
use crate::clip::ClipRule;

/// A checkpoint's model with its weights, and how it was trained.
#[derive(Debug)]
pub struct TrainedModel {
    pub model: MuDaR,
    /// Fitted on the training clips at the end of training (0.5 for a
    /// checkpoint taken before the end).
    pub thresholds: DecisionThresholds,
    pub sampling: SamplingParams,
    pub info: CheckpointInfo,
    /// The checkpoint's JSON.
    pub path: PathBuf,
    pub device: Device,
    /// Owns the weights the model's modules refer to.
    _weights: nn::VarStore,
}

impl TrainedModel {
    /// Loads `checkpoint` (a checkpoint's JSON, a checkpoint folder or a run
    /// folder: its latest checkpoint) onto `device`.
    pub fn load(checkpoint: &Path, device: Device) -> Result<TrainedModel, String> {
        let (folder, info) = checkpoint::read_info(checkpoint)?;
        let config: ModelConfig = serde_json::from_value(info.config["model"].clone())
            .map_err(|e| format!("{}: the checkpoint has no model configuration: {e}", checkpoint.display()))?;
        let sampling = serde_json::from_value(info.config["sampling"].clone()).unwrap_or_default();
        let thresholds = serde_json::from_value(info.config["thresholds"].clone()).unwrap_or_default();
        let mut weights = nn::VarStore::new(device);
        let model = MuDaR::new(&weights.root(), &config)?;
        checkpoint::load(&folder, &info, &mut weights, None)?;
        let path = folder.join(&info.tensors).with_extension("json");
        Ok(TrainedModel { model, thresholds, sampling, info, path, device, _weights: weights })
    }

    /// The model's embeddings and visual rhythm (its own thresholds).
    pub fn infer(&self, frames: &Tensor, hoof: &Tensor, audio: Option<&Tensor>) -> Inference {
        self.model.infer(frames, hoof, audio, &self.thresholds)
    }

    /// f'_a of music alone: the audio encoder's embeddings of `audio` [B, T_a, F], [B, T·E].
    pub fn audio_embedding(&self, audio: &Tensor) -> Tensor {
        tch::no_grad(|| self.model.audio(&audio.to_device(self.device), false).embedding)
    }

    pub fn config(&self) -> &ModelConfig {
        self.model.config()
    }

    /// The length of the clips the model sees.
    pub fn clip_length(&self) -> Duration {
        Duration::from_secs_f64(self.config().frames as f64 / self.config().fps)
    }

    /// How the graph cuts `rule`'s clips for this model: with the audio
    /// margin its training clips had.
    pub fn clip_params(&self, rule: ClipRule, rhythm: RhythmParams) -> TrainingClipParams {
        TrainingClipParams::for_model(self.config(), &self.sampling, rule, rhythm)
    }
}

/// The model's inputs for a group of clips, on `device`: frames [B, T, 3, S, S]
/// in [0, 1], HOOF [B, T, bins], each clip's own audio input [B, T_a, F].
pub fn model_inputs(clips: &[&CachedClip], config: &ModelConfig, device: Device) -> (Tensor, Tensor, Tensor) {
    let stack = |f: &dyn Fn(&CachedClip) -> Tensor| {
        Tensor::stack(&clips.iter().map(|c| f(c)).collect::<Vec<_>>(), 0).to_device(device)
    };
    let frames = stack(&|c| c.frames.shallow_clone()).permute([0, 1, 4, 2, 3]).to_kind(Kind::Float) / 255.0;
    let hoof = stack(&|c| c.hoof.shallow_clone());
    let audio = stack(&|c| c.audio.narrow(0, c.meta.audio_offset as i64, config.audio_frames));
    (frames, hoof, audio)
}
