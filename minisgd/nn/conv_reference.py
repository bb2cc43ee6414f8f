"""Convolution and pooling written from the engine's own differentiable ops: read this one first.

This is the convolution to read. It is built only from operations of
:mod:`minisgd.ops` (``pad``, slicing, ``stack``, ``matmul``), so autograd
derives its backward pass: there is no hand-written gradient here.
:func:`minisgd.nn.functional.conv2d` computes the same numbers faster with the
kernels of :mod:`minisgd.nn.conv`; the tests check one against the other,
forward and every gradient.

Convolution as one matrix product (im2col)
------------------------------------------
With padding p, stride s and a kH×kW kernel, output pixel (y, x) of image n is

    out[n, o, y, x] = b[o] + Σ_{c, i, j} w[o, c, i, j] · x_pad[n, c, y·s + i, x·s + j]

For one kernel offset (i, j), the input pixels under that offset for *every*
output pixel form the strided slice ``x_pad[:, :, i::s, j::s]`` (cut to
Ho×Wo). Stacking the kH·kW slices gives ``cols`` (N, C·kH·kW, Ho·Wo): column
(y, x) of image n is the patch under output pixel (y, x). Then the whole
convolution is one matrix product with the weights flattened to
``w_rows`` (O, C·kH·kW):

    out[n] = w_rows · cols[n] + b

Back-propagation follows from the ops: ``matmul`` gives ∂L/∂w_rows = Σ_n g[n] · cols[n]ᵀ
and ∂L/∂cols = w_rowsᵀ · g, ``stack`` hands each slice its part of ∂L/∂cols,
the slices add it back into the pixels they came from, and ``pad`` cuts the
border off.

Pooling uses the same kH·kW slices: a window's maximum (or mean) is taken
across the stacked slices.
"""

from __future__ import annotations

from minisgd import ops
from minisgd.backend import get_array_module
from minisgd.tensor import Tensor

IntOrPair = int | tuple[int, int]


def _pair(value: IntOrPair) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def window_slices(x_pad: Tensor, kernel: IntOrPair, stride: IntOrPair) -> Tensor:
    """The kH·kW strided slices of x_pad (N, C, Hp, Wp), stacked: (N, C, kH·kW, Ho, Wo).

        slices[n, c, i·kW + j, y, x] = x_pad[n, c, y·s_h + i, x·s_w + j]
    """
    (kernel_h, kernel_w), (stride_h, stride_w) = _pair(kernel), _pair(stride)
    out_h = (x_pad.shape[2] - kernel_h) // stride_h + 1
    out_w = (x_pad.shape[3] - kernel_w) // stride_w + 1
    slices = [
        x_pad[:, :, i : i + stride_h * (out_h - 1) + 1 : stride_h, j : j + stride_w * (out_w - 1) + 1 : stride_w]
        for i in range(kernel_h)
        for j in range(kernel_w)
    ]
    return ops.stack(slices, axis=2)


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrPair = 1,
           padding: IntOrPair = 0) -> Tensor:
    """out = w_rows · cols + b for x (N, C, H, W), w (O, C, kH, kW), b (O,): (N, O, Ho, Wo).

    cols = the patches of x padded by p (:func:`window_slices`), one column per output pixel.
    """
    (pad_h, pad_w) = _pair(padding)
    batch, channels = x.shape[:2]
    out_channels = weight.shape[0]
    x_pad = ops.pad(x, ((0, 0), (0, 0), (pad_h, pad_h), (pad_w, pad_w)))
    slices = window_slices(x_pad, weight.shape[2:], stride)           # (N, C, kH·kW, Ho, Wo)
    out_h, out_w = slices.shape[3:]
    cols = slices.reshape(batch, -1, out_h * out_w)                    # (N, C·kH·kW, Ho·Wo)
    w_rows = weight.reshape(out_channels, -1)                          # (O, C·kH·kW), same (c, i, j) order
    out = (w_rows @ cols).reshape(batch, out_channels, out_h, out_w)  # one matrix product for the batch
    return out if bias is None else out + bias.reshape(1, out_channels, 1, 1)


def max_pool2d(x: Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None) -> Tensor:
    """out[n, c, y, x] = max_{i, j} x[n, c, y·s + i, x·s + j] (stride defaults to the kernel).

    The maximum is picked with an index (the *first* maximum of the window in
    row-major order, PyTorch's rule), so the gradient goes to that element only.
    """
    windows = window_slices(x, kernel_size, kernel_size if stride is None else stride)
    xp = get_array_module(windows.data)
    first = windows.data.argmax(axis=2)                                # (N, C, Ho, Wo): which offset won
    n, c, y, x_ = (xp.arange(size).reshape([-1 if a == axis else 1 for a in range(4)])
                   for axis, size in enumerate(first.shape))
    return windows[n, c, first, y, x_]


def avg_pool2d(x: Tensor, kernel_size: IntOrPair, stride: IntOrPair | None = None) -> Tensor:
    """out[n, c, y, x] = (1/(kH·kW)) Σ_{i, j} x[n, c, y·s + i, x·s + j] (stride defaults to the kernel)."""
    return window_slices(x, kernel_size, kernel_size if stride is None else stride).mean(axis=2)
