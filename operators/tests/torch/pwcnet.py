"""Independent PyTorch PWC-Net (PWC-DC) for operators/tests/pwcnet_torch.rs.

Written for the test in the layout of NVlabs' PyTorch port (its state_dict is
an NVlabs checkpoint), with its own cost volume (unfold) and warping (explicit
bilinear gather), so that it shares no code path with the Rust network but
libtorch's convolutions.

usage: pwcnet.py DIR — writes into DIR:
  nvlabs.pth.tar      {"epoch", "state_dict"} with random weights (fixed seed)
  sniklaus.pytorch    the same weights under sniklaus/pytorch-pwc's names
  wrong_shape.pth     a state_dict with one tensor of the wrong shape
  cases.safetensors   per case k: case{k}.first, .second (RGB [B,3,H,W] in
                      [0,1]), .flow (pixels at the input size), .features6
"""

import math
import os
import re
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../scripts"))
from convert_pwcnet import write_safetensors  # noqa: E402

RANGE = 4


def conv(c_in, c_out, stride=1, dilation=1):
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, dilation, dilation), nn.LeakyReLU(0.1))


def correlation(a, b):
    """Mean over channels of a(x)·b(x+d), d in [-4,4]^2, row-major in (dy, dx)."""
    n, c, h, w = a.shape
    side = 2 * RANGE + 1
    patches = F.unfold(F.pad(b, [RANGE] * 4), kernel_size=side).view(n, c, side * side, h, w)
    return (patches * a.unsqueeze(2)).sum(1) / c


def warp(x, flow):
    """x sampled at p + flow(p) by hand: bilinear, zero where any corner used is outside."""
    n, c, h, w = x.shape
    gy, gx = torch.meshgrid(torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype), indexing="ij")
    px, py = gx + flow[:, 0], gy + flow[:, 1]
    x0, y0 = px.floor(), py.floor()
    out = torch.zeros_like(x)
    coverage = torch.zeros_like(px)
    for dx in (0, 1):
        for dy in (0, 1):
            cx, cy = x0 + dx, y0 + dy
            weight = (1 - (px - cx).abs()) * (1 - (py - cy).abs())
            valid = (cx >= 0) & (cx <= w - 1) & (cy >= 0) & (cy <= h - 1)
            weight = weight * valid
            index = (cy.clamp(0, h - 1) * w + cx.clamp(0, w - 1)).long().view(n, 1, h * w).expand(n, c, h * w)
            out += x.view(n, c, h * w).gather(2, index).view(n, c, h, w) * weight.unsqueeze(1)
            coverage += weight
    return out * (coverage >= 0.999).unsqueeze(1)


class PwcDcNet(nn.Module):
    def __init__(self):
        super().__init__()
        chans = [3, 16, 32, 64, 96, 128, 196]
        for l in range(1, 6):
            setattr(self, f"conv{l}a", conv(chans[l - 1], chans[l], 2))
            setattr(self, f"conv{l}aa", conv(chans[l], chans[l]))
            setattr(self, f"conv{l}b", conv(chans[l], chans[l]))
        self.conv6aa, self.conv6a, self.conv6b = conv(128, 196, 2), conv(196, 196), conv(196, 196)
        growth = [128, 128, 96, 64, 32]
        for l in range(6, 1, -1):
            od = 81 if l == 6 else 81 + chans[l] + 4
            for i, g in enumerate(growth):
                setattr(self, f"conv{l}_{i}", conv(od, g))
                od += g
            setattr(self, f"predict_flow{l}", nn.Conv2d(od, 2, 3, 1, 1))
            setattr(self, f"deconv{l}", nn.ConvTranspose2d(2, 2, 4, 2, 1))
            if l > 2:
                setattr(self, f"upfeat{l}", nn.ConvTranspose2d(od, 2, 4, 2, 1))
        dc = [(od, 128, 1), (128, 128, 2), (128, 128, 4), (128, 96, 8), (96, 64, 16), (64, 32, 1)]
        for i, (c_in, c_out, d) in enumerate(dc, start=1):
            setattr(self, f"dc_conv{i}", conv(c_in, c_out, 1, d))
        self.dc_conv7 = nn.Conv2d(32, 2, 3, 1, 1)

    def pyramid(self, im):
        feats, x = [], im
        for l in range(1, 7):
            names = ["aa", "a", "b"] if l == 6 else ["a", "aa", "b"]
            for s in names:
                x = getattr(self, f"conv{l}{s}")(x)
            feats.append(x)
        return feats

    def forward(self, im1, im2):
        c1, c2 = self.pyramid(im1), self.pyramid(im2)
        up_flow = up_feat = None
        for l in range(6, 1, -1):
            if up_flow is None:
                x = F.leaky_relu(correlation(c1[5], c2[5]), 0.1)
            else:
                warped = warp(c2[l - 1], up_flow * 20.0 / 2**l)
                x = torch.cat([F.leaky_relu(correlation(c1[l - 1], warped), 0.1), c1[l - 1], up_flow, up_feat], 1)
            for i in range(5):
                x = torch.cat([getattr(self, f"conv{l}_{i}")(x), x], 1)
            flow = getattr(self, f"predict_flow{l}")(x)
            if l > 2:
                up_flow, up_feat = getattr(self, f"deconv{l}")(flow), getattr(self, f"upfeat{l}")(x)
        refined = x
        for i in range(1, 7):
            refined = getattr(self, f"dc_conv{i}")(refined)
        return flow + self.dc_conv7(refined)


