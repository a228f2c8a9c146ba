"""The Python pipeline a researcher would write today for what `mudar extract`
computes, for mudar's end-to-end benchmark (benches/benches/extract.rs).

    python reference_pipeline.py FILE... [--workers N] [--out DIR]

Per file: PyAV decode (audio resampled to 16 kHz mono float; video frames
picked by timestamp at 8 fps, stretched to 256x256 RGB), librosa
`onset_strength` + `onset_detect` on the whole audio (hop 512), librosa tempo,
onsets and `beat_track` on the paper's 8 s middle clip, OpenCV's
`DISOpticalFlow` (MEDIUM preset) between consecutive grey frames, NumPy HOOF
(30 bins, magnitude-weighted, as operators/tests/numpy/hoof.py), motion
energy, directogram visual beats and the Beat Align Score in NumPy; the
per-frame and per-clip results go to Parquet with pyarrow (DIR, or a
temporary folder removed at the end). `--workers N` runs N processes over the
files (`multiprocessing.Pool`); 1 runs them in this process.

Prints one JSON object: "seconds" (wall time, excluding the imports and a
warm-up that compiles librosa's Numba kernels before the clock starts), "media_seconds"
(total input duration), "files", "workers", "peak_rss_mib" (this process's
peak RSS plus N times the largest worker's, from getrusage: an upper bound on
the processes' total, counting shared pages once per process),
"parent_rss_mib" and "worker_rss_mib".

Needs `pip install av opencv-python-headless` in the project's .venv (neither
is in the requirements files); run it single-threaded (OMP/OPENBLAS/MKL/
NUMBA_NUM_THREADS=1), as the benchmark does.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402 (the thread counts must be set before NumPy loads)
import json  # noqa: E402
import multiprocessing  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import av  # noqa: E402
import cv2  # noqa: E402
import librosa  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

SR = 16_000
HOP = 512
FPS = 8
SIZE = 256
BINS = 30
DIRECTOGRAM_BINS = 64
CLIP_S = 8.0
SIGMA_S = 0.05


def decode(path):
    """Audio as 16 kHz mono float32 and RGB frames at FPS, SIZE x SIZE, with their times."""
    chunks, frames, times = [], [], []
    with av.open(str(path)) as container:
        streams = [s for s in (container.streams.audio[:1] + container.streams.video[:1])]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SR)
        next_k = 0
        for frame in container.decode(*streams):
            if isinstance(frame, av.AudioFrame):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            elif frame.time is not None and frame.time >= next_k / FPS - 1e-6:
                # The frame shown at k / FPS: the first one at or after it.
                rgb = frame.to_ndarray(format="rgb24")
                frames.append(cv2.resize(rgb, (SIZE, SIZE), interpolation=cv2.INTER_AREA))
                times.append(next_k / FPS)
                while next_k / FPS <= frame.time + 1e-6:
                    next_k += 1
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    y = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    return y, frames, np.asarray(times)


def hoof(flow, bins):
    u = flow[..., 0].astype(np.float64).ravel()
    v = flow[..., 1].astype(np.float64).ravel()
    magnitude = np.hypot(u, v)
    index = np.clip(np.floor((np.arctan2(v, u) + np.pi) / (2 * np.pi) * bins), 0, bins - 1).astype(int)
    histogram = np.bincount(index, weights=magnitude, minlength=bins)
    total = histogram.sum()
    normalized = histogram / total if total > 0 else histogram
    return normalized, histogram / magnitude.size, magnitude.mean()


def visual_beats(impact):
    peak = impact.max() if impact.size else 0.0
    if peak <= 0:
        return np.zeros(0, dtype=int)
    w = round(0.2 * FPS)
    a = round(0.25 * FPS)
    return librosa.util.peak_pick(impact / peak, pre_max=w, post_max=w, pre_avg=a, post_avg=a, delta=0.1, wait=w - 1)


def extract(path, out):
    y, frames, frame_times = decode(path)
    duration = len(y) / SR
    name = Path(path).name

    # Music: onset envelope and onsets of the whole track.
    envelope = librosa.onset.onset_strength(y=y, sr=SR, hop_length=HOP)
    onsets = librosa.onset.onset_detect(onset_envelope=envelope, sr=SR, hop_length=HOP)
    is_onset = np.zeros(len(envelope), dtype=bool)
    is_onset[onsets] = True
    pq.write_table(
        pa.table(
            {
                "input": [str(path)] * len(envelope),
                "frame": np.arange(len(envelope), dtype=np.int64),
                "time_s": librosa.frames_to_time(np.arange(len(envelope)), sr=SR, hop_length=HOP),
                "onset_envelope": envelope.astype(np.float32),
                "onset": is_onset,
            }
        ),
        out / f"{name}.audio_frames.parquet",
    )

    # Dance: DIS flow between consecutive frames, HOOF, motion energy, directogram impacts.
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    hoofs, energy, directograms = [], [], []
    for i0, i1 in zip(grey, grey[1:]):
        flow = dis.calc(i0, i1, None)
        h, _, m = hoof(flow, BINS)
        _, d, _ = hoof(flow, DIRECTOGRAM_BINS)
        hoofs.append(h.astype(np.float32))
        energy.append(m)
        directograms.append(d)
    d = np.asarray(directograms).reshape(-1, DIRECTOGRAM_BINS)
    impact = np.zeros(len(d))
    impact[1:] = np.maximum(d[:-1] - d[1:], 0).sum(axis=1)
    beats = visual_beats(impact)
    is_beat = np.zeros(len(d), dtype=bool)
    is_beat[beats] = True
    pq.write_table(
        pa.table(
            {
                "input": [str(path)] * len(d),
                "frame": np.arange(len(d), dtype=np.int64),
                "time_s": frame_times[: len(d)],
                "hoof": pa.FixedSizeListArray.from_arrays(
                    pa.array(np.concatenate(hoofs) if hoofs else np.zeros(0, np.float32)), BINS
                ),
                "motion_energy": np.asarray(energy, dtype=np.float32),
                "impact": impact.astype(np.float32),
                "visual_beat": is_beat,
            }
        ),
        out / f"{name}.video_frames.parquet",
    )

    # The paper's clip: 8 s around the middle; librosa on exactly its audio.
    start = max(0.0, (duration - CLIP_S) / 2)
    end = min(duration, start + CLIP_S)
    clip = y[int(round(start * SR)) : int(round(end * SR))]
    tempo, beat_frames = librosa.beat.beat_track(y=clip, sr=SR, hop_length=HOP)
    clip_onsets = librosa.onset.onset_detect(y=clip, sr=SR, hop_length=HOP, units="time") + start
    beat_times = librosa.frames_to_time(beat_frames, sr=SR, hop_length=HOP) + start
    # Flow t takes frame t to t + 1; its impact lands on frame t + 1.
    visual_times = frame_times[np.asarray(beats, dtype=int) + 1] if len(beats) else np.zeros(0)
    visual_times = visual_times[(visual_times >= start) & (visual_times < end)]
    in_clip = (frame_times[: len(energy)] >= start) & (frame_times[: len(energy)] < end)
    # Beat Align Score both ways: music -> motion (Bailando), motion -> music (AIST++/FACT).
    if len(beat_times) and len(visual_times):
        distance = np.abs(beat_times[:, None] - visual_times[None, :])
        to_motion = float(np.mean(np.exp(-(distance.min(axis=1) ** 2) / (2 * SIGMA_S**2))))
        to_music = float(np.mean(np.exp(-(distance.min(axis=0) ** 2) / (2 * SIGMA_S**2))))
    else:
        to_motion = to_music = None
    pq.write_table(
        pa.table(
            {
                "input": [str(path)],
                "clip": [0],
                "start_s": [start],
                "end_s": [end],
                "tempo_bpm": [float(np.atleast_1d(tempo)[0])],
                "onset_times": [clip_onsets.tolist()],
                "beat_times": [beat_times.tolist()],
                "visual_beat_times": [visual_times.tolist()],
                "mean_motion": [float(np.mean(np.asarray(energy)[in_clip])) if in_clip.any() else None],
                "beat_align_music_to_motion": [to_motion],
                "beat_align_motion_to_music": [to_music],
            }
        ),
        out / f"{name}.clips.parquet",
    )
    return duration


def init_worker():
    cv2.setNumThreads(1)


def warm_up():
    """Compiles librosa's Numba kernels (about 10 s on the first call in a
    process) before the clock starts; forked workers inherit them."""
    y = np.random.default_rng(0).standard_normal(4 * SR).astype(np.float32)
    librosa.onset.onset_detect(y=y, sr=SR, hop_length=HOP)
    librosa.beat.beat_track(y=y, sr=SR, hop_length=HOP)
    visual_beats(np.abs(y[:64]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    init_worker()
    warm_up()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        jobs = [(f, out) for f in args.files]
        if args.workers == 1:
            durations = [extract(*job) for job in jobs]
        else:
            with multiprocessing.get_context("fork").Pool(args.workers, initializer=init_worker) as pool:
                durations = pool.starmap(extract, jobs, chunksize=1)
        seconds = time.perf_counter() - start
    mib = 1 / 1024  # ru_maxrss is in KiB on Linux
    parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * mib
    worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * mib if args.workers > 1 else 0.0
    print(
        json.dumps(
            {
                "seconds": seconds,
                "media_seconds": sum(durations),
                "files": len(args.files),
                "workers": args.workers,
                "peak_rss_mib": parent + min(args.workers, len(args.files)) * worker,
                "parent_rss_mib": parent,
                "worker_rss_mib": worker,
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
