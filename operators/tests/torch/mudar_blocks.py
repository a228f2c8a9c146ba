"""Independent PyTorch versions of MuDaR's blocks for operators/tests/model_torch.rs.

Each block is written from the paper's equations (or taken from torch.nn where
the paper names a standard layer: nn.TransformerEncoderLayer, nn.MultiheadAttention,
nn.LSTM), runs in float64 on random weights and inputs (rounded to float32 so
both sides start from the same numbers), and is saved as two files:
BLOCK.weights.safetensors (named as the Rust VarStore names them) and
BLOCK.io.safetensors (input.*, output.*, grad.* of a scalar made from the
outputs, with respect to inputs and weights). The CRF is checked against brute
force over every tag path, so it shares no algorithm with the forward recursion.

usage: mudar_blocks.py DIR
"""

import itertools
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../scripts"))
from convert_pwcnet import write_safetensors  # noqa: E402

torch.set_default_dtype(torch.float64)


def rand(*shape, scale=1.0):
    return (torch.randn(*shape) * scale).float().double().requires_grad_()


def rounded(module):
    """Round a module's parameters to float32 values, as the Rust side will load them."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.float().double())
    return module


def save(out, block, weights, inputs, outputs, loss, probes=None):
    loss.backward()
    io = {f"input.{k}": v for k, v in inputs.items()}
    io.update({f"probe.{k}": v for k, v in (probes or {}).items()})
    io.update({f"output.{k}": v for k, v in outputs.items()})
    io.update({f"grad.{k}": v.grad for k, v in {**inputs, **weights}.items() if v.grad is not None})
    write_safetensors({k: v.detach() for k, v in weights.items()}, f"{out}/{block}.weights.safetensors")
    write_safetensors({k: v.detach() for k, v in io.items()}, f"{out}/{block}.io.safetensors")


def projection(y):
    """y and a random direction to project it on (saved as probe.y), so the
    scalar whose gradients are compared, sum(y * probe), weighs every output."""
    probe = torch.randn(*y.shape).float().double()
    return (y * probe).sum(), {"y": probe}


def transformer_layer(out):
    torch.manual_seed(1)
    layer = rounded(nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, dropout=0.0, batch_first=True))
    x = rand(2, 5, 16)
    y = layer(x)
    weights = {
        "self_attn.in_proj.weight": layer.self_attn.in_proj_weight,
        "self_attn.in_proj.bias": layer.self_attn.in_proj_bias,
        "self_attn.out_proj.weight": layer.self_attn.out_proj.weight,
        "self_attn.out_proj.bias": layer.self_attn.out_proj.bias,
        "linear1.weight": layer.linear1.weight, "linear1.bias": layer.linear1.bias,
        "linear2.weight": layer.linear2.weight, "linear2.bias": layer.linear2.bias,
        "norm1.weight": layer.norm1.weight, "norm1.bias": layer.norm1.bias,
        "norm2.weight": layer.norm2.weight, "norm2.bias": layer.norm2.bias,
    }
    save(out, "transformer", weights, {"x": x}, {"y": y}, *projection(y))


def linear_weights(prefix, i, o, bias=True):
    w = {f"{prefix}.weight": rand(o, i, scale=i ** -0.5)}
    if bias:
        w[f"{prefix}.bias"] = rand(o, scale=0.1)
    return w


def linear(w, prefix, x):
    return F.linear(x, w[f"{prefix}.weight"], w.get(f"{prefix}.bias"))


def agva_weights(prefix, channels, audio_dim, attention_dim):
    w = {}
    w.update(linear_weights(f"{prefix}channel_visual", channels, audio_dim))
    w.update(linear_weights(f"{prefix}channel_hidden", audio_dim, audio_dim))
    w.update(linear_weights(f"{prefix}channel_out", audio_dim, channels, bias=False))
    w.update(linear_weights(f"{prefix}spatial_audio", audio_dim, attention_dim))
    w.update(linear_weights(f"{prefix}spatial_visual", channels, attention_dim))
    w.update(linear_weights(f"{prefix}spatial_out", attention_dim, 1, bias=False))
    return w


def agva(w, prefix, visual, audio):
    """Eq. 5-8 written per clip-frame with explicit loops over positions and channels' sums."""
    n, k, c = visual.shape
    outputs = []
    for i in range(n):
        f_rgb, f_a = visual[i], audio[i]                       # [k, C], [D]
        u = torch.relu(linear(w, f"{prefix}channel_visual", f_rgb))  # [k, D]
        rho = sum(f_a * u[j] for j in range(k)) / k            # global average pooling
        w_c = torch.sigmoid(linear(w, f"{prefix}channel_out", torch.relu(linear(w, f"{prefix}channel_hidden", rho))))
        f_c = f_rgb * w_c                                      # Eq. 6, per channel
        a = torch.relu(linear(w, f"{prefix}spatial_audio", f_a))
        logits = torch.stack([
            linear(w, f"{prefix}spatial_out", torch.tanh(a * torch.relu(linear(w, f"{prefix}spatial_visual", f_c[j]))))[0]
            for j in range(k)
        ])
        w_s = torch.exp(logits) / torch.exp(logits).sum()      # Eq. 7's softmax over positions
        outputs.append(sum(w_s[j] * f_c[j] for j in range(k)))  # Eq. 8
    return torch.stack(outputs)


