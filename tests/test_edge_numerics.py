"""Ops, layers and losses at the edges of their domains: finite (or PyTorch's) values, never a stray NaN.

Expected values come from float64 formulas written here, or from PyTorch's
documented conventions written out (the gradient of x ** 0 is 0, NaN wins a
max-pool window, a masked logit costs nothing). When PyTorch is installed the
parity test at the end runs the same cases through it.
"""

import warnings

import numpy as np
import pytest

import minisgd
from minisgd import Tensor, nn
from minisgd.backend import to_numpy
from minisgd.nn import functional as F

NAN, INF = np.nan, np.inf


def _grad(fn, *values, dtype=np.float64):
    """fn applied to leaves made from values; returns (output array, [gradient of the sum for each leaf])."""
    leaves = [Tensor(np.array(v, dtype=dtype), requires_grad=True) for v in values]
    out = fn(*leaves)
    out.sum().backward()
    return out.detach().numpy(), [leaf.grad for leaf in leaves]


# ------------------------------------------------------------------- sigmoid
def test_sigmoid_is_accurate_in_float32_over_the_whole_range():
    x = np.linspace(-80.0, 80.0, 2001).astype(np.float32)  # σ(−80) ≈ 1.8e−35, still a normal float32
    exact = 1.0 / (1.0 + np.exp(-x.astype(np.float64)))  # float64 reference at the same inputs
    ours = Tensor(x).sigmoid().numpy()
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, exact, rtol=3e-7, atol=0)  # a few float32 ulps, relative, everywhere


def test_log_sigmoid_stays_finite_with_the_right_gradient():
    x = np.array([-20.0, -30.0, -60.0, 0.0, 2.0], dtype=np.float32)
    out, (grad,) = _grad(lambda v: v.sigmoid().log(), x, dtype=np.float32)
    exact = -np.log1p(np.exp(-x.astype(np.float64)))  # log σ(x) = −log(1 + e^−x)
    np.testing.assert_allclose(out, exact, rtol=1e-6)
    np.testing.assert_allclose(grad, 1.0 / (1.0 + np.exp(x.astype(np.float64))), rtol=1e-6)  # 1 − σ(x)


def test_sigmoid_at_infinities_and_nan():
    out = Tensor(np.array([-INF, INF, NAN])).sigmoid().numpy()
    np.testing.assert_array_equal(out[:2], [0.0, 1.0])
    assert np.isnan(out[2])


# ------------------------------------------------------------------- power
def test_zero_exponent_has_zero_gradient_even_at_zero():
    _, (grad,) = _grad(lambda x: x ** 0, [0.0, 2.0, -3.0])
    np.testing.assert_array_equal(grad, [0.0, 0.0, 0.0])
    _, (grad,) = _grad(lambda x: x ** np.float64(0.0), [0.0])
    np.testing.assert_array_equal(grad, [0.0])


def test_gradient_with_respect_to_the_exponent_at_zero_base():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no divide-by-zero warning escapes either
        out, (grad_x, grad_p) = _grad(lambda x, p: x ** p, [0.0, 0.0, 0.0, 2.0], [2.0, 0.0, 0.5, 3.0])
    np.testing.assert_array_equal(out, [0.0, 1.0, 0.0, 8.0])
    # ∂/∂p of 0^p is 0 for p >= 0 (0 ** 0 = 1 included); elsewhere x^p ln x.
    np.testing.assert_allclose(grad_p, [0.0, 0.0, 0.0, 8.0 * np.log(2.0)], rtol=1e-15)
    # ∂/∂x = p x^(p−1): 0 at p = 2, 0 at p = 0 (constant), +inf at p = ½ (as the formula says), 12 at (2, 3).
    np.testing.assert_array_equal(grad_x, [0.0, 0.0, INF, 12.0])


# --------------------------------------------------------- NaN in the inputs
def test_relu_passes_the_gradient_of_a_nan_like_pytorch():
    out, (grad,) = _grad(minisgd.relu, [NAN, -1.0, 0.0, 2.0])
    assert np.isnan(out[0])
    np.testing.assert_array_equal(grad, [1.0, 0.0, 0.0, 1.0])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_relu_gradient_is_exactly_g_or_positive_zero_even_for_infinite_g(dtype):
    """PyTorch's threshold_backward selects: 0 where out <= 0 (never −0, never ∞·0 = NaN), g elsewhere."""
    x = Tensor(np.array([-1.0, 2.0, -3.0, 0.0, 4.0, NAN], dtype=dtype), requires_grad=True)
    g = np.array([INF, -INF, -5.0, NAN, -7.0, 3.0], dtype=dtype)
    minisgd.relu(x).backward(g)
    grad = to_numpy(x.grad)
    assert grad.dtype == dtype
    np.testing.assert_array_equal(grad, np.array([0.0, -INF, 0.0, 0.0, -7.0, 3.0], dtype=dtype))
    assert not np.signbit(grad[[0, 2, 3]]).any()  # +0, as a selection gives


