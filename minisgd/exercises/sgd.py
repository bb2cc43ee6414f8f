"""Exercise ``sgd``: one gradient-descent step, and the least-squares gradient over a mini-batch.

Answer key: ``optim.SGD`` (no momentum) over 100 updates with a cosine
schedule feeding lr, and central finite differences of ½‖X_I w − y_I‖² / |I|
in float64.
"""

from __future__ import annotations

import numpy as np

from minisgd import optim, schedules
from minisgd.exercises.grading import as_array, assert_close, call, check_trajectory

LECTURES = ("01_gd_vs_sgd", "02_minibatch", "11_many_workers")

STUB = '''"""minisgd exercise: sgd (follows lectures 01_gd_vs_sgd and 02_minibatch).

Write each function below, then grade your file with

    python -m minisgd exercise check sgd

NumPy arrays in, NumPy arrays out (float64). Do not import minisgd here: you write it yourself.
"""

import numpy as np


def gd_step(w, grad, lr):
    """One step of gradient descent: return the new weights.

        w_new = w − lr · grad

    w, grad: arrays of the same shape; lr: the learning rate α (a float).
    Return a new array (or w updated in place).
    """
    raise NotImplementedError


def minibatch_gradient(X, y, w, idx):
    """The gradient with respect to w of the least-squares loss on the rows idx.

        L(w) = ½ ‖X_I w − y_I‖² / n,    with X_I = X[idx], y_I = y[idx], n = len(idx)

    X: (N, d) inputs, y: (N,) targets, w: (d,) weights, idx: an integer array
    of row numbers (the mini-batch). Return ∂L/∂w, shape (d,).
    """
    raise NotImplementedError
'''


# ------------------------------------------------------------------- checks
def check_gd_step(gd_step) -> None:
    rng = np.random.default_rng(1)
    for shape in ((5,), (3, 4)):
        w, grad, lr = rng.standard_normal(shape), rng.standard_normal(shape), 0.3
        got = as_array(call(gd_step, w, grad, lr), f"w_new for w of shape {shape}", shape)
        expected = w - lr * grad
        assert_close([got], [expected], ["w_new"], f"lr {lr}, w of shape {shape}", [
            ("the step goes against the gradient: w − lr·grad", lambda: [w + lr * grad]),
            ("is the step scaled by lr?", lambda: [w - grad]),
        ], before=w)
    check_trajectory(gd_step, lambda params, lr: optim.SGD(params, lr=lr), (), ("w",),
                     lambda t, lr: (lr,), schedules.cosine(0.1, 100), rng, "cosine(0.1, T=100)")


def _batch_loss(X, y, w, idx):
    residual = X[idx] @ w - y[idx]
    return 0.5 * residual @ residual / len(idx)


def _finite_differences(X, y, w, idx, h=1e-6) -> np.ndarray:
    """Central differences of the mini-batch loss, in float64: (L(w + h eᵢ) − L(w − h eᵢ)) / 2h."""
    grad = np.zeros_like(w)
    for i in range(len(w)):
        step = np.zeros_like(w)
        step[i] = h
        grad[i] = (_batch_loss(X, y, w + step, idx) - _batch_loss(X, y, w - step, idx)) / (2 * h)
    return grad


def check_minibatch_gradient(minibatch_gradient) -> None:
    rng = np.random.default_rng(2)
    N, d = 20, 3
    X, y, w = rng.standard_normal((N, d)), rng.standard_normal(N), rng.standard_normal(d)
    cases = {"a batch of 5 rows": rng.choice(N, 5, replace=False), "a batch of 1 row": np.array([7]),
             "the whole set": np.arange(N), "a batch of 8 rows": rng.choice(N, 8, replace=False)}
    for label, idx in cases.items():
        got = as_array(call(minibatch_gradient, X, y, w, idx), f"the gradient for {label}", (d,))
        expected = _finite_differences(X, y, w, idx)
        rows, residual = X[idx], X[idx] @ w - y[idx]
        assert_close([got], [expected], ["grad"], f"{label} (idx={idx.tolist()})", [
            ("use only the rows idx", lambda: [X.T @ (X @ w - y) / N]),
            ("divide by the batch size len(idx), not by len(X)", lambda: [rows.T @ residual / N]),
            ("the loss is a mean over the batch: divide by len(idx)", lambda: [rows.T @ residual]),
            ("the ½ cancels the 2 from the square: Xᵀ(Xw − y)/n", lambda: [2 * rows.T @ residual / len(idx)]),
            ("the residual is X_I w − y_I (the sign is flipped)", lambda: [-rows.T @ residual / len(idx)]),
        ], rtol=1e-5, atol=1e-8)


TASKS = (("gd_step", check_gd_step), ("minibatch_gradient", check_minibatch_gradient))
