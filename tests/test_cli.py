"""The CLI as its users meet it: bad input (one clear line on stderr, exit status 2,
nothing written), ``--version``, every command's ``--help``, and progress on stderr."""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import torch

from copybench.cli import _parser
from copybench.measure.progress import Progress, note
from copybench.measure.workers import run_workers

BAD = [
    (["semantics", "--method", "clone_twice"], "unknown copy method 'clone_twice'"),
    (["run", "--method", "clone_twice"], "unknown copy method"),
    (["run", "--size", "1000"], "size 1000 is not in the grid"),
    (["run", "--size", "65536"], "size 65536 is measured on CUDA only (--device cuda)"),
    (["run", "--size", "big"], "size must be an element count"),
    (["run", "--device", "tpu"], "unknown device 'tpu'"),
    (["run", "--dtype", "float64"], "unknown dtype 'float64'"),
    (["run", "--model", "gpt"], "unknown model 'gpt'"),
    (["show", "/nonexistent/results"], "no such file or directory"),
]


@pytest.mark.parametrize(
    ("args", "message"), BAD, ids=lambda a: " ".join(a) if isinstance(a, list) else ""
)
def test_bad_input_exits_2_with_one_line(args, message, run_cli):
    r = run_cli(*args)
    assert r.returncode == 2
    assert r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and message in r.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU behaviour")
def test_cuda_request_without_gpu_exits_2(run_cli):
    r = run_cli("run", "--device", "cuda")
    assert r.returncode == 2
    assert "no CUDA GPU" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_malformed_results_exit_2(tmp_path, run_cli):
    machine = tmp_path / "results" / "box"
    machine.mkdir(parents=True)
    (machine / "machine.json").write_text('{"machine": "box", "version": 1}')
    (machine / "abc-env.json").write_text("{not json")
    r = run_cli("show", str(tmp_path / "results"))
    assert r.returncode == 2 and "not a readable asv results file" in r.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run_cli("show", str(empty))
    assert r.returncode == 2 and "no asv or pytest-benchmark results found" in r.stderr


def test_list_names_every_method(run_cli):
    r = run_cli("list")
    assert r.returncode == 0
    assert "clone_detach" in r.stdout and "meta_assign" in r.stdout


def test_list_and_run_name_the_same_sizes(run_cli):
    # `list` names the CPU grid and the sizes measured on CUDA besides; `run` on the CPU
    # takes the first, and says which of the second is CUDA-only.
    from copybench.suite.cases import GPU_SIZES, SIZES

    out = run_cli("list").stdout.splitlines()
    (cpu,) = [ln for ln in out if ln.startswith("numel ") and "(CPU and CUDA)" in ln]
    (cuda,) = [ln for ln in out if ln.startswith("numel (CUDA)")]
    assert cpu.split()[1:-3] == [f"{n}," for n in SIZES[:-1]] + [str(SIZES[-1])]
    assert all(str(n) in cuda for n in GPU_SIZES if n not in SIZES)
    r = run_cli("run", "--size", "7")
    assert r.returncode == 2 and ", ".join(map(str, SIZES)) in r.stderr


