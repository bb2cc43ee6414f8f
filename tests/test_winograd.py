"""Winograd F(2×2, 3×3) (minisgd/nn/winograd.py) against the reference convolution.

Expected values come from elsewhere: the matrices' identity from a direct 2×2
correlation of one tile, and every convolution from
:func:`minisgd.nn.conv_reference.conv2d` (slices, stack, one product, and
autograd for the gradients), plus a finite-difference gradcheck. Forward and
every gradient, over batch sizes (1 too), odd image sizes (the last tile half
outside the image), padding 0 and 1, and channel counts; float64 tight, float32
at a stated bound; and a hypothesis search over shapes.

Device-agnostic: arrays go to the default device (the fake CuPy in
tests/test_gpu_guard.py), results come back through ``backend.to_numpy``.
"""

import numpy as np
import pytest
from conftest import FULL
from hypothesis import given, settings
from hypothesis import strategies as st

from minisgd import Tensor, backend, gradcheck
from minisgd.nn import conv_reference, winograd
from minisgd.tensor import from_op

XP = backend.array_module(backend.default_device())

# (N, C, H, W, O, padding): batch 1 to 4, even and odd sizes, the smallest images (output 1×1, 1×2, 2×2),
# one to 16 channels in and out.
CASES = [
    (1, 1, 3, 3, 1, 0),
    (1, 2, 4, 4, 3, 1),
    (2, 3, 5, 7, 2, 1),
    (3, 4, 6, 5, 5, 0),
    (2, 5, 7, 7, 4, 1),
    (1, 16, 9, 8, 8, 1),
    (4, 2, 2, 2, 3, 1),
    (2, 3, 3, 4, 2, 0),
    (1, 3, 1, 1, 2, 1),
]


def _reference(x, w, b, g, padding, need_input_grad=True):
    """out and (∂L/∂x, ∂L/∂w, ∂L/∂b) of L = Σ g · conv(x, w, b), by autograd through the reference."""
    x_t = Tensor(x, requires_grad=need_input_grad)
    w_t = Tensor(w, requires_grad=True)
    b_t = None if b is None else Tensor(b, requires_grad=True)
    out = conv_reference.conv2d(x_t, w_t, b_t, stride=1, padding=padding)
    (out * Tensor(g)).sum().backward()
    grads = (x_t.grad if need_input_grad else None, w_t.grad, None if b is None else b_t.grad)
    return backend.to_numpy(out.data), tuple(None if a is None else backend.to_numpy(a) for a in grads)


def _winograd(x, w, b, g, padding, need_input_grad=True):
    """out and (∂L/∂x, ∂L/∂w, ∂L/∂b) from minisgd.nn.winograd, on the default device."""
    x_d, w_d, g_d = XP.asarray(x), XP.asarray(w), XP.asarray(g)
    b_d = None if b is None else XP.asarray(b)
    out = winograd.conv2d_forward(x_d, w_d, b_d, (padding, padding))
    grads = winograd.conv2d_backward(g_d, x_d, w_d, (padding, padding), need_input_grad, b is not None)
    return backend.to_numpy(out), tuple(None if a is None else backend.to_numpy(a) for a in grads)


def _draw(rng, case, dtype=np.float64):
    n, c, h, w_, o, p = case
    x = rng.standard_normal((n, c, h, w_)).astype(dtype)
    w = (rng.standard_normal((o, c, 3, 3)) * np.sqrt(2.0 / (9 * c))).astype(dtype)  # He scale, as training
    b = rng.standard_normal(o).astype(dtype)
    g = rng.standard_normal((n, o, h + 2 * p - 2, w_ + 2 * p - 2)).astype(dtype)
    return x, w, b, g, p


def _assert_close(got, expected, tolerance, name):
    """|got − expected| <= tolerance · max|expected| everywhere (a bound relative to the array's scale)."""
    scale = max(float(np.abs(expected).max(initial=0.0)), 1e-300)
    error = float(np.abs(got.astype(np.float64) - expected).max(initial=0.0))
    assert error <= tolerance * scale, f"{name}: max error {error:.3e} > {tolerance:.0e} × {scale:.3e}"


