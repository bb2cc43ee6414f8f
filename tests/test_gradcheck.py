"""gradcheck itself: it must catch wrong backwards, not just pass right ones."""

import numpy as np
import pytest

from minisgd import Tensor, from_op, gradcheck
from minisgd.backend import get_array_module


def square_with_bug(x: Tensor) -> Tensor:
    """x² whose backward forgets the factor 2 (a typical mistake)."""
    data = x.data
    return from_op(data * data, (x,), lambda g: (g * data,), "square_with_bug")


def scale_ignoring_upstream(x: Tensor) -> Tensor:
    """3x whose backward returns 3 everywhere, ignoring the gradient it receives."""
    return from_op(3 * x.data, (x,), lambda g: (3 * get_array_module(g).ones_like(g),), "scale_ignoring_upstream")


def test_a_dropped_factor_is_caught(rng):
    x = Tensor(rng.uniform(0.5, 2, size=(3, 2)), requires_grad=True)
    with pytest.raises(AssertionError, match=r"input 0 \(shape \(3, 2\)\).*analytic .* numeric .* relative error"):
        gradcheck(square_with_bug, x)


def test_a_backward_that_ignores_its_upstream_gradient_is_caught(rng):
    """With an all-ones upstream gradient this bug would pass; the random one catches it."""
    x = Tensor(rng.standard_normal(5), requires_grad=True)
    with pytest.raises(AssertionError, match="gradient mismatch"):
        gradcheck(scale_ignoring_upstream, x)


def test_only_the_inputs_that_require_grad_are_checked(rng):
    x = Tensor(rng.standard_normal(3), requires_grad=True)
    constant = Tensor(rng.standard_normal(3))
    assert gradcheck(lambda x, c: x * c, x, constant)


def test_float32_inputs_are_refused():
    with pytest.raises(ValueError, match="float64"):
        gradcheck(lambda x: x * 2, Tensor([1.0, 2.0], requires_grad=True))


def test_no_input_requiring_grad_is_refused():
    with pytest.raises(ValueError, match="requires grad"):
        gradcheck(lambda x: x * 2, Tensor(np.ones(2)))
