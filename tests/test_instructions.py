"""Callgrind instruction counts (one Valgrind run, about 15-30 s); skipped without valgrind."""

from __future__ import annotations

import os

import pytest

from copybench.instructions import count_instructions, valgrind_available

pytestmark = pytest.mark.skipif(not valgrind_available(), reason="valgrind not available")


METHODS = ["clone_detach", "detach_clone", "empty_like_copy"]


@pytest.fixture(scope="module")
def counts():
    return count_instructions(METHODS, [1024])


def test_tracked_clone_costs_thousands_more_instructions(counts):
    tracked = counts[("clone_detach", 1024)].instructions
    untracked = counts[("detach_clone", 1024)].instructions
    assert untracked > 1000
    assert 1000 < tracked - untracked < untracked


def test_rounds_repeat_within_a_run(counts):
    for c in counts.values():
        assert max(c.rounds) - min(c.rounds) < 0.02 * c.instructions


def test_separate_invocations_agree(counts, monkeypatch, tmp_path):
    # A second Valgrind run from other surroundings: the parent's environment, working
    # directory and $TMPDIR must not reach the child, so the counts repeat (they moved by
    # up to 6% between shells when they did).  Deterministic, not a timing check.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path}/not/a/real/dir:{os.environ['PATH']}")
    monkeypatch.setenv("COPYBENCH_TEST_PADDING", "x" * 3000)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    again = count_instructions(METHODS, [1024])
    key_t, key_u = ("clone_detach", 1024), ("detach_clone", 1024)
    first = counts[key_t].instructions - counts[key_u].instructions
    second = again[key_t].instructions - again[key_u].instructions
    assert abs(second - first) <= 0.001 * first
    for key, c in counts.items():
        assert abs(again[key].instructions - c.instructions) <= 0.001 * c.instructions


def test_bad_method_is_rejected_before_valgrind_starts():
    from copybench.methods import UnknownMethodError

    with pytest.raises(UnknownMethodError):
        count_instructions(["no_such_method"], [1024])
