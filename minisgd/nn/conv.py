"""The fast convolution and pooling kernels that training runs, on plain arrays.

Read :mod:`minisgd.nn.conv_reference` first: it computes the same numbers
from the engine's ops in a few lines (pad, kH·kW strided slices, stack, one
matrix product, and autograd for the backward). This module computes them
several times faster; the tests check it against the reference, forward and
every gradient. It takes and returns arrays (NumPy or CuPy), not tensors:
:mod:`minisgd.nn.functional` wraps it as differentiable operations.

The mathematics is the reference's. With padding p, stride s and ``cols`` the
patches of the padded image, one row per output pixel ("image to columns",
im2col), and the weights as the matrix ``w_rows`` (O, kH·kW·C):

    out = cols · w_rowsᵀ + b                                  (N·Ho·Wo, O)
    ∂L/∂w_rows = gᵀ · cols,   ∂L/∂b = Σ_rows g                (g = ∂L/∂out)

What it does differently from the reference, and why:

- **Channels-last memory.** Images keep PyTorch's (N, C, H, W) shapes but
  (N, H, W, C) memory (:func:`channels_last` is a view). One kernel row of a
  patch is then a run of kW·C contiguous numbers, so :func:`im2col` is kH
  slice copies, and the matrix product's output (N·Ho·Wo, O) *is* the next
  image, with no transpose. NumPy's elementwise functions keep the layout,
  so the ReLU after a convolution stays channels-last and the next
  convolution reads it without a copy.
- **Blocks of images, on every core.** The column matrix is kH·kW times the
  image (151 MB for small_vgg's second convolution at batch 128). The
  kernels walk the batch in blocks of a few MB of columns, so that a block's
  padding, im2col, matrix product and bias run from cache, and memory stays
  bounded. The blocks are independent, so :func:`minisgd.backend.map_blocks`
  runs them on several threads (CPU only, BLAS at one thread inside each):
  the copies, which NumPy runs on one core, then use every core too. The
  backward pass rebuilds a block's columns instead of keeping them.
- **Scratch buffers.** A block's padded image and columns live in buffers
  reused from call to call (:func:`scratch`), one set per thread: fresh
  memory would cost a page fault per 4 KB at every call.
- **The flipped-kernel backward.** For stride 1, ∂L/∂x is itself a
  convolution, of g with the kernel flipped and its channel axes swapped, so
  one im2col of g feeds both gradients and no col2im is needed
  (:func:`_backward_stride_1`); small_vgg's convolutions after the first
  take it. Where g's columns would be much larger than x's (more output
  than input channels and no padding: lenet's second convolution) and for
  other strides, the textbook route runs: ∂L/∂cols = g · w_rows scattered
  back by :func:`col2im` (:func:`_backward_col2im`). A first layer, which
  needs no ∂L/∂x, takes that route without its col2im.
- **A wider kernel for few output channels.** With O = 6 (lenet's first
  convolution) the product cols · w_rowsᵀ is six columns wide, a shape the
  BLAS runs at a third of its speed, and its weight gradient (6 rows) is as
  slow. The same convolution is also a convolution with a kernel
  ``(X − 1)·s + kW`` wide, moved X pixels at a time, with X·O output
  channels: channel (x′, o) of the wide kernel is w[o] shifted x′·s to the
  right, zeros elsewhere (:func:`widen`). Its output, channels-last, *is* the
  narrow output, and its columns are smaller (neighbouring patches share
  their pixels). :func:`pixels_per_row` picks X (1 for more than 12
  channels), and the weight gradient of the wide kernel adds back into w
  (:func:`narrow`). A layer that needs ∂L/∂x uses X = 1 in its backward.
- **Max pooling in two 1-D passes** (width, then height) that keep the
  winning offset of each window for the backward, also in blocks of images
  on every core.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

from minisgd.backend import CPU_THREADS, device_of, even_parts, get_array_module, map_blocks
from minisgd.ops import zero_where

# Bytes of column matrix per block of images on the CPU: small enough that the
# blocks of every thread, with their outputs and gradients, stay in cache
# together. On a GPU the whole batch is one block.
BLOCK_BYTES = 4 * 2**20


def output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution or pooling along one axis.

        out = ⌊(size + 2·padding − kernel) / stride⌋ + 1
    """
    return (size + 2 * padding - kernel) // stride + 1


def channels_last(x: Any) -> Any:
    """The (N, H, W, C) view of an (N, C, H, W) array (no copy)."""
    return x.transpose(0, 2, 3, 1)


