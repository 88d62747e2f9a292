#!/usr/bin/env bash
# The GPU check, one command: the CUDA tests and a short asv run of the CUDA subset, with
# the results, a report and the README's GPU figures written under OUTPUT_DIR.
#   bash scripts/gpu_check.sh OUTPUT_DIR
# Needs a CUDA build of torch in .venv (COPYBENCH_TORCH=2.14.1 bash scripts/setup.sh).
set -euo pipefail
out=${1:?usage: scripts/gpu_check.sh OUTPUT_DIR}
cd "$(dirname "$0")/.."
mkdir -p "$out"
out=$(cd "$out" && pwd)
py=.venv/bin/python
if ! $py -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "gpu_check: no CUDA GPU visible to .venv's torch" >&2
  exit 2
fi
$py -c 'import torch; print("GPU:", torch.cuda.get_device_name(0), "| torch", torch.__version__, "| CUDA", torch.version.cuda, "| GPUs:", torch.cuda.device_count())' | tee "$out/device.txt"

$py -m pytest -q tests/test_cuda.py tests/test_semantics.py --junitxml="$out/cuda-tests.xml" | tee "$out/cuda-tests.txt"

# asv with this interpreter, results under $out.
conf=$($py -c 'import pathlib, sys; from copybench.asvrun import config_copy; o = pathlib.Path(sys.argv[1]); print(config_copy(pathlib.Path.cwd(), o / "results", o / "html", o))' "$out")
$py -m asv machine --yes --config "$conf" >/dev/null
$py -m asv run --config "$conf" -E existing:same --set-commit-hash "$(git rev-parse HEAD)" \
  --show-stderr --record-samples \
  --bench 'bench_cuda' --bench 'bench_transfer' \
  --bench "TensorCopy\.\w+\('(clone|clone_detach|detach_clone|copy_into)', \d+, 'float32', \w+, 'contiguous', 'cuda'" \
  --bench "ModuleCopy\.\w+\('(deepcopy_module|state_dict_snapshot|load_state_dict_existing)', '\w+', 'cuda'" \
  | tail -n 40
$py -m copybench gpu-figures "$out/results" | tee "$out/figures.md"
$py -m copybench report "$out/results" --out "$out/report" || echo "gpu_check: report failed" >&2
echo "gpu_check: everything is under $out"
