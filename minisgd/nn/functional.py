"""Neural-network functions on tensors, each a differentiable operation (imported as ``F``).

    from minisgd.nn import functional as F
    loss = F.cross_entropy(model(images), labels)

Every function here computes its forward pass with array operations and
records a hand-written backward with :func:`minisgd.tensor.from_op`; the
formulas of both are in its docstring. Convolution and pooling delegate the
array work to the fast kernels of :mod:`minisgd.nn.conv`; the version to read
first is :mod:`minisgd.nn.conv_reference`, built from the engine's own ops.

Shapes follow PyTorch: images (N, C, H, W), logits (N, classes), Linear
weights (out_features, in_features), Conv2d weights (O, C, kH, kW).
"""

from __future__ import annotations

import math
from typing import Any

from minisgd import backend, checks, ops, random
from minisgd.backend import get_array_module
from minisgd.nn import conv
from minisgd.tensor import Tensor, from_op

IntOrPair = int | tuple[int, int]


# --------------------------------------------------------------------- helpers
def _tensor(x: Any, name: str, op: str) -> Tensor:
    if isinstance(x, Tensor):
        return x
    raise TypeError(f"{op}: {name} must be a minisgd.Tensor; got {type(x).__name__}")


def _floating(x: Tensor, op: str) -> Tensor:
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: needs a floating-point tensor, as in PyTorch; got dtype {x.dtype}")
    return x


def _same_dtype(tensors: tuple[Tensor | None, ...], op: str) -> None:
    dtypes = [t.dtype for t in tensors if t is not None]
    if len(set(dtypes)) > 1:
        raise TypeError(f"{op}: input, weight and bias must have one dtype, as in PyTorch; got {dtypes}")


def _check_image(x: Tensor, op: str) -> None:
    if x.ndim != 4:
        raise ValueError(f"{op}: expected input of shape (N, C, H, W) (4 dimensions); got shape {x.shape}")


def _check_window(x: Tensor, kernel: tuple[int, int], padding: tuple[int, int], op: str) -> None:
    padded = (x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1])
    if kernel[0] > padded[0] or kernel[1] > padded[1]:
        raise ValueError(
            f"{op}: kernel size {kernel} is larger than the padded input "
            f"{padded} (input {x.shape[2:]} with padding {padding})"
        )


# ---------------------------------------------------------------------- linear
def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """out = x · Wᵀ + b  for x (…, in), W (out, in), b (out,).

    Backward, with g = ∂L/∂out and the leading axes flattened into rows:

        ∂L/∂x = g · W,    ∂L/∂W = gᵀ · x,    ∂L/∂b = Σ_rows g
    """
    x, weight = _tensor(x, "input", "linear"), _tensor(weight, "weight", "linear")
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must have shape (out_features, in_features); got {weight.shape}")
    if x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: expected input of shape (..., {weight.shape[1]}); got shape {x.shape}"
        )
    _same_dtype((x, weight, bias), "linear")
    in_features = weight.shape[1]
    x_rows = x.data.reshape(-1, in_features)
    w = weight.data
    out = backend.matmul(x_rows, w.T)  # a @ b, on every core (see backend.matmul)
    if bias is not None:
        out += bias.data
    parents = (x, weight) if bias is None else (x, weight, bias)

    def backward(g):
        g_rows = g.reshape(-1, w.shape[0])
        grad_x = backend.matmul(g_rows, w).reshape(x.shape) if x.requires_grad else None
        grad_w = backend.matmul(g_rows.T, x_rows) if weight.requires_grad else None
        grads = (grad_x, grad_w)
        if bias is not None:
            grads += (g_rows.sum(axis=0) if bias.requires_grad else None,)
        return grads

    saved = ((weight,) if x.requires_grad else ()) + ((x,) if weight.requires_grad else ())
    return from_op(out.reshape(x.shape[:-1] + (w.shape[0],)), parents, backward, "linear", saved=saved)


