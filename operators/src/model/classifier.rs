//! The dance classifier of Sec. 4.2: a two-stream network over a trained
//! MuDaR's outputs. The visual stream takes each frame's visual embedding
//! with its visual rhythm, the audio stream each frame's audio embedding with
//! the music's onset; each goes through two fully connected layers with a
//! non-linearity, the two are concatenated, pooled over time, and two more
//! fully connected layers give the class scores.

use serde::{Deserialize, Serialize};
use tch::{Tensor, nn, nn::Module};

/// The classifier's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassifierConfig {
    /// E: values of a frame's embedding, per stream.
    pub embedding_dim: i64,
    /// Width of the hidden layers.
    pub hidden: i64,
    pub classes: i64,
    /// Whether the streams take the rhythm (visual rhythm, onsets) beside the embeddings;
    /// `false` is Table 2's "w/o rhy" ablation.
    pub rhythm: bool,
}

/// The two-stream classifier (variables `visual.*`, `audio.*`, `head.*`).
#[derive(Debug)]
pub struct DanceClassifier {
    config: ClassifierConfig,
    visual: nn::Sequential,
    audio: nn::Sequential,
    head: nn::Sequential,
}

/// Two fully connected layers with a ReLU after each.
fn stream(vs: nn::Path, input: i64, hidden: i64) -> nn::Sequential {
    nn::seq()
        .add(nn::linear(&vs / "fc1", input, hidden, Default::default()))
        .add_fn(|x| x.relu())
        .add(nn::linear(&vs / "fc2", hidden, hidden, Default::default()))
        .add_fn(|x| x.relu())
}

impl DanceClassifier {
    pub fn new(vs: &nn::Path, config: ClassifierConfig) -> DanceClassifier {
        let input = config.embedding_dim + config.rhythm as i64;
        let h = config.hidden;
        DanceClassifier {
            config,
            visual: stream(vs / "visual", input, h),
            audio: stream(vs / "audio", input, h),
            head: nn::seq()
                .add(nn::linear(vs / "head" / "fc1", 2 * h, h, Default::default()))
                .add_fn(|x| x.relu())
                .add(nn::linear(vs / "head" / "fc2", h, config.classes, Default::default())),
        }
    }

    pub fn config(&self) -> ClassifierConfig {
        self.config
    }

    /// Class scores [B, C] of clips: `visual` and `audio` embeddings [B, T, E], the visual
    /// rhythm and the onsets [B, T] (0 or 1; ignored without rhythm). Sec. 4.2's order:
    /// streams, concatenation, temporal (mean) pooling, head.
    pub fn forward(&self, visual: &Tensor, rhythm: &Tensor, audio: &Tensor, onsets: &Tensor) -> Tensor {
        let with = |embedding: &Tensor, flags: &Tensor| match self.config.rhythm {
            true => Tensor::cat(&[embedding.shallow_clone(), flags.unsqueeze(-1)], -1),
            false => embedding.shallow_clone(),
        };
        let v = self.visual.forward(&with(visual, rhythm));
        let a = self.audio.forward(&with(audio, onsets));
        let pooled = Tensor::cat(&[v, a], -1).mean_dim(1, false, None);
        self.head.forward(&pooled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn shapes_and_the_rhythm_ablation() {
        let vs = nn::VarStore::new(Device::Cpu);
        let config = ClassifierConfig { embedding_dim: 8, hidden: 16, classes: 5, rhythm: true };
        let net = DanceClassifier::new(&vs.root(), config);
        let (b, t) = (3, 4);
        let emb = Tensor::randn([b, t, 8], (Kind::Float, Device::Cpu));
        let flags = Tensor::zeros([b, t], (Kind::Float, Device::Cpu));
        assert_eq!(net.forward(&emb, &flags, &emb, &flags).size(), [b, 5]);
        // Rhythm flags change the scores with rhythm, and nothing without.
        let ones = flags.ones_like();
        assert!(!net.forward(&emb, &flags, &emb, &flags).allclose(
            &net.forward(&emb, &ones, &emb, &ones),
            1e-6,
            1e-6,
            false
        ));
        let vs = nn::VarStore::new(Device::Cpu);
        let plain = DanceClassifier::new(&vs.root(), ClassifierConfig { rhythm: false, ..config });
        assert!(plain.forward(&emb, &flags, &emb, &flags).allclose(
            &plain.forward(&emb, &ones, &emb, &ones),
            0.0,
            0.0,
            false
        ));
        assert_eq!(vs.variables()["visual.fc1.weight"].size(), [16, 8]);
        // Temporal pooling: the order of frames does not matter.
        let reversed = emb.flip([1]);
        assert!(plain.forward(&emb, &flags, &emb, &flags).allclose(
            &plain.forward(&reversed, &flags, &reversed, &flags),
            1e-5,
            1e-5,
            false
        ));
    }
}
