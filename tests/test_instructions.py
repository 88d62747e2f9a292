"""Callgrind instruction counts (one Valgrind run, about 15-30 s); skipped without valgrind."""

from __future__ import annotations

import pytest

from copybench.instructions import count_instructions, valgrind_available

pytestmark = pytest.mark.skipif(not valgrind_available(), reason="valgrind not available")


@pytest.fixture(scope="module")
def counts():
    # detach_clone twice: two identical statements must count alike.
    return count_instructions(["clone_detach", "detach_clone", "empty_like_copy"], [1024])


def test_tracked_clone_costs_thousands_more_instructions(counts):
    tracked = counts[("clone_detach", 1024)].instructions
    untracked = counts[("detach_clone", 1024)].instructions
    assert untracked > 1000
    assert 1000 < tracked - untracked < untracked


def test_rounds_repeat_within_a_run(counts):
    for c in counts.values():
        assert max(c.rounds) - min(c.rounds) < 0.02 * c.instructions


def test_bad_method_is_rejected_before_valgrind_starts():
    from copybench.methods import UnknownMethodError

    with pytest.raises(UnknownMethodError):
        count_instructions(["no_such_method"], [1024])
