//! Multi-head self-attention and the transformer encoder layer (Vaswani et
//! al. 2017), over the time axis of [B, T, D] sequences: the K layers of
//! each modality in the implicit pathway (paper Sec. 3.2) and the injector's
//! attention (Eq. 14).

use tch::{Kind, Tensor, nn};

/// Scaled dot-product attention of `heads` heads, queries, keys and values
/// all from the same sequence. Weights `in_proj` ([3D, D]: query, key, value
/// rows in that order, as PyTorch's `nn.MultiheadAttention` stores them) and
/// `out_proj`.
#[derive(Debug)]
pub struct SelfAttention {
    in_proj: nn::Linear,
    out_proj: nn::Linear,
    heads: i64,
}

impl SelfAttention {
    pub fn new(vs: &nn::Path, dim: i64, heads: i64) -> SelfAttention {
        assert!(dim % heads == 0, "dimension {dim} is not a multiple of {heads} heads");
        SelfAttention {
            in_proj: nn::linear(vs / "in_proj", dim, 3 * dim, Default::default()),
            out_proj: nn::linear(vs / "out_proj", dim, dim, Default::default()),
            heads,
        }
    }

    /// `x` [B, T, D] → [B, T, D]; `dropout` on the attention weights when training.
    pub fn forward(&self, x: &Tensor, dropout: f64, train: bool) -> Tensor {
        let (batch, time, dim) = x.size3().expect("a [B, T, D] sequence");
        let head_dim = dim / self.heads;
        let qkv = x.apply(&self.in_proj).view([batch, time, 3, self.heads, head_dim]).permute([2, 0, 3, 1, 4]);
        let (query, key, value) = (qkv.get(0), qkv.get(1), qkv.get(2));
        let scores = query.matmul(&key.transpose(-2, -1)) / (head_dim as f64).sqrt();
        let weights = scores.softmax(-1, x.kind()).dropout(dropout, train);
        weights.matmul(&value).transpose(1, 2).reshape([batch, time, dim]).apply(&self.out_proj)
    }
}

/// The encoder layer of the original transformer: self-attention, then a
/// two-layer ReLU feed-forward block, each added back to its input and
/// layer-normalised (post-norm, as PyTorch's `nn.TransformerEncoderLayer`).
#[derive(Debug)]
pub struct TransformerLayer {
    attention: SelfAttention,
    norm1: nn::LayerNorm,
    linear1: nn::Linear,
    linear2: nn::Linear,
    norm2: nn::LayerNorm,
    dropout: f64,
}

impl TransformerLayer {
    pub fn new(vs: &nn::Path, dim: i64, heads: i64, feed_forward_dim: i64, dropout: f64) -> TransformerLayer {
        TransformerLayer {
            attention: SelfAttention::new(&(vs / "self_attn"), dim, heads),
            norm1: nn::layer_norm(vs / "norm1", vec![dim], Default::default()),
            linear1: nn::linear(vs / "linear1", dim, feed_forward_dim, Default::default()),
            linear2: nn::linear(vs / "linear2", feed_forward_dim, dim, Default::default()),
            norm2: nn::layer_norm(vs / "norm2", vec![dim], Default::default()),
            dropout,
        }
    }

    /// [B, T, D] → [B, T, D].
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let attended = self.attention.forward(x, self.dropout, train).dropout(self.dropout, train);
        let x = (x + attended).apply(&self.norm1);
        let hidden = x.apply(&self.linear1).relu().dropout(self.dropout, train);
        let fed = hidden.apply(&self.linear2).dropout(self.dropout, train);
        (x + fed).apply(&self.norm2)
    }
}

/// The original transformer's sinusoidal position encoding, [T, D]:
/// `sin(t / 10000^(2i/D))` in even and `cos` of the same in odd columns.
/// Attention alone does not see order, and synchronisation is about order.
pub fn sinusoidal_positions(time: i64, dim: i64, kind: Kind, device: tch::Device) -> Tensor {
    let options = (Kind::Double, device);
    let position = Tensor::arange(time, options).unsqueeze(1);
    let pair = Tensor::arange_start_step(0, dim, 2, options);
    let angle = position * (pair * (-(10000f64.ln()) / dim as f64)).exp().unsqueeze(0);
    let table = Tensor::stack(&[angle.sin(), angle.cos()], 2).view([time, -1]);
    table.narrow(1, 0, dim).to_kind(kind)
}

/// K encoder layers over a sequence with its positions added.
#[derive(Debug)]
pub struct TemporalEncoder {
    layers: Vec<TransformerLayer>,
}

impl TemporalEncoder {
    /// Layers `layer{0..K}` under `vs`.
    pub fn new(vs: &nn::Path, layers: i64, dim: i64, heads: i64, feed_forward_dim: i64, dropout: f64) -> Self {
        TemporalEncoder {
            layers: (0..layers)
                .map(|k| TransformerLayer::new(&(vs / format!("layer{k}")), dim, heads, feed_forward_dim, dropout))
                .collect(),
        }
    }

    /// [B, T, D] → [B, T, D].
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let (_, time, dim) = x.size3().expect("a [B, T, D] sequence");
        let x = x + sinusoidal_positions(time, dim, x.kind(), x.device()).unsqueeze(0);
        self.layers.iter().fold(x, |x, layer| layer.forward(&x, train))
    }
}
