"""The lectures' toy sets, checked against the formulas in their docstrings."""

import numpy as np
import pytest

from minisgd.data import toy


def test_linear_regression_without_noise_is_exactly_linear():
    X, y, w, b = toy.linear_regression(n_samples=50, n_features=3, noise=0.0, seed=1, dtype=np.float64)
    assert X.shape == (50, 3) and y.shape == (50,) and w.shape == (3,) and isinstance(b, float)
    np.testing.assert_allclose(y, X @ w + b, rtol=1e-12, atol=1e-12)


def test_linear_regression_noise_and_least_squares_recovery():
    X, y, w, b = toy.linear_regression(n_samples=4000, n_features=2, noise=0.5, seed=2, dtype=np.float64)
    residual = y - (X @ w + b)
    assert abs(residual.std() - 0.5) < 0.03  # 4000 samples: the standard error of the std is 0.006
    A = np.c_[X, np.ones(len(X))]
    solution = np.linalg.lstsq(A, y, rcond=None)[0]
    np.testing.assert_allclose(solution, np.r_[w, b], atol=0.05)


def test_linear_regression_defaults_float32_and_seeded():
    first = toy.linear_regression(seed=3)
    again = toy.linear_regression(seed=3)
    other = toy.linear_regression(seed=4)
    assert first[0].dtype == np.float32 and first[1].dtype == np.float32
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[1], other[1])


def test_two_blobs_are_balanced_and_centred():
    X, y = toy.two_blobs(n_samples=2000, distance=4.0, std=0.5, seed=0)
    assert X.shape == (2000, 2) and X.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [1000, 1000]
    np.testing.assert_allclose(X[y == 0].mean(axis=0), [-2.0, 0.0], atol=0.05)
    np.testing.assert_allclose(X[y == 1].mean(axis=0), [2.0, 0.0], atol=0.05)
    np.testing.assert_allclose(X[y == 1].std(axis=0), [0.5, 0.5], atol=0.05)
    assert not np.array_equal(y[:10], np.arange(10) % 2)  # shuffled


def test_moons_lie_on_their_half_circles():
    X, y = toy.moons(n_samples=101, noise=0.0, seed=0)
    upper, lower = X[y == 0].astype(np.float64), X[y == 1].astype(np.float64)
    assert len(upper) == 51 and len(lower) == 50
    np.testing.assert_allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0, atol=1e-6)
    assert (upper[:, 1] >= -1e-6).all()
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1.0, lower[:, 1] - 0.5), 1.0, atol=1e-6)
    assert (lower[:, 1] <= 0.5 + 1e-6).all()


def test_spiral_radius_and_arms():
    X, y = toy.spiral(n_per_class=50, n_classes=4, noise=0.0, seed=0)
    assert X.shape == (200, 2) and np.bincount(y).tolist() == [50] * 4
    radius = np.hypot(X[:, 0], X[:, 1])
    assert radius.min() >= 0 and radius.max() <= 1 + 1e-6
    # Without noise, θ = 4r + 2πk/K exactly: check the angle of every point of arm k.
    theta = np.arctan2(X[:, 0], X[:, 1])
    expected = 4 * radius + 2 * np.pi * y / 4
    difference = np.angle(np.exp(1j * (theta - expected)))  # wrapped to (-π, π]
    far = radius > 1e-3  # the angle of the centre point is undefined
    np.testing.assert_allclose(difference[far], 0.0, atol=1e-4)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: toy.linear_regression(n_samples=0), "n_samples must be an integer >= 1; got 0"),
        (lambda: toy.linear_regression(noise=-1.0), "linear_regression: noise must be >= 0; got -1.0"),
        (lambda: toy.two_blobs(std=-0.5), "two_blobs: std must be >= 0; got -0.5"),
        (lambda: toy.moons(n_samples=2.5), "n_samples must be an integer >= 1; got 2.5"),
        (lambda: toy.spiral(n_classes=0), "n_classes must be an integer >= 1; got 0"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