def test_relu_of_an_array_split_over_threads_is_the_same_selection():
    """A large array (minisgd.backend.row_blocks: parts on every core) gives the same numbers, bit for bit."""
    from minisgd import backend

    rng = np.random.default_rng(0)
    data = rng.standard_normal((6, backend.SPLIT_ELEMENTS // 2)).astype(np.float32)
    data[0, :4] = [NAN, INF, -INF, -0.0]
    g = rng.standard_normal(data.shape).astype(np.float32)
    g[1, :3] = [INF, NAN, -5.0]
    x = Tensor(data.copy(), requires_grad=True)
    out = minisgd.relu(x)
    out.backward(g)
    expected_out = np.maximum(data, np.float32(0))
    expected_grad = np.where(expected_out <= 0, np.float32(0), g)
    assert out.detach().numpy().tobytes() == expected_out.tobytes()
    assert to_numpy(x.grad).tobytes() == expected_grad.tobytes()


def test_abs_has_zero_gradient_at_zero_and_nan():
    _, (grad,) = _grad(minisgd.abs, [NAN, 0.0, -2.0, 3.0])
    np.testing.assert_array_equal(grad, [0.0, 0.0, -1.0, 1.0])


def test_maximum_splits_ties_and_sends_nan_gradients_to_both():
    _, (grad_a, grad_b) = _grad(minisgd.maximum, [1.0, NAN, 2.0, 3.0], [1.0, 0.0, NAN, 5.0])
    np.testing.assert_array_equal(grad_a, [0.5, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(grad_b, [0.5, 1.0, 1.0, 1.0])


def test_max_pool_window_with_nan_returns_nan_and_routes_the_gradient_to_it():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 0, 1] = NAN
    out, (grad,) = _grad(lambda v: F.max_pool2d(v, 2), x)
    assert np.isnan(out[0, 0, 0, 0])
    np.testing.assert_array_equal(out[0, 0].ravel()[1:], [7.0, 13.0, 15.0])
    expected = np.zeros((4, 4))
    expected[0, 1] = expected[1, 3] = expected[3, 1] = expected[3, 3] = 1.0
    np.testing.assert_array_equal(grad[0, 0], expected)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the stride-1 route's 0·inf, then discarded
def test_conv_weight_gradient_stays_finite_where_an_infinite_pixel_never_reaches():
    x = np.ones((1, 1, 4, 4))
    x[0, 0, 0, 0] = INF
    _, (_, grad_w) = _grad(lambda v, w: F.conv2d(v, w), x, np.ones((1, 1, 3, 3)))
    # ∂L/∂w[i, j] = Σ_{y, x} x[y + i, x + j] over the 2×2 outputs: only offset (0, 0) meets the inf pixel.
    expected = np.full((3, 3), 4.0)
    expected[0, 0] = INF
    np.testing.assert_array_equal(grad_w[0, 0], expected)


# ------------------------------------------------------------- masked logits
def test_cross_entropy_with_masked_logits_is_finite():
    logits = np.array([[0.0, -INF, 1.0], [-INF, 0.0, 2.0], [3.0, 1.0, -INF]])
    targets = np.array([0, 2, 1])
    out, (grad,) = _grad(lambda z: F.cross_entropy(z, targets), logits)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    expected = -np.mean(np.log(probs[np.arange(3), targets]))
    np.testing.assert_allclose(out, expected, rtol=1e-15)
    np.testing.assert_allclose(grad, (probs - np.eye(3)[targets]) / 3, rtol=1e-15, atol=1e-17)


def test_cross_entropy_with_masked_logits_and_label_smoothing_is_infinite_like_pytorch():
    logits = Tensor(np.array([[0.0, -INF, 1.0]]))
    assert F.cross_entropy(logits, np.array([0]), label_smoothing=0.1).item() == INF


def test_log_softmax_of_a_masked_row():
    out = F.log_softmax(Tensor(np.array([[0.0, -INF, 0.0]]))).numpy()
    np.testing.assert_allclose(out, [[-np.log(2.0), -INF, -np.log(2.0)]])


# ------------------------------------------------------------- empty batches
def test_empty_batches_flow_through_layers_and_losses():
    x = Tensor(np.zeros((0, 2, 4, 4)), requires_grad=True)
    flat = F.flatten(F.max_pool2d(F.relu(x), 2))
    assert flat.shape == (0, 8)
    out = F.linear(flat, Tensor(np.ones((3, 8))))
    assert out.shape == (0, 3)
    out.sum().backward()
    assert x.grad.shape == (0, 2, 4, 4)


def test_max_over_an_empty_axis_is_a_clear_error_and_over_the_other_axis_is_empty():
    x = Tensor(np.zeros((0, 3)))
    assert x.max(axis=1).shape == (0,)
    with pytest.raises(ValueError, match=r"max: the maximum over an empty axis is undefined; got shape \(0, 3\)"):
        x.max(axis=0)


def test_flatten_names_the_allowed_start_dims():
    with pytest.raises(ValueError, match=r"flatten: start_dim must be an integer in \[0, 1\]; got 2"):
        F.flatten(Tensor(np.zeros((2, 3))), 2)
    with pytest.raises(ValueError, match=r"Flatten\(start_dim=3\): flatten: start_dim must be an integer in \[0, 2\]"):
        nn.Flatten(3)(Tensor(np.zeros((2, 3, 4))))


def test_batch_norm_of_an_empty_batch_is_empty_and_leaves_the_statistics_alone():
    layer = nn.BatchNorm2d(2).double()
    x = Tensor(np.zeros((0, 2, 3, 3)), requires_grad=True)
    out = layer(x)
    assert out.shape == (0, 2, 3, 3)
    out.sum().backward()
    np.testing.assert_array_equal(layer.running_mean, [0.0, 0.0])
    np.testing.assert_array_equal(layer.running_var, [1.0, 1.0])
    np.testing.assert_array_equal(layer.weight.grad, [0.0, 0.0])


# ------------------------------------------------------------ running stats
def test_batch_norm_momentum_none_keeps_the_cumulative_average():
    rng = np.random.default_rng(0)
    layer = nn.BatchNorm2d(3, momentum=None).double()
    batches = [rng.standard_normal((4, 3, 2, 2)) * (k + 1) + k for k in range(3)]
    for batch in batches:
        layer(Tensor(batch))
    means = [b.mean(axis=(0, 2, 3)) for b in batches]
    variances = [b.var(axis=(0, 2, 3), ddof=1) for b in batches]  # unbiased, as PyTorch stores
    np.testing.assert_allclose(layer.running_mean, np.mean(means, axis=0), rtol=1e-12)
    np.testing.assert_allclose(layer.running_var, np.mean(variances, axis=0), rtol=1e-12)
    assert "momentum=None" in repr(layer)


# ------------------------------------------------------------ kernels and windows
@pytest.mark.parametrize("kernel, stride, padding", [((1, 5), (2, 1), (0, 2)), (3, 3, 2), (5, 1, 0), (1, 1, 0)])
def test_convolution_with_unusual_kernels_matches_a_direct_sum(kernel, stride, padding):
    rng = np.random.default_rng(1)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    x, w = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, kh, kw))
    out = F.conv2d(Tensor(x), Tensor(w), stride=stride, padding=padding).numpy()
    s = (stride, stride) if isinstance(stride, int) else stride
    p = (padding, padding) if isinstance(padding, int) else padding
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    expected = np.zeros(out.shape)
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            patch = xp[:, :, i * s[0]:i * s[0] + kh, j * s[1]:j * s[1] + kw]
            expected[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------ parity with PyTorch
def test_pytorch_parity_at_the_edges():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    cases = [
        ("sigmoid", lambda x: x.sigmoid().log(), lambda x: x.sigmoid().log(), [[-20.0, -5.0, 0.0, 5.0]]),
        ("pow 0", lambda x: x ** 0, lambda x: x ** 0, [[0.0, 1.0]]),
        ("pow tensor", lambda x, p: x ** p, lambda x, p: x ** p, [[0.0, 0.0, 2.0], [2.0, 0.0, 3.0]]),
        ("relu nan", minisgd.relu, torch.relu, [[NAN, -1.0, 2.0]]),
        ("abs nan", minisgd.abs, torch.abs, [[NAN, 0.0, -2.0]]),
        ("maximum", minisgd.maximum, torch.maximum, [[1.0, NAN, 2.0], [1.0, 0.0, NAN]]),
        ("masked ce", lambda z: F.cross_entropy(z, np.array([0, 2])),
         lambda z: tf.cross_entropy(z, torch.tensor([0, 2])), [[[0.0, -INF, 1.0], [-INF, 0.0, 2.0]]]),
        ("nan max pool", lambda x: F.max_pool2d(x, 2), lambda x: tf.max_pool2d(x, 2),
         [[[[[1.0, NAN], [3.0, 4.0]]]]]),
    ]
    for name, ours, theirs, values in cases:
        for dtype in (np.float32, np.float64):
            out, grads = _grad(ours, *values, dtype=dtype)
            leaves = [torch.tensor(np.array(v, dtype=dtype), requires_grad=True) for v in values]
            expected = theirs(*leaves)
            expected.sum().backward()
            np.testing.assert_allclose(out, expected.detach().numpy(), rtol=1e-6, err_msg=name)
            for grad, leaf in zip(grads, leaves):
                np.testing.assert_allclose(grad, leaf.grad.numpy(), rtol=1e-6, err_msg=name)
