//! The RGB injector of the explicit pathway (paper Sec. 3.1.2): the visual
//! feature map, attended under the guidance of the audio where the audio
//! dropout gate lets it through, else tiled and projected, then
//! self-attention over time.

use tch::{Tensor, nn};

use super::attention::SelfAttention;
use super::config::ModelConfig;

/// Audio-guided spatial-channel attention (Xu et al. 2020, the paper's
/// AGVA), Eq. 5-8, for N visual feature maps [N, k, C] and N audio vectors
/// [N, D].
#[derive(Debug)]
pub struct AudioGuidedAttention {
    /// U^c_rgb: C → D, ReLU.
    channel_visual: nn::Linear,
    /// U^c_1: D → D, ReLU.
    channel_hidden: nn::Linear,
    /// W_1: D → C.
    channel_out: nn::Linear,
    /// U^s_a: D → A, ReLU.
    spatial_audio: nn::Linear,
    /// U^s_rgb: C → A, ReLU.
    spatial_visual: nn::Linear,
    /// W_2: A → 1.
    spatial_out: nn::Linear,
}

impl AudioGuidedAttention {
    pub fn new(vs: &nn::Path, channels: i64, audio_dim: i64, attention_dim: i64) -> AudioGuidedAttention {
        let linear = |name: &str, i, o| nn::linear(vs / name, i, o, Default::default());
        let no_bias = nn::LinearConfig { bias: false, ..Default::default() };
        AudioGuidedAttention {
            channel_visual: linear("channel_visual", channels, audio_dim),
            channel_hidden: linear("channel_hidden", audio_dim, audio_dim),
            channel_out: nn::linear(vs / "channel_out", audio_dim, channels, no_bias),
            spatial_audio: linear("spatial_audio", audio_dim, attention_dim),
            spatial_visual: linear("spatial_visual", channels, attention_dim),
            spatial_out: nn::linear(vs / "spatial_out", attention_dim, 1, no_bias),
        }
    }

    /// `visual` [N, k, C], `audio` [N, D] → `f_a:rgb` [N, C].
    pub fn forward(&self, visual: &Tensor, audio: &Tensor) -> Tensor {
        let channel_weights = self.channel_attention(visual, audio);
        // Eq. 6: each channel of every position scaled by its weight, as in
        // Xu et al.'s channel attention.
        let reweighted = visual * channel_weights.unsqueeze(1);
        let spatial_weights = self.spatial_attention(&reweighted, audio);
        // Eq. 8: the positions averaged under the spatial weights.
        spatial_weights.unsqueeze(1).matmul(&reweighted).squeeze_dim(1)
    }

    /// Eq. 5: `w^c = σ(W_1 U^c_1(ρ(f_a ⊙ U^c_rgb(f_rgb))))`, [N, C], with ρ
    /// the average over the k positions.
    pub fn channel_attention(&self, visual: &Tensor, audio: &Tensor) -> Tensor {
        let joint = audio.unsqueeze(1) * visual.apply(&self.channel_visual).relu();
        let pooled = joint.mean_dim(1, false, joint.kind());
        pooled.apply(&self.channel_hidden).relu().apply(&self.channel_out).sigmoid()
    }

    /// Eq. 7: `w^s = softmax_k(tanh(W_2(U^s_a(f_a) ⊙ U^s_rgb(f^c_rgb))))`, [N, k].
    pub fn spatial_attention(&self, reweighted: &Tensor, audio: &Tensor) -> Tensor {
        let audio = audio.apply(&self.spatial_audio).relu().unsqueeze(1);
        let joint = (audio * reweighted.apply(&self.spatial_visual).relu()).tanh();
        joint.apply(&self.spatial_out).squeeze_dim(-1).softmax(-1, joint.kind())
    }
}

/// Eq. 9-10, the audio dropout gate: of a batch of b clips, the first ⌊b·p⌋
/// go without their audio. The clips of a batch come in random order, so
/// the first ones are a random choice.
pub fn clips_without_audio(batch: i64, rate: f64) -> i64 {
    ((batch as f64 * rate).floor() as i64).clamp(0, batch)
}

/// The RGB injector, Eq. 9-14.
#[derive(Debug)]
pub struct RgbInjector {
    guided: AudioGuidedAttention,
    /// Eq. 12's Linear over the tiled map: k·C → C.
    tiled: nn::Linear,
    attention: SelfAttention,
    residual: bool,
}

impl RgbInjector {
    pub fn new(vs: &nn::Path, config: &ModelConfig) -> RgbInjector {
        let channels = config.visual_channels();
        RgbInjector {
            guided: AudioGuidedAttention::new(&(vs / "guided"), channels, config.model_dim, config.attention_dim),
            tiled: nn::linear(vs / "tiled", config.visual_positions() * channels, channels, Default::default()),
            attention: SelfAttention::new(&(vs / "attention"), channels, config.injector_heads),
            residual: config.injector_residual,
        }
    }

    /// `feature_map` [B, T, k, C] and the audio features [B, T, D] →
    /// `f_inj` [B, T, C]. The first `without_audio` clips are projected from
    /// their tiled map (Eq. 12), the others attended with their audio
    /// (Eq. 11); `audio` may be `None` only when every clip goes without.
    /// The paper concatenates the two parts the other way round (Eq. 13);
    /// keeping the batch's order spares the caller a permutation of targets.
    pub fn forward(&self, feature_map: &Tensor, audio: Option<&Tensor>, without_audio: i64) -> Tensor {
        let size = feature_map.size();
        let (batch, time, positions, channels) = (size[0], size[1], size[2], size[3]);
        assert!((0..=batch).contains(&without_audio), "without_audio {without_audio} of {batch} clips");
        let mut parts = Vec::with_capacity(2);
        if without_audio > 0 {
            let tiled = feature_map.narrow(0, 0, without_audio).reshape([without_audio, time, positions * channels]);
            parts.push(tiled.apply(&self.tiled));
        }
        let with_audio = batch - without_audio;
        if with_audio > 0 {
            let audio = audio.expect("audio features for the clips the gate lets through");
            let visual = feature_map.narrow(0, without_audio, with_audio).reshape([-1, positions, channels]);
            let audio = audio.narrow(0, without_audio, with_audio).reshape([with_audio * time, -1]);
            parts.push(self.guided.forward(&visual, &audio).view([with_audio, time, channels]));
        }
        let injected = Tensor::cat(&parts, 0);
        // Eq. 14, no dropout (the gate is this block's regulariser), its input
        // added back as a transformer layer does: the attention averages over
        // time, and without the residual training often settled where it
        // averaged away the frame-to-frame changes the audio brings, leaving
        // Eq. 15's differences of f_inj nothing of the music (README, "The MuDaR model").
        let attended = self.attention.forward(&injected, 0.0, false);
        if self.residual { attended + injected } else { attended }
    }
}
