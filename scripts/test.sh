#!/usr/bin/env bash
# The whole test suite: installs what is missing (with the Python packages the
# tests compare against: librosa, and pyarrow, DuckDB, polars reading the
# feature store), then builds and runs every test of the workspace (unit,
# integration, doc tests, examples and benchmarks in test mode). Without
# arguments it then runs the README's main job (scripts/demo.sh) on the tests'
# build, so a demo that no longer runs fails too; arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh --test
. scripts/env.sh
cargo test --workspace --all-targets --locked "$@"
cargo test --workspace --doc --locked
if [[ $# -eq 0 ]]; then
    bash scripts/demo.sh --dev
fi
