#!/usr/bin/env bash
# The GPU check, one command, for an offline CUDA machine that has its own PyTorch:
#   bash scripts/gpu_check.sh [--machine NAME] OUTPUT_DIR [WHEEL_DIR]
# --machine names the asv machine the results are filed under (default: $COPYBENCH_MACHINE,
# else the hostname); its CPU model, cores and GPU are recorded with it.
# Interpreter: $PYTHON, else the first of .venv/bin/python, python3, python whose torch
# sees a CUDA GPU (else the first that imports torch, which then stops at "no CUDA GPU").
# Nothing comes from the network (PIP_NO_INDEX=1): asv and its dependencies, and whichever
# of the check's other needs the interpreter lacks, install from WHEEL_DIR (default .whl;
# made by scripts/gpu_wheels.sh), copybench from this working tree without dependencies,
# all into a private folder on PYTHONPATH that is removed afterwards: the interpreter's own
# packages stay as they are.  The tree need not be a git checkout.
# Then `copybench gpu-check OUTPUT_DIR` writes versions.txt and runs the steps, each with its
# own time limit, all within COPYBENCH_GPU_DEADLINE seconds (default: its --deadline's).
# Exit status: 0 all steps ended well; 1 a step failed or ran out of time; 2 bad input,
# no usable interpreter or wheel, or no CUDA GPU (one line on stderr).
set -euo pipefail
usage="usage: bash scripts/gpu_check.sh [--machine NAME] OUTPUT_DIR [WHEEL_DIR]"
if [ "${1:-}" = --machine ]; then
  [ -n "${2:-}" ] || { echo "gpu_check: $usage" >&2; exit 2; }
  export COPYBENCH_MACHINE=$2
  shift 2
fi
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "gpu_check: $usage" >&2; exit 2; }
cd "$(dirname "$0")/.."
mkdir -p "$1"
out=$(cd "$1" && pwd)
wheels=${2:-.whl}
export PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PYTHONUNBUFFERED=1

sees_gpu='import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)'
py=${PYTHON:-}
if [ -z "$py" ]; then
  first=
  for c in .venv/bin/python python3 python; do
    command -v "$c" >/dev/null 2>&1 || continue
    rc=0; "$c" -c "$sees_gpu" 2>/dev/null || rc=$?
    [ $rc -eq 0 ] && { py=$c; break; }
    [ $rc -eq 3 ] && [ -z "$first" ] && first=$c
  done
  py=${py:-$first}
fi
if [ -z "$py" ] || ! "$py" -c 'import torch' 2>/dev/null; then
  echo "gpu_check: no Python with torch found (set PYTHON=/path/to/python)" >&2
  exit 2
fi
if [ ! -d "$wheels" ] || ! ls "$wheels"/asv-*.whl >/dev/null 2>&1; then
  echo "gpu_check: no asv wheel in $wheels (make the folder with: bash scripts/gpu_wheels.sh $wheels)" >&2
  exit 2
fi
wheels=$(cd "$wheels" && pwd)

site=$(mktemp -d "${TMPDIR:-/tmp}/copybench-gpu-site.XXXXXX")
trap 'rm -rf "$site"' EXIT
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
pip_install() {
  "$py" -m pip install -q --no-index --find-links "$wheels" --only-binary=:all: \
    --target "$site" --no-compile "$@" >>"$out/install.log" 2>&1
}
# asv always from the folder (one known version writes the results); the rest only where
# the interpreter lacks them.
need=(asv)
for pair in numpy:numpy scipy:scipy pandas:pandas matplotlib:matplotlib pytest:pytest \
  pytest_benchmark:pytest-benchmark setuptools:setuptools; do
  "$py" -c "import ${pair%%:*}" 2>/dev/null || need+=("${pair#*:}")
done
if ! pip_install "${need[@]}"; then
  echo "gpu_check: could not install ${need[*]} from $wheels without the network (see $out/install.log)" >&2
  exit 2
fi
# copybench itself: this tree, no dependencies, built with the setuptools already there.
if ! "$py" -m pip install -q --no-index --no-deps --no-build-isolation --target "$site" \
  --no-compile . >>"$out/install.log" 2>&1; then
  echo "gpu_check: could not install copybench from this tree (see $out/install.log)" >&2
  exit 2
fi
# The rest is the library's: versions.txt (what came from where), then the steps.
args=("$out" --installed "$site" --wheels "$wheels")
[ -z "${COPYBENCH_GPU_DEADLINE:-}" ] || args+=(--deadline "$COPYBENCH_GPU_DEADLINE")
# Not exec: the trap must still remove the private folder.
rc=0
"$py" -m copybench gpu-check "${args[@]}" || rc=$?
exit $rc
