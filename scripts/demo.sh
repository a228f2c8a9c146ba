#!/usr/bin/env bash
# The main job on a sample it makes itself: installs what is missing, builds
# mudar, renders synthetic dances into ./sample (MP4, WebM, MKV, and a WAV),
# probes them, extracts a feature store, cuts each video into the paper's 8 s
# clip, and ingests a live feed: one of the dances streamed as MPEG-TS over UDP
# on loopback for 12 s, committed every 2 s while it plays. `--dev` builds with the dev profile instead of release (what CI
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

echo "== mudar extract on a live feed: a dance streamed over UDP on loopback (sample-live/)" >&2
rm -rf sample-live
port=$((20000 + RANDOM % 20000))
dance=$(ls sample/*.mp4 | head -n 1)
gst-launch-1.0 -q filesrc location="$dance" ! decodebin name=d \
    d. ! queue ! videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=24 ! h264parse config-interval=-1 \
    ! mpegtsmux alignment=7 name=mux ! udpsink host=127.0.0.1 port=$port sync=true \
    d. ! queue ! audioconvert ! avenc_aac ! aacparse ! mux. &
sender=$!
$mudar extract udp://127.0.0.1:$port --out sample-live --commit-interval 2 &
ingest=$!
wait $sender
sleep 1
kill -TERM $ingest
wait $ingest
ls sample-live/*/