# ------------------------------------------------------------------ convolution
def conv2d(
    x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrPair = 1,
    padding: IntOrPair = 0,
) -> Tensor:
    """2-D convolution (cross-correlation, as in every deep-learning library).

        out[n, o, y, x] = b[o] + Σ_{c, i, j} w[o, c, i, j] · x_pad[n, c, y·s + i, x·s + j]

    x (N, C, H, W), w (O, C, kH, kW), b (O,); x_pad is x with ``padding`` zeros
    on each side, s the ``stride``; the output is (N, O, Ho, Wo) with
    Ho = ⌊(H + 2p − kH)/s⌋ + 1.

    To see how it is computed, read :func:`minisgd.nn.conv_reference.conv2d`
    first: the same numbers from pad, kH·kW strided slices, stack and one
    matrix product, with autograd for the backward. This function runs the
    fast kernels of :mod:`minisgd.nn.conv` (channels-last blocks of images on
    every core) and their hand-written backward, with g = ∂L/∂out and
    ``cols`` the patches (one row per output pixel):

        out = cols · w_rowsᵀ + b,   ∂L/∂w_rows = gᵀ · cols,   ∂L/∂b = Σ_{n,y,x} g

    and ∂L/∂x by one of two routes: for stride 1 (small_vgg's convolutions),
    the convolution of g (padded by k − 1 − p) with the kernel flipped and its
    channel axes swapped; otherwise, and where that would build much larger
    columns (lenet's second convolution), ∂L/∂x = col2im(g · w_rows). A first
    layer needs no ∂L/∂x. With few output channels (lenet's first layer) the
    forward pass, and the weight gradient of a first layer, use the same
    formulas on a wider kernel that computes X neighbouring output pixels at
    once (:func:`minisgd.nn.conv.widen`): the product is X·O columns wide
    instead of O. The tests check every route against the reference.
    """
    x, weight = _tensor(x, "input", "conv2d"), _tensor(weight, "weight", "conv2d")
    _check_image(x, "conv2d")
    if weight.ndim != 4:
        raise ValueError(f"conv2d: weight must have shape (O, C, kH, kW); got {weight.shape}")
    if x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"conv2d: expected input of shape (N, {weight.shape[1]}, H, W) for weight of shape "
            f"{weight.shape}; got shape {x.shape}"
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"conv2d: bias must have shape ({weight.shape[0]},); got {bias.shape}")
    _same_dtype((x, weight, bias), "conv2d")
    stride = checks.int_pair("conv2d", "stride", stride, low=1)
    padding = checks.int_pair("conv2d", "padding", padding, low=0)
    _check_window(x, weight.shape[2:], padding, "conv2d")

    x_data, w_data = x.data, weight.data
    out = conv.conv2d_forward(x_data, w_data, None if bias is None else bias.data, stride, padding)
    parents = (x, weight) if bias is None else (x, weight, bias)

    def backward(g):
        grad_x, grad_w, grad_b = conv.conv2d_backward(
            g, x_data, w_data, stride, padding,
            need_input_grad=x.requires_grad,
            need_bias_grad=bias is not None and bias.requires_grad,
        )
        return (grad_x, grad_w) if bias is None else (grad_x, grad_w, grad_b)

    return from_op(out, parents, backward, "conv2d", saved=(x, weight))


# --------------------------------------------------------------------- pooling
def max_pool2d(x: Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None) -> Tensor:
    """out[n, c, y, x] = max_{i < kH, j < kW} x[n, c, y·s + i, x·s + j]  (stride s defaults to the kernel).

    ∂L/∂x receives g at the element that was the window's maximum and 0 at
    the others (the first maximum in row-major order on ties, like PyTorch; a
    NaN is a window's maximum, as in PyTorch, and takes its gradient);
    overlapping windows add their contributions. The plain version is
    :func:`minisgd.nn.conv_reference.max_pool2d`; this one runs two 1-D
    passes (width, then height) that keep each window's winner for the
    backward (:func:`minisgd.nn.conv.max_pool2d_forward`).
    """
    x = _tensor(x, "input", "max_pool2d")
    _check_image(x, "max_pool2d")
    kernel = checks.int_pair("max_pool2d", "kernel_size", kernel_size, low=1)
    stride = kernel if stride is None else checks.int_pair("max_pool2d", "stride", stride, low=1)
    _check_window(x, kernel, (0, 0), "max_pool2d")
    out, winner = conv.max_pool2d_forward(x.data, kernel, stride)
    shape = x.shape
    return from_op(
        out,
        (x,),
        lambda g: (conv.max_pool2d_backward(g, winner, shape, kernel, stride),),
        "max_pool2d",
    )


