"""``copybench compare`` end to end, on real runs of the harness and of asv on this machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from copybench.asvrun import config_copy, environment_info
from copybench.results import write_env_sidecar

ROOT = Path(__file__).resolve().parents[1]
# A few cases that differ only by method, timed in about a second each.
SUFFIX = "32768-float32-nograd-contiguous-cpu-t1"
METHODS = ("clone", "detach_clone", "copy_into", "empty_like_copy")
SLOWED = "clone"
THRESHOLD = "0.20"


def _harness(out: Path, slow_down: str = "") -> Path:
    select = " or ".join(f"[{m}-{SUFFIX}]" for m in METHODS)
    # Not as an xdist worker (scripts/test.sh): pytest-benchmark would read that as xdist
    # being on, and refuse to time.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env["COPYBENCH_SLOW_DOWN"] = slow_down
    cmd = [sys.executable, "-m", "pytest", "tests/benchmarks", "-q", "-p", "no:cacheprovider"]
    cmd += ["--benchmark-only", f"--benchmark-json={out}", "-k", select]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"{len(METHODS)} passed" in proc.stdout
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("harness")
    base = _harness(d / "base.json")
    slow = _harness(d / "slow.json", slow_down=SLOWED)
    return {"base": base, "slow": slow}


def _compare(run_cli, *args: str | Path) -> tuple[subprocess.CompletedProcess, dict | None]:
    proc = run_cli("compare", "--threshold", THRESHOLD, *map(str, args), "--format", "json")
    data = json.loads(proc.stdout) if proc.returncode in (0, 1) else None
    return proc, data


def test_harness_json_records_the_environment(runs: dict[str, Path]) -> None:
    data = json.loads(runs["base"].read_text())
    info = data["machine_info"]["copybench"]
    import torch

    assert info["torch_version"] == torch.__version__
    assert len(info["git_hash"]) == 40
    assert info["cpu"] and info["threads"] == 1 and "cuda_driver" in info
    assert info["slowed_down"] == []
    assert json.loads(runs["slow"].read_text())["machine_info"]["copybench"]["slowed_down"] == [
        SLOWED
    ]
    bench = data["benchmarks"][0]
    assert bench["params"]["method"] in METHODS and len(bench["stats"]["data"]) >= 10
    # Which process the samples came from: one pytest process here, so one pid.
    assert len({b["extra_info"]["pid"] for b in data["benchmarks"]}) == 1


def test_two_runs_get_no_wall_time_verdict(run_cli, runs: dict[str, Path]) -> None:
    # Two runs of the harness are one process each: compared across runs, a wall time gets
    # "too few processes" (never "regressed"), even for a method made 2x slower.
    for head in ("base", "slow"):  # the same file twice, then another run
        proc, data = _compare(run_cli, runs["base"], runs[head])
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert data["regressed"] == 0
        assert {b["case"] for b in data["benchmarks"]} == {f"{m}-{SUFFIX}" for m in METHODS}
        assert {b["verdict"] for b in data["benchmarks"]} == {"too few processes"}
        assert all(b["processes"] == 1 and b["ratio"] > 0 for b in data["benchmarks"])


def test_text_and_markdown_tables(run_cli, runs: dict[str, Path]) -> None:
    text = run_cli("compare", str(runs["base"]), str(runs["slow"]), "--threshold", THRESHOLD)
    assert text.returncode == 0
    assert text.stdout.splitlines()[0].split() == [
        "benchmark", "case", "base", "head", "ratio", "[CI]", "p", "verdict"
    ]  # fmt: skip
    assert f"{SLOWED}-{SUFFIX}" in text.stdout and "[no CI]" in text.stdout
    assert "compared across runs" in text.stdout and "4 too few processes" in text.stdout
    md = run_cli("compare", str(runs["base"]), str(runs["slow"]), "--format", "markdown")
    assert md.returncode == 0
    assert "| benchmark | case | base | head | ratio [CI] | p | verdict |" in md.stdout
    assert f"| time_tensor_copy | `{SLOWED}-{SUFFIX}` |" in md.stdout


def test_gate_bad_input(run_cli, tmp_path: Path) -> None:
    assert "KEY=VALUE" in _bad_cmd(run_cli, "gate", "--base-env", "nokey")
    assert "not an executable" in _bad_cmd(run_cli, "gate", "--base-python", str(tmp_path))
    assert "unknown copy method" in _bad_cmd(run_cli, "gate", "--method", "nope")
    assert "device transfer" in _bad_cmd(run_cli, "gate", "--method", "to_device")


def _bad_cmd(run_cli, *args: str) -> str:
    proc = run_cli(*args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == "" and len(proc.stderr.strip().splitlines()) == 1
    return proc.stderr


def _bad(run_cli, *args: str | Path) -> str:
    return _bad_cmd(run_cli, "compare", *map(str, args))


def test_missing_file(run_cli, runs: dict[str, Path], tmp_path: Path) -> None:
    assert "no such file" in _bad(run_cli, runs["base"], tmp_path / "missing.json")


def test_malformed_file(run_cli, runs: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert str(bad) in _bad(run_cli, bad, runs["base"])
    assert str(bad) in _bad(run_cli, runs["base"], bad)


def test_nothing_in_common(run_cli, runs: dict[str, Path], tmp_path: Path) -> None:
    data = json.loads(runs["base"].read_text())
    halves = []
    for i, part in enumerate((data["benchmarks"][:2], data["benchmarks"][2:])):
        halves.append(tmp_path / f"half{i}.json")
        halves[-1].write_text(json.dumps({**data, "benchmarks": part}))
    assert "no benchmarks in common" in _bad(run_cli, *halves)


def test_bad_options(run_cli, runs: dict[str, Path]) -> None:
    assert "--threshold" in _bad(run_cli, runs["base"], runs["slow"], "--threshold", "-1")
    assert "asv" in _bad(run_cli, runs["base"], runs["slow"], "--base-env", "2.13.0")


# --- asv: two environments at the same commit, in one results folder --------------------------


def _asv_run(config: Path, python: str, regex: str) -> None:
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    asv = [sys.executable, "-m", "asv"]
    subprocess.run(
        [*asv, "machine", "--yes", "--config", str(config)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    cmd = [
        *asv,
        "run",
        "--config",
        str(config),
        f"--environment=existing:{python}",
        "--set-commit-hash",
        commit,
        "--record-samples",
        "--bench",
        regex,
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.fixture(scope="module")
def asv_two_envs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Real asv results of two environments at one commit (two interpreters of this venv:
    asv names an existing environment after its interpreter's path)."""
    here = Path(sys.executable)
    others = [here.with_name(n) for n in ("python", "python3") if here.with_name(n) != here]
    other = next((p for p in others if p.exists()), None)
    if other is None:
        pytest.skip("needs a second name for this interpreter to make a second asv env")
    d = tmp_path_factory.mktemp("asv")
    config = config_copy(ROOT, d / "results", d / "html", d)
    regex = r"bench_tensor_copy\.TensorCopy\.time_tensor_copy\('clone', 32768, 'float32'"
    envs = []
    for python in ("same", str(other)):
        before = set((d / "results").rglob("*.json"))
        _asv_run(config, python, regex)
        (new,) = {p for p in (d / "results").rglob("*-*.json")} - before
        write_env_sidecar(new, environment_info())  # what ``copybench run`` records
        envs.append(json.loads(new.read_text())["env_name"])
    return d / "results", envs


