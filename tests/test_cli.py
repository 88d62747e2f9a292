"""Bad input: one clear line on stderr, exit status 2, nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

BAD = [
    (["semantics", "--method", "clone_twice"], "unknown copy method 'clone_twice'"),
    (["run", "--method", "clone_twice"], "unknown copy method"),
    (["run", "--size", "1000"], "size 1000 is not in the grid"),
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
    assert r.returncode == 2 and "no asv results files" in r.stderr


def test_list_names_every_method(run_cli):
    r = run_cli("list")
    assert r.returncode == 0
    assert "clone_detach" in r.stdout and "meta_assign" in r.stdout


def test_the_installed_command_in_a_fresh_interpreter():
    # run_cli calls main() in this process; this is the command as a user starts it.
    exe = Path(sys.executable).with_name("copybench")
    if not exe.exists():
        pytest.skip("copybench is not installed beside this interpreter")
    bad = subprocess.run([exe, "run", "--size", "big"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr == "copybench: size must be an element count, got 'big'\n"