def avg_pool2d(x: Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None) -> Tensor:
    """out[n, c, y, x] = (1/(kH·kW)) Σ_{i, j} x[n, c, y·s + i, x·s + j];  ∂L/∂x = g/(kH·kW) to every window element.

    The plain version is :func:`minisgd.nn.conv_reference.avg_pool2d`; this one sums along the width, then the height.
    """
    x = _tensor(x, "input", "avg_pool2d")
    _check_image(x, "avg_pool2d")
    kernel = checks.int_pair("avg_pool2d", "kernel_size", kernel_size, low=1)
    stride = kernel if stride is None else checks.int_pair("avg_pool2d", "stride", stride, low=1)
    _check_window(x, kernel, (0, 0), "avg_pool2d")
    shape = x.shape
    return from_op(
        conv.avg_pool2d_forward(x.data, kernel, stride),
        (x,),
        lambda g: (conv.avg_pool2d_backward(g, shape, kernel, stride),),
        "avg_pool2d",
    )


# ----------------------------------------------------------------- activations
def relu(x: Tensor, inplace: bool = False) -> Tensor:
    """out = max(x, 0);  ∂L/∂x = g · [out > 0]  — :func:`minisgd.ops.relu`, the one ReLU.

    ``inplace=True`` (PyTorch's ``ReLU(inplace=True)``) writes the result into
    x's memory, saving the memory and the allocation of one activation. It is
    safe after a convolution, a linear layer or a batch norm, whose backward
    passes do not read their outputs; where something else saved x,
    ``backward()`` raises instead of computing a wrong gradient.
    """
    return ops.relu(_tensor(x, "input", "relu"), inplace=inplace)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """s_i = e^{x_i − m} / Σ_j e^{x_j − m}, with m = max_j x_j (which cancels, and prevents overflow).

    ∂L/∂x_i = s_i · (g_i − Σ_j g_j s_j)

    Floating-point tensors only, as in PyTorch (which skips that check for an empty tensor).
    """
    x = _floating(_tensor(x, "input", "softmax"), "softmax")
    xp = get_array_module(x.data)
    if x.size == 0:  # nothing to normalise (the max of an empty axis does not exist)
        return from_op(x.data.copy(), (x,), lambda g: (g.copy(),), "softmax")
    shifted = x.data - x.data.max(axis=axis, keepdims=True)
    s = xp.exp(shifted)
    s /= s.sum(axis=axis, keepdims=True)
    return from_op(
        s, (x,), lambda g: (s * (g - (g * s).sum(axis=axis, keepdims=True)),), "softmax", saves_output=True
    )


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """log s_i = (x_i − m) − log Σ_j e^{x_j − m}, with m = max_j x_j: finite even for logits of ±1000.

    ∂L/∂x_i = g_i − s_i · Σ_j g_j
    """
    x = _floating(_tensor(x, "input", "log_softmax"), "log_softmax")
    xp = get_array_module(x.data)
    if x.size == 0:
        return from_op(x.data.copy(), (x,), lambda g: (g.copy(),), "log_softmax")
    shifted = x.data - x.data.max(axis=axis, keepdims=True)
    out = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
    return from_op(
        out, (x,), lambda g: (g - xp.exp(out) * g.sum(axis=axis, keepdims=True),), "log_softmax",
        saves_output=True,
    )


# ----------------------------------------------------------------------- losses
def _class_targets(targets: Any, batch: int, classes: int, xp: Any) -> Any:
    """Targets as an integer array of shape (batch,) with values in [0, classes), or a clear error."""
    data = targets.data if isinstance(targets, Tensor) else targets
    data = xp.asarray(data)
    if data.dtype.kind not in "iu":
        raise TypeError(
            f"cross_entropy: targets must be integer class indices; got dtype {data.dtype}"
        )
    if data.shape != (batch,):
        raise ValueError(
            f"cross_entropy: expected targets of shape ({batch},) for logits of shape "
            f"({batch}, {classes}); got shape {data.shape}"
        )
    if batch and (int(data.min()) < 0 or int(data.max()) >= classes):
        raise ValueError(
            f"cross_entropy: targets must lie in [0, {classes - 1}]; got values from "
            f"{int(data.min())} to {int(data.max())}"
        )
    return data


