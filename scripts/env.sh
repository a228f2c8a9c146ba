# Source this to build mudar by hand: it puts the project's Python (with the
# torch wheel tch links against) first on PATH. scripts/setup.sh creates it.
MUDAR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VIRTUAL_ENV="$MUDAR_ROOT/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
