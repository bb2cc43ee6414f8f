"""minisgd.landscape against Hessians computed here, independently of minisgd's autograd.

- A quadratic L(θ) = ½ θᵀAθ + bᵀθ has the Hessian A exactly, and its slices
  and line losses have closed forms.
- A small tanh network with a squared loss: its gradient is written out by hand
  in NumPy below (back-propagation by the chain rule), and its exact Hessian
  is the central difference of that analytic gradient, column by column.

Device-agnostic: results are brought to the host with ``to_numpy`` before NumPy
compares them, so ``tests/test_gpu_guard.py`` also runs this file on the fake CuPy.
"""

import numpy as np
import pytest

import minisgd
from minisgd import landscape
from minisgd.backend import to_numpy


# ------------------------------------------------------------- a quadratic
def make_quadratic(rng, eigenvalues=(12.0, 6.0, 3.0, 1.0, 0.5, 0.1)):
    """A with the given eigenvalues (random eigenvectors), b, and θ split over two parameters (shapes (2,2), (2,1))."""
    n = len(eigenvalues)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = q @ np.diag(eigenvalues) @ q.T
    b = rng.standard_normal(n)
    theta = rng.standard_normal(n)
    params = [minisgd.Tensor(theta[:4].reshape(2, 2).copy(), requires_grad=True),
              minisgd.Tensor(theta[4:].reshape(2, 1).copy(), requires_grad=True)]
    A_t, b_t = minisgd.Tensor(A), minisgd.Tensor(b)

    def loss_fn():
        x = minisgd.concatenate([params[0].reshape(4), params[1].reshape(2)])
        return 0.5 * (x @ A_t) @ x + b_t @ x

    def exact_loss(x):
        return 0.5 * x @ A @ x + b @ x

    return A, theta, params, loss_fn, exact_loss


def split(vector):
    return [vector[:4].reshape(2, 2), vector[4:].reshape(2, 1)]


def join(arrays):
    return np.concatenate([to_numpy(a).reshape(-1) for a in arrays])


