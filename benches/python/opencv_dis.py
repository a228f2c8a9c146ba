"""OpenCV's DISOpticalFlow on the pairs of mudar's flow benchmark.

    python opencv_dis.py DIR THREADS

DIR/pairs.json lists {"name", "width", "height"}; DIR/NAME.i0 and NAME.i1 are
raw 8-bit grey frames, DIR/NAME.flo the true flow. Prints one JSON object:
name -> {preset -> {"epe": average end-point error, "ms": best time per pair}}.
"""

import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np


def read_flo(path):
    data = np.fromfile(path, dtype="<f4")
    w, h = np.frombuffer(data[1:3].tobytes(), dtype="<i4")
    return data[3:].reshape(h, w, 2)


def main(out, threads):
    cv2.setNumThreads(threads)
    presets = {"medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST}
    results = {}
    for pair in json.loads((out / "pairs.json").read_text()):
        name, w, h = pair["name"], pair["width"], pair["height"]
        i0 = np.fromfile(out / f"{name}.i0", dtype=np.uint8).reshape(h, w)
        i1 = np.fromfile(out / f"{name}.i1", dtype=np.uint8).reshape(h, w)
        truth = read_flo(out / f"{name}.flo")
        results[name] = {}
        for preset, code in presets.items():
            dis = cv2.DISOpticalFlow_create(code)
            flow = dis.calc(i0, i1, None)
            best = min(timed(dis, i0, i1) for _ in range(5))
            epe = float(np.mean(np.linalg.norm(flow - truth, axis=2)))
            results[name][preset] = {"epe": epe, "ms": best * 1e3}
    print(json.dumps(results))


def timed(dis, i0, i1):
    start = time.perf_counter()
    dis.calc(i0, i1, None)
    return time.perf_counter() - start


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
