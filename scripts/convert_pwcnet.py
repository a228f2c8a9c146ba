"""Converts a public PWC-Net checkpoint into the safetensors file that
`mudar flow --backend pwcnet --weights FILE` (and `PwcNet::load`) reads.

usage: .venv/bin/python scripts/convert_pwcnet.py CHECKPOINT OUT.safetensors

Understands the two public PyTorch releases of PWC-Net (PWC-DC):
- NVlabs/PWC-Net (`pwc_net.pth.tar`, `pwc_net_chairs.pth.tar`): a dict
  holding a `state_dict`, names `conv1a.0.weight`, `conv6_0.0.weight`,
  `predict_flow6.weight`, `deconv6.weight`, `upfeat6.weight`, `dc_conv1.0.weight`...
- sniklaus/pytorch-pwc (`network-default.pytorch`, ...): a state_dict with
  names `moduleExtractor.moduleOne.0.weight`, `moduleSix.moduleUpflow.weight`...
  (or `net...`, as its run.py renames them).
A `module.` prefix (from DataParallel) is ignored. Every tensor is checked
against the shapes of mudar's network; any mismatch is an error naming it.
"""

import json
import re
import struct
import sys

import torch

PYRAMID_CHANNELS = [16, 32, 64, 96, 128, 196]
DENSE_CHANNELS = [128, 128, 96, 64, 32]
CONTEXT_LAYERS = [128, 128, 128, 96, 64, 32]
COST_CHANNELS = 81  # (2 * 4 + 1)^2
ORDINALS = ["One", "Two", "Thr", "Fou", "Fiv", "Six"]


def expected_shapes():
    """Name -> shape of every tensor in mudar's PwcNet (operators/src/motion/pwcnet)."""
    shapes = {}

    def conv(name, c_in, c_out, k=3):
        shapes[f"{name}.weight"] = [c_out, c_in, k, k]
        shapes[f"{name}.bias"] = [c_out]

    c_in = 3
    for level, c in enumerate(PYRAMID_CHANNELS, start=1):
        for i in range(3):
            conv(f"pyramid.level{level}.conv{i}", c_in if i == 0 else c, c)
        c_in = c
    for level in range(2, 7):
        channels = COST_CHANNELS if level == 6 else COST_CHANNELS + PYRAMID_CHANNELS[level - 1] + 4
        for i, c in enumerate(DENSE_CHANNELS):
            conv(f"decoder{level}.dense{i}", channels, c)
            channels += c
        conv(f"decoder{level}.predict_flow", channels, 2)
        if level > 2:
            # ConvTranspose2d weights are [in, out, k, k].
            shapes[f"decoder{level}.upsample_flow.weight"] = [2, 2, 4, 4]
            shapes[f"decoder{level}.upsample_flow.bias"] = [2]
            shapes[f"decoder{level}.upsample_features.weight"] = [channels, 2, 4, 4]
            shapes[f"decoder{level}.upsample_features.bias"] = [2]
        if level == 2:
            context_in = channels
    for i, c in enumerate(CONTEXT_LAYERS, start=1):
        conv(f"context.conv{i}", context_in, c)
        context_in = c
    conv(f"context.conv{len(CONTEXT_LAYERS) + 1}", context_in, 2)
    return shapes


def nvlabs_name(key):
    """mudar's name for an NVlabs key, or None for a tensor the network never uses."""
    param = key.rsplit(".", 1)[1]
    if m := re.fullmatch(r"conv([1-6])(a|aa|b)\.0\.(weight|bias)", key):
        level, suffix = int(m[1]), m[2]
        # Level 6 starts with `aa` (the strided one), the others with `a`.
        order = ["aa", "a", "b"] if level == 6 else ["a", "aa", "b"]
        return f"pyramid.level{level}.conv{order.index(suffix)}.{param}"
    if m := re.fullmatch(r"conv([2-6])_([0-4])\.0\.(weight|bias)", key):
        return f"decoder{m[1]}.dense{m[2]}.{param}"
    if m := re.fullmatch(r"predict_flow([2-6])\.(weight|bias)", key):
        return f"decoder{m[1]}.predict_flow.{param}"
    if m := re.fullmatch(r"deconv([2-6])\.(weight|bias)", key):
        # deconv2 is created but never applied in NVlabs' network.
        return None if m[1] == "2" else f"decoder{m[1]}.upsample_flow.{param}"
    if m := re.fullmatch(r"upfeat([3-6])\.(weight|bias)", key):
        return f"decoder{m[1]}.upsample_features.{param}"
    if m := re.fullmatch(r"dc_conv([1-6])\.0\.(weight|bias)", key):
        return f"context.conv{m[1]}.{param}"
    if m := re.fullmatch(r"dc_conv7\.(weight|bias)", key):
        return f"context.conv7.{param}"
    raise KeyError(key)


