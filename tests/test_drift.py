"""Semantic drift between two sides, observed in real processes of this interpreter: twice
as it is (A/A), and once with ``Tensor.clone`` returning a view, injected from the
environment alone (``copybench.measure.injection``).  Each observation imports torch in a fresh
process (a few seconds), so the three are taken once for the whole file."""

from __future__ import annotations

import os
import sys

import pytest

from copybench.measure.drift import drift_rows, drift_text, observe_side, unmatched
from copybench.measure.injection import INJECT_DIR, injected_environ, pythonpath_with_inject
from copybench.measure.workers import WorkerError
from copybench.suite.methods import METHODS


@pytest.fixture(scope="module")
def base():
    return observe_side(sys.executable, dict(os.environ))


@pytest.fixture(scope="module")
def base_again():
    return observe_side(sys.executable, dict(os.environ))


@pytest.fixture(scope="module")
def clone_is_a_view():
    return observe_side(sys.executable, injected_environ(INJECT_VIEW="Tensor.clone"))


def test_the_same_side_twice_does_not_drift(base, base_again):
    assert drift_rows(base, base_again) == []
    assert unmatched(base, base_again) == []


def test_the_base_side_observes_what_the_registry_declares(base):
    assert list(base) == list(METHODS)
    for name, method in METHODS.items():
        # Skipped (None) without the GPUs a transfer's route or the pinned snapshot needs, or
        # a package (safetensors) a method needs.
        if base[name] is not None:
            assert base[name] == method.semantics.as_dict(), name
    assert all(base[m.name] is not None for m in METHODS.values() if m.kind == "tensor")


def row(method: str, prop: str, base: bool, head: bool) -> dict:
    return {"method": method, "property": prop, "base": base, "head": head}


def test_a_clone_that_returns_a_view_drifts_wherever_clone_is_called(base, clone_is_a_view):
    # Every method that calls Tensor.clone from Python now shares its source's storage;
    # those whose result is the view itself (or its detach()) share the version counter
    # too.  deepcopy_module does not: Parameter.__deepcopy__ clones the parameter's .data,
    # and a new Parameter gets a version counter of its own.  Requires-grad, grad flow and
    # leafness do not move: a view of a leaf that requires grad is a non-leaf with a
    # gradient path back, just as the clone was.  Tensor deepcopy, copy_, .to(copy=True),
    # state_dict deepcopy and save/load do not call Tensor.clone and do not move either.
    changed_storage = [
        "clone",
        "clone_contiguous",
        "clone_detach",
        "deepcopy_module",
        "detach_clone",
        "meta_assign",
        "state_dict_snapshot",
    ]
    expected = []
    for name in changed_storage:
        expected.append(row(name, "new_storage", True, False))
        if name != "deepcopy_module":
            expected.append(row(name, "shares_version_counter", False, True))
    assert drift_rows(base, clone_is_a_view) == expected
    assert unmatched(base, clone_is_a_view) == []
    assert drift_text(drift_rows(base, clone_is_a_view))[:2] == [
        "clone: new_storage yes -> no",
        "clone: shares_version_counter no -> yes",
    ]


def test_a_method_skipped_on_one_side_is_one_row_and_unknown_methods_are_apart(base):
    ran = base["clone"]
    head = {**base, "clone": None, "only_on_head": ran}
    assert drift_rows(base, head) == [row("clone", "runs", True, False)]
    assert drift_rows(head, base) == [row("clone", "runs", False, True)]
    assert drift_text(drift_rows(base, head)) == ["clone: runs yes -> no"]
    assert unmatched(base, head) == ["only_on_head"]


def test_a_bad_interpreter_is_a_one_line_worker_error():
    with pytest.raises(WorkerError, match="could not start") as e:
        observe_side("/nonexistent/python", dict(os.environ))
    assert "/nonexistent/python" in str(e.value)
    assert "\n" not in str(e.value)


