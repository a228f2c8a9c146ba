//! MuDaR's blocks against independent PyTorch versions
//! (`tests/torch/mudar_blocks.py`: torch.nn's transformer layer, multi-head
//! attention and LSTM, the paper's equations written out with loops, a CRF
//! by brute force over all tag paths), same weights and inputs in float64:
//! outputs and the gradients with respect to every input and weight, to 1e-4.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use mudar_operators::model::attention::TransformerLayer;
use mudar_operators::model::estimator::RhythmEstimator;
use mudar_operators::model::injector::{AudioGuidedAttention, RgbInjector};
use mudar_operators::model::{ModelConfig, MuDaR, RhythmHead, RhythmTargets, TrainingBatch};
use mudar_operators::weights::load_safetensors;
use tch::{Device, Kind, Tensor, nn};

fn close(ours: &Tensor, theirs: &Tensor, what: &str) {
    assert_eq!(ours.size(), theirs.size(), "{what}: shapes");
    let error = (ours.to_kind(Kind::Double) - theirs.to_kind(Kind::Double)).abs().max().double_value(&[]);
    assert!(error <= 1e-4, "{what}: differs from PyTorch by {error}");
}

/// The block's weights loaded into `vs` (in float64) and its inputs, outputs and gradients.
struct Reference {
    io: BTreeMap<String, Tensor>,
}

impl Reference {
    fn load(dir: &Path, block: &str, vs: &mut nn::VarStore) -> Reference {
        vs.double();
        load_safetensors(vs, &dir.join(format!("{block}.weights.safetensors"))).unwrap();
        let io = Tensor::read_safetensors(dir.join(format!("{block}.io.safetensors"))).unwrap().into_iter().collect();
        Reference { io }
    }

    fn input(&self, name: &str) -> Tensor {
        self.io[&format!("input.{name}")].to_kind(Kind::Double).set_requires_grad(true)
    }

    fn output(&self, name: &str) -> &Tensor {
        &self.io[&format!("output.{name}")]
    }

    /// The scalar PyTorch differentiated for a block with one output `y`:
    /// `Σ y · probe` for its saved random direction.
    fn projected(&self, y: &Tensor) -> Tensor {
        (y * self.io["probe.y"].to_kind(Kind::Double)).sum(Kind::Double)
    }

    /// Every input's and weight's gradient against PyTorch's.
    fn check_gradients(&self, vs: &nn::VarStore, inputs: &[(&str, &Tensor)], block: &str) {
        for (name, input) in inputs {
            if let Some(expected) = self.io.get(&format!("grad.{name}")) {
                close(&input.grad(), expected, &format!("{block}: dL/d{name}"));
            }
        }
        for (name, var) in vs.variables() {
            let expected = &self.io[&format!("grad.{name}")];
            close(&var.grad(), expected, &format!("{block}: dL/d{name}"));
        }
    }
}

fn references() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::run_reference("torch/mudar_blocks.py", dir.path());
    dir
}

fn config_for_blocks() -> ModelConfig {
    ModelConfig {
        frame_size: 128,
        model_dim: 8,
        attention_dim: 6,
        injector_heads: 4,
        hoof_bins: 6,
        rhythm_dim: 5,
        focal_alpha: 0.25,
        focal_gamma: 2.0,
        ..ModelConfig::tiny()
    }
}

