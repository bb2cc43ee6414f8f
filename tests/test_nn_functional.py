"""Forward values of minisgd.nn.functional against formulas computed by hand in the test, and bad input.

Gradients are checked in test_nn_gradcheck.py; here each function's output is
compared with an independent NumPy computation of its textbook formula.
"""

import numpy as np
import pytest

import minisgd
from minisgd import Tensor
from minisgd.nn import functional as F


def test_linear_is_x_times_w_transposed_plus_b(rng):
    x, w, b = rng.standard_normal((4, 3)), rng.standard_normal((2, 3)), rng.standard_normal(2)
    out = F.linear(Tensor(x), Tensor(w), Tensor(b))
    np.testing.assert_allclose(out.numpy(), x @ w.T + b, rtol=1e-12)
    assert F.linear(Tensor(rng.standard_normal((5, 4, 3))), Tensor(w)).shape == (5, 4, 2)


def test_relu_keeps_positive_values_and_zeroes_the_rest():
    x = np.array([[-2.0, -0.0, 0.5], [3.0, -1e-9, 1e-9]])
    np.testing.assert_array_equal(F.relu(Tensor(x)).numpy(), np.maximum(x, 0))


def test_softmax_and_log_softmax_against_the_formula(rng):
    z = rng.standard_normal((3, 5))
    expected = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(F.softmax(Tensor(z)).numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(F.log_softmax(Tensor(z)).numpy(), np.log(expected), rtol=1e-12)
    np.testing.assert_allclose(F.softmax(Tensor(z), axis=0).numpy().sum(axis=0), np.ones(5), rtol=1e-12)


def test_log_softmax_is_finite_for_logits_of_plus_minus_1000():
    z = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -1000.0]])
    out = F.log_softmax(Tensor(z)).numpy()
    assert np.isfinite(out).all()
    # Row 1: log softmax = z − 1000 (the other terms underflow to e^-1000 = 0); row 2: log(1/3).
    np.testing.assert_allclose(out[0], [0.0, -2000.0, -1000.0])
    np.testing.assert_allclose(out[1], np.log(np.full(3, 1 / 3)))
    assert np.isfinite(F.softmax(Tensor(z)).numpy()).all()
    assert np.isfinite(F.cross_entropy(Tensor(z), np.array([1, 0])).item())


def test_cross_entropy_is_minus_log_softmax_of_the_target_averaged(rng):
    z = rng.standard_normal((6, 4))
    y = np.array([0, 3, 1, 1, 2, 3])
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    expected = -np.mean(np.log(p[np.arange(6), y]))
    assert np.isclose(F.cross_entropy(Tensor(z), y).item(), expected, rtol=1e-12)
    # targets may also be an integer Tensor
    assert np.isclose(F.cross_entropy(Tensor(z), Tensor(y)).item(), expected, rtol=1e-12)


def test_cross_entropy_gradient_is_softmax_minus_onehot_over_n(rng):
    z = Tensor(rng.standard_normal((5, 3)), requires_grad=True)
    y = np.array([2, 0, 1, 1, 0])
    F.cross_entropy(z, y).backward()
    p = np.exp(z.detach().numpy()) / np.exp(z.detach().numpy()).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(z.grad, (p - np.eye(3)[y]) / 5, rtol=1e-12)


def test_cross_entropy_with_label_smoothing(rng):
    z = rng.standard_normal((4, 5))
    y = np.array([4, 0, 2, 2])
    eps = 0.2
    q = (1 - eps) * np.eye(5)[y] + eps / 5
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    expected = -(q * log_p).sum() / 4
    assert np.isclose(F.cross_entropy(Tensor(z), y, label_smoothing=eps).item(), expected, rtol=1e-12)


def test_cross_entropy_keeps_float32():
    loss = F.cross_entropy(Tensor(np.zeros((2, 3), dtype=np.float32)), np.array([0, 1]))
    assert loss.dtype == np.float32 and np.isclose(loss.item(), np.log(3), rtol=1e-6)


