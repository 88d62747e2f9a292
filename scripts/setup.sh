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
  # torch through pip, which knows where this machine keeps its builds (pip's own
  # configuration: a local wheel folder, a cap on the release); then everything else
  # through uv: about 20 s here where pip took about 75 s.  uv leaves the installed torch
  # alone (it satisfies copybench's torch>=2.1).  --compile-bytecode, as pip does: where
  # PYTHONDONTWRITEBYTECODE is set (this machine, CI) nothing else ever writes the .pyc
  # files, and every fresh process then took 9.5 s instead of 3.6 s to import pandas,
  # matplotlib, scipy and asv.
  .venv/bin/python -m pip install -q --disable-pip-version-check "torch==$torch_version" uv
  .venv/bin/uv pip install -q --compile-bytecode --python .venv/bin/python -e ".[dev]"
  echo "$want" > "$stamp"
fi
