"""Independent PyTorch MuDaR losses for operators/tests/losses_torch.rs.

The focal loss is written as torchvision's sigmoid_focal_loss is (binary
cross-entropy with logits times (1 - p_t)^gamma, weighted by alpha_t), the
triplet loss with explicit clamping, so neither shares a formula with the
Rust code. Writes DIR/losses.safetensors: random inputs, the three losses,
and the gradients of the joint loss with respect to every input.

usage: losses.py DIR
"""

import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../scripts"))
from convert_pwcnet import write_safetensors  # noqa: E402

MARGIN, ALPHA, GAMMA, LAMBDA_IM, LAMBDA_EX = 0.5, 0.25, 2.0, 1.0, 0.5


def main(out):
    torch.manual_seed(19)
    visual = torch.randn(7, 16, dtype=torch.float64, requires_grad=True)
    positive = torch.randn(7, 16, dtype=torch.float64, requires_grad=True)
    negative = torch.randn(7, 16, dtype=torch.float64, requires_grad=True)
    # Confident and unsure predictions, rhythm frames about one in five.
    logits = (torch.randn(3, 20, dtype=torch.float64) * 4).requires_grad_()
    targets = (torch.rand(3, 20) < 0.2).to(torch.float64)

    d_pos = ((visual - positive) ** 2).sum(dim=1)
    d_neg = ((visual - negative) ** 2).sum(dim=1)
    triplet = torch.clamp(d_pos - d_neg + MARGIN, min=0.0).sum()

    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    alpha_t = ALPHA * targets + (1 - ALPHA) * (1 - targets)
    focal = alpha_t * ce * (1 - p_t) ** GAMMA

    joint = LAMBDA_IM * triplet + LAMBDA_EX * focal.mean()
    joint.backward()
    tensors = {
        "visual": visual, "positive": positive, "negative": negative, "logits": logits, "targets": targets,
        "triplet": triplet, "focal": focal, "joint": joint,
        "grad_visual": visual.grad, "grad_positive": positive.grad, "grad_negative": negative.grad,
        "grad_logits": logits.grad,
    }
    write_safetensors({k: v.detach().float() for k, v in tensors.items()}, f"{out}/losses.safetensors")


if __name__ == "__main__":
    main(sys.argv[1])
