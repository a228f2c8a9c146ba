#!/usr/bin/env bash
# The main job on a sample it makes itself: installs what is missing, builds
# mudar, renders synthetic dances into ./sample (MP4, WebM, MKV, and a WAV),
# probes them, extracts a feature store and cuts each video into the paper's
# 8 s clip. `--dev` builds with the dev profile instead of release (what CI
# does after the tests, reusing their build).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
profile=(--release) out=target/release
if [[ "${1:-}" == --dev ]]; then
    profile=() out=target/debug
fi
bash scripts/setup.sh
. scripts/env.sh

echo "== building mudar" >&2
cargo build "${profile[@]}" -q -p mudar-pipeline -p mudar-examples --bins --examples
mudar=$out/mudar

echo "== rendering synthetic dances into sample/" >&2
$mudar synth --out sample --count 2 --duration 12 --format mp4
$mudar synth --out sample --seed 2 --duration 12 --format webm-vp9
$mudar synth --out sample --seed 3 --duration 12 --format mkv --swing 0.33
$mudar synth --out sample --seed 4 --duration 12 --format wav

echo "== mudar probe sample/*" >&2
$mudar probe --count-frames sample/*.mp4 sample/*.webm sample/*.mkv sample/*.wav

echo "== mudar music: librosa-equal music rhythm" >&2
$mudar music sample/*.mp4 sample/*.wav

echo "== mudar motion: flow (DIS), HOOF, model-free visual beats" >&2
$mudar motion sample/*.mp4 sample/*.webm sample/*.mkv

echo "== mudar extract: the sample into a Parquet feature store (sample-store/)" >&2
rm -rf sample-store
$mudar extract sample/*.mp4 sample/*.webm sample/*.mkv --out sample-store
ls sample-store/*/

echo "== the paper's 8 s clip of each video (examples/examples/ingest.rs)" >&2
$out/examples/ingest sample/*.mp4 sample/*.webm sample/*.mkv
