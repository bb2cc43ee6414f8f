"""Exercise ``cnn``: a convolution forward and backward, max pooling's backward, BatchNorm's backward.

Answer key: ``nn.functional.conv2d`` (checked in minisgd's tests against
``nn.conv_reference`` and finite differences), ``max_pool2d``, ``avg_pool2d``
and ``batch_norm`` with minisgd's autograd, in float64. The cases include
stride 2, padding 1, a batch of 1, non-square images and kernels, and
overlapping pooling windows.
"""

from __future__ import annotations

import numpy as np

from minisgd.exercises.grading import (
    as_array,
    as_tuple,
    assert_close,
    call,
    finite_differences,
    library_gradients,
)
from minisgd.nn import functional as F

LECTURES = ("07_cifar10_cnn",)

STUB = '''"""minisgd exercise: cnn (follows lecture 07_cifar10_cnn).

Write each function below, then grade your file with

    python -m minisgd exercise check cnn

NumPy arrays in, NumPy arrays out (float64), images in NCHW layout.
Do not import minisgd here: you write it yourself.
"""

import numpy as np


def conv2d_forward(x, w, b, stride, padding):
    """A 2-D convolution as deep-learning libraries define it (a cross-correlation: no kernel flip).

        out[n, o, y, x] = b[o] + Σ_{c, i, j} w[o, c, i, j] · x_pad[n, c, y·stride + i, x·stride + j]

    x: (N, C, H, W); w: (O, C, kH, kW); b: (O,); stride, padding: ints
    (x_pad is x with `padding` zeros on each side of H and W).
    Output (N, O, Ho, Wo) with Ho = (H + 2·padding − kH) // stride + 1, likewise Wo.
    """
    raise NotImplementedError


def conv2d_backward(dout, x, w, stride, padding):
    """The backward pass of conv2d_forward: dout = ∂L/∂out, (N, O, Ho, Wo).

    Return (dx, dw, db) with the shapes of x, w and b.
    """
    raise NotImplementedError


def max_pool2d_backward(dout, x, k, stride):
    """The backward pass of max pooling with k×k windows moved by `stride` (no padding).

    out[n, c, y, x] = max of x[n, c, y·stride : y·stride + k, x·stride : x·stride + k];
    dout: ∂L/∂out. Return dx, the shape of x: each window's dout goes to the
    position of that window's maximum (windows may overlap when stride < k).
    """
    raise NotImplementedError


def batchnorm_backward(dout, x, gamma, eps):
    """The backward pass of BatchNorm in training mode, for x of shape (N, C) (statistics over axis 0):

        μ = mean(x),  σ² = mean((x − μ)²)  (the biased variance),  x̂ = (x − μ) / √(σ² + ε),  out = γ·x̂ + β

    dout: ∂L/∂out, (N, C); gamma: (C,). Return (dx, dgamma, dbeta), shapes (N, C), (C,), (C,).
    """
    raise NotImplementedError
'''


