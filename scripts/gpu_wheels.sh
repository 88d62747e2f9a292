#!/usr/bin/env bash
# The wheel folder scripts/gpu_check.sh installs from on a machine without network: asv and
# its dependencies (and setuptools, to build copybench from the tree), as binary wheels for
# CPython 3.12 on x86-64 Linux (manylinux) by default.  Run it where pip reaches an index:
#   bash scripts/gpu_wheels.sh DIR [--python-version X.Y] [PACKAGE ...]
# Extra PACKAGEs (e.g. pytest-benchmark) are added with their dependencies.
set -euo pipefail
usage="usage: bash scripts/gpu_wheels.sh DIR [--python-version X.Y] [PACKAGE ...]"
[ $# -ge 1 ] || { echo "gpu_wheels: $usage" >&2; exit 2; }
dir=$1; shift
version=3.12
extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --python-version) version=${2:?$usage}; shift 2 ;;
    -*) echo "gpu_wheels: unknown option $1; $usage" >&2; exit 2 ;;
    *) extra+=("$1"); shift ;;
  esac
done
cd "$(dirname "$0")/.."
python=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
# The asv that copybench is tested with here, where this checkout has one.
asv=asv
v=$("$python" -c 'import importlib.metadata as m; print(m.version("asv"))' 2>/dev/null) && asv="asv==$v"
mkdir -p "$dir"
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
  manylinux1_x86_64; do platforms+=(--platform "$p"); done
"$python" -m pip download -q --disable-pip-version-check --only-binary=:all: \
  --python-version "$version" --implementation cp "${platforms[@]}" -d "$dir" \
  "$asv" setuptools "${extra[@]}"
echo "gpu_wheels: $(ls "$dir"/*.whl | wc -l) wheels for CPython $version in $dir ($(du -sh "$dir" | cut -f1))"
