"""Exercise ``backprop``: softmax cross-entropy with its gradient, a linear layer's backward, undoing broadcasting.

Answer key: ``nn.functional.cross_entropy`` and ``nn.functional.linear`` with
minisgd's autograd, ``ops.unbroadcast``, and analytic values (uniform logits
give loss log C). The cases include a batch of 1 and logits of ±1000.
"""

from __future__ import annotations

import math

import numpy as np

from minisgd import ops
from minisgd.exercises.grading import (
    Fail,
    as_array,
    as_number,
    as_tuple,
    assert_close,
    call,
    finite_differences,
    library_gradients,
)
from minisgd.nn import functional as F

LECTURES = ("07_cifar10_cnn", "08_loss_landscape")

STUB = '''"""minisgd exercise: backprop (follows lectures 07_cifar10_cnn and 08_loss_landscape).

Write each function below, then grade your file with

    python -m minisgd exercise check backprop

NumPy arrays in, NumPy arrays out (float64). Do not import minisgd here: you write it yourself.
"""

import numpy as np


def softmax_cross_entropy(logits, y):
    """The mean cross-entropy of softmax(logits) against the integer labels y, and its gradient.

        p = softmax(z) row by row,   loss = −(1/N) Σ_n log p[n, y_n],   dlogits = (p − onehot(y)) / N

    logits: (N, C), y: (N,) integers in [0, C). Return (loss, dlogits): a float
    and an (N, C) array. It must work for logits of ±1000.
    """
    raise NotImplementedError


def linear_backward(dout, x, W):
    """The backward pass of out = x · Wᵀ + b (PyTorch's layout: W is (out_features, in_features)).

    dout: ∂L/∂out, (N, out); x: (N, in); W: (out, in).
    Return (dx, dW, db) with the shapes of x, W and b (out,).
    """
    raise NotImplementedError


def sum_to_shape(grad, shape):
    """Undo NumPy broadcasting: sum grad back to `shape` (the shape of the input that was broadcast).

    Broadcasting prepends axes and stretches axes of length 1, so the gradient
    of each original entry is the sum over its copies:
    (3, 4) -> (4,) sums axis 0;  (3, 4) -> (3, 1) sums axis 1 and keeps it.
    Return an array of exactly `shape`.
    """
    raise NotImplementedError
'''


# ------------------------------------------------------------------- checks
def _library_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    from minisgd.tensor import Tensor

    z = Tensor(logits.copy(), requires_grad=True, device="cpu")
    loss = F.cross_entropy(z, y)
    loss.backward()
    return float(loss.data), z.grad


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def check_softmax_cross_entropy(softmax_cross_entropy) -> None:
    rng = np.random.default_rng(6)
    big = np.array([[1000.0, -1000.0, 0.0, 999.0], [-1000.0, -1000.0, -999.0, -1000.0], [1000.0, 1000.0, 0, 0]])
    cases = (
        ("uniform logits (loss = log 4)", np.zeros((3, 4)), np.array([0, 2, 3])),
        ("logits (5, 4)", rng.standard_normal((5, 4)) * 3, rng.integers(0, 4, 5)),
        ("a batch of 1", rng.standard_normal((1, 3)), np.array([2])),
        ("logits of ±1000", big, np.array([1, 2, 1])),
        ("logits near 1000", 1000 + rng.standard_normal((4, 5)), rng.integers(0, 5, 4)),
    )
    for label, logits, y in cases:
        N, C = logits.shape
        returned = as_tuple(call(softmax_cross_entropy, logits, y), f"for {label}", ("loss", "dlogits"))
        loss = as_number(returned[0], f"the loss for {label}", finite=False)
        if not math.isfinite(loss):
            hint = ("log(softmax) is log 0 for a logit 1000 below the max: use z − max − log Σ exp(z − max)"
                    if loss == math.inf else "subtract the max before exp")
            raise Fail(f"loss is {loss} for {label}: {hint}")
        dlogits = as_array(returned[1], f"dlogits for {label}", (N, C), hint="subtract the max before exp")
        expected_loss, expected_grad = _library_cross_entropy(logits, y)
        tolerance = dict(atol=1e-9)
        if label.startswith("uniform"):
            expected_loss = math.log(C)  # analytic: every class has probability 1/C
        if N == 1:  # one case whose gradient key is central differences of the loss
            (expected_grad,) = finite_differences(lambda z: _library_cross_entropy(z, y)[0], logits)
            label += " (dlogits expected by central differences)"
            tolerance = dict(rtol=1e-5, atol=1e-7)
        onehot = np.eye(C)[y]
        p = _softmax(logits)
        assert_close([loss, dlogits], [expected_loss, expected_grad], ["loss", "dlogits"], f"for {label}", (
            ("the loss is the mean over the batch: divide by N", lambda: [expected_loss * N, (p - onehot)]),
            ("dlogits = (softmax − onehot) / N: divide by N", lambda: [expected_loss, p - onehot]),
            ("dlogits = (softmax − onehot) / N: the sign is flipped", lambda: [expected_loss, (onehot - p) / N]),
        ), **tolerance)


