"""librosa.sequence.dtw on the cost matrices retarget_dtw_librosa.rs writes.

    python dtw.py DIR

DIR/cases.json: [{"name", "n", "m", "cost": row-major n*m}]; writes DIR/dtw.json:
{name: {"accumulated": row-major n*m, "path": [[i, j], ...] from (0, 0)}}.
librosa's defaults are Eq. 22's recursion: steps (1,1), (0,1), (1,0), weights 1.
"""

import json
import sys
from pathlib import Path

import librosa
import numpy as np


def main(folder):
    cases = json.loads((folder / "cases.json").read_text())
    out = {}
    for c in cases:
        cost = np.array(c["cost"], dtype=np.float64).reshape(c["n"], c["m"])
        accumulated, path = librosa.sequence.dtw(C=cost)
        out[c["name"]] = {
            "accumulated": accumulated.reshape(-1).tolist(),
            "path": [[int(i), int(j)] for i, j in path[::-1]],
        }
    (folder / "dtw.json").write_text(json.dumps(out))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
