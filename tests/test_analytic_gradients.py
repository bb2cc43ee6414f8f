"""Back-propagation against closed-form gradients derived by hand.

Finite differences check that a backward is consistent with its forward;
these check the engine against the formulas of the lecture notes, computed
here directly with NumPy. Gradients are compared through ``to_numpy`` so the
file also runs on a GPU (and on the fake one of ``tests/test_gpu_guard.py``).
"""

import numpy as np

import minisgd
from minisgd import Tensor
from minisgd.backend import to_numpy


def test_least_squares_gradient_is_XT_residual(rng):
    """∂/∂w ½‖Xw − y‖² = Xᵀ(Xw − y)."""
    X, y, w0 = rng.standard_normal((20, 5)), rng.standard_normal(20), rng.standard_normal(5)
    w = Tensor(w0, requires_grad=True)
    residual = Tensor(X) @ w - Tensor(y)
    (0.5 * (residual * residual).sum()).backward()
    np.testing.assert_allclose(to_numpy(w.grad), X.T @ (X @ w0 - y), rtol=1e-12)


def test_softmax_cross_entropy_gradient_is_softmax_minus_onehot(rng):
    """∂/∂z of mean_n[−log softmax(z_n)_{y_n}] = (softmax(z) − onehot(y)) / N."""
    N, C = 6, 4
    logits, labels = rng.standard_normal((N, C)), rng.integers(0, C, size=N)
    z = Tensor(logits, requires_grad=True)
    shifted = z - z.max(axis=1, keepdims=True)
    log_softmax = shifted - shifted.exp().sum(axis=1, keepdims=True).log()
    loss = -log_softmax[np.arange(N), labels].mean()
    loss.backward()

    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    onehot = np.eye(C)[labels]
    np.testing.assert_allclose(to_numpy(z.grad), (softmax - onehot) / N, rtol=1e-10, atol=1e-14)


def test_sum_of_tanh_gradient(rng):
    """∂/∂x Σ tanh(x) = 1 − tanh²(x)."""
    values = rng.standard_normal((3, 4))
    x = Tensor(values, requires_grad=True)
    x.tanh().sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), 1 - np.tanh(values) ** 2, rtol=1e-12)


def test_trace_of_product_gradient_is_B_transpose(rng):
    """∂/∂A trace(AB) = Bᵀ (trace as the sum of the diagonal, taken by indexing)."""
    A0, B0 = rng.standard_normal((3, 4)), rng.standard_normal((4, 3))
    A = Tensor(A0, requires_grad=True)
    product = A @ Tensor(B0)
    product[np.arange(3), np.arange(3)].sum().backward()
    np.testing.assert_allclose(to_numpy(A.grad), B0.T, rtol=1e-12)


def test_logistic_regression_gradient(rng):
    """Mean binary cross-entropy of σ(Xw): gradient Xᵀ(σ(Xw) − y) / N."""
    N = 30
    X, w0 = rng.standard_normal((N, 3)), rng.standard_normal(3)
    y = (rng.random(N) > 0.5).astype(np.float64)
    w = Tensor(w0, requires_grad=True)
    p = (Tensor(X) @ w).sigmoid()
    loss = -(Tensor(y) * p.log() + (1 - Tensor(y)) * (1 - p).log()).mean()
    loss.backward()
    sigma = 1 / (1 + np.exp(-(X @ w0)))
    np.testing.assert_allclose(to_numpy(w.grad), X.T @ (sigma - y) / N, rtol=1e-10)


def test_broadcast_bias_gradient_sums_over_the_batch(rng):
    """y = xW + b with b of shape (k,): ∂L/∂b = Σ_n ∂L/∂y_n."""
    x, W0, b0 = rng.standard_normal((7, 3)), rng.standard_normal((3, 2)), rng.standard_normal(2)
    W, b = Tensor(W0, requires_grad=True), Tensor(b0, requires_grad=True)
    upstream = rng.standard_normal((7, 2))
    (Tensor(x) @ W + b).backward(upstream)
    np.testing.assert_allclose(to_numpy(b.grad), upstream.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(to_numpy(W.grad), x.T @ upstream, rtol=1e-12)


def test_gradient_of_a_reused_leaf_adds_both_paths():
    """L = x·x + 3x at x = 2: dL/dx = 2x + 3 = 7."""
    x = Tensor(np.array(2.0), requires_grad=True)
    (x * x + 3 * x).backward()
    assert x.grad.item() == 7.0


def test_exp_log_sqrt_closed_forms():
    values = np.array([0.5, 1.0, 4.0])
    for fn, derivative in [
        (minisgd.exp, np.exp(values)),
        (minisgd.log, 1 / values),
        (minisgd.sqrt, 0.5 / np.sqrt(values)),
        (minisgd.sigmoid, np.exp(-values) / (1 + np.exp(-values)) ** 2),
    ]:
        x = Tensor(values.copy(), requires_grad=True)
        fn(x).sum().backward()
        np.testing.assert_allclose(to_numpy(x.grad), derivative, rtol=1e-12)
