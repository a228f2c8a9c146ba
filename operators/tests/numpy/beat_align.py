"""The two Beat Align Scores as their papers' code computes them, ported to NumPy
with times in seconds (beat_align_numpy.rs writes the cases).

    python beat_align.py DIR

Bailando (Siyao et al. 2022, utils/metrics_new.py `BA`): for each music beat,
exp(-min((motion_beats - beat)**2) / 2 / sigma**2), averaged over music beats.
AIST++/FACT (Li et al. 2021, `calc_beat_align`): for each motion beat, the same
kernel to the nearest music beat, averaged over motion beats. Either is
undefined (None) when a set is empty: the originals divide by zero or take the
minimum of nothing there.

DIR/cases.json: [{"name", "music", "motion", "sigma"}]; writes DIR/scores.json:
{name: [music_to_motion, motion_to_music]}.
"""

import json
import sys
from pathlib import Path

import numpy as np


def bailando_ba(music_beats, motion_beats, sigma):
    if len(music_beats) == 0 or len(motion_beats) == 0:
        return None
    motion_beats = np.asarray(motion_beats, dtype=np.float64)
    ba = 0.0
    for bb in music_beats:
        ba += np.exp(-np.min((motion_beats - bb) ** 2) / 2 / sigma**2)
    return float(ba / len(music_beats))


def fact_beat_align(motion_beats, music_beats, sigma):
    if len(music_beats) == 0 or len(motion_beats) == 0:
        return None
    music_beats = np.asarray(music_beats, dtype=np.float64)
    score_all = [np.exp(-np.min((music_beats - mb) ** 2) / (2 * sigma**2)) for mb in motion_beats]
    return float(np.mean(score_all))


def main(folder):
    cases = json.loads((folder / "cases.json").read_text())
    scores = {
        c["name"]: [bailando_ba(c["music"], c["motion"], c["sigma"]), fact_beat_align(c["motion"], c["music"], c["sigma"])]
        for c in cases
    }
    (folder / "scores.json").write_text(json.dumps(scores))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