def test_hvp_of_a_quadratic_is_A_v(rng):
    A, theta, params, loss_fn, _ = make_quadratic(rng)
    for _ in range(3):
        v = rng.standard_normal(6) * 3.0
        product = join(landscape.hessian_vector_product(loss_fn, params, split(v)))
        np.testing.assert_allclose(product, A @ v, rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(join([p.data for p in params]), theta)  # θ is put back exactly


def test_top_eigenvalue_of_a_quadratic(rng):
    _, _, params, loss_fn, _ = make_quadratic(rng)
    top = landscape.hessian_top_eigenvalue(loss_fn, params, iterations=100, seed=0)
    assert top == pytest.approx(12.0, rel=1e-5)  # eigenvalue gap 6/12: converges fast


def test_parameters_keep_their_dtype_and_values():
    theta = np.array([[1.5, -0.25]], dtype=np.float32)
    w = minisgd.Tensor(theta.copy(), requires_grad=True)
    x = minisgd.Tensor(np.array([2.0, 3.0], dtype=np.float32))

    def loss_fn():
        return ((w.reshape(2) * x) ** 2).sum()

    product = landscape.hessian_vector_product(loss_fn, [w], [np.array([[1.0, 0.0]])])
    # L = (2w₁)² + (3w₂)²: H = diag(8, 18), in float64 although the data is float32.
    np.testing.assert_allclose(to_numpy(product[0]).reshape(-1), [8.0, 0.0], atol=1e-6)
    assert w.dtype == np.float32
    np.testing.assert_array_equal(to_numpy(w.data), theta)
    assert w.grad is None


def test_slices_and_line_match_the_closed_form(rng):
    A, theta, params, loss_fn, exact_loss = make_quadratic(rng)
    dx, dy = rng.standard_normal(6), rng.standard_normal(6)
    alphas, betas = np.linspace(-1, 1, 5), np.linspace(-0.5, 0.5, 3)
    np.testing.assert_allclose(landscape.loss_slice_1d(loss_fn, params, split(dx), alphas),
                               [exact_loss(theta + a * dx) for a in alphas], rtol=1e-12, atol=1e-12)
    grid = landscape.loss_slice_2d(loss_fn, params, split(dx), split(dy), alphas, betas)
    assert grid.shape == (3, 5)
    np.testing.assert_allclose(grid, [[exact_loss(theta + a * dx + c * dy) for a in alphas] for c in betas],
                               rtol=1e-12, atol=1e-12)
    start, end = rng.standard_normal(6), rng.standard_normal(6)
    ts = np.linspace(-0.5, 1.5, 9)
    np.testing.assert_allclose(landscape.loss_along_line(loss_fn, params, split(start), split(end), ts),
                               [exact_loss((1 - t) * start + t * end) for t in ts], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(join([p.data for p in params]), theta)


def test_sharpness_of_a_quadratic_is_half_rho_squared_dAd(rng):
    A, _, params, loss_fn, _ = make_quadratic(rng)
    radius, k = 0.3, 4
    expected = np.mean([0.5 * radius**2 * join(d) @ A @ join(d)
                        for d in (landscape.random_direction(params, seed=s) for s in range(k))])
    measured = landscape.sharpness(loss_fn, params, radius=radius, directions=k, seed=0)
    assert measured == pytest.approx(expected, rel=1e-9)


def test_filter_normalised_direction():
    rng = np.random.default_rng(5)
    conv = minisgd.Tensor(rng.standard_normal((4, 3, 2, 2)) * np.arange(1, 5)[:, None, None, None])
    bias = minisgd.Tensor(rng.standard_normal(4))
    d_conv, d_bias = landscape.random_direction([conv, bias], seed=1)
    assert d_conv.shape == conv.shape and d_bias.shape == bias.shape
    assert type(d_conv) is type(conv.data)  # on the parameters' device
    d_conv, d_bias, weights = to_numpy(d_conv), to_numpy(d_bias), to_numpy(conv.data)
    np.testing.assert_allclose(np.linalg.norm(d_conv.reshape(4, -1), axis=1),
                               np.linalg.norm(weights.reshape(4, -1), axis=1), rtol=1e-12)
    np.testing.assert_array_equal(d_bias, 0.0)  # biases stay put (Li et al. 2018)
    plain = [to_numpy(d) for d in landscape.random_direction([conv, bias], seed=1, filter_normalized=False)]
    assert np.all(plain[1] != 0) and not np.allclose(np.linalg.norm(plain[0].reshape(4, -1), axis=1),
                                                    np.linalg.norm(weights.reshape(4, -1), axis=1))


# ------------------------------------------------------ a small network
X = np.random.default_rng(3).standard_normal((7, 3))
Y = np.random.default_rng(4).standard_normal((7, 1))
SHAPES = [(4, 3), (4,), (1, 4), (1,)]  # W1, b1, W2, b2 (PyTorch's Linear layout)


def unpack(theta):
    arrays, start = [], 0
    for shape in SHAPES:
        size = int(np.prod(shape))
        arrays.append(theta[start:start + size].reshape(shape))
        start += size
    return arrays


def hand_gradient(theta):
    """∇ of L = mean((W2 tanh(W1 x + b1) + b2 − y)²) over the 7 examples, by the chain rule, in NumPy."""
    W1, b1, W2, b2 = unpack(theta)
    z = X @ W1.T + b1  # (7, 4)
    h = np.tanh(z)
    out = h @ W2.T + b2  # (7, 1)
    d_out = 2 * (out - Y) / len(X)
    d_W2 = d_out.T @ h
    d_b2 = d_out.sum(axis=0)
    d_z = (d_out @ W2) * (1 - h**2)
    d_W1 = d_z.T @ X
    d_b1 = d_z.sum(axis=0)
    return np.concatenate([d_W1.ravel(), d_b1, d_W2.ravel(), d_b2])


def exact_hessian(theta, eps=1e-5):
    """Central differences of the hand-written gradient, one column per parameter."""
    columns = []
    for j in range(len(theta)):
        step = np.zeros_like(theta)
        step[j] = eps
        columns.append((hand_gradient(theta + step) - hand_gradient(theta - step)) / (2 * eps))
    H = np.array(columns).T
    return (H + H.T) / 2


@pytest.fixture
def network():
    theta = np.random.default_rng(6).standard_normal(sum(int(np.prod(s)) for s in SHAPES))
    params = [minisgd.Tensor(a.copy(), requires_grad=True) for a in unpack(theta)]
    x, y = minisgd.Tensor(X), minisgd.Tensor(Y)

    def loss_fn():
        W1, b1, W2, b2 = params
        out = (x @ W1.T + b1).tanh() @ W2.T + b2
        return ((out - y) ** 2).mean()

    return theta, params, loss_fn


def test_hand_gradient_is_right(network):
    theta, params, loss_fn = network
    loss_fn().backward()
    np.testing.assert_allclose(join([p.grad for p in params]), hand_gradient(theta), rtol=1e-10, atol=1e-12)


def test_hvp_of_a_network_matches_its_exact_hessian(network, rng):
    theta, params, loss_fn = network
    H = exact_hessian(theta)
    for _ in range(3):
        v = rng.standard_normal(len(theta))
        product = join(landscape.hessian_vector_product(loss_fn, params, unpack(v)))
        np.testing.assert_allclose(product, H @ v, rtol=1e-5, atol=1e-7)


def test_top_eigenvalue_of_a_network_matches_its_exact_hessian(network):
    theta, params, loss_fn = network
    eigenvalues = np.linalg.eigvalsh(exact_hessian(theta))
    largest = eigenvalues[np.argmax(np.abs(eigenvalues))]
    top = landscape.hessian_top_eigenvalue(loss_fn, params, iterations=1000, seed=0, tolerance=1e-10)
    assert top == pytest.approx(largest, rel=1e-4)


@pytest.mark.parametrize("call, message", [
    (lambda f, p: landscape.hessian_top_eigenvalue(f, p, iterations=0), "iterations must be an integer >= 1"),
    (lambda f, p: landscape.hessian_vector_product(f, p, [np.zeros((2, 2))]), "vectors must hold one array"),
    (lambda f, p: landscape.sharpness(f, p, radius=-1.0), "radius must be > 0"),
])
def test_bad_arguments_are_named(network, call, message):
    _, params, loss_fn = network
    with pytest.raises(ValueError, match=message):
        call(loss_fn, params)
