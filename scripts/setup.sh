#!/usr/bin/env bash
# Set up .venv: a CPU torch and copybench with its dependencies.  Idempotent and quick when
# nothing changed.  COPYBENCH_TORCH picks the torch release for a fresh .venv (default
# 2.13.0, the CPU build; 2.14.1 is a CUDA build of about 5 GB).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
torch_version=${COPYBENCH_TORCH:-2.13.0}

if [ ! -x .venv/bin/python ]; then
  echo "copybench: creating .venv" >&2
  "$python" -m venv .venv
fi
stamp=.venv/.copybench-setup
want="$(sha256sum pyproject.toml | cut -c1-16) torch=$torch_version"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "copybench: installing torch $torch_version and copybench into .venv" >&2
  # One resolve and one install for both (the venv's own pip will do: nothing here needs
  # a newer one).
  .venv/bin/python -m pip install -q --disable-pip-version-check "torch==$torch_version" -e ".[dev]"
  echo "$want" > "$stamp"
fi
