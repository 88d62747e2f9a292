"""``copybench compare`` end to end, on real runs of the harness and of asv on this machine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from copybench.formats import ENV_SUFFIX, write_env_sidecar
from copybench.measure.asvrun import config_copy, environment_info

ROOT = Path(__file__).resolve().parents[1]
# A few cases that differ only by method, timed in about a second each.
SUFFIX = "32768-float32-nograd-contiguous-cpu-t1"
METHODS = ("clone", "detach_clone", "copy_into", "empty_like_copy")
SLOWED = "clone"
THRESHOLD = "0.20"


def _pytest_harness(ids: list[str], *options: str, slow_down: str = "") -> None:
    """Time the harness's cases ``ids`` with pytest-benchmark, in a pytest of their own."""
    select = " or ".join(f"[{i}]" for i in ids)
    # Not as an xdist worker (scripts/test.sh): pytest-benchmark would read that as xdist
    # being on, and refuse to time.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env["COPYBENCH_SLOW_DOWN"] = slow_down
    cmd = [sys.executable, "-m", "pytest", "tests/benchmarks", "-q", "-p", "no:cacheprovider"]
    cmd += ["-p", "no:xdist", "--benchmark-only", *options, "-k", select]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"{len(ids)} passed" in proc.stdout


def _harness(out: Path, slow_down: str = "") -> Path:
    _pytest_harness(
        [f"{m}-{SUFFIX}" for m in METHODS], f"--benchmark-json={out}", slow_down=slow_down
    )
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
    assert "--threshold" in _bad_cmd(run_cli, "gate", "--threshold", "-0.5")
    assert "--instruction-threshold" in _bad_cmd(run_cli, "gate", "--instruction-threshold", "-1")
    assert "--alpha" in _bad_cmd(run_cli, "gate", "--alpha", "1.5")
    assert "--processes" in _bad_cmd(run_cli, "gate", "--processes", "1")


def test_power_study_bad_input(run_cli, tmp_path: Path) -> None:
    assert "at least 1" in _bad_cmd(run_cli, "power-study", "--factor", "0.9")
    assert "unknown target" in _bad_cmd(run_cli, "power-study", "--target", "nope")
    assert "unknown copy method" in _bad_cmd(run_cli, "power-study", "--method", "nope")
    assert "--threshold" in _bad_cmd(run_cli, "power-study", "--threshold", "-0.5")
    assert "--append needs --out" in _bad_cmd(run_cli, "power-study", "--append")
    missing = tmp_path / "missing.json"
    assert str(missing) in _bad_cmd(run_cli, "power-study", "--from", str(missing))
    other = tmp_path / "other.json"
    other.write_text('{"format": "copybench-gate/1"}')
    assert "not a power study" in _bad_cmd(run_cli, "power-study", "--from", str(other))


def _bad_cmd(run_cli, *args: str, cwd: Path = ROOT) -> str:
    proc = run_cli(*args, cwd=cwd)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == "" and len(proc.stderr.strip().splitlines()) == 1
    return proc.stderr


def _bad(run_cli, *args: str | Path, cwd: Path = ROOT) -> str:
    return _bad_cmd(run_cli, "compare", *map(str, args), cwd=cwd)


def test_missing_file(run_cli, runs: dict[str, Path], tmp_path: Path) -> None:
    assert "no such file" in _bad(run_cli, runs["base"], tmp_path / "missing.json")


