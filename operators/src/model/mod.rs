//! The MuDaR model (paper Sec. 3), in tch: the implicit pathway (visual and
//! audio encoders, K transformer layers each, embeddings), the explicit
//! pathway (RGB injector, visual rhythm estimator), their losses and the
//! self-supervision's sampling rules.
//!
//! - [`config`]: dimensions, heads and loss weights; `paper` and `tiny` presets.
//! - [`attention`]: self-attention and transformer encoder layers.
//! - [`encoders`]: the visual (PWC-Net pyramid) and audio (2-D conv) streams.
//! - [`injector`]: audio-guided attention (Eq. 5-8), the audio dropout gate
//!   (Eq. 9-13), the injector's attention (Eq. 14).
//! - [`estimator`]: the visual rhythm estimator (Eq. 15) and Table 1's heads.
//! - [`losses`]: triplet (Eq. 18), focal (Eq. 19), joint (Eq. 20).
//! - [`sampling`]: Eq. 16 and 17 and the AVC → AVTS curriculum.
//! - [`optim`], [`checkpoint`]: Adam with its schedule, and resumable checkpoints.
//! - [`targets`]: music onsets and envelope on video frames.

pub mod attention;
pub mod checkpoint;
pub mod classifier;
pub mod config;
pub mod encoders;
pub mod estimator;
pub mod injector;
pub mod losses;
pub mod optim;
pub mod sampling;
pub mod targets;

pub use config::{AudioStreamInput, ModelConfig, RhythmHead, VisualStreamInput};
pub use estimator::{DecisionThresholds, RhythmTargets};
pub use losses::{focal_loss, joint_loss, triplet_loss};
pub use sampling::{PretextTask, SamplingParams};

use std::path::Path;

use tch::{Kind, Tensor, nn};

use crate::motion::pwcnet::FeaturePyramid;
use crate::weights::{WeightsError, copy_into, read_safetensors};
use encoders::{AudioEncoder, AudioFeatures, VisualEncoder, VisualFeatures};
use estimator::RhythmEstimator;
use injector::RgbInjector;
pub use injector::clips_without_audio;

/// MuDaR: both pathways, no cross-modal interaction in the implicit one.
#[derive(Debug)]
pub struct MuDaR {
    config: ModelConfig,
    visual: VisualEncoder,
    audio: AudioEncoder,
    injector: RgbInjector,
    estimator: RhythmEstimator,
}

/// One training step's clips: B clips of T frames.
#[derive(Debug)]
pub struct TrainingBatch {
    /// RGB in [0, 1], [B, T, 3, H, W].
    pub frames: Tensor,
    /// HOOF per frame, [B, T, bins].
    pub hoof: Tensor,
    /// Each clip's own audio input, [B, T_a, F].
    pub audio: Tensor,
    /// The negative audio of each clip (another video's, or its own shifted), [B, T_a, F].
    pub negative_audio: Tensor,
    pub targets: RhythmTargets,
    /// How many of the first clips the audio dropout gate withholds the
    /// audio from (Eq. 9-10; [`clips_without_audio`] of the global batch,
    /// so data-parallel shards agree with one worker).
    pub without_audio: i64,
}

/// The terms of the joint objective (Eq. 20) for one batch.
#[derive(Debug)]
pub struct Losses {
    /// Eq. 18 averaged over the batch's triplets.
    pub implicit: Tensor,
    /// The explicit head's loss averaged over frames (Eq. 19 for the full model).
    pub explicit: Tensor,
    /// λ₁·implicit + λ₂·explicit.
    pub total: Tensor,
    /// Fraction of triplets whose positive is nearer than their negative.
    pub triplet_accuracy: f64,
}

/// What the trained model says about clips.
#[derive(Debug)]
pub struct Inference {
    /// f'_v, [B, T·E].
    pub visual_embedding: Tensor,
    /// f'_a, [B, T·E], when audio was given.
    pub audio_embedding: Option<Tensor>,
    /// Visual rhythm probability per frame, [B, T].
    pub rhythm_probability: Tensor,
    /// The frames the head calls visual rhythm, per clip.
    pub rhythm_frames: Vec<Vec<usize>>,
}

