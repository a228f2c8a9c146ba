"""librosa 0.11 reference outputs for the parity tests (operators/tests/librosa_parity.rs).

    python reference.py DIR

DIR/cases.json lists the cases: {"name", "sr", "samples": file of raw f32 LE, or
"loop": a sonic-pi sample loaded here with librosa.load(sr=...) (its 16 kHz
samples are written to DIR/NAME.f32 for the Rust side), and "variants"}.
For each case this writes DIR/NAME.json (discrete outputs and shapes) and raw
little-endian arrays, time-major (frame after frame):
  NAME.mel.f32 (power mel), NAME.db.f32, NAME.env.f32 (mean), NAME.envmed.f32,
  NAME.tg.f64 (tempogram, win 384), and NAME.<variant>.f32 envelopes.
DIR/melfb_SR.f32 holds the mel filterbank (128 x 1025) of each sample rate.
"""

import json
import sys
from pathlib import Path

import librosa
import numpy as np

assert librosa.__version__ == "0.11.0", f"librosa {librosa.__version__}, expected 0.11.0"

VARIANTS = {
    "max3": dict(max_size=3),
    "max4": dict(max_size=4),
    "lag2": dict(lag=2),
    "detrend": dict(detrend=True),
    "nocenter": dict(center=False),
}


def write(path, array, dtype):
    np.ascontiguousarray(np.asarray(array, dtype=dtype)).tofile(path)


def main(out):
    cases = json.loads((out / "cases.json").read_text())
    filterbanks = set()
    for case in cases:
        name, sr = case["name"], case["sr"]
        if "loop" in case:
            y, _ = librosa.load(case["loop"], sr=sr, mono=True)
            write(out / f"{name}.f32", y, "<f4")
        else:
            y = np.fromfile(out / case["samples"], dtype="<f4")
        if sr not in filterbanks:
            write(out / f"melfb_{sr}.f32", librosa.filters.mel(sr=sr, n_fft=2048), "<f4")
            filterbanks.add(sr)
        mel = librosa.feature.melspectrogram(y=y, sr=sr)
        db = librosa.power_to_db(mel)
        env = librosa.onset.onset_strength(y=y, sr=sr)
        env_median = librosa.onset.onset_strength(y=y, sr=sr, aggregate=np.median)
        onsets = librosa.onset.onset_detect(y=y, sr=sr)
        onsets_bt = librosa.onset.onset_detect(y=y, sr=sr, backtrack=True)
        tempo, beats = librosa.beat.beat_track(y=y, sr=sr)
        tempo_untrimmed, beats_untrimmed = librosa.beat.beat_track(y=y, sr=sr, trim=False)
        tempo_mean_env = librosa.feature.tempo(y=y, sr=sr)
        tg = librosa.feature.tempogram(y=y, sr=sr, win_length=384)
        write(out / f"{name}.mel.f32", mel.T, "<f4")
        write(out / f"{name}.db.f32", db.T, "<f4")
        write(out / f"{name}.env.f32", env, "<f4")
        write(out / f"{name}.envmed.f32", env_median, "<f4")
        write(out / f"{name}.tg.f64", tg.T, "<f8")
        for variant in case.get("variants", []):
            write(out / f"{name}.{variant}.f32", librosa.onset.onset_strength(y=y, sr=sr, **VARIANTS[variant]), "<f4")
        result = {
            "n_samples": int(len(y)),
            "n_frames": int(mel.shape[1]),
            "onset_frames": [int(f) for f in onsets],
            "onset_frames_backtrack": [int(f) for f in onsets_bt],
            "tempo": float(np.atleast_1d(tempo)[0]),
            "beat_frames": [int(f) for f in beats],
            "tempo_untrimmed": float(np.atleast_1d(tempo_untrimmed)[0]),
            "beat_frames_untrimmed": [int(f) for f in beats_untrimmed],
            "tempo_mean_envelope": float(np.atleast_1d(tempo_mean_env)[0]),
        }
        (out / f"{name}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
