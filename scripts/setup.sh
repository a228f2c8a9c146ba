#!/usr/bin/env bash
# Installs what mudar needs to build and run, idempotently; fast when all is there.
#   - Debian packages: GStreamer 1.22 (dev headers, plugins base/good/bad/ugly, libav, the RTSP
#     server library the live-feed tests serve from), pkg-config, and sonic-pi-samples (CC0 drum
#     loops used by tests).
#   - .venv/: a project-local Python with the PyPI torch==2.11.0 wheel, whose libtorch
#     the `tch` crate links against (LIBTORCH_USE_PYTORCH=1).
#   - with --test: the Python packages the tests compare against (scripts/requirements-test.txt).
# Prints nothing when everything is already there.
set -euo pipefail

MUDAR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TORCH_VERSION="2.11.0"

apt_packages=(
  pkg-config
  libgstreamer1.0-dev
  libgstreamer-plugins-base1.0-dev
  gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly
  gstreamer1.0-libav
  gstreamer1.0-tools
  libgstrtspserver-1.0-dev
  sonic-pi-samples
)

missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  log=$(mktemp)
  if ! { "${sudo_cmd[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" \
         apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "setup: apt-get failed (full log: $log)" >&2
    exit 1
  fi
  rm -f "$log"
fi

venv="$MUDAR_ROOT/.venv"
if ! "$venv/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  # The Linux wheel brings CUDA's libraries: 4.6 GB installed, 7.1 GB at the peak of the
  # install (measured). pip's cache would keep another 3.5 GB of wheels that nothing
  # reads again, so it is off; a CI run once ran out of disk here with it on.
  need_gb=8
  free_gb=$(df -Pk "$MUDAR_ROOT" | awk 'NR == 2 { print int($4 / 1048576) }')
  if ((free_gb < need_gb)); then
    echo "setup: torch==$TORCH_VERSION needs about $need_gb GB free beside $MUDAR_ROOT; $free_gb GB are" >&2
    exit 1
  fi
  echo "setup: installing torch==$TORCH_VERSION into $venv (a large download, once)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --no-cache-dir --disable-pip-version-check "torch==$TORCH_VERSION" >&2
fi

if [[ "${1:-}" == "--test" ]]; then
  requirements="$MUDAR_ROOT/scripts/requirements-test.txt"
  stamp="$venv/.requirements-test.sha256"
  want=$(sha256sum "$requirements" | cut -d' ' -f1)
  if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    echo "setup: installing test references ($(grep -v '^#' "$requirements" | tr '\n' ' '))" >&2
    "$venv/bin/pip" install -q --no-cache-dir --disable-pip-version-check -r "$requirements" >&2
    echo "$want" >"$stamp"
  fi
fi