def test_the_matrices_satisfy_the_identity_on_one_tile(rng):
    """Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A is the 2×2 correlation of the 4×4 tile d with the 3×3 kernel g."""
    b_t, g_matrix, a_t = (np.array(m, dtype=np.float64) for m in (winograd.B_T, winograd.G, winograd.A_T))
    for _ in range(5):
        d, kernel = rng.standard_normal((4, 4)), rng.standard_normal((3, 3))
        direct = np.array([[(d[y : y + 3, x : x + 3] * kernel).sum() for x in range(2)] for y in range(2)])
        y = a_t @ ((g_matrix @ kernel @ g_matrix.T) * (b_t @ d @ b_t.T)) @ a_t.T
        np.testing.assert_allclose(y, direct, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("case", CASES)
def test_forward_and_every_gradient_equal_the_reference_in_float64(rng, case, with_bias):
    x, w, b, g, p = _draw(rng, case)
    b = b if with_bias else None
    expected_out, expected_grads = _reference(x, w, b, g, p)
    out, grads = _winograd(x, w, b, g, p)
    _assert_close(out, expected_out, 1e-13, "out")
    for name, got, expected in zip(("∂L/∂x", "∂L/∂w", "∂L/∂b"), grads, expected_grads):
        if expected is None:
            assert got is None, name
        else:
            _assert_close(got, expected, 1e-13, name)


def test_without_input_gradient_only_the_weights_and_bias(rng):
    x, w, b, g, p = _draw(rng, (2, 3, 5, 6, 4, 1))
    _, expected = _reference(x, w, b, g, p, need_input_grad=False)
    _, grads = _winograd(x, w, b, g, p, need_input_grad=False)
    assert grads[0] is None
    _assert_close(grads[1], expected[1], 1e-13, "∂L/∂w")
    _assert_close(grads[2], expected[2], 1e-13, "∂L/∂b")


# small_vgg's channel counts on small images. Measured float32 error against the float64 reference,
# relative to the largest value: at most 9.5e-7 (im2col in float32: 7.4e-7); the bound is 5e-6.
FLOAT32_BOUND = 5e-6
FLOAT32_CASES = [(2, 32, 8, 8, 32, 1), (2, 32, 6, 6, 64, 1), (1, 64, 8, 7, 64, 1), (3, 16, 9, 9, 8, 0)]


@pytest.mark.parametrize("case", FLOAT32_CASES)
def test_float32_stays_within_the_stated_bound_of_the_float64_reference(rng, case):
    x, w, b, g, p = _draw(rng, case)
    expected_out, expected_grads = _reference(x, w, b, g, p)  # float64
    out, grads = _winograd(*(a.astype(np.float32) for a in (x, w, b, g)), p)
    assert out.dtype == np.float32 and all(a.dtype == np.float32 for a in grads)
    _assert_close(out, expected_out, FLOAT32_BOUND, "out")
    for name, got, expected in zip(("∂L/∂x", "∂L/∂w", "∂L/∂b"), grads, expected_grads):
        _assert_close(got, expected, FLOAT32_BOUND, name)


def _winograd_op(x: Tensor, w: Tensor, b: Tensor, padding: int) -> Tensor:
    """The Winograd convolution as a differentiable operation, for gradcheck."""
    out = winograd.conv2d_forward(x.data, w.data, b.data, (padding, padding))

    def backward(g):
        return winograd.conv2d_backward(g, x.data, w.data, (padding, padding))

    return from_op(out, (x, w, b), backward, "winograd_conv2d")


@pytest.mark.parametrize("padding", [0, 1])
def test_gradcheck_in_float64(rng, padding):
    x, w, b, _, p = _draw(rng, (2, 3, 5, 4, 2, padding))
    inputs = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    assert gradcheck(lambda *t: _winograd_op(*t, p), *inputs)


@settings(max_examples=300 if FULL else 25, deadline=None)
@given(
    n=st.integers(1, 3), c=st.integers(1, 6), o=st.integers(1, 5), padding=st.integers(0, 1),
    h=st.integers(1, 11), w=st.integers(1, 11), seed=st.integers(0, 2**32 - 1),
)
def test_any_shape_equals_the_reference(n, c, o, padding, h, w, seed):
    """Generative: any batch, channels and image size the convolution accepts (H, W >= 3 − 2p)."""
    h, w = max(h, 3 - 2 * padding), max(w, 3 - 2 * padding)
    x, wt, b, g, p = _draw(np.random.default_rng(seed), (n, c, h, w, o, padding))
    expected_out, expected_grads = _reference(x, wt, b, g, p)
    out, grads = _winograd(x, wt, b, g, p)
    _assert_close(out, expected_out, 1e-13, "out")
    for name, got, expected in zip(("∂L/∂x", "∂L/∂w", "∂L/∂b"), grads, expected_grads):
        _assert_close(got, expected, 1e-13, name)


def test_applies_to_3x3_stride_1_padding_0_or_1_only():
    assert winograd.applies((8, 4, 3, 3), (1, 1), (1, 1))
    assert winograd.applies((8, 4, 3, 3), (1, 1), (0, 0))
    assert not winograd.applies((8, 4, 5, 5), (1, 1), (1, 1))  # kernel
    assert not winograd.applies((8, 4, 3, 3), (2, 2), (1, 1))  # stride
    assert not winograd.applies((8, 4, 3, 3), (1, 1), (2, 2))  # padding
    assert not winograd.applies((8, 4, 3, 3), (1, 1), (0, 1))  # padding differs between the axes


def test_an_empty_batch_gives_an_empty_output_and_zero_gradients():
    """L = Σ g · out sums over no image: every gradient is 0 (the reference's autograd says the same)."""
    x, w, b, g = np.zeros((0, 3, 5, 5)), np.ones((2, 3, 3, 3)), np.ones(2), np.zeros((0, 2, 5, 5))
    out, (grad_x, grad_w, grad_b) = _winograd(x, w, b, g, 1)
    assert out.shape == (0, 2, 5, 5) and grad_x.shape == (0, 3, 5, 5)
    np.testing.assert_array_equal(grad_w, np.zeros((2, 3, 3, 3)))
    np.testing.assert_array_equal(grad_b, np.zeros(2))
