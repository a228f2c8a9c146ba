"""NumPy reference for HOOF (paper Eq. 3-4, Chaudhry et al. 2009), written
independently of the Rust code for operators/tests/hoof_numpy.rs.

    python hoof.py DIR

Reads DIR/cases.json ([{"name", "bins", "symmetric", "min_magnitude"}]) and
DIR/NAME.flo (Middlebury), writes DIR/NAME.hoof.f32 (raw little-endian).
"""

import json
import sys
from pathlib import Path

import numpy as np


def read_flo(path):
    data = np.fromfile(path, dtype="<f4")
    assert data[0] == np.float32(202021.25), "bad .flo tag"
    w, h = np.frombuffer(data[1:3].tobytes(), dtype="<i4")
    return data[3:].reshape(h, w, 2)


def hoof(flow, bins, symmetric, min_magnitude):
    u = flow[..., 0].astype(np.float64).ravel()
    v = flow[..., 1].astype(np.float64).ravel()
    magnitude = np.hypot(u, v)
    if symmetric:
        # Mirror about the vertical axis, then B bins over [-pi/2, pi/2].
        angle = np.arctan2(v, np.abs(u))
        index = np.floor((angle + np.pi / 2) / np.pi * bins)
    else:
        angle = np.arctan2(v, u)
        index = np.floor((angle + np.pi) / (2 * np.pi) * bins)
    index = np.clip(index, 0, bins - 1).astype(int)
    keep = magnitude > min_magnitude
    histogram = np.bincount(index[keep], weights=magnitude[keep], minlength=bins)
    total = histogram.sum()
    return histogram / total if total > 0 else histogram


def main(out):
    for case in json.loads((out / "cases.json").read_text()):
        flow = read_flo(out / f"{case['name']}.flo")
        h = hoof(flow, case["bins"], case["symmetric"], case["min_magnitude"])
        h.astype("<f4").tofile(out / f"{case['name']}.hoof.f32")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