def test_the_installed_command_in_a_fresh_interpreter():
    # run_cli calls main() in this process; this is the command as a user starts it.
    exe = Path(sys.executable).with_name("copybench")
    if not exe.exists():
        pytest.skip("copybench is not installed beside this interpreter")
    bad = subprocess.run([exe, "run", "--size", "big"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr == "copybench: size must be an element count, got 'big'\n"


# --- --version ----------------------------------------------------------------------------------


def test_version_names_copybench_and_torch(run_cli):
    try:
        own = metadata.version("copybench")
    except metadata.PackageNotFoundError:
        from copybench import __version__ as own
    r = run_cli("--version")
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == f"copybench {own} (torch {torch.__version__})\n"


def test_version_does_not_import_pandas_matplotlib_or_scipy():
    # A fresh interpreter: in this one the other tests have imported them all.
    code = (
        "import sys\n"
        "from copybench.cli import main\n"
        "try:\n"
        "    main(['--version'])\n"
        "except SystemExit as e:\n"
        "    print('exit', e.code)\n"
        "print(sorted(m for m in ('pandas', 'matplotlib', 'scipy') if m in sys.modules))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    version, status, heavy = r.stdout.splitlines()
    assert version.startswith("copybench ") and status == "exit 0"
    assert heavy == "[]"


def test_version_after_a_command_is_that_commands_to_reject(run_cli):
    r = run_cli("list", "--version")
    assert r.returncode == 2 and "unrecognized arguments: --version" in r.stderr


# --- --help -------------------------------------------------------------------------------------


def _commands() -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def _no_rst(text: str) -> None:
    # Docstrings are reStructuredText; --help is read in a terminal.
    assert "``" not in text and "::" not in text and not re.search(r":\w+:`", text), text


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_command_help_describes_it_with_examples(name, run_cli):
    parser = _commands()[name]
    r = run_cli(name, "--help")
    assert (r.returncode, r.stderr) == (0, "")
    # What it does and how long it takes, all of it shown.
    assert parser.description and len(parser.description.split()) >= 10
    assert " ".join(parser.description.split()) in " ".join(r.stdout.split())
    # The examples, after "example:" or "examples:", kept as written.
    assert parser.formatter_class is argparse.RawDescriptionHelpFormatter
    epilog = (parser.epilog or "").splitlines()
    assert epilog and epilog[0] in ("example:", "examples:")
    assert any(f"copybench {name}" in line for line in epilog[1:])
    shown = r.stdout.splitlines()
    assert all(line in shown for line in epilog), (epilog, shown)
    _no_rst(r.stdout)


def test_top_level_help_lists_every_command(run_cli):
    r = run_cli("--help")
    assert r.returncode == 0
    assert all(name in r.stdout for name in _commands())
    assert "--version" in r.stdout
    _no_rst(r.stdout)


# --- progress -----------------------------------------------------------------------------------


class TerminalStream(io.StringIO):
    """What the progress is written to when stderr is a terminal."""

    def isatty(self) -> bool:
        return True


STEP = r"copybench test: round (\d+)/3 done \((\d+ s|\d+ min \d+ s)(, about .+ left)?\)"


def test_progress_off_a_terminal_is_one_line_per_step():
    stream = io.StringIO()
    with Progress("copybench test: round", 3, stream) as progress:
        for _ in range(3):
            progress.step()
    note("copybench test: counting", stream)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    steps = [re.fullmatch(STEP, line) for line in lines[:3]]
    assert all(steps), lines
    assert [int(m.group(1)) for m in steps] == [1, 2, 3]
    # What is left is estimated until the last step.
    assert [bool(m.group(3)) for m in steps] == [True, True, False]
    assert lines[3:] == ["copybench test: counting"]


def test_progress_on_a_terminal_rewrites_one_line_and_ends_it():
    stream = TerminalStream()
    with Progress("copybench test: round", 3, stream) as progress:
        for _ in range(3):
            progress.step()
    text = stream.getvalue()
    assert text.startswith("\r") and text.endswith("\n") and text.count("\n") == 1
    states = text[1:-1].split("\r")
    assert states[0] == "copybench test: round 0/3"
    assert all(re.fullmatch(STEP, s.rstrip()) for s in states[1:]), states
    # Each state is padded over whatever the longer one before it left on the line.
    assert all(len(b) >= len(a.rstrip()) for a, b in zip(states, states[1:], strict=False))


def test_progress_on_a_terminal_ends_its_line_when_a_step_fails():
    stream = TerminalStream()
    with pytest.raises(RuntimeError), Progress("copybench test: round", 3, stream) as progress:
        progress.step()
        raise RuntimeError("worker failed")
    assert stream.getvalue().endswith("\n") and stream.getvalue().count("\n") == 1


def test_run_workers_steps_the_progress_as_each_worker_ends(tmp_path, monkeypatch):
    # A real worker process that does not import torch: it prints its spec back.
    (tmp_path / "echo_worker.py").write_text("import sys\nprint(sys.argv[1])\n")
    monkeypatch.chdir(tmp_path)  # `python -m` finds the module in the working directory
    stream = io.StringIO()
    with Progress("copybench test: round", 3, stream) as progress:
        got = run_workers("echo_worker", {"n": 1}, 3, progress=progress)
    assert got == [{"n": 1}] * 3
    steps = [re.fullmatch(STEP, line) for line in stream.getvalue().splitlines()]
    assert all(steps) and [m.group(1) for m in steps] == ["1", "2", "3"]


def test_overhead_keeps_stdout_json_and_reports_each_step_on_stderr(run_cli):
    # One worker: measured in this process, a step per size.  With more, a step is a worker
    # process (each about 4 s to start here), stepped by run_workers (tested above).
    r = run_cli(
        "overhead", "--sizes", "1024", "32768", "--workers", "1", "--budget", "0.05", "--json"
    )
    assert r.returncode == 0, r.stderr
    assert [row["numel"] for row in json.loads(r.stdout)] == [1024, 32768]
    lines = r.stderr.splitlines()
    assert len(lines) == 2, lines
    for i, line in enumerate(lines, 1):
        assert line.startswith(f"copybench overhead: tracked-clone overhead, size {i}/2 done (")
