"""The tutorial this project started from (shared/seed), claim by claim, on the installed torch.

Where the tutorial is right, the test checks its claim (numeric examples included).  Where it
is wrong or vague, the test checks what torch really does and a comment says so.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from torch import nn


def test_tensors_and_numpy_arrays_can_share_memory():
    a = np.zeros(3, dtype=np.float32)
    t = torch.from_numpy(a)
    a[0] = 7
    assert t[0].item() == 7
    assert t.numpy().__array_interface__["data"][0] == a.__array_interface__["data"][0]


def test_clone_is_recorded_by_autograd_and_imitates_requires_grad():
    x = torch.ones(5, requires_grad=True)
    y = x.clone()
    assert torch.equal(x, y)
    assert type(y.grad_fn).__name__ == "CloneBackward0"
    assert "grad_fn=<CloneBackward0>" in repr(y)  # the tutorial's printout
    assert y.requires_grad
    # "imitates the original tensor's requires_grad field": without grad, no grad_fn.
    z = torch.ones(5).clone()
    assert not z.requires_grad and z.grad_fn is None


def test_clone_copies_memory():
    x = torch.ones(5, requires_grad=True)
    y = x.clone()
    assert y.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()


def test_two_clones_both_propagate_gradients_to_x():
    x = torch.ones(5, requires_grad=True)
    y = x.clone() * 2
    z = x.clone() * 3
    (y + z).sum().backward()
    assert torch.equal(x.grad, torch.full((5,), 5.0))


def test_grad_of_a_non_leaf_clone_is_none_with_a_warning():
    x = torch.ones(5, requires_grad=True)
    x_clone = x.clone()
    (x_clone * 2).sum().backward()
    with pytest.warns(UserWarning, match="not a leaf Tensor is being accessed"):
        assert x_clone.grad is None
    assert torch.equal(x.grad, torch.full((5,), 2.0))


def test_detach_blocks_gradient_flow():
    x = torch.ones(5, requires_grad=True)
    y = x * 2
    z = x.detach() * 3
    (y + z).sum().backward()
    assert torch.equal(x.grad, torch.full((5,), 2.0))


def test_detach_shares_storage_and_does_not_require_grad():
    x = torch.ones(5, requires_grad=True)
    d = x.detach()
    assert d.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
    assert not d.requires_grad and d.is_leaf
    with torch.no_grad():
        d[0] = 42
    assert x[0].item() == 42


def test_in_place_change_through_detach_breaks_backward():
    a = torch.ones(5, requires_grad=True)
    b = a**2
    c = a.detach()
    c.zero_()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        b.sum().backward()


def test_cloning_first_avoids_the_in_place_error():
    a = torch.ones(5, requires_grad=True)
    b = a**2
    c = a.detach().clone()
    c.zero_()
    b.sum().backward()
    assert torch.equal(a.grad, torch.full((5,), 2.0))


def test_in_place_on_a_leaf_that_requires_grad_raises():
    # The tutorial says writing in place to a leaf gives "no error message".  Wrong: torch
    # refuses with a RuntimeError.  An in-place write to a clone (a non-leaf) is allowed.
    x = torch.ones(5, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        x.add_(1)
    y = x.clone()
    y.add_(1)
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones(5))


def test_in_place_that_overwrites_saved_data_is_detected_on_a_clone():
    # The other in-place error the tutorial names: overwriting a value saved for backward.
    x = torch.ones(5, requires_grad=True)
    y = x.clone()
    z = y.sin()  # saves y
    y.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


@pytest.mark.parametrize("route", ["clone_detach", "detach_clone"])
def test_clone_detach_and_detach_clone_give_the_same_result(route):
    x = torch.randn(5, requires_grad=True)
    y = x.clone().detach() if route == "clone_detach" else x.detach().clone()
    assert torch.equal(x, y)
    assert not y.requires_grad and y.is_leaf and y.grad_fn is None
    assert y.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()
    y.add_(1)  # independent memory, no autograd link
    assert not torch.equal(x, y)


def test_clone_first_records_an_autograd_node_detach_first_does_not():
    # "if you do clone first, then the autograd info is created for the clone": the
    # intermediate of clone().detach() has a grad_fn, the one of detach().clone() has none.
    x = torch.randn(5, requires_grad=True)
    assert x.clone().grad_fn is not None
    assert x.detach().clone().grad_fn is None


def test_deepcopy_of_a_leaf_is_a_new_leaf_with_its_requires_grad():
    x = torch.ones(5, requires_grad=True)
    x_deepcopy = copy.deepcopy(x)
    assert torch.equal(x, x_deepcopy)
    assert x_deepcopy.requires_grad and x_deepcopy.is_leaf and x_deepcopy.grad_fn is None
    assert x_deepcopy.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()
    # No history is replicated or shared: gradients through the copy stay on the copy.
    x_deepcopy.sum().backward()
    assert x.grad is None and torch.equal(x_deepcopy.grad, torch.ones(5))


def test_deepcopy_copies_grad_too():
    # Not in the tutorial: deepcopy also copies an existing .grad, into new memory.
    x = torch.ones(5, requires_grad=True)
    (x * 3).sum().backward()
    c = copy.deepcopy(x)
    assert torch.equal(c.grad, x.grad)
    assert c.grad.data_ptr() != x.grad.data_ptr()


def test_deepcopy_of_a_non_leaf_raises():
    # The tutorial says deepcopy "should do a deep replication of the history".  It does
    # not: torch refuses to deepcopy a non-leaf tensor at all.
    x = torch.ones(5, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="graph leaves"):
        copy.deepcopy(y)


def test_deepcopy_of_a_detached_non_leaf_works():
    x = torch.ones(5, requires_grad=True)
    y = (x * 2).detach()
    c = copy.deepcopy(y)
    assert torch.equal(c, y) and not c.requires_grad


def test_data_does_not_share_the_version_counter_and_hides_in_place_writes():
    # The tutorial does not mention .data.  Unlike detach(), it gets its own version
    # counter, so an in-place write through it is invisible to autograd: backward runs
    # and silently uses the overwritten values (gradient 0 instead of 2).
    a = torch.ones(5, requires_grad=True)
    b = a**2
    v = a._version
    a.data.zero_()
    assert a._version == v
    b.sum().backward()
    assert torch.equal(a.grad, torch.zeros(5))

    a = torch.ones(5, requires_grad=True)
    v = a._version
    a.detach().zero_()
    assert a._version == v + 1


def test_modules_have_no_clone_method():
    assert not hasattr(nn.Linear(2, 2), "clone")


@pytest.mark.parametrize("route", ["deepcopy", "new_instance"])
def test_module_copies_are_equal_and_independent(route):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    if route == "deepcopy":
        other = copy.deepcopy(model)
    else:
        other = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        other.load_state_dict(model.state_dict())
    for (k, p), (k2, q) in zip(model.named_parameters(), other.named_parameters(), strict=True):
        assert k == k2 and torch.equal(p, q) and p.data_ptr() != q.data_ptr()
        assert q.requires_grad and q.is_leaf
    with torch.no_grad():
        next(other.parameters()).add_(1)
    assert not torch.equal(next(model.parameters()), next(other.parameters()))


def test_no_warning_when_reading_grad_of_a_leaf():
    x = torch.ones(5, requires_grad=True)
    x.sum().backward()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(x.grad, torch.ones(5))
