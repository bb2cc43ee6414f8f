"""The reference convolution and pooling (minisgd/nn/conv_reference.py) against the fast kernels.

Two independent checks:

1. the reference, forward and the gradients autograd derives for it, against
   the nested loops of tests/test_nn_conv.py (written from the definition);
2. the fast route that training runs, ``F.conv2d`` / ``F.max_pool2d`` /
   ``F.avg_pool2d`` (hand-written kernels of minisgd/nn/conv.py), against the
   reference: forward and every gradient, over the same grid of shapes,
   strides and paddings, in float64 and in float32.

Device-agnostic: tensors go to the default device, results come back with ``.numpy()``.
"""

import numpy as np
import pytest
from test_nn_conv import CONV_CASES, POOL_CASES, direct_conv2d, direct_conv2d_grads, window_loop_max_pool

from minisgd import Tensor
from minisgd.nn import conv_reference
from minisgd.nn import functional as F

# The shapes of the reference networks' layers too: (N, C, H, W, O, kH, kW, stride, padding)
NETWORK_CASES = [
    (2, 3, 32, 32, 8, 3, 3, (1, 1), (1, 1)),  # small_vgg's first convolution (fewer output channels)
    (2, 16, 16, 16, 16, 3, 3, (1, 1), (1, 1)),  # small_vgg's later ones (fewer channels): the stride-1 backward
    (2, 8, 16, 16, 16, 3, 3, (1, 1), (1, 1)),  # twice the channels out: still the stride-1 backward
    (2, 3, 32, 32, 6, 5, 5, (1, 1), (0, 0)),  # lenet's first convolution
    (3, 6, 14, 14, 16, 5, 5, (1, 1), (0, 0)),  # lenet's second
]


def _grads(conv, x, w, b, g, stride, padding):
    """out and (∂L/∂x, ∂L/∂w, ∂L/∂b) of L = Σ g · conv(x, w, b), by autograd."""
    x_t, w_t, b_t = (Tensor(a, requires_grad=True) for a in (x, w, b))
    out = conv(x_t, w_t, b_t, stride=stride, padding=padding)
    (out * Tensor(g)).sum().backward()
    return out.detach().numpy(), x_t.grad, w_t.grad, b_t.grad


def _numpy(a):
    return a.get() if hasattr(a, "get") else np.asarray(a)


@pytest.mark.parametrize("case", CONV_CASES)
def test_reference_conv2d_matches_the_definition(rng, case):
    n, c, h, w_, o, kh, kw, stride, padding = case
    x, w, b = rng.standard_normal((n, c, h, w_)), rng.standard_normal((o, c, kh, kw)), rng.standard_normal(o)
    g = rng.standard_normal(direct_conv2d(x, w, b, stride, padding).shape)
    out, *grads = _grads(conv_reference.conv2d, x, w, b, g, stride, padding)
    np.testing.assert_allclose(out, direct_conv2d(x, w, b, stride, padding), rtol=1e-12, atol=1e-12)
    for got, expected in zip(grads, direct_conv2d_grads(x, w, g, stride, padding)):
        np.testing.assert_allclose(_numpy(got), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-12), (np.float32, 2e-4)])
@pytest.mark.parametrize("case", CONV_CASES + NETWORK_CASES)
def test_fast_conv2d_equals_the_reference(rng, case, dtype, tolerance):
    n, c, h, w_, o, kh, kw, stride, padding = case
    x = rng.standard_normal((n, c, h, w_)).astype(dtype)
    w = rng.standard_normal((o, c, kh, kw)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    g = rng.standard_normal(direct_conv2d(x[:1], w, b, stride, padding).shape[1:]).astype(dtype)
    g = np.broadcast_to(g, (n,) + g.shape).copy() * rng.standard_normal((n, 1, 1, 1)).astype(dtype)
    fast = _grads(F.conv2d, x, w, b, g, stride, padding)
    reference = _grads(conv_reference.conv2d, x, w, b, g, stride, padding)
    for name, got, expected in zip(("out", "grad x", "grad w", "grad b"), fast, reference):
        got, expected = _numpy(got), _numpy(expected)
        assert got.dtype == dtype, name
        scale = max(1.0, float(np.abs(expected).max()))
        np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance * scale, err_msg=name)


