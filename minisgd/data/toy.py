"""Small toy data sets for the lectures: linear regression and 2-D classification.

Each function is seeded and returns plain NumPy arrays (float32 inputs by
default, int64 class labels), small enough to plot and to fit in a second:

- :func:`linear_regression`: ``y = X w* + b* + noise``, with the true ``w*``
  and ``b*`` returned so a lecture can compare what SGD finds with the truth
  and with the least-squares solution;
- :func:`two_blobs`: two Gaussian clouds in the plane, linearly separable up
  to their overlap (logistic regression);
- :func:`moons`: two interleaving half circles, *not* linearly separable
  (a hidden layer is needed);
- :func:`spiral`: ``k`` interleaved spiral arms, a multi-class set for softmax
  classifiers and small MLPs.
"""

from __future__ import annotations

import numpy as np

from minisgd import checks


def linear_regression(
    n_samples: int = 100,
    n_features: int = 1,
    noise: float = 0.1,
    seed: int = 0,
    dtype: type = np.float32,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """A linear-regression problem ``y = X w* + b* + ε``, ``ε ~ N(0, noise²)``.

    The inputs ``X`` (``n_samples × n_features``) are standard normal, the true
    weights ``w*`` standard normal and the bias ``b*`` uniform in [-1, 1].
    Returns ``(X, y, true_w, true_b)`` with ``y`` of shape ``(n_samples,)``.

    >>> X, y, w, b = linear_regression(n_samples=5, n_features=2, noise=0.0)
    >>> bool(np.allclose(y, X @ w + b, atol=1e-6))
    True
    """
    n_samples = checks.integer("linear_regression", "n_samples", n_samples, low=1)
    n_features = checks.integer("linear_regression", "n_features", n_features, low=1)
    noise = checks.number("linear_regression", "noise", noise, low=0)
    rng = np.random.default_rng(seed)
    true_w = rng.standard_normal(n_features)
    true_b = float(rng.uniform(-1.0, 1.0))
    X = rng.standard_normal((n_samples, n_features))
    y = X @ true_w + true_b + noise * rng.standard_normal(n_samples)
    return X.astype(dtype), y.astype(dtype), true_w.astype(dtype), true_b


def two_blobs(
    n_samples: int = 200, distance: float = 3.0, std: float = 1.0, seed: int = 0, dtype: type = np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian clouds in 2-D, labels 0 and 1, centres ``distance`` apart.

    Class 0 is centred at ``(-distance/2, 0)``, class 1 at ``(+distance/2, 0)``,
    each with standard deviation ``std`` in both coordinates; the classes
    alternate so that any ``n_samples`` is balanced to within one point.
    Returns ``(X, y)``: X of shape ``(n_samples, 2)``, y int64.
    """
    n_samples = checks.integer("two_blobs", "n_samples", n_samples, low=1)
    distance = checks.number("two_blobs", "distance", distance, low=0)
    std = checks.number("two_blobs", "std", std, low=0)
    rng = np.random.default_rng(seed)
    y = np.arange(n_samples) % 2
    centres = np.stack([(y - 0.5) * distance, np.zeros(n_samples)], axis=1)
    X = centres + std * rng.standard_normal((n_samples, 2))
    order = rng.permutation(n_samples)
    return X[order].astype(dtype), y[order].astype(np.int64)


def moons(
    n_samples: int = 200, noise: float = 0.1, seed: int = 0, dtype: type = np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles in 2-D (scikit-learn's ``make_moons``), labels 0 and 1.

    Class 0 lies on the upper unit half circle ``(cos t, sin t)``, class 1 on
    the lower one shifted to ``(1 − cos t, 0.5 − sin t)``, ``t`` uniform in
    [0, π], plus Gaussian noise of standard deviation ``noise``.
    Returns ``(X, y)``: X of shape ``(n_samples, 2)``, y int64.
    """
    n_samples = checks.integer("moons", "n_samples", n_samples, low=1)
    noise = checks.number("moons", "noise", noise, low=0)
    rng = np.random.default_rng(seed)
    y = np.arange(n_samples) % 2
    t = rng.uniform(0.0, np.pi, n_samples)
    upper = np.stack([np.cos(t), np.sin(t)], axis=1)
    lower = np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1)
    X = np.where(y[:, None] == 0, upper, lower) + noise * rng.standard_normal((n_samples, 2))
    order = rng.permutation(n_samples)
    return X[order].astype(dtype), y[order].astype(np.int64)


def spiral(
    n_per_class: int = 100, n_classes: int = 3, noise: float = 0.2, seed: int = 0, dtype: type = np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """``n_classes`` spiral arms in 2-D, one class each (the CS231n spiral).

    Point ``i`` of arm ``k`` has radius ``r = i / (n_per_class − 1)`` in [0, 1]
    and angle ``θ = 4r + 2πk / n_classes + noise·N(0, 1)``, at ``(r sin θ, r cos θ)``.
    Returns ``(X, y)``: X of shape ``(n_per_class · n_classes, 2)``, y int64.
    """
    n_per_class = checks.integer("spiral", "n_per_class", n_per_class, low=1)
    n_classes = checks.integer("spiral", "n_classes", n_classes, low=1)
    noise = checks.number("spiral", "noise", noise, low=0)
    rng = np.random.default_rng(seed)
    radius = np.tile(np.linspace(0.0, 1.0, n_per_class), n_classes)
    y = np.repeat(np.arange(n_classes), n_per_class)
    theta = 4.0 * radius + 2 * np.pi * y / n_classes + noise * rng.standard_normal(len(y))
    X = np.stack([radius * np.sin(theta), radius * np.cos(theta)], axis=1)
    order = rng.permutation(len(y))
    return X[order].astype(dtype), y[order].astype(np.int64)
