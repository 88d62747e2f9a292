"""Declared semantics (the registry) against what the installed torch really does."""

from __future__ import annotations

import json

import pytest
import torch

from copybench.suite.methods import METHODS, SEMANTIC_PROPERTIES, TENSOR_METHODS
from copybench.suite.semantics import probe


@pytest.mark.parametrize("name", list(METHODS))
def test_observed_semantics_match_the_registry(name):
    obs = probe(METHODS[name])
    if obs.observed is None:
        pytest.skip(obs.skipped)
    assert obs.observed == obs.declared, obs.mismatches


@pytest.mark.parametrize("method", TENSOR_METHODS, ids=lambda m: m.name)
def test_without_requires_grad_no_copy_requires_grad(method):
    x = torch.ones(5)
    y = method.bind(x)()
    assert not y.requires_grad and y.is_leaf and y.grad_fn is None


def test_semantics_cli_json_lists_every_method(run_cli):
    r = run_cli("semantics", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert [d["method"] for d in data] == list(METHODS)
    for d in data:
        assert set(d["declared"]) == set(SEMANTIC_PROPERTIES)
        if d["observed"] is None:  # without a GPU (or a package it needs): skipped, with why
            assert "GPU" in d["skipped"] or "not installed" in d["skipped"], d
            continue
        assert set(d["observed"]) == set(SEMANTIC_PROPERTIES)
        assert d["matches"] is True


def test_semantics_cli_table_and_method_filter(run_cli):
    r = run_cli("semantics", "--method", "data", "--method", "detach")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:2] == ["method", "kind"]
    assert [ln.split()[0] for ln in lines[2:]] == ["data", "detach"]
