"""The on-disk formats (copybench.formats): each file written with its version, every
version ever written read back, a newer one refused; the committed results still load."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from copybench import formats
from copybench.formats import ResultsError
from copybench.report.gpu_figures import format_figures

ROOT = Path(__file__).resolve().parents[1]


def test_every_committed_power_study_reads_back():
    studies = sorted((ROOT / "reports" / "power").glob("*.json"))
    assert studies
    for path in studies:
        data = formats.read_power(path)
        assert formats.POWER.version_of(data) == 1 and data["gates"], path.name


def test_gpu_figures_written_before_they_carried_a_version_read_as_version_1(tmp_path):
    old = ROOT / "tests" / "data" / "gpu-figures-h100.json"
    assert "format" not in json.loads(old.read_text())
    fig = formats.read_gpu_figures(old)
    assert formats.GPU_FIGURES.version_of(fig) == 1
    new = formats.write_gpu_figures(tmp_path / "figures.json", fig)
    again = formats.read_gpu_figures(new)
    assert again["format"] == formats.GPU_FIGURES.tag
    assert format_figures(again) == format_figures(fig)


def test_the_environment_sidecar_carries_its_version_and_old_ones_still_read(tmp_path):
    results = tmp_path / "abc-env.json"
    results.write_text("{}")
    formats.write_env_sidecar(results, {"torch_version": "2.13.0", "semantics": []})
    side = formats.read_env_sidecar(results)
    assert side["format"] == "copybench-env/2" and side["torch_version"] == "2.13.0"
    # Version 1: no "format", no "semantics" (written before 2026-12).
    formats.sidecar(results, formats.ENV_SUFFIX).write_text('{"torch_version": "2.11.0"}')
    assert formats.read_env_sidecar(results) == {"torch_version": "2.11.0"}
    assert formats.ENV.version_of({"torch_version": "2.11.0"}) == 1


@pytest.mark.parametrize(
    ("read", "what"),
    [
        (formats.read_gate, "copybench-gate"),
        (formats.read_power, "copybench-power"),
        (formats.read_gpu_figures, "copybench-gpu-figures"),
    ],
)
def test_a_newer_version_or_another_format_is_refused(read, what, tmp_path):
    path = tmp_path / "f.json"
    for tag in (f"{what}/99", "copybench-other/1"):
        path.write_text(json.dumps({"format": tag}))
        with pytest.raises(ResultsError, match=str(path)):
            read(path)
    assert not formats.is_gate_results(path)


def test_gate_results_are_told_from_other_json(tmp_path):
    gate = formats.write_gate(tmp_path / "gate.json", formats.gate_results(rounds=[]))
    assert json.loads(gate.read_text())["format"] == "copybench-gate/1"
    assert formats.is_gate_results(gate)
    (tmp_path / "other.json").write_text('{"rounds": []}')
    assert not formats.is_gate_results(tmp_path / "other.json")


def test_the_paired_sidecar_reads_back_and_a_broken_one_is_bad_input(tmp_path):
    results = tmp_path / "abc-env.json"
    results.write_text("{}")
    assert formats.read_paired(results) is None
    path = formats.write_paired(results, {"torch_version": "2.13.0"}, [{"id": "x"}])
    assert formats.read_paired(results) == ({"torch_version": "2.13.0"}, [{"id": "x"}])
    path.write_text("{not json")
    with pytest.raises(ResultsError, match="not a readable paired results file"):
        formats.read_paired(results)


def test_writes_are_atomic_and_leave_nothing_behind(tmp_path):
    target = tmp_path / "out.txt"
    formats.atomic_write_text(target, "one")
    formats.atomic_write_text(target, "two")
    assert target.read_text() == "two" and sorted(tmp_path.iterdir()) == [target]


def test_the_formats_module_imports_no_pandas():
    # Writing a file must not pay for importing pandas (copybench --version, the workers).
    tree = ast.parse((ROOT / "src" / "copybench" / "formats.py").read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module)])
        if alias.name
    }
    assert "pandas" not in imported and not any(m.startswith("copybench") for m in imported)


def test_a_night_is_archived_under_a_name_that_sorts_by_date(tmp_path):
    results = tmp_path / "results" / "box" / "abc-env.json"
    results.parent.mkdir(parents=True)
    results.write_text(json.dumps({"commit_hash": "0123456789abcdef", "params": {}}))
    formats.write_env_sidecar(results, {"torch_version": "2.13.0+cpu", "machine": "a box"})
    night = formats.archive_night(results, tmp_path / "nightly")
    assert night.name.endswith("-a_box-torch2.13.0_cpu-01234567.json")
    side = formats.read_night(night)
    assert side["machine"] == "a box" and side["commit"] == "0123456789abcdef"
    assert side["night"] == night.name.split("-", 1)[0]
    assert formats.nights(tmp_path / "nightly") == [night]
    assert formats.nights(tmp_path / "nightly", "another box") == []
    assert formats.night_gate_file(night).name == night.stem + formats.GATE_SUFFIX