def test_fast_conv2d_without_bias_and_without_input_gradient_equals_the_reference(rng):
    x = Tensor(rng.standard_normal((2, 3, 7, 7)))
    w_fast, w_ref = (Tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True) for _ in range(2))
    w_ref.data[...] = w_fast.data
    g = Tensor(rng.standard_normal((2, 4, 7, 7)))
    (F.conv2d(x, w_fast, padding=1) * g).sum().backward()
    (conv_reference.conv2d(x, w_ref, padding=1) * g).sum().backward()
    assert x.grad is None
    np.testing.assert_allclose(_numpy(w_fast.grad), _numpy(w_ref.grad), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-12), (np.float32, 2e-4)])
@pytest.mark.parametrize("case", CONV_CASES + NETWORK_CASES)
def test_fast_conv2d_of_a_first_layer_equals_the_reference(rng, case, dtype, tolerance):
    """No ∂L/∂x (a first layer): with few output channels the weight gradient comes from the widened kernel."""
    n, c, h, w_, o, kh, kw, stride, padding = case
    x = Tensor(rng.standard_normal((n, c, h, w_)).astype(dtype))
    weights = [Tensor(rng.standard_normal((o, c, kh, kw)).astype(dtype), requires_grad=True)]
    biases = [Tensor(rng.standard_normal(o).astype(dtype), requires_grad=True)]
    weights.append(Tensor(weights[0].data.copy(), requires_grad=True))
    biases.append(Tensor(biases[0].data.copy(), requires_grad=True))
    g = Tensor(rng.standard_normal(direct_conv2d(x.data[:1], weights[0].data, None, stride, padding).shape[1:]))
    for conv, weight, bias in zip((F.conv2d, conv_reference.conv2d), weights, biases):
        (conv(x, weight, bias, stride=stride, padding=padding) * g).sum().backward()
    pairs = (("grad w", weights[0].grad, weights[1].grad), ("grad b", biases[0].grad, biases[1].grad))
    for name, fast, reference in pairs:
        scale = max(1.0, float(np.abs(_numpy(reference)).max()))
        np.testing.assert_allclose(
            _numpy(fast), _numpy(reference), rtol=tolerance, atol=tolerance * scale, err_msg=name
        )


def _pool_grads(pool, x, kernel, stride, g):
    x_t = Tensor(x, requires_grad=True)
    out = pool(x_t, kernel, stride)
    (out * Tensor(g)).sum().backward()
    return out.detach().numpy(), _numpy(x_t.grad)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("shape, kernel, stride", POOL_CASES)
def test_reference_and_fast_max_pool_agree_with_the_definition(rng, shape, kernel, stride, ties):
    """Ties (integers 0 to 2, as after a ReLU): both send the gradient to the first maximum, like PyTorch."""
    x = rng.integers(0, 3, size=shape).astype(np.float64) if ties else rng.standard_normal(shape)
    out_shape = ((shape[2] - kernel[0]) // stride[0] + 1, (shape[3] - kernel[1]) // stride[1] + 1)
    g = rng.standard_normal(shape[:2] + out_shape)
    ref_out, ref_grad = window_loop_max_pool(x, kernel, stride, g)
    reference = _pool_grads(conv_reference.max_pool2d, x, kernel, stride, g)
    fast = _pool_grads(F.max_pool2d, x, kernel, stride, g)
    for got in (reference, fast):
        np.testing.assert_array_equal(got[0], ref_out)
        np.testing.assert_allclose(got[1], ref_grad, rtol=1e-14)


@pytest.mark.parametrize("shape, kernel, stride", POOL_CASES)
def test_fast_avg_pool_equals_the_reference(rng, shape, kernel, stride):
    x = rng.standard_normal(shape)
    out_shape = ((shape[2] - kernel[0]) // stride[0] + 1, (shape[3] - kernel[1]) // stride[1] + 1)
    g = rng.standard_normal(shape[:2] + out_shape)
    fast = _pool_grads(F.avg_pool2d, x, kernel, stride, g)
    reference = _pool_grads(conv_reference.avg_pool2d, x, kernel, stride, g)
    for got, expected in zip(fast, reference):
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)