def sniklaus_name(key):
    """mudar's name for a sniklaus/pytorch-pwc key (with `net` prefixes)."""
    param = key.rsplit(".", 1)[1]
    levels = {name: i for i, name in enumerate(ORDINALS, start=1)}
    if m := re.fullmatch(r"netExtractor\.net(\w{3})\.([024])\.(weight|bias)", key):
        return f"pyramid.level{levels[m[1]]}.conv{int(m[2]) // 2}.{param}"
    if m := re.fullmatch(r"net(\w{3})\.net(One|Two|Thr|Fou|Fiv)\.0\.(weight|bias)", key):
        return f"decoder{levels[m[1]]}.dense{levels[m[2]] - 1}.{param}"
    if m := re.fullmatch(r"net(\w{3})\.netSix\.0\.(weight|bias)", key):
        return f"decoder{levels[m[1]]}.predict_flow.{param}"
    # A decoder upsamples the flow and features of the level above it.
    if m := re.fullmatch(r"net(\w{3})\.netUp(flow|feat)\.(weight|bias)", key):
        what = "upsample_flow" if m[2] == "flow" else "upsample_features"
        return f"decoder{levels[m[1]] + 1}.{what}.{param}"
    if m := re.fullmatch(r"netRefiner\.netMain\.(\d+)\.(weight|bias)", key):
        return f"context.conv{int(m[1]) // 2 + 1}.{param}"
    raise KeyError(key)


def read_state_dict(path):
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        sys.exit(f"{path}: not a PyTorch checkpoint this torch can read safely ({e})")
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("state_dict"), dict):
        checkpoint = checkpoint["state_dict"]
    if not isinstance(checkpoint, dict) or not all(torch.is_tensor(v) for v in checkpoint.values()):
        sys.exit(f"{path}: neither a state_dict nor a dict holding one under 'state_dict'")
    return {k.removeprefix("module."): v for k, v in checkpoint.items()}


def convert(state_dict, path):
    if any(k.startswith("conv1a.") for k in state_dict):
        rename = nvlabs_name
    elif any("Extractor" in k for k in state_dict):
        state_dict = {re.sub(r"(^|\.)module", r"\1net", k): v for k, v in state_dict.items()}
        rename = sniklaus_name
    else:
        sys.exit(f"{path}: not a PWC-Net checkpoint (no NVlabs `conv1a` nor sniklaus `Extractor` tensors)")
    shapes = expected_shapes()
    converted, unknown = {}, []
    for key, tensor in state_dict.items():
        try:
            name = rename(key)
        except KeyError:
            unknown.append(key)
            continue
        if name is not None:
            converted[name] = tensor.detach().to(torch.float32).contiguous()
    problems = [f"unknown tensor {k}" for k in unknown]
    problems += [f"missing {n}" for n in shapes if n not in converted]
    problems += [
        f"{n} is {list(t.shape)}, the network needs {shapes[n]}"
        for n, t in converted.items()
        if n in shapes and list(t.shape) != shapes[n]
    ]
    if problems:
        sys.exit(f"{path}: does not fit mudar's PWC-Net (PWC-DC, search range 4):\n  " + "\n  ".join(problems))
    return converted


def write_safetensors(tensors, path, metadata=None):
    """The safetensors layout: u64 header size, JSON header, raw little-endian data."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        data = tensors[name].to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for blob in blobs:
            f.write(blob)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    source, target = sys.argv[1], sys.argv[2]
    tensors = convert(read_state_dict(source), source)
    write_safetensors(tensors, target, {"format": "mudar-pwcnet", "source": source})
    print(f"{target}: {len(tensors)} tensors from {source}")


if __name__ == "__main__":
    main()