#[test]
fn blocks_match_pytorch() {
    let dir = references();
    let dir = dir.path();

    // The transformer encoder layer against torch.nn.TransformerEncoderLayer.
    let mut vs = nn::VarStore::new(Device::Cpu);
    let layer = TransformerLayer::new(&vs.root(), 16, 4, 32, 0.0);
    let reference = Reference::load(dir, "transformer", &mut vs);
    let x = reference.input("x");
    let y = layer.forward(&x, false);
    close(&y, reference.output("y"), "transformer layer");
    reference.projected(&y).backward();
    reference.check_gradients(&vs, &[("x", &x)], "transformer layer");

    // Audio-guided spatial-channel attention, Eq. 5-8.
    let mut vs = nn::VarStore::new(Device::Cpu);
    let guided = AudioGuidedAttention::new(&vs.root(), 12, 8, 6);
    let reference = Reference::load(dir, "guided", &mut vs);
    let (visual, audio) = (reference.input("visual"), reference.input("audio"));
    let y = guided.forward(&visual, &audio);
    close(&y, reference.output("y"), "audio-guided attention (Eq. 5-8)");
    reference.projected(&y).backward();
    reference.check_gradients(&vs, &[("visual", &visual), ("audio", &audio)], "audio-guided attention");

    // The RGB injector, Eq. 9-14, one clip of three without its audio.
    let mut vs = nn::VarStore::new(Device::Cpu);
    let injector = RgbInjector::new(&vs.root(), &config_for_blocks());
    let reference = Reference::load(dir, "injector", &mut vs);
    let (feature_map, audio) = (reference.input("feature_map"), reference.input("audio"));
    let y = injector.forward(&feature_map, Some(&audio), 1);
    close(&y, reference.output("y"), "RGB injector (Eq. 9-14)");
    reference.projected(&y).backward();
    reference.check_gradients(&vs, &[("feature_map", &feature_map), ("audio", &audio)], "RGB injector");

    // The visual rhythm estimator (Eq. 15) and its focal loss (Eq. 19).
    let mut vs = nn::VarStore::new(Device::Cpu);
    let estimator = RhythmEstimator::new(&vs.root(), &config_for_blocks());
    let reference = Reference::load(dir, "estimator", &mut vs);
    let (hoof, injected) = (reference.input("hoof"), reference.input("injected"));
    let logits = estimator.forward(&hoof, &injected);
    close(&logits, reference.output("logits"), "visual rhythm estimator (Eq. 15)");
    let onsets = reference.io["input.onsets"].to_kind(Kind::Double);
    let targets = RhythmTargets { envelope: onsets.zeros_like(), onsets };
    let focal = estimator.loss(&logits, &targets);
    close(&focal, reference.output("focal"), "focal loss over frames");
    focal.backward();
    reference.check_gradients(&vs, &[("hoof", &hoof), ("injected", &injected)], "estimator");

    // The BiLSTM-CRF ablation against brute force over all 2^6 tag paths.
    let mut vs = nn::VarStore::new(Device::Cpu);
    let config = ModelConfig { head: RhythmHead::BiLstmCrf, hoof_bins: 4, rhythm_dim: 3, ..config_for_blocks() };
    let estimator = RhythmEstimator::new(&vs.root(), &config);
    let reference = Reference::load(dir, "crf", &mut vs);
    let (hoof, injected) = (reference.input("hoof"), reference.input("injected"));
    let emissions = estimator.forward(&hoof, &injected);
    close(&emissions, reference.output("emissions"), "BiLSTM emissions");
    let onsets = reference.io["input.onsets"].to_kind(Kind::Double);
    let targets = RhythmTargets { envelope: onsets.zeros_like(), onsets };
    let loss = estimator.loss(&emissions, &targets);
    close(&loss, reference.output("loss"), "CRF negative log-likelihood");
    let viterbi = Vec::<f64>::try_from(reference.output("viterbi").reshape([-1])).unwrap();
    let expected: Vec<Vec<usize>> = viterbi
        .chunks(6)
        .map(|tags| tags.iter().enumerate().filter(|(_, t)| **t == 1.0).map(|(i, _)| i).collect())
        .collect();
    assert_eq!(estimator.decide(&emissions, 0.5), expected, "Viterbi path vs the best of all paths");
    loss.backward();
    reference.check_gradients(&vs, &[("hoof", &hoof), ("injected", &injected)], "BiLSTM-CRF");
}

fn tiny_batch(config: &ModelConfig, clips: i64) -> TrainingBatch {
    let size = config.frame_size;
    let frames = Tensor::rand([clips, config.frames, 3, size, size], (Kind::Float, Device::Cpu));
    let hoof = Tensor::rand([clips, config.frames, config.hoof_bins], (Kind::Float, Device::Cpu));
    let audio = Tensor::randn([clips, config.audio_frames, config.audio_features], (Kind::Float, Device::Cpu));
    let negative_audio = Tensor::randn([clips, config.audio_frames, config.audio_features], (Kind::Float, Device::Cpu));
    let onsets = Tensor::rand([clips, config.frames], (Kind::Float, Device::Cpu)).lt(0.25).to_kind(Kind::Float);
    let envelope = Tensor::rand([clips, config.frames], (Kind::Float, Device::Cpu));
    let without_audio = mudar_operators::model::clips_without_audio(clips, config.audio_dropout);
    TrainingBatch { frames, hoof, audio, negative_audio, targets: RhythmTargets { onsets, envelope }, without_audio }
}

#[test]
fn every_head_runs_with_and_without_audio() {
    tch::manual_seed(0);
    for head in [RhythmHead::Focal, RhythmHead::Bce, RhythmHead::Regression, RhythmHead::BiLstmCrf] {
        let config = ModelConfig { frames: 8, audio_frames: 32, head, ..ModelConfig::tiny() };
        let vs = nn::VarStore::new(Device::Cpu);
        let model = MuDaR::new(&vs.root(), &config).unwrap();
        // Four clips: the audio dropout gate (p = 0.3) withholds the first one's audio.
        let batch = tiny_batch(&config, 4);
        let losses = model.losses(&batch);
        assert!(losses.total.double_value(&[]).is_finite(), "{head:?}: loss");
        losses.total.backward();
        let mut untrained: Vec<String> =
            vs.variables().into_iter().filter(|(_, v)| !v.grad().defined()).map(|(name, _)| name).collect();
        untrained.sort();
        assert!(untrained.is_empty(), "{head:?}: no gradient reaches {untrained:?}");
        for (with_audio, audio) in [(true, Some(&batch.audio)), (false, None)] {
            let out = model.infer(&batch.frames, &batch.hoof, audio, &Default::default());
            assert_eq!(out.visual_embedding.size(), [4, config.embedding_len()]);
            assert_eq!(out.audio_embedding.is_some(), with_audio);
            assert_eq!(out.rhythm_probability.size(), [4, config.frames], "{head:?}");
            assert_eq!(out.rhythm_frames.len(), 4);
            let norms = out.visual_embedding.square().sum_dim_intlist(1, false, Kind::Float);
            assert!((norms - 1.0).abs().max().double_value(&[]) < 1e-5, "unit-length embeddings");
        }
    }
}