def test_mse_loss_is_the_mean_squared_difference(rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    assert np.isclose(F.mse_loss(Tensor(a), Tensor(b)).item(), np.mean((a - b) ** 2), rtol=1e-12)
    assert np.isclose(F.mse_loss(Tensor(a), b).item(), np.mean((a - b) ** 2), rtol=1e-12)


def test_batch_norm_training_against_the_textbook_formula(rng):
    x = rng.standard_normal((4, 3, 2, 5)) * 3 + 1
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    running_mean, running_var = np.zeros(3), np.ones(3)
    out = F.batch_norm(Tensor(x), running_mean, running_var, Tensor(gamma), Tensor(beta),
                       training=True, momentum=0.1, eps=1e-5)
    mu = x.mean(axis=(0, 2, 3))
    var = x.var(axis=(0, 2, 3))  # biased: divides by m
    expected = (x - mu[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5) * gamma[:, None, None] + beta[:, None, None]
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-12)
    m = 4 * 2 * 5
    np.testing.assert_allclose(running_mean, 0.1 * mu, rtol=1e-12)
    np.testing.assert_allclose(running_var, 0.9 + 0.1 * var * m / (m - 1), rtol=1e-12)  # unbiased


def test_batch_norm_evaluation_uses_the_running_statistics(rng):
    x = rng.standard_normal((3, 2))
    running_mean, running_var = np.array([0.5, -1.0]), np.array([2.0, 0.25])
    out = F.batch_norm(Tensor(x), running_mean.copy(), running_var.copy(), training=False, eps=1e-5)
    np.testing.assert_allclose(out.numpy(), (x - running_mean) / np.sqrt(running_var + 1e-5), rtol=1e-12)


def test_dropout_zeroes_a_fraction_p_and_scales_the_rest():
    minisgd.random.manual_seed(0)
    x = Tensor(np.ones((200, 100), dtype=np.float32))
    out = F.dropout(x, p=0.3, training=True).numpy()
    kept = out != 0
    assert abs(kept.mean() - 0.7) < 0.01  # 20 000 Bernoulli(0.7) draws: sd 0.003
    np.testing.assert_allclose(out[kept], 1 / 0.7, rtol=1e-6)
    assert F.dropout(x, p=0.3, training=False) is x
    assert F.dropout(x, p=0.0, training=True) is x


def test_dropout_is_reproducible_with_a_seed(rng):
    x = Tensor(rng.standard_normal((4, 5)))
    minisgd.random.manual_seed(3)
    first = F.dropout(x, 0.5).numpy()
    minisgd.random.manual_seed(3)
    np.testing.assert_array_equal(F.dropout(x, 0.5).numpy(), first)


def test_max_and_avg_pool_forward_on_a_hand_example():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(F.max_pool2d(Tensor(x), 2).numpy(), [[[[5, 7], [13, 15]]]])
    np.testing.assert_array_equal(F.avg_pool2d(Tensor(x), 2).numpy(), [[[[2.5, 4.5], [10.5, 12.5]]]])
    np.testing.assert_array_equal(F.max_pool2d(Tensor(x), 3, stride=1).numpy(), [[[[10, 11], [14, 15]]]])


def test_conv2d_on_a_hand_example():
    """A 3×3 image, a 2×2 kernel of ones: each output is the sum of a 2×2 patch."""
    x = Tensor(np.arange(9.0).reshape(1, 1, 3, 3))
    w = Tensor(np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(F.conv2d(x, w).numpy(), [[[[8, 12], [20, 24]]]])
    out = F.conv2d(x, w, Tensor(np.array([1.0])), padding=1, stride=2)
    np.testing.assert_array_equal(out.numpy(), [[[[1, 4], [10, 25]]]])  # corners of the padded sums


def test_flatten_keeps_pytorchs_element_order(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    np.testing.assert_array_equal(F.flatten(Tensor(x)).numpy(), x.reshape(2, -1))
    # also after a convolution, whose output is channels-last in memory
    w = rng.standard_normal((3, 3, 1, 1))
    conv_out = F.conv2d(Tensor(x), Tensor(w))
    np.testing.assert_allclose(F.flatten(conv_out).numpy(), conv_out.numpy().reshape(2, -1))


# ------------------------------------------------------------------ bad input
def test_cross_entropy_rejects_bad_targets():
    z = Tensor(np.zeros((3, 4)))
    with pytest.raises(TypeError, match="integer class indices; got dtype float64"):
        F.cross_entropy(z, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 3\]; got values from 0 to 4"):
        F.cross_entropy(z, np.array([0, 1, 4]))
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 3\]; got values from -1"):
        F.cross_entropy(z, np.array([0, -1, 2]))
    with pytest.raises(ValueError, match=r"expected targets of shape \(3,\).*got shape \(2,\)"):
        F.cross_entropy(z, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"logits of shape \(N, classes\); got shape \(4,\)"):
        F.cross_entropy(Tensor(np.zeros(4)), np.array([0]))


def test_conv2d_rejects_bad_shapes():
    w = Tensor(np.zeros((4, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"conv2d: expected input of shape \(N, C, H, W\).*got shape \(3, 8, 8\)"):
        F.conv2d(Tensor(np.zeros((3, 8, 8))), w)
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 3, H, W\).*got shape \(1, 2, 8, 8\)"):
        F.conv2d(Tensor(np.zeros((1, 2, 8, 8))), w)
    with pytest.raises(ValueError, match=r"kernel size \(3, 3\) is larger than the padded input \(2, 2\)"):
        F.conv2d(Tensor(np.zeros((1, 3, 2, 2))), w)
    with pytest.raises(ValueError, match="stride must be >= 1; got 0"):
        F.conv2d(Tensor(np.zeros((1, 3, 8, 8))), w, stride=0)
    with pytest.raises(ValueError, match=r"padding must be an int or a pair of ints; got \(1, 2, 3\)"):
        F.conv2d(Tensor(np.zeros((1, 3, 8, 8))), w, padding=(1, 2, 3))


def test_pooling_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"max_pool2d: kernel size \(3, 3\) is larger than the padded input \(2, 2\)"):
        F.max_pool2d(Tensor(np.zeros((1, 1, 2, 2))), 3)
    with pytest.raises(ValueError, match=r"avg_pool2d: expected input of shape \(N, C, H, W\)"):
        F.avg_pool2d(Tensor(np.zeros((2, 2))), 2)


def test_dropout_rejects_p_outside_0_1():
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError, match=rf"dropout: p must be in \[0, 1\]; got {p}"):
            F.dropout(Tensor(np.ones(3)), p)


def test_dropout_with_p_1_drops_everything_like_pytorch():
    x = Tensor(np.ones(4), requires_grad=True)
    out = F.dropout(x, 1.0)
    np.testing.assert_array_equal(out.detach().numpy(), 0.0)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, 0.0)


