#!/usr/bin/env bash
# The whole test suite: installs what is missing, then builds and runs every
# test of the workspace (unit, integration, doc tests, examples and benchmarks
# in test mode).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
. scripts/env.sh
cargo test --workspace --all-targets --locked "$@"
cargo test --workspace --doc --locked