def test_a_truncated_pytest_benchmark_file_is_called_malformed(
    run_cli, runs: dict[str, Path], tmp_path: Path
) -> None:
    cut = tmp_path / "cut.json"
    text = runs["base"].read_text()
    cut.write_text(text[: len(text) // 2])
    err = _bad(run_cli, runs["base"], cut)
    assert f"{cut}: not a readable results file" in err and "cannot compare" not in err
    err = _bad_cmd(run_cli, "show", str(cut))
    assert str(cut) in err


def test_show_summarizes_a_pytest_benchmark_file(run_cli, runs: dict[str, Path]) -> None:
    proc = run_cli("show", str(runs["base"]))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "torch" in lines[0] and "4 ok" in lines[0]
    # One line per case family: the four methods at 128 KiB, each in units.
    family = [ln for ln in lines[1:] if "copy_into" in ln]
    assert len(family) == 1 and "128 KiB" in family[0] and "s" in family[0].split()[-1]
    table = run_cli("show", "--table", str(runs["base"]))
    assert table.returncode == 0 and len(table.stdout.splitlines()) == 1 + len(METHODS)


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


def test_help_is_plain_text_with_examples(run_cli) -> None:
    out = run_cli("compare", "--help")
    assert out.returncode == 0
    assert "``" not in out.stdout and ":func:" not in out.stdout
    epilog = out.stdout[out.stdout.index("\nexamples:\n") :]
    assert "copybench compare 0001 0002" in epilog and "--allow-different-machines" in epilog


# --- runs pytest-benchmark saved (--benchmark-autosave), by path and by id ----------------------

# Cases of each group the harness sets, and that group: two tensor copies of one size, a
# module copy, and (in the first run only: its paired measurement takes 2 s) a paired overhead.
SAVED_CASES = {
    "clone-1024-float32-nograd-contiguous-cpu-t1": "tensor copy, 4 KiB",
    "detach_clone-1024-float32-nograd-contiguous-cpu-t1": "tensor copy, 4 KiB",
    "deepcopy_module-1e4x8-cpu-t1": "module copy, 1e4x8",
}
PAIRED_CASE = {"tracked_clone-1024-cpu": "paired overhead, 4 KiB"}


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """The storage folder (``<dir>/.benchmarks``) of two saved runs of a few harness cases,
    as users save them: run 0001 without raw samples, run 0002 with them."""
    storage = tmp_path_factory.mktemp("saved") / ".benchmarks"
    short = ["--benchmark-max-time=0.02", "--benchmark-min-rounds=3"]
    options = [f"--benchmark-storage=file://{storage}", "--benchmark-autosave", *short]
    _pytest_harness([*SAVED_CASES, *PAIRED_CASE], *options)
    _pytest_harness(list(SAVED_CASES), *options, "--benchmark-save-data")
    files = sorted(storage.glob("*/*.json"))
    assert [f.name[:5] for f in files] == ["0001_", "0002_"]
    return storage, files


def test_saved_runs_group_by_family_and_size(saved) -> None:
    _, files = saved
    groups = [
        {
            b["name"].split("[", 1)[1].rstrip("]"): b["group"]
            for b in json.loads(f.read_text())["benchmarks"]
        }
        for f in files
    ]
    assert groups == [{**SAVED_CASES, **PAIRED_CASE}, SAVED_CASES]


def test_saved_runs_by_path_and_id(run_cli, saved) -> None:
    storage, (first, second) = saved
    for args, cwd in (
        ((first, second), ROOT),
        (("0001", "0002"), storage.parent),  # ./.benchmarks, as pytest-benchmark's default
        (("0001", "0002", "--storage", f"file://{storage}"), ROOT),
        ((f"{first.parent.name}/0001", "0002_", "--storage", storage), ROOT),
    ):
        proc = run_cli("compare", *map(str, args), "--format", "json", cwd=cwd)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        # Once, for the side saved without --benchmark-save-data.
        assert proc.stderr.splitlines() == [
            "copybench compare: BASE holds no raw samples (saved without "
            "--benchmark-save-data): per-case statistics only, no case can be significant"
        ]
        data = json.loads(proc.stdout)
        assert len(data["benchmarks"]) == len(SAVED_CASES)  # the cases both runs hold
        assert {b["verdict"] for b in data["benchmarks"]} == {"too few processes"}
        # BASE: the median alone; HEAD: every round.
        assert all(b["n_base"] == 1 and b["n_head"] >= 3 for b in data["benchmarks"])
        assert data["machines"]["check"] == "same"
    both = run_cli("compare", "0001", "0001", "--storage", str(storage))
    assert both.returncode == 0 and "too few processes" in both.stdout
    assert len(both.stderr.splitlines()) == 1 and "BASE and HEAD hold no raw" in both.stderr
    assert run_cli("compare", "0002", "0002", "--storage", str(storage)).stderr == ""


def test_saved_run_ids_that_match_nothing_or_several(run_cli, saved) -> None:
    storage, _ = saved
    assert "no such file" in _bad(run_cli, "0003", "0001", "--storage", storage)
    assert "matches 2 runs" in _bad(run_cli, "0001", "000", "--storage", storage)
    # Without --storage: ./.benchmarks, here one that is not there.
    assert "no such file" in _bad(run_cli, "0001", "0002", cwd=storage.parent.parent)


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

    from copybench.formats import ResultsError
    from copybench.results.compare import _select_env

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


# --- across machines ---------------------------------------------------------------------------


def _asv_copy(results: Path, dest: Path, **claims: str | None) -> Path:
    """A copy of one real asv results file with its sidecar and its machine folder's
    machine.json, where each of ``claims`` ("cpu", "gpu") replaces what they record (None:
    nothing recorded).  Returns the copied results file."""
    original = sorted(results.rglob("*-*.json"))[0]
    folder = dest / original.parent.name
    shutil.copytree(original.parent, folder)
    copy = folder / original.name
    sidecar = copy.with_name(copy.name + ENV_SUFFIX)
    for f in (copy, folder / "machine.json", sidecar):
        data = json.loads(f.read_text())
        record = data["params"] if f == copy else data
        for key, value in claims.items():
            if f != sidecar and key != "cpu":  # the GPU is the sidecar's alone
                continue
            record.pop(key, None)
            if value is not None:
                record[key] = value
        f.write_text(json.dumps(data))
    return copy


def test_asv_results_from_different_cpus(run_cli, asv_two_envs, tmp_path: Path) -> None:
    results, _ = asv_two_envs
    here = _asv_copy(results, tmp_path / "a")
    there = _asv_copy(results, tmp_path / "b", cpu="Imaginary CPU 9000")
    message = _bad(run_cli, here, there)
    assert "CPU" in message and "Imaginary CPU 9000" in message
    assert "--allow-different-machines" in message
    proc = run_cli("compare", str(here), str(there), "--allow-different-machines")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    header = proc.stdout.splitlines()[0]
    assert header.startswith("different machines") and "Imaginary CPU 9000" in header
    proc, data = _compare(run_cli, here, there, "--allow-different-machines")
    assert data["machines"]["check"] == "different" and len(data["benchmarks"]) == 4
    assert data["machines"]["head"]["cpu"] == "Imaginary CPU 9000"
    assert data["machines"]["base"]["cpu"] not in (None, "Imaginary CPU 9000")


def test_asv_results_from_different_gpus(run_cli, asv_two_envs, tmp_path: Path) -> None:
    results, _ = asv_two_envs
    a = _asv_copy(results, tmp_path / "a", gpu="NVIDIA H100 80GB HBM3")
    b = _asv_copy(results, tmp_path / "b", gpu="NVIDIA A100-SXM4-40GB")
    message = _bad(run_cli, a, b)
    assert "GPU 'NVIDIA H100 80GB HBM3' vs 'NVIDIA A100-SXM4-40GB'" in message
    assert "CPU" not in message
    # A side without CUDA has no GPU case in common with the other: only the CPUs count.
    none = _asv_copy(results, tmp_path / "none")
    proc, data = _compare(run_cli, a, none)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert data["machines"]["check"] == "same" and data["machines"]["base"]["gpu"].startswith(
        "NVIDIA H100"
    )


def test_machines_not_recorded_are_compared_and_said(
    run_cli, asv_two_envs, runs: dict[str, Path], tmp_path: Path
) -> None:
    results, _ = asv_two_envs
    here = _asv_copy(results, tmp_path / "a")
    unknown = _asv_copy(results, tmp_path / "b", cpu=None, cuda_available=None)
    proc = run_cli("compare", str(here), str(unknown))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0] == (
        "the machines could not be checked: HEAD records no CPU model; HEAD records no GPU model"
    )
    # pytest-benchmark: py-cpuinfo's brand_raw is the CPU model.
    data = json.loads(runs["base"].read_text())
    data["machine_info"]["cpu"]["brand_raw"] = "Imaginary CPU 9000"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(data))
    assert "Imaginary CPU 9000" in _bad(run_cli, runs["base"], other)
    del data["machine_info"]["cpu"], data["machine_info"]["copybench"]
    other.write_text(json.dumps(data))
    proc, out = _compare(run_cli, runs["base"], other)
    assert proc.returncode == 0 and out["machines"]["check"] == "unchecked"
