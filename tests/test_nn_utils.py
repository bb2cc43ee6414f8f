"""Gradient clipping against hand-computed norms, and against torch.nn.utils when installed."""

import math

import numpy as np
import pytest

import minisgd
from minisgd.nn.utils import clip_grad_norm_, clip_grad_value_


def params_with_grads(*grads, dtype=np.float64):
    params = []
    for g in grads:
        p = minisgd.Tensor(np.zeros(np.shape(g), dtype=dtype), requires_grad=True)
        p.grad = None if g is None else np.array(g, dtype=dtype)
        params.append(p)
    return params


def test_clip_grad_norm_by_hand():
    # Gradients (3, 4) and (12,): total 2-norm √(9 + 16 + 144) = 13; max_norm 6.5 halves them (up to 1e-6).
    a, b, skipped = params_with_grads([3.0, 4.0], [12.0], None)
    total = clip_grad_norm_([a, b, skipped], max_norm=6.5)
    assert total == 13.0
    factor = 6.5 / (13.0 + 1e-6)
    np.testing.assert_allclose(a.grad, [3.0 * factor, 4.0 * factor], rtol=1e-15)
    np.testing.assert_allclose(b.grad, [12.0 * factor], rtol=1e-15)
    assert math.sqrt(float(a.grad @ a.grad + b.grad @ b.grad)) == pytest.approx(6.5, abs=1e-6)


def test_clip_grad_norm_other_orders_by_hand():
    # p = 1: |3| + |−4| + |12| = 19; p = inf: max |g| = 12; p = 3: (27 + 64 + 1728)^(1/3).
    for norm_type, expected in ((1, 19.0), (math.inf, 12.0), (3.0, 1819.0 ** (1 / 3))):
        a, b = params_with_grads([3.0, -4.0], [12.0])
        assert clip_grad_norm_([a, b], max_norm=1.0, norm_type=norm_type) == pytest.approx(expected, rel=1e-15)
        assert b.grad[0] == pytest.approx(12.0 / (expected + 1e-6), rel=1e-15)


def test_clip_grad_norm_leaves_small_gradients_alone():
    a, b = params_with_grads([0.3, 0.4], [0.0])
    assert clip_grad_norm_(a, max_norm=1.0) == pytest.approx(0.5, rel=1e-15)  # a single tensor is accepted
    np.testing.assert_array_equal(a.grad, [0.3, 0.4])
    assert clip_grad_norm_(params_with_grads(None), max_norm=1.0) == 0.0  # nothing to clip


@pytest.mark.filterwarnings("ignore:invalid value encountered in multiply:RuntimeWarning")
def test_clip_grad_norm_non_finite():
    (a,) = params_with_grads([1.0, np.inf])
    with pytest.raises(RuntimeError, match="total norm of order 2.0 of the gradients is inf"):
        clip_grad_norm_([a], 1.0, error_if_nonfinite=True)
    assert clip_grad_norm_([a], 1.0) == math.inf  # as in PyTorch: coefficient 0, and inf · 0 is NaN
    assert a.grad[0] == 0.0 and np.isnan(a.grad[1])


def test_clip_grad_value_by_hand():
    a, b = params_with_grads([-3.0, 0.5, 2.0], [[10.0, -0.1]], dtype=np.float32)
    array = a.grad
    clip_grad_value_([a, b], clip_value=1.0)
    np.testing.assert_array_equal(a.grad, [-1.0, 0.5, 1.0])
    np.testing.assert_array_equal(b.grad, np.array([[1.0, -0.1]], dtype=np.float32))
    assert a.grad is array and a.grad.dtype == np.float32  # in place


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda p: clip_grad_norm_(p, -1.0), "clip_grad_norm_: max_norm must be >= 0; got -1.0"),
        (lambda p: clip_grad_norm_(p, 1.0, norm_type=0), "clip_grad_norm_: norm_type must be > 0; got 0"),
        (lambda p: clip_grad_value_(p, float("nan")), "clip_grad_value_: clip_value must be a finite number >= 0"),
    ],
)
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call(params_with_grads([1.0]))


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.5, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_matches_torch(norm_type, max_norm, rng):
    torch = pytest.importorskip("torch")
    grads = [rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=7).astype(np.float32)]
    ours = params_with_grads(*grads, dtype=np.float32)
    theirs = [torch.zeros(g.shape, requires_grad=True) for g in grads]
    for t, g in zip(theirs, grads):
        t.grad = torch.tensor(g)
    total = clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    expected = float(torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type))
    assert total == pytest.approx(expected, rel=1e-6)
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-6, atol=1e-7)