def check_linear_backward(linear_backward) -> None:
    rng = np.random.default_rng(7)
    for N, n_in, n_out in ((4, 3, 5), (1, 6, 2), (5, 3, 3)):
        dout, x, W = rng.standard_normal((N, n_out)), rng.standard_normal((N, n_in)), rng.standard_normal((n_out, n_in))
        _, dx, dW, db = library_gradients(F.linear, dout, x, W, np.zeros(n_out))
        label = f"x ({N}, {n_in}), W ({n_out}, {n_in})"
        tolerance = {}
        if N == 1:  # one case whose answer key is central differences of out = x·Wᵀ + b
            dx, dW, db = finite_differences(lambda x, W, b: float(np.sum((x @ W.T + b) * dout)), x, W,
                                            np.zeros(n_out))
            label += " (expected by central differences)"
            tolerance = dict(rtol=1e-5, atol=1e-7)
        returned = as_tuple(call(linear_backward, dout, x, W), f"for {label}", ("dx", "dW", "db"))
        got = [as_array(value, f"{name} for {label}", shape, hint=hint) for value, name, shape, hint in zip(
            returned, ("dx", "dW", "db"), (x.shape, W.shape, (n_out,)),
            ("dx = dout · W", "dW = doutᵀ · x, shape (out, in)", "db sums dout over the batch"))]
        assert_close(got, [dx, dW, db], ["dx", "dW", "db"], f"for {label}", (
            ("dW = doutᵀ · x, shape (out, in): it is transposed", lambda: [dx, x.T @ dout, db]),
            ("db sums dout over the batch (no 1/N: dout already holds the loss's 1/N)",
             lambda: [dx, dW, dout.mean(axis=0)]),
            ("dW = doutᵀ · x: no 1/N (dout already holds the loss's 1/N)", lambda: [dx, dW / N, db]),
            ("dx = dout · W (not dout · Wᵀ)", lambda: [dout @ W.T, dW, db]),
        ), **tolerance)


def check_sum_to_shape(sum_to_shape) -> None:
    rng = np.random.default_rng(8)
    cases = (((3, 4), (4,)), ((3, 4), (3, 1)), ((2, 3, 4), (3, 1)), ((2, 3, 4), (1, 4)), ((5,), (5,)),
             ((2, 3), ()), ((2, 3, 4), (2, 1, 1)), ((4, 1, 3), (1, 1, 3)))
    for grad_shape, shape in cases:
        grad = rng.standard_normal(grad_shape)
        expected = ops.unbroadcast(grad, shape)
        label = f"grad {grad_shape} to shape {shape}"
        returned = call(sum_to_shape, grad, shape)
        try:
            returned_shape = np.shape(returned)
        except Exception:
            returned_shape = None
        hint = ""
        if returned_shape == grad_shape[grad.ndim - len(shape):]:
            hint = "also sum the axes where shape has a 1, keeping them: (3, 4) → (3, 1) sums axis 1"
        elif returned_shape is not None and int(np.prod(returned_shape)) == int(np.prod(shape)):
            hint = "keep the summed axes of length 1 (keepdims=True)"
        got = as_array(returned, f"the result for {label}", shape, hint=hint)

        def leading_only(grad=grad, shape=shape):
            return [grad.sum(axis=tuple(range(grad.ndim - len(shape))))]

        def averaged(grad=grad, shape=shape):
            extra = grad.ndim - len(shape)
            g = grad.mean(axis=tuple(range(extra))) if extra else grad
            stretched = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
            return [g.mean(axis=stretched, keepdims=True) if stretched else g]

        assert_close([got], [expected], ["sum"], label, (
            ("also sum the axes where shape has a 1 (keeping them): (3, 4) → (3, 1) sums axis 1", leading_only),
            ("the gradient of a broadcast copy is the sum over the copies, not the mean", averaged),
        ))


TASKS = (
    ("softmax_cross_entropy", check_softmax_cross_entropy),
    ("linear_backward", check_linear_backward),
    ("sum_to_shape", check_sum_to_shape),
)
