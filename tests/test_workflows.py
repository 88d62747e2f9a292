"""The GitHub workflows pass GitHub's schema and a security linter (the nightly's local twin,
scripts/nightly.sh, runs end to end in test_nightly.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if path is None:
        pytest.skip(f"{name} is not installed (pip install {name})")
    return path


def test_both_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "nightly.yml"}


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_github_workflow_schema(workflow: Path) -> None:
    tool = _tool("check-jsonschema")
    cmd = [tool, "--builtin-schema", "vendor.github-workflows", str(workflow)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_zizmor_finds_nothing() -> None:
    tool = _tool("zizmor")
    proc = subprocess.run([tool, "--offline", *map(str, WORKFLOWS)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_nightly_workflow_runs_the_local_command() -> None:
    text = (ROOT / ".github" / "workflows" / "nightly.yml").read_text()
    assert "schedule:" in text and "workflow_dispatch:" in text and "torch-build:" in text
    # Each runner of the matrix runs the local command under its own machine name, keeps
    # its nights in the history branch and gates; one last job merges every machine.
    assert 'bash scripts/nightly.sh --machine "$MACHINE"' in text
    assert (
        '--history "$REPOSITORY.git"' in text and "--baseline-python .baseline/bin/python" in text
    )
    assert "bash scripts/nightly.sh merge machines/*" in text
    assert "matrix: ${{ fromJSON(needs.plan.outputs.matrix) }}" in text
    # Without a registered GPU runner the plan says so rather than queueing a job forever.
    assert "GPU_RUNNER: ${{ vars.COPYBENCH_GPU_RUNNER }}" in text and "::notice" in text
    assert "baseline-torch:" in text
    # inputs reach the shell through the environment only (no template injection)
    run_lines = [line for line in text.splitlines() if "inputs." in line]
    assert len(run_lines) == 2, run_lines
    assert all(
        line.split(":")[0].strip() in ("TORCH_BUILD", "BASELINE_TORCH") for line in run_lines
    ), run_lines
