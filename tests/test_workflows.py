"""The GitHub workflows pass GitHub's schema and a security linter; the nightly's local twin
(scripts/nightly.sh) runs end to end."""

from __future__ import annotations

import os
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
    assert "bash scripts/nightly.sh --baseline-python .baseline/bin/python" in text
    assert "baseline-torch:" in text
    # inputs reach the shell through the environment only (no template injection)
    run_lines = [line for line in text.splitlines() if "inputs." in line]
    assert len(run_lines) == 2, run_lines
    assert all(
        line.split(":")[0].strip() in ("TORCH_BUILD", "BASELINE_TORCH") for line in run_lines
    ), run_lines


def test_local_nightly_end_to_end(tmp_path: Path) -> None:
    """Two nights of a narrow selection: the first is archived, the second set beside it
    (across runs: no verdict on wall time, so no night fails by chance)."""
    summary = tmp_path / "summary.md"
    args = ["--method", "clone", "--size", "32768", "--dtype", "float32"]
    args += ["--results", str(tmp_path / "results"), "--archive", str(tmp_path / "nightly")]
    args += ["--html", str(tmp_path / "html"), "--summary", str(summary)]
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"}
    for _night in (1, 2):
        proc = subprocess.run(
            ["bash", "scripts/nightly.sh", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    archived = sorted(p.name for p in (tmp_path / "nightly").glob("*.json"))
    assert len([a for a in archived if "-torch" in a]) == 2
    assert (tmp_path / "html" / "index.html").is_file()
    text = summary.read_text()
    assert "first night" in text and "### copybench compare" in text
    assert "recorded, not gated" in text and "compared across runs" in text
    assert text.count("| time_tensor_copy | `clone-32768-float32-") == 4