def test_two_environments_at_one_commit(run_cli, asv_two_envs) -> None:
    results, (env_a, env_b) = asv_two_envs
    proc, data = _compare(run_cli, results, "--base-env", env_a, "--head-env", env_b)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cases = {b["case"] for b in data["benchmarks"]}
    assert len(cases) == 4 and all(c.startswith("clone-32768-float32") for c in cases)
    assert all(b["n_base"] >= 5 and b["n_head"] >= 5 for b in data["benchmarks"])
    assert {b["verdict"] for b in data["benchmarks"]} == {"too few processes"}


def test_two_asv_files(run_cli, asv_two_envs) -> None:
    results, _ = asv_two_envs
    files = sorted(p for p in results.rglob("*-*.json"))
    proc, data = _compare(run_cli, *files)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(data["benchmarks"]) == 4


def test_asv_environment_errors(run_cli, asv_two_envs, runs: dict[str, Path]) -> None:
    import torch

    results, (env_a, _) = asv_two_envs
    assert "--base-env" in _bad(run_cli, results)
    # Both environments hold the same torch here: a version alone is ambiguous.
    version = torch.__version__.split("+")[0]
    assert "matches 2 environments" in _bad(
        run_cli, results, "--base-env", version, "--head-env", env_a
    )
    assert "no environment matches" in _bad(
        run_cli, results, "--base-env", "0.0.1", "--head-env", env_a
    )
    asv_file = next(results.rglob("*-*.json"))
    assert "cannot compare" in _bad(run_cli, asv_file, runs["base"])


def test_a_version_in_two_environments_names_the_matrix_one() -> None:
    import pandas as pd

    from copybench.compare import _select_env
    from copybench.results import ResultsError

    df = pd.DataFrame(
        {
            "env": ["existing-py_work_.venv_bin_python", "virtualenv-py3.11-torch2.13.0"],
            "torch_version": ["2.13.0+cpu", "2.13.0+cpu"],
        }
    )
    assert list(_select_env(df, "2.13.0", Path("r"))["env"]) == ["virtualenv-py3.11-torch2.13.0"]
    two = pd.concat([df, df.assign(env=["x", "virtualenv-other"])])
    with pytest.raises(ResultsError, match="name one of: .*virtualenv-other"):
        _select_env(two, "2.13.0", Path("r"))