def channels_first(x: Any) -> Any:
    """The (N, C, H, W) view of an (N, H, W, C) array (no copy)."""
    return x.transpose(0, 3, 1, 2)


def image_blocks(batch: int, bytes_per_image: int, device: str) -> list[tuple[int, int]]:
    """(start, stop) of each block of images: on a GPU one block, the batch; on the CPU blocks of at most
    ~BLOCK_BYTES of columns, as many as possible alike, their number a multiple of the threads (so every
    thread gets as many images). None for an empty batch."""
    if batch == 0:
        return []
    if device != "cpu":
        return [(0, batch)]
    largest = max(1, BLOCK_BYTES // max(bytes_per_image, 1))  # images in a block at most
    count = -(-batch // largest)                              # the fewest blocks that respect it
    count = -(-count // CPU_THREADS) * CPU_THREADS            # rounded up to a multiple of the threads
    return [(part.start, part.stop) for part in even_parts(batch, count)]


def _window(offset: int, stride: int, count: int) -> slice:
    """The slice offset, offset + stride, …, with ``count`` elements."""
    return slice(offset, offset + stride * (count - 1) + 1, stride)


def im2col(x_pad: Any, cols: Any, kernel: tuple[int, int], stride: tuple[int, int]) -> None:
    """Fill ``cols`` with the patches of ``x_pad`` (both channels-last).

    x_pad: (n, Hp, Wp, C), already padded, contiguous.
    cols:  (n, Ho, Wo, kH, kW, C), written in place:

        cols[n, y, x, i, j, c] = x_pad[n, y·s_h + i, x·s_w + j, c]

    In channels-last memory the kW·C numbers (j, c) of one kernel row i of a
    patch are *contiguous* in x_pad: they start at pixel (y·s_h + i, x·s_w) and
    run on. So for each kernel row i, one strided view of x_pad, of shape
    (n, Ho, Wo, kW·C), holds that row of every patch (neighbouring patches
    overlap in memory, which is fine for reading), and one slice assignment
    copies it: kH copies of runs of kW·C numbers.
    """
    xp = get_array_module(x_pad)
    n, out_h, out_w, kernel_h, kernel_w, channels = cols.shape
    step_n, step_h, step_w, step_c = x_pad.strides  # bytes between neighbours along each axis
    if step_c != x_pad.itemsize or step_w != channels * x_pad.itemsize:
        raise ValueError(
            f"im2col: x_pad must be contiguous along its last two axes (W, C); got strides {x_pad.strides}"
        )
    cols_by_row = cols.reshape(n, out_h, out_w, kernel_h, kernel_w * channels)
    for i in range(kernel_h):
        patch_rows = xp.lib.stride_tricks.as_strided(
            x_pad[:, i:],
            shape=(n, out_h, out_w, kernel_w * channels),
            strides=(step_n, stride[0] * step_h, stride[1] * step_w, step_c),
        )
        cols_by_row[:, :, :, i] = patch_rows


def col2im(cols_by_offset: Any, x_pad: Any, stride: tuple[int, int]) -> None:
    """Add each entry of the columns back to the pixel of ``x_pad`` it came from (the adjoint of im2col).

    cols_by_offset: (kH, kW, n, Ho, Wo, C), the columns grouped by kernel offset;
    x_pad: (n, Hp, Wp, C), overwritten:

        x_pad[n, h, w, c] = Σ over (i, j, y, x) with y·s_h + i = h, x·s_w + j = w of cols[i, j, n, y, x, c]

    One slice addition per kernel offset (i, j): inside one offset every target
    pixel is distinct, so ``+=`` adds each contribution exactly once. Grouping
    the columns by offset makes each addition read one contiguous block.
    """
    kernel_h, kernel_w, _, out_h, out_w, _ = cols_by_offset.shape
    x_pad.fill(0)
    for i in range(kernel_h):
        rows = _window(i, stride[0], out_h)
        for j in range(kernel_w):
            x_pad[:, rows, _window(j, stride[1], out_w), :] += cols_by_offset[i, j]


def weight_rows(weight: Any) -> Any:
    """Weights (O, C, kH, kW) as the matrix (O, kH·kW·C) whose columns match im2col's order."""
    out_channels = weight.shape[0]
    return weight.transpose(0, 2, 3, 1).reshape(out_channels, -1)


_scratch_buffers: dict[tuple[str, Any, int], Any] = {}


def scratch(xp: Any, role: str, shape: tuple[int, ...], dtype: Any) -> Any:
    """A work array of ``shape`` whose old contents are garbage, reused from call to call on the CPU.

    The columns and padded blocks are needed only inside one block. Allocating
    them afresh each time makes the operating system hand over new pages (a
    page fault per 4 KB, a measurable cost at these sizes), so on the CPU one
    flat buffer per ``role`` and per thread serves every layer, grown when a
    larger one is needed. (CuPy keeps its own memory pool; there a plain
    ``empty`` is already cheap.)
    """
    if xp is not np:
        return xp.empty(shape, dtype=dtype)
    size = math.prod(shape)
    key = (role, np.dtype(dtype), threading.get_ident())
    buffer = _scratch_buffers.get(key)
    if buffer is None or buffer.size < size:
        buffer = _scratch_buffers[key] = xp.empty(size, dtype=dtype)
    return buffer[:size].reshape(shape)


def pad(block: Any, padding: tuple[int, int], role: str = "padded") -> Any:
    """``block`` (n, H, W, C) surrounded by ``padding`` zeros, in a contiguous scratch buffer.

    A block that is contiguous already and needs no padding is returned as it is.
    """
    xp = get_array_module(block)
    pad_h, pad_w = padding
    n, height, width, channels = block.shape
    rows_contiguous = block.strides[2:] == (channels * block.itemsize, block.itemsize)  # what im2col needs
    if pad_h == pad_w == 0 and block.flags.c_contiguous and rows_contiguous:
        return block
    padded = scratch(xp, role, (n, height + 2 * pad_h, width + 2 * pad_w, channels), block.dtype)
    padded[:, :pad_h] = 0
    padded[:, pad_h + height :] = 0
    padded[:, pad_h : pad_h + height, :pad_w] = 0
    padded[:, pad_h : pad_h + height, pad_w + width :] = 0
    padded[:, pad_h : pad_h + height, pad_w : pad_w + width] = block
    return padded


def _crop(padded: Any, padding: tuple[int, int], height: int, width: int) -> Any:
    """The unpadded (n, H, W, C) interior of a padded array."""
    return padded[:, padding[0] : padding[0] + height, padding[1] : padding[1] + width]


def _sum(parts: list[Any]) -> Any:
    """The sum of a list of arrays (the blocks' contributions to a weight gradient)."""
    total = parts[0]
    for part in parts[1:]:
        total += part
    return total


def pixels_per_row(out_width: int, out_channels: int) -> int:
    """X, the output pixels one row of the columns computes: the largest of 4, 2, 1 that divides
    the output width and keeps X·O <= 24. lenet's first convolution (O = 6): 4. Its second (O = 16)
    and small_vgg's (O >= 32): 1, plain im2col (measured: X = 2 was no faster for O = 16)."""
    return next(x for x in (4, 2, 1) if out_width % x == 0 and (x == 1 or x * out_channels <= 24))


def widen(weight: Any, pixels: int, stride_w: int) -> Any:
    """The kernel that computes ``pixels`` (X) neighbouring output pixels at once: (X·O, C, kH, (X − 1)·s + kW).

        w_wide[x′·O + o, c, i, x′·s + j] = w[o, c, i, j]     (zero elsewhere)

    Convolving with it at stride X·s along the width gives, in output channel
    (x′, o) of wide pixel x, narrow output pixel x·X + x′ of channel o.
    """
    xp = get_array_module(weight)
    out_channels, channels, kernel_h, kernel_w = weight.shape
    wide = xp.zeros((pixels, out_channels, channels, kernel_h, (pixels - 1) * stride_w + kernel_w), weight.dtype)
    for shift in range(pixels):
        wide[shift, :, :, :, shift * stride_w : shift * stride_w + kernel_w] = weight
    return wide.reshape(pixels * out_channels, channels, kernel_h, -1)


def narrow(grad_wide: Any, pixels: int, stride_w: int, kernel_w: int) -> Any:
    """∂L/∂w from ∂L/∂w_wide (the adjoint of :func:`widen`):

        ∂L/∂w[o, c, i, j] = Σ_x′ ∂L/∂w_wide[x′·O + o, c, i, x′·s + j]
    """
    parts = grad_wide.reshape((pixels, -1) + grad_wide.shape[1:])
    return _sum([parts[shift, ..., shift * stride_w : shift * stride_w + kernel_w].copy() for shift in range(pixels)])


def conv2d_forward(
    x: Any, weight: Any, bias: Any | None, stride: tuple[int, int], padding: tuple[int, int]
) -> Any:
    """out = conv(x, w) + b for x (N, C, H, W), w (O, C, kH, kW), b (O,) or None.

        out_rows = cols · w_rowsᵀ + b          (N·Ho·Wo rows, O columns)

    per block of images: pad, :func:`im2col`, one matrix product written
    straight into the output, bias. Returns an (N, O, Ho, Wo) array whose
    memory is channels-last. With few output channels, the same numbers
    come from the :func:`widen` ed kernel (X output pixels per row of the columns).
    """
    batch, _, height, width = x.shape
    out_channels, _, kernel_h, kernel_w = weight.shape
    out_h = output_size(height, kernel_h, stride[0], padding[0])
    out_w = output_size(width, kernel_w, stride[1], padding[1])
    pixels = pixels_per_row(out_w, out_channels)
    xp = get_array_module(x)
    # The widened kernel multiplies every input pixel by its zeros too: an inf or NaN pixel would
    # make its neighbours NaN (0 · inf), so such an input takes the plain route.
    if pixels == 1 or not bool(xp.isfinite(x).all()):
        return _conv2d_forward(x, weight, bias, stride, padding)
    wide_bias = None if bias is None else xp.tile(bias, pixels)
    wide = _conv2d_forward(x, widen(weight, pixels, stride[1]), wide_bias, (stride[0], pixels * stride[1]), padding)
    # (N, Ho, Wo/X, X·O) channels-last is the memory of (N, Ho, Wo, O)
    return channels_first(channels_last(wide).reshape(batch, out_h, out_w, out_channels))


def _conv2d_forward(
    x: Any, weight: Any, bias: Any | None, stride: tuple[int, int], padding: tuple[int, int]
) -> Any:
    xp = get_array_module(x)
    batch, channels, height, width = x.shape
    out_channels, _, kernel_h, kernel_w = weight.shape
    out_h = output_size(height, kernel_h, stride[0], padding[0])
    out_w = output_size(width, kernel_w, stride[1], padding[1])
    patch = kernel_h * kernel_w * channels
    pixels = out_h * out_w
    dtype = xp.result_type(x.dtype, weight.dtype)

    w_rows_t = weight_rows(weight).T
    out = xp.empty((batch, out_h, out_w, out_channels), dtype=dtype)
    out_rows = out.reshape(batch * pixels, out_channels)
    x_last = channels_last(x)

    def forward_block(block: tuple[int, int]) -> None:
        start, stop = block
        cols = scratch(xp, "cols", (stop - start, out_h, out_w, kernel_h, kernel_w, channels), dtype)
        im2col(pad(x_last[start:stop], padding), cols, (kernel_h, kernel_w), stride)
        block_out = out_rows[start * pixels : stop * pixels]
        xp.matmul(cols.reshape(-1, patch), w_rows_t, out=block_out)
        if bias is not None:
            block_out += bias

    device = device_of(x)
    map_blocks(forward_block, image_blocks(batch, pixels * patch * dtype.itemsize, device), device)
    return channels_first(out)


def conv2d_backward(
    grad_out: Any,
    x: Any,
    weight: Any,
    stride: tuple[int, int],
    padding: tuple[int, int],
    need_input_grad: bool = True,
    need_bias_grad: bool = True,
) -> tuple[Any | None, Any, Any | None]:
    """Gradients of the convolution: (∂L/∂x, ∂L/∂w, ∂L/∂b) given g = ∂L/∂out.

        ∂L/∂b[o] = Σ_{n,y,x} g[n, o, y, x]      (per block, as the product 1ᵀ·g: BLAS is faster than sum)

    and ∂L/∂w, ∂L/∂x by one of two routes that give the same numbers:

    - stride 1 with an input gradient, where the columns of g are at most
      twice the size of those of x (small_vgg's convolutions after the
      first): :func:`_backward_stride_1`, no col2im;
    - otherwise :func:`_backward_col2im`, the textbook route (lenet's second
      convolution); without an input gradient (a first layer) it computes
      ∂L/∂w only and skips col2im, and with few output channels (lenet's
      first layer) it runs on the :func:`widen` ed kernel, as the forward
      pass did, and :func:`narrow` turns that kernel's gradient into ∂L/∂w.

    ∂L/∂x is None unless ``need_input_grad``; ∂L/∂b is None unless ``need_bias_grad``.
    """
    xp = get_array_module(x)
    batch, channels, height, width = x.shape
    out_channels, _, kernel_h, kernel_w = weight.shape
    _, _, out_h, out_w = grad_out.shape
    if batch == 0:  # an empty batch: no blocks to sum; the gradients are zero, as in PyTorch
        zeros = lambda shape: xp.zeros(shape, dtype=grad_out.dtype)  # noqa: E731
        return (zeros(x.shape) if need_input_grad else None, zeros(weight.shape),
                zeros((out_channels,)) if need_bias_grad else None)
    # g channels-last, (N, Ho, Wo, O); a copy only when it is not channels-last already.
    g_last = xp.ascontiguousarray(channels_last(grad_out))
    pixels = pixels_per_row(out_w, out_channels)
    if not need_input_grad and pixels > 1 and bool(xp.isfinite(x).all()):  # the widened kernel: ∂L/∂w only
        g_wide = g_last.reshape(batch, out_h, out_w // pixels, pixels * out_channels)
        _, grad_wide, grad_b = _backward_col2im(
            g_wide, x, widen(weight, pixels, stride[1]), (stride[0], pixels * stride[1]), padding,
            need_input_grad=False, need_bias_grad=need_bias_grad,
        )
        grad_b = None if grad_b is None else grad_b.reshape(pixels, out_channels).sum(axis=0)
        return None, xp.ascontiguousarray(narrow(grad_wide, pixels, stride[1], kernel_w)), grad_b
    # The stride-1 route builds columns of g, one row per input pixel (H·W·O per kernel offset); the
    # col2im route builds columns of x, one row per output pixel (Ho·Wo·C), then scatters as many back.
    # Take the stride-1 route unless its columns are more than twice as large (lenet's second layer:
    # O = 16 > C = 6 and no padding, so H·W·O is 5 times Ho·Wo·C).
    stride_1_is_smaller = height * width * out_channels <= 2 * out_h * out_w * channels
    # That route also multiplies the weights by the zeros that pad g: only for finite weights.
    if (need_input_grad and stride == (1, 1) and padding[0] < kernel_h and padding[1] < kernel_w
            and stride_1_is_smaller and bool(xp.isfinite(weight).all())):
        grads = _backward_stride_1(g_last, x, weight, padding, need_bias_grad)
        # That route multiplies every pixel by the zeros that pad g, so an inf or NaN pixel would
        # make all of ∂L/∂w NaN (0·inf); PyTorch's stays finite where the pixel never meets the
        # weight. Checked on ∂L/∂w, which is small; the columns route has no such product.
        if bool(xp.isfinite(grads[1]).all()):
            return grads
    return _backward_col2im(g_last, x, weight, stride, padding, need_input_grad, need_bias_grad)


def _bias_grad(g_rows: Any) -> Any:
    """Σ_rows g of one block, as the product 1ᵀ·g (BLAS: several times faster than ``sum(axis=0)``)."""
    xp = get_array_module(g_rows)
    return xp.ones(g_rows.shape[0], dtype=g_rows.dtype) @ g_rows


def _backward_col2im(
    g_last: Any, x: Any, weight: Any, stride: tuple[int, int], padding: tuple[int, int],
    need_input_grad: bool, need_bias_grad: bool,
) -> tuple[Any | None, Any, Any | None]:
    """(∂L/∂x, ∂L/∂w, ∂L/∂b) through the columns, for any stride:

        ∂L/∂w_rows = Σ_blocks gᵀ · cols      ∂L/∂cols = g · w_rows      ∂L/∂x = col2im(∂L/∂cols), cropped
        ∂L/∂b = Σ_blocks 1ᵀ · g

    The block's columns are rebuilt from x (im2col again) rather than kept
    from the forward pass. ∂L/∂cols is computed one kernel offset at a time,
    g · w[:, :, i, j] for each (i, j), so that it comes out grouped by offset,
    the layout col2im reads fastest; it reuses the ``cols`` buffer once ∂L/∂w
    has used the columns.
    """
    xp = get_array_module(x)
    batch, channels, height, width = x.shape
    out_channels, _, kernel_h, kernel_w = weight.shape
    _, out_h, out_w, _ = g_last.shape
    patch = kernel_h * kernel_w * channels
    pixels = out_h * out_w
    dtype = g_last.dtype

    g_rows = g_last.reshape(batch * pixels, out_channels)
    grad_x = xp.empty((batch, height, width, channels), dtype=dtype) if need_input_grad else None
    # w[:, :, i, j] for every offset, each a contiguous (O, C) matrix.
    w_by_offset = xp.ascontiguousarray(weight.transpose(2, 3, 0, 1))
    x_last = channels_last(x)

    def backward_block(block: tuple[int, int]) -> Any:
        start, stop = block
        n = stop - start
        cols = scratch(xp, "cols", (n, out_h, out_w, kernel_h, kernel_w, channels), dtype)
        g_block = g_rows[start * pixels : stop * pixels]
        im2col(pad(x_last[start:stop], padding), cols, (kernel_h, kernel_w), stride)
        grad_w_rows = g_block.T @ cols.reshape(n * pixels, patch)
        if need_input_grad:
            grad_cols = cols.reshape(kernel_h, kernel_w, n * pixels, channels)  # same buffer
            xp.matmul(g_block, w_by_offset, out=grad_cols)
            shape = (n, height + 2 * padding[0], width + 2 * padding[1], channels)
            grad_pad = scratch(xp, "grad_padded", shape, dtype)  # ∂L/∂x_pad of the block
            col2im(grad_cols.reshape(kernel_h, kernel_w, n, out_h, out_w, channels), grad_pad, stride)
            grad_x[start:stop] = _crop(grad_pad, padding, height, width)
        return grad_w_rows, (_bias_grad(g_block) if need_bias_grad else None)

    device = device_of(x)
    parts = map_blocks(backward_block, image_blocks(batch, pixels * patch * dtype.itemsize, device), device)
    grad_w_rows = _sum([grad_w for grad_w, _ in parts])
    grad_w = grad_w_rows.reshape(out_channels, kernel_h, kernel_w, channels).transpose(0, 3, 1, 2)
    grad_b = _sum([grad_b for _, grad_b in parts]) if need_bias_grad else None
    return (channels_first(grad_x) if need_input_grad else None), xp.ascontiguousarray(grad_w), grad_b


def _backward_stride_1(
    g_last: Any, x: Any, weight: Any, padding: tuple[int, int], need_bias_grad: bool
) -> tuple[Any, Any, Any | None]:
    """(∂L/∂x, ∂L/∂w, ∂L/∂b) of a stride-1 convolution from one im2col of g, without col2im.

    With stride 1, input pixel (h, w) meets weight (i, j) through output pixel
    (h + p − i, w + p − j), so both gradients are themselves convolutions:

        ∂L/∂x[n, c, h, w] = Σ_{o,i,j} g[n, o, h + p − i, w + p − j] · w[o, c, i, j]
        ∂L/∂w[o, c, i, j] = Σ_{n,h,w} g[n, o, h + p − i, w + p − j] · x[n, c, h, w]

    (g is 0 outside the output). Pad g by kH − 1 − p rows and kW − 1 − p
    columns on each side and im2col it with the image's size as output:

        g_cols[n, h, w, i', j', o] = g[n, o, h + p − i, w + p − j]   with i = kH − 1 − i', j = kW − 1 − j'

    one row per *input* pixel. ∂L/∂x is then the forward convolution of g with
    the kernel flipped (i' ↔ kH − 1 − i) and its channel axes swapped, and ∂L/∂w
    the product of the image's rows with the same columns, per block:

        ∂L/∂x_rows = g_cols · w_flipped            (N·H·W, C)
        ∂L/∂w_flipped = Σ_blocks x_rowsᵀ · g_cols   (C, kH·kW·O)
        ∂L/∂b = Σ_blocks 1ᵀ · g                     (O,)

    (Calling :func:`conv2d_forward` for ∂L/∂x, as DeZero does, would give the
    same numbers but build the columns of g a second time for ∂L/∂w.)
    """
    xp = get_array_module(x)
    batch, channels, height, width = x.shape
    out_channels, _, kernel_h, kernel_w = weight.shape
    patch = kernel_h * kernel_w * out_channels
    pixels = height * width
    dtype = g_last.dtype

    x_rows = xp.ascontiguousarray(channels_last(x)).reshape(batch * pixels, channels)
    # w_flipped[(i', j', o), c] = w[o, c, kH − 1 − i', kW − 1 − j']
    w_flipped = xp.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(2, 3, 0, 1)).reshape(patch, channels)
    grad_x = xp.empty((batch, height, width, channels), dtype=dtype)
    grad_x_rows = grad_x.reshape(batch * pixels, channels)
    g_padding = (kernel_h - 1 - padding[0], kernel_w - 1 - padding[1])

    def backward_block(block: tuple[int, int]) -> Any:
        start, stop = block
        cols = scratch(xp, "cols", (stop - start, height, width, kernel_h, kernel_w, out_channels), dtype)
        im2col(pad(g_last[start:stop], g_padding), cols, (kernel_h, kernel_w), (1, 1))
        g_cols = cols.reshape(-1, patch)
        rows = slice(start * pixels, stop * pixels)
        xp.matmul(g_cols, w_flipped, out=grad_x_rows[rows])
        g_block = g_last[start:stop].reshape(-1, out_channels)
        return x_rows[rows].T @ g_cols, (_bias_grad(g_block) if need_bias_grad else None)

    device = device_of(x)
    parts = map_blocks(backward_block, image_blocks(batch, pixels * patch * dtype.itemsize, device), device)
    grad_w_flipped = _sum([grad_w for grad_w, _ in parts])
    # back from [c, i', j', o] to PyTorch's [o, c, i, j]
    grad_w = grad_w_flipped.reshape(channels, kernel_h, kernel_w, out_channels)[:, ::-1, ::-1, :]
    grad_b = _sum([grad_b for _, grad_b in parts]) if need_bias_grad else None
    return channels_first(grad_x), xp.ascontiguousarray(grad_w.transpose(3, 0, 1, 2)), grad_b


# --------------------------------------------------------------------- pooling
def _along(axis: int, part: slice) -> tuple[slice, ...]:
    """An index that takes ``part`` along ``axis`` of a 4-D array and everything along the others."""
    index = [slice(None)] * 4
    index[axis] = part
    return tuple(index)


def max_pool_along(x: Any, axis: int, kernel: int, stride: int, out: Any, winner: Any) -> None:
    """One-dimensional max pooling along ``axis``, written into ``out``, and the winning offset of each window.

        out[…, t, …] = max_{i < kernel} x[…, t·stride + i, …]
        winner[…, t, …] = the smallest i that attains the maximum

    A running maximum over the ``kernel`` strided slices x[…, i::stride, …]. The
    strict ``>`` keeps the earlier offset on ties, like PyTorch.
    """
    xp = get_array_module(x)
    count = out.shape[axis]
    out[...] = x[_along(axis, _window(0, stride, count))]
    winner.fill(0)
    for i in range(1, kernel):
        candidate = x[_along(axis, _window(i, stride, count))]
        # strict: on a tie the earlier offset stays the winner; a NaN wins (it is the maximum, as in PyTorch)
        better = (candidate > out) | (candidate != candidate)
        if i == 1:
            winner[...] = better  # winner was 0 everywhere
        else:
            winner += better * (i - winner)  # winner = i where better (cheaper than where() on random masks)
        xp.maximum(out, candidate, out=out)


def max_unpool_along(grad_out: Any, winner: Any, axis: int, kernel: int, stride: int, grad_x: Any) -> None:
    """The backward of :func:`max_pool_along`: each window's gradient goes to its winner, into ``grad_x``.

        ∂L/∂x[…, t·stride + i, …] = Σ_t g[…, t, …] · [winner[…, t, …] = i]

    Windows that overlap (stride < kernel) add their contributions.
    """
    count = grad_out.shape[axis]
    if stride != kernel or grad_x.shape[axis] != stride * count:  # overlaps, gaps, or an uncovered end
        grad_x.fill(0)
    for i in range(kernel):
        part = _along(axis, _window(i, stride, count))
        # g where offset i won, +0 elsewhere: selected, not multiplied (an infinite g times 0 is NaN)
        if stride >= kernel:  # disjoint windows: every input element gets at most one gradient
            zero_where(winner != i, grad_out, out=grad_x[part])
        else:
            grad_x[part] += zero_where(winner != i, grad_out)


def _pool_blocks(x: Any) -> list[tuple[int, int]]:
    """Blocks of images for pooling x (N, C, H, W): on the CPU about BLOCK_BYTES / 4 of x each, so that
    the width pass's output is still in the core's cache when the height pass reads it (measured: 20%
    faster than one block per thread); on a GPU the batch."""
    return image_blocks(x.shape[0], 4 * math.prod(x.shape[1:]) * x.itemsize, device_of(x))


def max_pool2d_forward(x: Any, kernel: tuple[int, int], stride: tuple[int, int]) -> tuple[Any, Any]:
    """out[n, c, y, x] = max_{i < kH, j < kW} x[n, c, y·s_h + i, x·s_w + j].

    The maximum over a rectangle is the maximum over its rows of the maximum
    along each row, so 2-D max pooling is two 1-D poolings: along the width
    (every row of every window), then along the height. On ties the first
    maximum in row-major order wins, as in PyTorch: the width pass keeps the
    leftmost, the height pass the topmost row. Returns ``(out, winners)``;
    ``winners`` (the winning offsets of both passes) is what the backward needs.
    Blocks of images run on every core (:func:`minisgd.backend.map_blocks`).
    """
    xp = get_array_module(x)
    x_last = channels_last(x)
    batch, height, width, channels = x_last.shape
    out_h, out_w = output_size(height, kernel[0], stride[0], 0), output_size(width, kernel[1], stride[1], 0)
    along_width = xp.empty((batch, height, out_w, channels), dtype=x.dtype)
    out = xp.empty((batch, out_h, out_w, channels), dtype=x.dtype)
    # The winning offset i < kernel: one byte when it fits (kernels up to 256), else int64.
    winner_w = xp.empty(along_width.shape, dtype=xp.uint8 if kernel[1] <= 256 else xp.int64)
    winner_h = xp.empty(out.shape, dtype=xp.uint8 if kernel[0] <= 256 else xp.int64)

    def pool_block(block: tuple[int, int]) -> None:
        part = slice(*block)
        max_pool_along(x_last[part], 2, kernel[1], stride[1], along_width[part], winner_w[part])
        max_pool_along(along_width[part], 1, kernel[0], stride[0], out[part], winner_h[part])

    map_blocks(pool_block, _pool_blocks(x), device_of(x))
    return channels_first(out), (winner_w, winner_h)


def max_pool2d_backward(
    grad_out: Any, winners: tuple[Any, Any], input_shape: tuple[int, ...], kernel: tuple[int, int],
    stride: tuple[int, int],
) -> Any:
    """∂L/∂x[n, c, y·s_h + i, x·s_w + j] += g[n, c, y, x] where (i, j) won the window (y, x).

    The chain rule through the two passes of :func:`max_pool2d_forward`, in reverse order.
    """
    xp = get_array_module(grad_out)
    batch, channels, height, width = input_shape
    winner_w, winner_h = winners
    g_last = channels_last(grad_out)
    grad_rows = xp.empty(winner_w.shape, dtype=grad_out.dtype)  # ∂L/∂(the width pass's output)
    grad_x = xp.empty((batch, height, width, channels), dtype=grad_out.dtype)

    def unpool_block(block: tuple[int, int]) -> None:
        part = slice(*block)
        max_unpool_along(g_last[part], winner_h[part], 1, kernel[0], stride[0], grad_rows[part])
        max_unpool_along(grad_rows[part], winner_w[part], 2, kernel[1], stride[1], grad_x[part])

    map_blocks(unpool_block, _pool_blocks(grad_x), device_of(grad_out))
    return channels_first(grad_x)


def avg_pool2d_forward(x: Any, kernel: tuple[int, int], stride: tuple[int, int]) -> Any:
    """out[n, c, y, x] = (1 / (kH·kW)) Σ_{i < kH, j < kW} x[n, c, y·s_h + i, x·s_w + j].

    A sum over a rectangle is a sum along the width, then along the height.
    """
    out = channels_last(x)
    for axis, k, s in ((2, kernel[1], stride[1]), (1, kernel[0], stride[0])):
        count = output_size(out.shape[axis], k, s, 0)
        total = out[_along(axis, _window(0, s, count))].copy()
        for i in range(1, k):
            total += out[_along(axis, _window(i, s, count))]
        out = total
    out *= 1.0 / (kernel[0] * kernel[1])
    return channels_first(out)


def avg_pool2d_backward(
    grad_out: Any, input_shape: tuple[int, ...], kernel: tuple[int, int], stride: tuple[int, int]
) -> Any:
    """∂L/∂x[n, c, y·s_h + i, x·s_w + j] += g[n, c, y, x] / (kH·kW) for every offset (i, j)."""
    xp = get_array_module(grad_out)
    batch, channels, height, width = input_shape
    _, _, out_h, out_w = grad_out.shape
    share = channels_last(grad_out) * (1.0 / (kernel[0] * kernel[1]))
    grad_x = xp.zeros((batch, height, width, channels), dtype=grad_out.dtype)
    for i in range(kernel[0]):
        rows = _window(i, stride[0], out_h)
        for j in range(kernel[1]):
            grad_x[:, rows, _window(j, stride[1], out_w), :] += share
    return channels_first(grad_x)