def estimate(net, rgb1, rgb2):
    """The public scripts' inference: BGR, resize to multiples of 64, x20, resize back."""
    h, w = rgb1.shape[2:]
    h64, w64 = math.ceil(h / 64) * 64, math.ceil(w / 64) * 64
    prep = [F.interpolate(im.flip(1), size=(h64, w64), mode="bilinear", align_corners=False) for im in (rgb1, rgb2)]
    flow = 20.0 * F.interpolate(net(*prep), size=(h, w), mode="bilinear", align_corners=False)
    return torch.cat([flow[:, :1] * (w / w64), flow[:, 1:] * (h / h64)], 1), net.pyramid(rgb1.flip(1))[5]


def sniklaus_key(key):
    """sniklaus/pytorch-pwc's name (as in its downloaded files) for an NVlabs key."""
    ordinal = ["", "One", "Two", "Thr", "Fou", "Fiv", "Six"]
    module, rest = key.split(".", 1)
    param = key.rsplit(".", 1)[1]
    table = {f"conv{l}{s}": f"moduleExtractor.module{ordinal[l]}.{2 * i}" for l in range(1, 6) for i, s in enumerate(["a", "aa", "b"])}
    table.update({f"conv6{s}": f"moduleExtractor.moduleSix.{2 * i}" for i, s in enumerate(["aa", "a", "b"])})
    for l in range(2, 7):
        table.update({f"conv{l}_{i}": f"module{ordinal[l]}.module{ordinal[i + 1]}.0" for i in range(5)})
        table[f"predict_flow{l}"] = f"module{ordinal[l]}.moduleSix.0"
        table[f"deconv{l}"] = f"module{ordinal[l - 1]}.moduleUpflow"
        table[f"upfeat{l}"] = f"module{ordinal[l - 1]}.moduleUpfeat"
    table.update({f"dc_conv{i}": f"moduleRefiner.moduleMain.{2 * (i - 1)}" for i in range(1, 8)})
    return f"{table[module]}.{param}"


def main():
    out = sys.argv[1]
    torch.manual_seed(20180618)
    net = PwcDcNet().eval()
    # Random weights that keep every part of the network visible in the flow:
    # pyramid features of order 1 (a 1% error in the cost volume moves the
    # flow by 0.2 px) and flows of a few pixels, so the warps sample inside.
    with torch.no_grad():
        for name, m in net.named_modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="leaky_relu", a=0.1)
                nn.init.uniform_(m.bias, -0.01, 0.01)
                if re.fullmatch(r"conv\d(a|aa|b)\.0", name):
                    m.weight.mul_(1.3)
        for name in [f"predict_flow{l}" for l in range(2, 7)] + ["dc_conv7"]:
            getattr(net, name).weight.mul_(0.01)
    state = net.state_dict()
    torch.save({"epoch": 0, "state_dict": state}, f"{out}/nvlabs.pth.tar")
    # sniklaus' decoder 2 has no upsampling layers: NVlabs' unused deconv2 has no counterpart.
    torch.save({sniklaus_key(k): v for k, v in state.items() if not k.startswith("deconv2.")}, f"{out}/sniklaus.pytorch")
    wrong = dict(state)
    wrong["conv3_1.0.weight"] = wrong["conv3_1.0.weight"][:, :-1]
    torch.save(wrong, f"{out}/wrong_shape.pth")

    def textured(n, h, w):
        # Smooth random images, and the second one a shifted copy with noise.
        base = F.interpolate(torch.rand(n, 3, h // 4 + 4, w // 4 + 4), size=(h + 16, w + 16), mode="bicubic")
        return base[:, :, 8 : 8 + h, 8 : 8 + w].clamp(0, 1), base[:, :, 6 : 6 + h, 9 : 9 + w].clamp(0, 1)

    cases = {}
    for k, (n, h, w) in enumerate([(2, 128, 128), (1, 75, 100), (3, 97, 130)]):
        first, second = textured(n, h, w)
        with torch.no_grad():
            flow, features6 = estimate(net, first, second)
        cases.update({f"case{k}.first": first, f"case{k}.second": second, f"case{k}.flow": flow})
        cases[f"case{k}.features6"] = features6
    write_safetensors(cases, f"{out}/cases.safetensors")


if __name__ == "__main__":
    main()
