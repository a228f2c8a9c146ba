"""The PyTorch and NumPy peers of mudar's motion benchmark.

    python pytorch_motion.py SIZE THREADS BATCH... [--hoof FLOW.flo]

PWC-Net: the independent PyTorch implementation of operators/tests/torch
(eager mode, as a researcher runs sniklaus' or NVlabs' port on CPU; their CUDA
cost-volume kernels do not run on CPU, so the cost volume is unfold-based),
random weights, inference of B pairs of SIZE x SIZE. HOOF: the NumPy reference
of operators/tests/numpy on the given flow. Prints one JSON object:
{"pwcnet": {B: pairs per second}, "hoof_us": microseconds per frame}.
"""

import json
import os
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "operators/tests/torch"))
sys.path.insert(0, str(ROOT / "operators/tests/numpy"))
import hoof as numpy_hoof  # noqa: E402
import pwcnet  # noqa: E402
from timing import best  # noqa: E402


def main():
    args = sys.argv[1:]
    flo = None
    if "--hoof" in args:
        i = args.index("--hoof")
        flo = args[i + 1]
        del args[i : i + 2]
    size, threads, batches = int(args[0]), int(args[1]), [int(b) for b in args[2:]]
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = pwcnet.PwcDcNet().eval()
    result = {"pwcnet": {}}
    with torch.no_grad():
        for b in batches:
            first, second = torch.rand(b, 3, size, size), torch.rand(b, 3, size, size)
            pwcnet.estimate(net, first, second)  # warm-up
            result["pwcnet"][b] = b / best(lambda: pwcnet.estimate(net, first, second), 3 if b < 32 else 2)
    if flo:
        flow = numpy_hoof.read_flo(flo)
        result["hoof_us"] = best(lambda: numpy_hoof.hoof(flow, 30, False, 0.0), 20) * 1e6
    print(json.dumps(result))


if __name__ == "__main__":
    main()
