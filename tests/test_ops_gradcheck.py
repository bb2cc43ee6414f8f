"""Every differentiable primitive against central finite differences (float64).

``gradcheck`` contracts the output with a random upstream gradient, so a
backward that ignored its incoming gradient would fail here. Inputs stay
away from kinks (relu, abs, max ties, clip bounds) where the derivative is
undefined.
"""

import numpy as np
import pytest

import minisgd
from minisgd import Tensor, gradcheck


def leaf(rng, *shape, low=None, high=None):
    """A float64 leaf tensor of random values (uniform in [low, high] when given)."""
    if low is not None:
        values = rng.uniform(low, high, size=shape)
    else:
        values = rng.standard_normal(shape)
    return Tensor(values, requires_grad=True)


def away_from_zero(rng, *shape):
    """Random values with |x| in [0.2, 2]: no relu/abs kink within eps."""
    return Tensor(rng.uniform(0.2, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape), requires_grad=True)


BROADCAST_SHAPES = [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((5,), (2, 5)), ((), (2, 3)), ((2, 3), ())]


@pytest.mark.parametrize("shape_a, shape_b", BROADCAST_SHAPES)
@pytest.mark.parametrize(
    "op",
    [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, minisgd.maximum],
    ids=["add", "sub", "mul", "maximum"],
)
def test_binary_ops_broadcast(rng, op, shape_a, shape_b):
    a, b = leaf(rng, *shape_a), leaf(rng, *shape_b)
    assert gradcheck(op, a, b)


@pytest.mark.parametrize("shape_a, shape_b", BROADCAST_SHAPES)
def test_div_broadcast(rng, shape_a, shape_b):
    a, b = leaf(rng, *shape_a), leaf(rng, *shape_b, low=0.5, high=2.0)
    assert gradcheck(lambda a, b: a / b, a, b)


def test_pow_constant_and_tensor_exponent(rng):
    base = leaf(rng, 3, 4, low=0.5, high=2.0)
    exponent = leaf(rng, 1, 4, low=-1.5, high=2.5)
    assert gradcheck(lambda x: x**3, base)
    assert gradcheck(lambda x: x**-0.5, base)
    assert gradcheck(lambda x, e: x**e, base, exponent)
    assert gradcheck(lambda e: 2.0**e, exponent)


def test_python_scalars_on_both_sides(rng):
    x = leaf(rng, 2, 3, low=0.5, high=2.0)
    assert gradcheck(lambda x: 3.0 - x * 2 + 1 / x - x / 4, x)


def test_numpy_array_operands(rng):
    x = leaf(rng, 2, 3)
    constant = rng.standard_normal((2, 3))
    assert gradcheck(lambda x: constant * x + constant - x, x)


def test_neg(rng):
    assert gradcheck(lambda x: -x, leaf(rng, 4))


@pytest.mark.parametrize(
    "shape_a, shape_b",
    [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((4,), (4, 2)), ((3, 4), (4,)), ((4,), (4,)), ((2, 1, 3, 4), (5, 4, 2))],
)
def test_matmul(rng, shape_a, shape_b):
    assert gradcheck(lambda a, b: a @ b, leaf(rng, *shape_a), leaf(rng, *shape_b))


@pytest.mark.parametrize("axis, keepdims", [(None, False), (0, False), (1, True), ((0, 2), False), (-1, True)])
@pytest.mark.parametrize("reduction", ["sum", "mean", "max"])
def test_reductions(rng, reduction, axis, keepdims):
    # A permutation of distinct values: max has no ties to split.
    x = Tensor(rng.permutation(24).reshape(2, 3, 4) / 7.0, requires_grad=True)
    assert gradcheck(lambda x: getattr(x, reduction)(axis=axis, keepdims=keepdims), x)


def test_reshape_transpose_and_T(rng):
    x = leaf(rng, 2, 3, 4)
    assert gradcheck(lambda x: x.reshape(4, 6), x)
    assert gradcheck(lambda x: x.reshape(-1), x)
    assert gradcheck(lambda x: x.permute(2, 0, 1), x)
    assert gradcheck(lambda x: x.permute(-1, 0, 1), x)  # negative axes: the inverse permutation of (2, 0, 1)
    assert gradcheck(lambda x: x.transpose(0, -1), x)
    assert gradcheck(lambda x: x.T, x)


@pytest.mark.parametrize(
    "index",
    [
        (slice(1, 3),),
        (slice(None), 2),
        (Ellipsis, slice(None, None, 2)),
        (np.array([0, 2, 0, 3]),),  # repeats: gradients add up
        (np.array([0, 1, 1]), np.array([2, 0, 2])),
        (np.array([True, False, True, True]),),
    ],
    ids=["slice", "slice-int", "ellipsis-step", "int-array-repeats", "pair-of-int-arrays", "bool-mask"],
)
def test_getitem(rng, index):
    x = leaf(rng, 4, 3)
    assert gradcheck(lambda x: x[index if len(index) > 1 else index[0]], x)


@pytest.mark.parametrize(
    "fn, low, high",
    [
        (minisgd.exp, -2, 2),
        (minisgd.log, 0.2, 3),
        (minisgd.sqrt, 0.2, 3),
        (minisgd.tanh, -3, 3),
        (minisgd.sigmoid, -4, 4),
    ],
    ids=["exp", "log", "sqrt", "tanh", "sigmoid"],
)
def test_smooth_unary(rng, fn, low, high):
    assert gradcheck(fn, leaf(rng, 3, 4, low=low, high=high))


def test_relu_and_abs_away_from_the_kink(rng):
    x = away_from_zero(rng, 3, 4)
    assert gradcheck(minisgd.relu, x)
    assert gradcheck(minisgd.abs, x)


def test_clip_away_from_the_bounds(rng):
    values = rng.uniform(-2, 2, size=(5, 4))
    values[np.abs(np.abs(values) - 1.0) < 0.05] = 0.3  # keep clear of the bounds ±1
    x = Tensor(values, requires_grad=True)
    assert gradcheck(lambda x: minisgd.clip(x, -1.0, 1.0), x)
    assert gradcheck(lambda x: x.clip(min=-1.0), x)


def test_concatenate_and_stack(rng):
    a, b, c = leaf(rng, 2, 3), leaf(rng, 2, 1), leaf(rng, 2, 3)
    assert gradcheck(lambda a, b, c: minisgd.concatenate([a, b, c], axis=1), a, b, c)
    assert gradcheck(lambda a, c: minisgd.stack([a, c], axis=1), a, c)
    assert gradcheck(lambda a, c: minisgd.stack([a, c, a]), a, c)


def test_pad(rng):
    x = leaf(rng, 2, 3, 4)
    assert gradcheck(lambda x: minisgd.pad(x, ((0, 0), (1, 2), (2, 1))), x)
    assert gradcheck(lambda x: minisgd.pad(x, 1, value=5.0), x)


def test_where(rng):
    a, b = leaf(rng, 3, 4), leaf(rng, 1, 4)
    condition = rng.random((3, 4)) > 0.5
    assert gradcheck(lambda a, b: minisgd.where(condition, a, b), a, b)


def test_composite_expression_reuses_tensors(rng):
    """A node used several times sums the gradients from every use."""
    x, w = leaf(rng, 4, 3), leaf(rng, 3, 2)
    assert gradcheck(lambda x, w: ((x @ w).tanh() * (x @ w) + x.sum(axis=1, keepdims=True)).exp().mean(), x, w)
