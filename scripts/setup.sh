#!/usr/bin/env bash
# Set up .venv: a CPU torch and copybench with its dependencies, the test tools and the
# models extra (transformers, safetensors: copybench advise's real models).  Idempotent and
# quick when nothing changed.  COPYBENCH_TORCH picks the torch release for a fresh .venv (default
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
  # pip finds the torch build, as this machine's pip configuration directs (a local wheel
  # folder, a cap on the release), and only fetches it; uv installs it with everything
  # else: about 45 s in all here, where pip alone took about 2 minutes.  --compile-bytecode,
  # as pip does: where PYTHONDONTWRITEBYTECODE is set (this machine, CI) nothing else
  # ever writes the .pyc files, and every fresh process then took 9.5 s instead of 3.6 s
  # to import pandas, matplotlib, scipy and asv.
  wheels=$(mktemp -d)
  trap 'rm -rf "$wheels"' EXIT
  pip=(.venv/bin/python -m pip -q --disable-pip-version-check)
  "${pip[@]}" install uv
  "${pip[@]}" download --no-deps -d "$wheels" "torch==$torch_version"
  .venv/bin/uv pip install -q --compile-bytecode --python .venv/bin/python \
    "$wheels"/torch-*.whl -e ".[dev,models]"
  echo "$want" > "$stamp"
fi
# asv's page loads jQuery, Flot and Bootstrap from CDNs: keep copies in .venv (from the npm
# registry) so that `copybench publish` makes a site whose graphs draw offline.  Quick when
# they are there; without npm it says so and asv's page needs the network.
.venv/bin/python scripts/fetch_asv_scripts.py
