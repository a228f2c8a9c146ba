"""Times librosa 0.11 on the stages mudar's rhythm benchmark measures.

    python librosa_rhythm.py SAMPLES.f32 SR REPEATS

SAMPLES.f32 is raw little-endian f32 mono audio. Prints one JSON object:
stage -> best wall time in seconds over REPEATS runs. Run it single-threaded
(OMP/OPENBLAS/MKL/NUMBA_NUM_THREADS=1) for a fair single-thread comparison.
"""

import json
import sys

import librosa
import numpy as np
from timing import best


def full_set(y, sr):
    # What a researcher would write: one spectrogram, both envelopes from it.
    S = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr))
    env = librosa.onset.onset_strength(S=S, sr=sr)
    env_median = librosa.onset.onset_strength(S=S, sr=sr, aggregate=np.median)
    onsets = librosa.onset.onset_detect(onset_envelope=env, sr=sr)
    tempo, beats = librosa.beat.beat_track(onset_envelope=env_median, sr=sr)
    tg = librosa.feature.tempogram(onset_envelope=env, sr=sr)
    return onsets, tempo, beats, tg


def main(path, sr, repeats):
    y = np.fromfile(path, dtype="<f4")
    # Compile numba kernels before timing.
    warm = y[: sr * 4]
    librosa.beat.beat_track(y=warm, sr=sr)
    librosa.onset.onset_detect(y=warm, sr=sr)
    stages = {
        "stft": lambda: np.abs(librosa.stft(y)) ** 2,
        "mel": lambda: librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr)),
        "onset_envelope": lambda: librosa.onset.onset_strength(y=y, sr=sr),
        "onset_detect": lambda: librosa.onset.onset_detect(y=y, sr=sr),
        "beat_track": lambda: librosa.beat.beat_track(y=y, sr=sr),
        "tempogram": lambda: librosa.feature.tempogram(y=y, sr=sr),
        "full": lambda: full_set(y, sr),
    }
    print(json.dumps({name: best(fn, repeats) for name, fn in stages.items()}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