def guided_attention(out):
    torch.manual_seed(2)
    channels, audio_dim, attention_dim, n, k = 12, 8, 6, 5, 4
    w = agva_weights("", channels, audio_dim, attention_dim)
    visual, audio = rand(n, k, channels), rand(n, audio_dim)
    y = agva(w, "", visual, audio)
    save(out, "guided", w, {"visual": visual, "audio": audio}, {"y": y}, *projection(y))


def injector(out):
    """The injector at the pyramid's 196 channels and 2x2 positions (128x128 frames)."""
    torch.manual_seed(3)
    channels, audio_dim, attention_dim, heads, b, t, k = 196, 8, 6, 4, 3, 4, 4
    w = agva_weights("guided.", channels, audio_dim, attention_dim)
    w.update(linear_weights("tiled", k * channels, channels))
    mha = rounded(nn.MultiheadAttention(channels, heads, batch_first=True))
    w.update({
        "attention.in_proj.weight": mha.in_proj_weight, "attention.in_proj.bias": mha.in_proj_bias,
        "attention.out_proj.weight": mha.out_proj.weight, "attention.out_proj.bias": mha.out_proj.bias,
    })
    feature_map, audio = rand(b, t, k, channels), rand(b, t, audio_dim)
    without = 1  # Eq. 9-10 with b = 3, p = 1/3: clip 0 goes without audio.
    tiled = linear(w, "tiled", feature_map[:without].reshape(without, t, k * channels))           # Eq. 12
    guided = agva(w, "guided.", feature_map[without:].reshape(-1, k, channels),
                  audio[without:].reshape(-1, audio_dim)).reshape(b - without, t, channels)     # Eq. 11
    joined = torch.cat([tiled, guided])                                                         # Eq. 13
    y = joined + mha(joined, joined, joined)[0]                         # Eq. 14, its input added back
    save(out, "injector", w, {"feature_map": feature_map, "audio": audio}, {"y": y}, *projection(y))


def estimator_features(w, hoof, injected):
    diff = lambda x: torch.cat([torch.zeros_like(x[:, :1]), x[:, 1:] - x[:, :-1]], 1)  # noqa: E731
    return torch.cat([torch.relu(linear(w, "motion", diff(hoof))), torch.relu(linear(w, "injected", diff(injected)))], 2)


def estimator(out):
    torch.manual_seed(4)
    bins, channels, r, b, t = 6, 196, 5, 2, 7
    w = {**linear_weights("motion", bins, r), **linear_weights("injected", channels, r), **linear_weights("classifier", 2 * r, 1)}
    hoof, injected = rand(b, t, bins), rand(b, t, channels)
    onsets = (torch.rand(b, t) < 0.3).double()
    logits = linear(w, "classifier", estimator_features(w, hoof, injected)).squeeze(-1)  # Eq. 15 before σ
    p = torch.sigmoid(logits)
    alpha, gamma = 0.25, 2.0
    p_t = torch.where(onsets == 1, p, 1 - p)
    alpha_t = torch.where(onsets == 1, alpha, 1 - alpha)
    focal = (-alpha_t * (1 - p_t) ** gamma * torch.log(p_t)).mean()  # Eq. 19, averaged over frames
    save(out, "estimator", w, {"hoof": hoof, "injected": injected, "onsets": onsets},
         {"logits": logits, "focal": focal}, focal)


def path_score(emissions, tags, start, transitions, end):
    s = start[tags[0]] + emissions[0, tags[0]] + end[tags[-1]]
    for i in range(1, len(tags)):
        s = s + transitions[tags[i - 1], tags[i]] + emissions[i, tags[i]]
    return s


def crf(out):
    torch.manual_seed(5)
    bins, channels, r, b, t = 4, 196, 3, 2, 6
    w = {**linear_weights("motion", bins, r), **linear_weights("injected", channels, r)}
    lstm = rounded(nn.LSTM(2 * r, r, batch_first=True, bidirectional=True))
    for name, p in lstm.named_parameters():
        w[f"lstm.{name}"] = p
    w.update(linear_weights("emissions", 2 * r, 2))
    w["crf.start"], w["crf.transitions"], w["crf.end"] = rand(2), rand(2, 2), rand(2)
    hoof, injected = rand(b, t, bins), rand(b, t, channels)
    onsets = (torch.rand(b, t) < 0.4).long()
    emissions = linear(w, "emissions", lstm(estimator_features(w, hoof, injected))[0])
    paths = list(itertools.product([0, 1], repeat=t))
    nll, best = [], []
    for i in range(b):
        scores = torch.stack([path_score(emissions[i], p, w["crf.start"], w["crf.transitions"], w["crf.end"]) for p in paths])
        tagged = path_score(emissions[i], onsets[i].tolist(), w["crf.start"], w["crf.transitions"], w["crf.end"])
        nll.append(torch.logsumexp(scores, 0) - tagged)
        best.append(torch.tensor(paths[int(scores.argmax())], dtype=torch.float64))
    loss = torch.stack(nll).mean() / t
    save(out, "crf", w, {"hoof": hoof, "injected": injected, "onsets": onsets.double()},
         {"emissions": emissions, "loss": loss, "viterbi": torch.stack(best)}, loss)


def main(out):
    transformer_layer(out)
    guided_attention(out)
    injector(out)
    estimator(out)
    crf(out)


if __name__ == "__main__":
    main(sys.argv[1])