impl MuDaR {
    /// Variables `visual.*`, `audio.*`, `injector.*`, `estimator.*` under `vs`.
    pub fn new(vs: &nn::Path, config: &ModelConfig) -> Result<MuDaR, String> {
        config.check()?;
        Ok(MuDaR {
            config: config.clone(),
            visual: VisualEncoder::new(&(vs / "visual"), config),
            audio: AudioEncoder::new(&(vs / "audio"), config),
            injector: RgbInjector::new(&(vs / "injector"), config),
            estimator: RhythmEstimator::new(&(vs / "estimator"), config),
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Sets the visual encoder's feature pyramid (`visual.pyramid.*` of the
    /// model made under `vs`'s root) to that of a PWC-Net weights file (its
    /// `pyramid.*` tensors; the file's flow decoders are ignored): the
    /// paper's visual encoder starts from a flow network's features.
    pub fn load_pyramid(vs: &nn::VarStore, path: &Path) -> Result<(), WeightsError> {
        let tensors = read_safetensors(path)?;
        let mut pyramid = nn::VarStore::new(vs.device());
        FeaturePyramid::new(&pyramid.root());
        copy_into(&mut pyramid, &tensors, "pyramid.", path)?;
        let model = vs.variables();
        tch::no_grad(|| {
            for (name, loaded) in pyramid.variables() {
                let var = &model[&format!("visual.pyramid.{name}")];
                var.shallow_clone().copy_(&loaded);
            }
        });
        Ok(())
    }

    pub fn visual(&self, frames: &Tensor, hoof: &Tensor, train: bool) -> VisualFeatures {
        self.visual.forward(frames, hoof, train)
    }

    pub fn audio(&self, audio: &Tensor, train: bool) -> AudioFeatures {
        self.audio.forward(audio, train)
    }

    /// The explicit pathway's per-frame scores (see [`RhythmEstimator::forward`]),
    /// the first `without_audio` clips without their audio features.
    pub fn rhythm_scores(
        &self,
        visual: &VisualFeatures,
        hoof: &Tensor,
        audio: Option<&AudioFeatures>,
        without_audio: i64,
    ) -> Tensor {
        let injected = self.injector.forward(&visual.feature_map, audio.map(|a| &a.frame_features), without_audio);
        self.estimator.forward(hoof, &injected)
    }

    /// The joint objective (Eq. 20) of a batch, in training mode: the
    /// injector goes without the audio of the batch's first `without_audio` clips.
    pub fn losses(&self, batch: &TrainingBatch) -> Losses {
        let clips = batch.frames.size()[0];
        let visual = self.visual(&batch.frames, &batch.hoof, true);
        // Positive and negative audio through the audio stream as one batch.
        let both = self.audio(&Tensor::cat(&[&batch.audio, &batch.negative_audio], 0), true);
        let positive = AudioFeatures {
            frame_features: both.frame_features.narrow(0, 0, clips),
            embedding: both.embedding.narrow(0, 0, clips),
        };
        let negative_embedding = both.embedding.narrow(0, clips, clips);

        let implicit =
            triplet_loss(&visual.embedding, &positive.embedding, &negative_embedding, self.config.triplet_margin)
                / clips as f64;
        let scores = self.rhythm_scores(&visual, &batch.hoof, Some(&positive), batch.without_audio);
        let explicit = self.estimator.loss(&scores, &batch.targets);
        let total = joint_loss(&implicit, &explicit, self.config.lambda_implicit, self.config.lambda_explicit);
        let triplet_accuracy = tch::no_grad(|| {
            let distance = |audio: &Tensor| losses::squared_distance(&visual.embedding, audio);
            distance(&positive.embedding)
                .lt_tensor(&distance(&negative_embedding))
                .to_kind(Kind::Float)
                .mean(Kind::Float)
                .double_value(&[])
        });
        Losses { implicit, explicit, total, triplet_accuracy }
    }

    /// Embeddings and visual rhythm of clips, without autograd; `audio`
    /// [B, T_a, F] is optional (the injector then uses the tiled projection,
    /// and the classifier heads the threshold without audio).
    pub fn infer(
        &self,
        frames: &Tensor,
        hoof: &Tensor,
        audio: Option<&Tensor>,
        thresholds: &DecisionThresholds,
    ) -> Inference {
        tch::no_grad(|| {
            let visual = self.visual(frames, hoof, false);
            let audio = audio.map(|a| self.audio(a, false));
            let without_audio = if audio.is_some() { 0 } else { frames.size()[0] };
            let scores = self.rhythm_scores(&visual, hoof, audio.as_ref(), without_audio);
            Inference {
                rhythm_probability: self.estimator.probabilities(&scores),
                rhythm_frames: self.estimator.decide(
                    &scores,
                    match audio {
                        Some(_) => thresholds.with_audio,
                        None => thresholds.without_audio,
                    },
                ),
                visual_embedding: visual.embedding,
                audio_embedding: audio.map(|a| a.embedding),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::motion::pwcnet::PwcNet;

    fn save(variables: impl Iterator<Item = (String, Tensor)>, path: &Path) {
        let named: Vec<(String, Tensor)> = variables.collect();
        Tensor::write_safetensors(&named, path).unwrap();
    }

    #[test]
    fn pyramid_comes_from_pwcnet_weights() {
        let dir = tempfile::tempdir().unwrap();
        tch::manual_seed(1);
        let flow = nn::VarStore::new(tch::Device::Cpu);
        PwcNet::new(&flow.root());
        let weights = dir.path().join("pwcnet.safetensors");
        save(flow.variables().into_iter(), &weights);

        tch::manual_seed(2);
        let vs = nn::VarStore::new(tch::Device::Cpu);
        MuDaR::new(&vs.root(), &ModelConfig::tiny()).unwrap();
        let untouched = vs.variables()["visual.input.weight"].copy();
        MuDaR::load_pyramid(&vs, &weights).unwrap();
        let model = vs.variables();
        let pyramid: Vec<_> = flow.variables().into_iter().filter(|(name, _)| name.starts_with("pyramid.")).collect();
        assert_eq!(pyramid.len(), 36, "six levels of three convolutions, weight and bias");
        for (name, tensor) in pyramid {
            assert!(model[&format!("visual.{name}")].equal(&tensor), "visual.{name} is not PWC-Net's {name}");
        }
        assert!(model["visual.input.weight"].equal(&untouched), "only the pyramid changes");

        // A file without the pyramid (here PWC-Net's decoders alone) is refused, saying what is missing.
        let decoders = dir.path().join("decoders.safetensors");
        save(flow.variables().into_iter().filter(|(name, _)| !name.starts_with("pyramid.")), &decoders);
        let error = MuDaR::load_pyramid(&vs, &decoders).unwrap_err().to_string();
        assert!(error.contains("missing: pyramid.level1.conv0.bias"), "{error}");
    }
}