def cross_entropy(logits: Tensor, targets: Any, label_smoothing: float = 0.0) -> Tensor:
    """Mean cross-entropy between softmax(logits) and integer class targets.

    For logits z (N, K), targets y and smoothing ε the target distribution is
    q = (1 − ε)·onehot(y) + ε/K, and

        L = −(1/N) Σ_n Σ_k q_nk · log softmax(z_n)_k
          = −(1/N) [(1 − ε) Σ_n log softmax(z_n)_{y_n} + (ε/K) Σ_n Σ_k log softmax(z_n)_k]
        ∂L/∂z = (softmax(z) − q) / N

    The loss is summed in the second form, so a masked logit (−inf) that is
    not the target costs nothing when ε = 0 (the first form would multiply
    q = 0 by log 0 = −inf and give NaN); with ε > 0 it costs +inf, as in PyTorch.
    """
    logits = _tensor(logits, "logits", "cross_entropy")
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy: expected logits of shape (N, classes); got shape {logits.shape}")
    label_smoothing = checks.number("cross_entropy", "label_smoothing", label_smoothing, low=0, high=1)
    xp = get_array_module(logits.data)
    batch, classes = logits.shape
    y = _class_targets(targets, batch, classes, xp)

    shifted = logits.data - logits.data.max(axis=1, keepdims=True)
    log_probs = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
    rows = xp.arange(batch)
    loss = -(1.0 - label_smoothing) * log_probs[rows, y].sum() / batch
    if label_smoothing:
        loss = loss - label_smoothing / classes * log_probs.sum() / batch

    def backward(g):
        # The chain through log_softmax, term by term as PyTorch computes it: ∂L/∂log p = −q·g/N
        # (−(1 − ε)·g/N at each target, −(ε/K)·g/N at every class), then
        # ∂L/∂z = ∂L/∂log p − softmax(z)·Σ_k ∂L/∂log p. It equals (softmax(z) − q)·g/N; written
        # this way an infinite g gives PyTorch's infinities and NaNs (no ∞ · 0 where q = 0).
        grad_log_probs = xp.zeros_like(log_probs)
        grad_log_probs[rows, y] = -(g * (1.0 - label_smoothing)) / batch
        if label_smoothing:
            grad_log_probs -= g * (label_smoothing / classes) / batch
        return (grad_log_probs - xp.exp(log_probs) * grad_log_probs.sum(axis=1, keepdims=True),)

    return from_op(xp.asarray(loss, dtype=logits.dtype), (logits,), backward, "cross_entropy")


def mse_loss(pred: Tensor, target: Any) -> Tensor:
    """L = (1/n) Σ (pred − target)²  over all n elements;  ∂L/∂pred = 2(pred − target)/n = −∂L/∂target."""
    pred = _tensor(pred, "pred", "mse_loss")
    target = target if isinstance(target, Tensor) else Tensor(target, dtype=pred.dtype, device=pred.device)
    if pred.shape != target.shape:
        raise ValueError(f"mse_loss: pred and target must have the same shape; got {pred.shape} and {target.shape}")
    xp = get_array_module(pred.data)
    diff = pred.data - target.data
    n = diff.size

    def backward(g):
        grad = diff * (2.0 * g / n)
        return (grad, -grad)

    return from_op(xp.asarray((diff * diff).sum() / n, dtype=diff.dtype), (pred, target), backward, "mse_loss")