def _output_shape(x_shape, w_shape, stride, padding):
    N, _, H, W = x_shape
    out_channels, _, kH, kW = w_shape
    return (N, out_channels, (H + 2 * padding - kH) // stride + 1, (W + 2 * padding - kW) // stride + 1)


def _shape_hint(returned, x_shape, w_shape, stride, padding) -> str:
    try:
        shape = np.shape(returned)
    except Exception:
        return ""
    if padding and shape == _output_shape(x_shape, w_shape, stride, 0):
        return "pad the input with `padding` zeros on each side"
    if stride != 1 and shape == _output_shape(x_shape, w_shape, 1, padding):
        return "move the window by `stride` pixels"
    return "Ho = (H + 2·padding − kH) // stride + 1"


CONV_CASES = (  # x shape, w shape, stride, padding
    ((2, 3, 7, 5), (4, 3, 3, 3), 1, 0),
    ((1, 2, 6, 9), (3, 2, 3, 3), 2, 1),
    ((2, 3, 8, 7), (2, 3, 3, 2), 2, 1),
    ((1, 1, 5, 4), (2, 1, 2, 2), 1, 1),
)


def _flip(w: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(w[:, :, ::-1, ::-1])


def _conv(x, w, b, stride, padding) -> np.ndarray:
    from minisgd.tensor import Tensor

    return F.conv2d(Tensor(x, device="cpu"), Tensor(w, device="cpu"), Tensor(b, device="cpu"), stride, padding).data


# ------------------------------------------------------------------- checks
def check_conv2d_forward(conv2d_forward) -> None:
    rng = np.random.default_rng(9)
    for x_shape, w_shape, stride, padding in CONV_CASES:
        x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
        expected = _conv(x, w, b, stride, padding)
        label = f"x {x_shape}, w {w_shape}, stride {stride}, padding {padding}"
        returned = call(conv2d_forward, x, w, b, stride, padding)
        got = as_array(returned, f"out for {label}", expected.shape,
                       hint=_shape_hint(returned, x_shape, w_shape, stride, padding))
        assert_close([got], [expected], ["out"], f"for {label}", (
            ("deep-learning conv2d is a cross-correlation: do not flip the kernel",
             lambda: [_conv(x, _flip(w), b, stride, padding)]),
            ("add b[o] to every pixel of output channel o", lambda: [expected - b[None, :, None, None]]),
        ))


def check_conv2d_backward(conv2d_backward) -> None:
    rng = np.random.default_rng(10)
    for x_shape, w_shape, stride, padding in CONV_CASES:
        x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
        dout = rng.standard_normal(_output_shape(x_shape, w_shape, stride, padding))

        def gradients(w, x=x, dout=dout, stride=stride, padding=padding):
            forward = lambda x, w, b: F.conv2d(x, w, b, stride, padding)  # noqa: E731
            return library_gradients(forward, dout, x, w, np.zeros(w.shape[0]))[1:]

        dx, dw, db = gradients(w)
        label = f"x {x_shape}, w {w_shape}, stride {stride}, padding {padding}"
        tolerance = {}
        if x_shape == (1, 1, 5, 4):  # the smallest case: the answer key is central differences of the forward
            dx, dw, db = finite_differences(lambda x, w, b: float(np.sum(_conv(x, w, b, stride, padding) * dout)),
                                            x, w, np.zeros(w_shape[0]))
            label += " (expected by central differences)"
            tolerance = dict(rtol=1e-5, atol=1e-7)
        returned = as_tuple(call(conv2d_backward, dout, x, w, stride, padding), f"for {label}", ("dx", "dw", "db"))
        got = [as_array(value, f"{name} for {label}", shape)
               for value, name, shape in zip(returned, ("dx", "dw", "db"), (x_shape, w_shape, (w_shape[0],)))]
        N = x_shape[0]
        assert_close(got, [dx, dw, db], ["dx", "dw", "db"], f"for {label}", (
            ("dx is the full convolution of dout with the kernel flipped (rotated by 180°)",
             lambda: [gradients(_flip(w))[0], dw, db]),
            ("dw correlates the input with dout: no flip", lambda: [dx, _flip(dw), db]),
            ("db sums dout over the batch and every pixel (no mean)",
             lambda: [dx, dw, db / (dout.size // dout.shape[1])]),
            ("db sums dout over the batch and every pixel (no mean)", lambda: [dx, dw, db / N]),
            ("dw sums over the batch: no 1/N (dout already holds the loss's 1/N)", lambda: [dx, dw / N, db]),
        ), **tolerance)


def _pool_overwriting(dout, x, k, stride):
    """The wrong max-pool backward: ``dx[argmax] = dout`` (overwrites where windows overlap)."""
    dx = np.zeros_like(x)
    N, C, Ho, Wo = dout.shape
    for n in range(N):
        for c in range(C):
            for y in range(Ho):
                for xx in range(Wo):
                    window = x[n, c, y * stride:y * stride + k, xx * stride:xx * stride + k]
                    i, j = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, c, y * stride + i, xx * stride + j] = dout[n, c, y, xx]
    return dx


def check_max_pool2d_backward(max_pool2d_backward) -> None:
    rng = np.random.default_rng(11)
    for x_shape, k, stride in (((2, 3, 6, 6), 2, 2), ((1, 2, 7, 5), 3, 2), ((2, 1, 5, 8), 2, 1), ((1, 1, 4, 4), 4, 4)):
        x = rng.standard_normal(x_shape)
        out_shape = (*x_shape[:2], (x_shape[2] - k) // stride + 1, (x_shape[3] - k) // stride + 1)
        dout = rng.standard_normal(out_shape)
        dx = library_gradients(lambda x, k=k, stride=stride: F.max_pool2d(x, k, stride), dout, x)[1]
        label = f"x {x_shape}, k {k}, stride {stride}"
        got = as_array(call(max_pool2d_backward, dout, x, k, stride), f"dx for {label}", x_shape)
        assert_close([got], [dx], ["dx"], f"for {label}", (
            ("max pooling sends each window's gradient only to its maximum, not spread over the window",
             lambda: [library_gradients(lambda x, k=k, stride=stride: F.avg_pool2d(x, k, stride), dout, x)[1]]),
            ("where windows overlap (stride < k), add the gradients (+=), do not overwrite",
             lambda: [_pool_overwriting(dout, x, k, stride)]),
        ))


def _batchnorm_forward(x, gamma, beta, eps):
    from minisgd.tensor import Tensor

    inputs = (Tensor(x, device="cpu"), Tensor(gamma, device="cpu"), Tensor(beta, device="cpu"))
    return F.batch_norm(inputs[0], None, None, inputs[1], inputs[2], training=True, eps=eps).data


def _batchnorm_parts(x, gamma, eps, ddof=0):
    mean = x.mean(axis=0)
    var = x.var(axis=0, ddof=ddof)
    return (x - mean) / np.sqrt(var + eps), gamma / np.sqrt(var + eps)


def check_batchnorm_backward(batchnorm_backward) -> None:
    rng = np.random.default_rng(12)
    for (N, C), eps in (((8, 3), 1e-5), ((2, 4), 1e-5), ((5, 1), 0.1), ((16, 2), 1e-3)):
        x = rng.standard_normal((N, C)) * 2 + 1
        gamma, dout = rng.standard_normal(C), rng.standard_normal((N, C))
        forward = lambda x, g, b, eps=eps: F.batch_norm(x, None, None, g, b, training=True, eps=eps)  # noqa: E731
        _, dx, dgamma, dbeta = library_gradients(forward, dout, x, gamma, np.zeros(C))
        label = f"x ({N}, {C}), eps {eps}"
        tolerance = {}
        if N == 5:  # one case whose answer key is central differences of the forward
            loss = lambda x, g, b, eps=eps, dout=dout: float(np.sum(_batchnorm_forward(x, g, b, eps) * dout))  # noqa
            dx, dgamma, dbeta = finite_differences(loss, x, gamma, np.zeros(C))
            label += " (expected by central differences)"
            tolerance = dict(rtol=1e-5, atol=1e-7)
        returned = as_tuple(call(batchnorm_backward, dout, x, gamma, eps), f"for {label}", ("dx", "dgamma", "dbeta"))
        got = [as_array(value, f"{name} for {label}", shape)
               for value, name, shape in zip(returned, ("dx", "dgamma", "dbeta"), ((N, C), (C,), (C,)))]
        x_hat, scale = _batchnorm_parts(x, gamma, eps)
        unbiased_hat, unbiased_scale = _batchnorm_parts(x, gamma, eps, ddof=1)
        g_mean, gx_mean = dout.mean(axis=0), (dout * x_hat).mean(axis=0)
        assert_close(got, [dx, dgamma, dbeta], ["dx", "dgamma", "dbeta"], f"for {label}", (
            ("in training μ and σ² depend on x: dx = (γ/√(σ² + ε))·(g − mean(g) − x̂·mean(g·x̂)); "
             "the mean terms are missing", lambda: [dout * scale, dgamma, dbeta]),
            ("the variance's term −x̂·mean(g·x̂) is missing", lambda: [(dout - g_mean) * scale, dgamma, dbeta]),
            ("the mean's term −mean(g) is missing", lambda: [(dout - x_hat * gx_mean) * scale, dgamma, dbeta]),
            ("BatchNorm normalises with the biased variance (divide by N, not N − 1)", lambda: [
                (dout - dout.mean(axis=0) - unbiased_hat * (dout * unbiased_hat).mean(axis=0)) * unbiased_scale,
                (dout * unbiased_hat).sum(axis=0), dbeta]),
            ("dgamma = Σ dout·x̂ over the batch", lambda: [dx, dout.sum(axis=0), dbeta]),
        ), **tolerance)


TASKS = (
    ("conv2d_forward", check_conv2d_forward),
    ("conv2d_backward", check_conv2d_backward),
    ("max_pool2d_backward", check_max_pool2d_backward),
    ("batchnorm_backward", check_batchnorm_backward),
)