def test_a_child_that_exits_1_without_observations_is_an_error_not_a_result(tmp_path):
    # An interpreter that dies at start-up with status 1 (here: a sitecustomize that
    # raises), the status `copybench semantics` uses for a contradiction; only the JSON
    # tells them apart.
    (tmp_path / "sitecustomize.py").write_text("raise SystemExit('broken site set-up')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    with pytest.raises(WorkerError, match="printed no observations") as e:
        observe_side(sys.executable, env)
    assert "broken site set-up" in str(e.value)
    assert "\n" not in str(e.value)


def test_a_bad_injection_stops_the_side_with_one_line():
    with pytest.raises(WorkerError, match="exited 2") as e:
        observe_side(sys.executable, injected_environ(INJECT_VIEW="Foo.bar"))
    assert str(e.value).endswith(
        "sitecustomize: cannot inject into 'Foo.bar' (expected Tensor.METHOD)"
    )


def _wrapper_cost(**settings: str) -> tuple[int, str]:
    """The cost the sitecustomize takes off a wrapped ``Tensor.clone``'s wait, read from the
    wrapper's closure in a real interpreter started with ``settings``; and its stderr."""
    import subprocess

    code = (
        "import torch; f = torch.Tensor.clone; "
        "print(dict(zip(f.__code__.co_freevars, (c.cell_contents for c in f.__closure__)))"
        "['overhead'])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=injected_environ(**settings),
        capture_output=True,
        text=True,
        timeout=300,
    )
    return (int(proc.stdout) if proc.returncode == 0 else proc.returncode), proc.stderr


def test_a_placebo_leaves_the_wrappers_cost_on_the_side():
    # Without INJECT_PLACEBO the wait is net of the wrapper's measured cost (a number of
    # nanoseconds, 0 or more); with it, nothing is taken off: the other side carries the
    # same wrapper at 1.0.  Read from the wrapper itself: deterministic.
    net, _ = _wrapper_cost(INJECT_SLOWDOWN="Tensor.clone:1.1")
    assert net >= 0
    gross, _ = _wrapper_cost(INJECT_SLOWDOWN="Tensor.clone:1.1", INJECT_PLACEBO="1")
    assert gross == 0
    status, err = _wrapper_cost(INJECT_SLOWDOWN="Tensor.clone:1.1", INJECT_PLACEBO="yes")
    assert status == 2
    assert err == "sitecustomize: INJECT_PLACEBO must be 0 or 1, got 'yes'\n"


def test_a_side_past_its_time_is_a_worker_error():
    with pytest.raises(WorkerError, match="ran past 0.2 s"):
        observe_side(sys.executable, dict(os.environ), timeout=0.2)


def test_the_injection_folder_goes_first_once():
    assert os.path.isfile(os.path.join(INJECT_DIR, "sitecustomize.py"))
    assert pythonpath_with_inject(None) == INJECT_DIR
    assert pythonpath_with_inject("") == INJECT_DIR
    joined = os.pathsep.join(["/a", INJECT_DIR, "/b"])
    assert pythonpath_with_inject(joined) == os.pathsep.join([INJECT_DIR, "/a", "/b"])


def test_injected_environ_copies_the_environment_and_sets_what_it_is_given():
    env = injected_environ(INJECT_SLOWDOWN="Tensor.clone:1.1")
    assert env["INJECT_SLOWDOWN"] == "Tensor.clone:1.1"
    assert env["PYTHONPATH"].split(os.pathsep)[0] == INJECT_DIR
    assert "INJECT_SLOWDOWN" not in os.environ
    assert {k: v for k, v in env.items() if k not in ("PYTHONPATH", "INJECT_SLOWDOWN")} == {
        k: v for k, v in os.environ.items() if k != "PYTHONPATH"
    }


# --- the gate and the nightly fail on drift ------------------------------------------------


@pytest.fixture(scope="module")
def drifted_gate(tmp_path_factory: pytest.TempPathFactory):
    """``copybench gate`` (two rounds of one case, no instruction counts) whose head side
    gets ``Tensor.clone`` returning a view, through ``--head-env`` alone."""
    import subprocess

    out = tmp_path_factory.mktemp("drift") / "gate.json"
    args = ["--method", "clone", "--size", "1024", "--processes", "2", "--budget", "0.01"]
    args += ["--no-instructions", "--out", str(out), "--format", "markdown"]
    args += ["--head-env", f"PYTHONPATH={INJECT_DIR}", "--head-env", "INJECT_VIEW=Tensor.clone"]
    proc = subprocess.run(
        [sys.executable, "-m", "copybench", "gate", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    return proc, out


def test_the_gate_fails_on_drift_and_names_each_method_and_property(drifted_gate):
    import json

    proc, out = drifted_gate
    # Two rounds: the timings get "too few processes"; the drift alone fails the gate.
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    drifted = [ln for ln in proc.stdout.splitlines() if "**drifted**" in ln]
    assert "| gate-semantics | `clone: new_storage` | yes | no |" in proc.stdout
    assert "| gate-semantics | `clone: shares_version_counter` | no | yes |" in proc.stdout
    assert len(drifted) == 13  # the rows test_a_clone_that_returns_a_view_drifts... names
    saved = json.loads(out.read_text())
    assert saved["semantics"]["head"]["clone"]["new_storage"] is False
    assert saved["semantics"]["base"]["clone"]["new_storage"] is True


def test_the_nightly_summary_and_annotations_name_the_drift(drifted_gate, monkeypatch, capsys):
    import json

    from copybench.jobs.nightly import _annotate, changes_markdown
    from copybench.results.compare import compare_gate

    _, out = drifted_gate
    table = compare_gate(json.loads(out.read_text()))
    text = changes_markdown(table, "Gate against the baseline", "the gate")
    assert "| `clone: new_storage` (gate-semantics) | yes | no |" in text
    assert "**drifted** | `copybench semantics` on both sides |" in text
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    _annotate(table, "case")
    errors = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("::error")]
    assert "::error title=copybench semantics drift::clone: new_storage: yes -> no" in errors
    assert len(errors) == 13