# ------------------------------------------------------------ regularisation
def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout: out = x · m / (1 − p) with m_i ~ Bernoulli(1 − p); the identity when not training.

    Scaling by 1/(1 − p) at training time keeps E[out] = x, so evaluation needs
    no rescaling.  ∂L/∂x = g · m / (1 − p). p = 1 drops everything (out = 0,
    ∂L/∂x = 0), as in PyTorch.
    """
    x = _tensor(x, "input", "dropout")
    p = checks.number("dropout", "p", p, low=0, high=1)
    if not training or p == 0.0:
        return x
    keep = random.random(x.shape, x.device, x.dtype) >= p  # True with probability 1 − p
    scale = keep.astype(x.dtype) * (1.0 / (1.0 - p) if p < 1.0 else 0.0)
    return from_op(x.data * scale, (x,), lambda g: (g * scale,), "dropout")


def batch_norm(
    x: Tensor,
    running_mean: Any | None,
    running_var: Any | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Batch normalisation over every axis except the channel axis 1 ((N, C) or (N, C, H, W) inputs).

    Training, with m = number of values per channel:

        μ = (1/m) Σ x,    σ² = (1/m) Σ (x − μ)²,    x̂ = (x − μ) / √(σ² + ε),    out = γ · x̂ + β
        running_mean ← (1 − momentum) · running_mean + momentum · μ
        running_var  ← (1 − momentum) · running_var  + momentum · σ² · m/(m − 1)   (unbiased, like PyTorch)

    Evaluation uses the running statistics in place of μ and σ². Backward in
    training (every x̂ depends on the whole batch through μ and σ²):

        ∂L/∂γ = Σ g · x̂,    ∂L/∂β = Σ g,
        ∂L/∂x = (γ / √(σ² + ε)) · (g − mean(g) − x̂ · mean(g · x̂))

    and in evaluation simply ∂L/∂x = g · γ / √(running_var + ε).
    ``running_mean`` and ``running_var`` are arrays updated in place.
    ``BatchNorm2d(momentum=None)`` passes momentum = 1/k for its k-th batch,
    which makes the running statistics the plain average over all batches
    (PyTorch's cumulative moving average).
    """
    x = _tensor(x, "input", "batch_norm")
    if x.ndim not in (2, 4):
        raise ValueError(f"batch_norm: expected input of shape (N, C) or (N, C, H, W); got shape {x.shape}")
    xp = get_array_module(x.data)
    channels = x.shape[1]
    # Channels last: the per-channel statistics reduce every axis but the last.
    x_last = xp.moveaxis(x.data, 1, -1)
    axes = tuple(range(x.ndim - 1))
    count = x.size // channels

    parents = (x,) + tuple(p for p in (weight, bias) if p is not None)
    if training and x.size == 0:
        # An empty batch (as PyTorch): an empty output, no gradient, the running statistics untouched.
        zeros = lambda g: tuple(xp.zeros(p.shape, dtype=g.dtype) for p in parents)  # noqa: E731
        return from_op(x.data.copy(), parents, zeros, "batch_norm")
    if training:
        if count <= 1:
            raise ValueError(
                f"batch_norm: training needs more than 1 value per channel to estimate a variance; "
                f"got input of shape {x.shape}"
            )
        mean = x_last.mean(axis=axes)
        centered = x_last - mean
        var = (centered * centered).mean(axis=axes)
        if running_mean is not None:
            running_mean *= 1.0 - momentum
            running_mean += momentum * mean
        if running_var is not None:
            running_var *= 1.0 - momentum
            running_var += (momentum * count / (count - 1)) * var
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: evaluation mode needs running_mean and running_var")
        mean, var = running_mean, running_var
        centered = x_last - mean
    inv_std = 1.0 / xp.sqrt(var + eps)
    x_hat = centered * inv_std
    gamma = weight.data if weight is not None else None
    # out = γ·x̂ + β, computed as PyTorch does: x·α + (β − μ·α) with α = γ/√(σ² + ε) (the same
    # number up to rounding, and the same inf and NaN where γ or β is infinite)
    alpha = inv_std * gamma if gamma is not None else inv_std
    shift = -mean * alpha if bias is None else bias.data - mean * alpha
    out = x_last * alpha + shift

    def backward(g):
        g_last = xp.moveaxis(g, 1, -1)
        scale = inv_std * gamma if gamma is not None else inv_std
        if training:
            g_mean = g_last.mean(axis=axes)
            gx_mean = (g_last * x_hat).mean(axis=axes)
            grad_x = (g_last - g_mean - x_hat * gx_mean) * scale
        else:
            grad_x = g_last * scale
        grads = [xp.moveaxis(grad_x, -1, 1) if x.requires_grad else None]
        if weight is not None:
            grads.append((g_last * x_hat).sum(axis=axes) if weight.requires_grad else None)
        if bias is not None:
            grads.append(g_last.sum(axis=axes) if bias.requires_grad else None)
        return tuple(grads)

    saved = (weight,) if weight is not None else ()
    return from_op(xp.moveaxis(out, -1, 1), parents, backward, "batch_norm", saved=saved)


def flatten(x: Tensor, start_dim: int = 1) -> Tensor:
    """out = x reshaped to (x.shape[0], …, x.shape[start_dim − 1], product of the rest); ∂L/∂x = g reshaped back.

    The order of the flattened elements is PyTorch's (C, H, W), so a Linear
    layer after it has PyTorch's weight layout.
    """
    x = _tensor(x, "input", "flatten")
    start_dim = checks.integer("flatten", "start_dim", start_dim, low=0, high=max(x.ndim - 1, 0))
    # The size is spelled out: NumPy cannot infer -1 for an empty batch.
    return x.reshape(x.shape[:start_dim] + (math.prod(x.shape[start_dim:]),))


__all__ = [
    "avg_pool2d",
    "batch_norm",
    "conv2d",
    "cross_entropy",
    "dropout",
    "flatten",
    "linear",
    "log_softmax",
    "max_pool2d",
    "mse_loss",
    "relu",
    "softmax",
]