def test_linear_and_mse_reject_mismatched_shapes():
    with pytest.raises(ValueError, match=r"linear: expected input of shape \(\.\.\., 3\); got shape \(2, 4\)"):
        F.linear(Tensor(np.zeros((2, 4))), Tensor(np.zeros((5, 3))))
    with pytest.raises(ValueError, match=r"mse_loss: .* got \(2,\) and \(3,\)"):
        F.mse_loss(Tensor(np.zeros(2)), Tensor(np.zeros(3)))


def test_inplace_relu_overwrites_its_input_and_back_propagates_the_same(rng):
    w = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    x = Tensor(rng.standard_normal((5, 4)))
    hidden = F.linear(x, w)  # a linear layer's output: nothing else needs it
    before = hidden.detach().numpy().copy()
    out = F.relu(hidden, inplace=True)
    assert out.data is hidden.data
    np.testing.assert_array_equal(out.detach().numpy(), np.maximum(before, 0))
    out.sum().backward()
    np.testing.assert_allclose(w.grad, ((before > 0).astype(float)).T @ x.numpy(), rtol=1e-12)


def test_inplace_relu_refuses_a_leaf_that_requires_grad():
    with pytest.raises(RuntimeError, match="relu_: a leaf tensor that requires grad .* cannot be modified in place"):
        F.relu(Tensor(np.ones(3), requires_grad=True), inplace=True)
