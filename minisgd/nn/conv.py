"""Convolution and pooling on plain arrays: im2col, col2im and the pooling kernels.

These functions take and return arrays (NumPy or CuPy), not tensors;
:mod:`minisgd.nn.functional` wraps them as differentiable operations.

Shapes follow PyTorch: images are (N, C, H, W), convolution weights are
(O, C, kH, kW). Inside, the kernels work *channels-last*: they look at an image
through the view ``x.transpose(0, 2, 3, 1)`` of shape (N, H, W, C) and return
results whose memory is laid out as (N, H, W, C) behind an (N, C, H, W) view.
Channels-last makes the two things convolution spends its time on fast:

- one kernel row of a patch is a run of kW·C contiguous numbers, and
- the output of the matrix product, (N·Ho·Wo, O), *is* the next image in
  channels-last layout, with no transpose.

NumPy's elementwise functions keep the memory order of their input, so the
ReLU after a convolution stays channels-last too, and the next convolution
reads it without a copy.

Convolution as a matrix product (im2col)
----------------------------------------
With padding p and stride s, output pixel (n, y, x) of channel o is

    out[n, o, y, x] = b[o] + Σ_{c, i, j} w[o, c, i, j] · x_pad[n, c, y·s + i, x·s + j]

Copy the patch under each output pixel into one row of a matrix
``cols`` of shape (N·Ho·Wo, kH·kW·C) ("image to columns"); with the weights
rearranged into ``w_rows`` of shape (O, kH·kW·C) the whole convolution is one
matrix product:

    out = cols · w_rowsᵀ + b                          (N·Ho·Wo, O)

and back-propagation is two more:

    ∂L/∂w_rows = gᵀ · cols                            (O, kH·kW·C)
    ∂L/∂b      = Σ_rows g                              (O,)
    ∂L/∂cols   = g · w_rows                           (N·Ho·Wo, kH·kW·C)

where g = ∂L/∂out. ``col2im`` sends each entry of ∂L/∂cols back to the input
pixel it was copied from, adding where patches overlap: that is ∂L/∂x.

``im2col`` copies one kernel row i at a time: in channels-last memory the
kW·C numbers of one row of a patch lie side by side, so one strided view of
the image holds row i of every patch, and the copy is kH slice assignments,
each moving every image of the block at once. ``col2im`` does the reverse
with kH·kW slice *additions*; within one offset (i, j) no input pixel appears
twice, so plain ``+=`` on the slice is exact (no scatter-add needed).

Stride 1: the backward pass as two more convolutions
----------------------------------------------------
With stride 1 the col2im can be avoided. Input pixel (h, w) meets weight
(i, j) through output pixel (h + p − i, w + p − j), so ∂L/∂x is g convolved
with the kernel flipped (and its channel axes swapped), and ∂L/∂w correlates
x with g. One im2col of g (padded by k − 1 − p), with a row per *input*
pixel, then feeds both products (see :func:`_backward_stride_1`). The two
routes give the same numbers; the tests check one against the other.

Blocks of images
----------------
The column matrix is kH·kW times larger than the image (151 MB for the second
convolution of ``small_vgg`` at batch 128). Rather than building it for the
whole batch, the kernels walk the batch in blocks of images sized so that one
block's columns (a few MB) stay in the processor's cache: the block's im2col,
its matrix product and its col2im then run from cache instead of main memory,
and memory use stays bounded. Each block is still one large matrix product
over all its images' pixels. The backward pass rebuilds a block's columns
instead of keeping all of them from the forward pass, and the column and
padding buffers are reused from call to call (:func:`scratch`).

Pooling
-------
Pooling also works one kernel offset at a time: the i-th element of every
window along an axis is the strided slice x[…, i::s, …] (cut to the output
length). Max pooling over kH×kW windows is done as two 1-D poolings, first
along the width, then along the height (the maximum of a rectangle is the
maximum of its row maxima): a running maximum over kW slices, then over kH,
kW + kH slices instead of kW·kH. Each pass records which offset won, and the
backward sends g back to that offset by slice assignment, pass by pass in
reverse. Average pooling is two 1-D sums the same way. There is no loop over
windows or pixels.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from minisgd.backend import device_of, get_array_module

# Bytes of column matrix per block of images on the CPU: about a quarter of
# a typical L3 cache, so the block's columns, its output and its gradient fit
# in cache together. On a GPU the whole batch is one block.
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


def images_per_block(batch: int, bytes_per_image: int, device: str) -> int:
    """How many images one block holds: all of them on a GPU, ~BLOCK_BYTES of columns on the CPU."""
    if device != "cpu":
        return batch
    return max(1, min(batch, BLOCK_BYTES // max(bytes_per_image, 1)))


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


_scratch_buffers: dict[tuple[str, Any], Any] = {}


def scratch(xp: Any, role: str, shape: tuple[int, ...], dtype: Any) -> Any:
    """A work array of ``shape`` whose old contents are garbage, reused from call to call on the CPU.

    The columns and padded blocks are needed only inside one call. Allocating
    them afresh at every call makes the operating system hand over new pages
    each time (a page fault per 4 KB, a measurable cost at these sizes), so on
    the CPU one flat buffer per ``role`` serves every layer, grown when a
    larger one is needed. (CuPy keeps its own memory pool; there a plain
    ``empty`` is already cheap.) Not safe for two threads at once.
    """
    if xp is not np:
        return xp.empty(shape, dtype=dtype)
    size = math.prod(shape)
    key = (role, np.dtype(dtype))
    buffer = _scratch_buffers.get(key)
    if buffer is None or buffer.size < size:
        buffer = _scratch_buffers[key] = xp.empty(size, dtype=dtype)
    return buffer[:size].reshape(shape)


def _blocks(batch: int, per_block: int):
    for start in range(0, batch, per_block):
        yield start, min(start + per_block, batch)


class _Padder:
    """A reusable zero-padded channels-last buffer for one block of images."""

    def __init__(self, xp: Any, images: int, height: int, width: int, channels: int,
                 padding: tuple[int, int], dtype: Any) -> None:
        self.pad_h, self.pad_w = padding
        self.height, self.width = height, width
        shape = (images, height + 2 * self.pad_h, width + 2 * self.pad_w, channels)
        self.buffer = scratch(xp, "padded", shape, dtype)
        self.buffer.fill(0)  # the border is zeroed once; each block overwrites only the interior

    def pad(self, block: Any) -> Any:
        """``block`` (n, H, W, C) surrounded by zeros: the first n images of the buffer."""
        padded = self.buffer[: block.shape[0]]
        padded[:, self.pad_h : self.pad_h + self.height, self.pad_w : self.pad_w + self.width] = block
        return padded

    def crop(self, padded: Any) -> Any:
        """The unpadded (n, H, W, C) interior of a padded array."""
        return padded[:, self.pad_h : self.pad_h + self.height, self.pad_w : self.pad_w + self.width]


def conv2d_forward(
    x: Any, weight: Any, bias: Any | None, stride: tuple[int, int], padding: tuple[int, int]
) -> Any:
    """out = conv(x, w) + b for x (N, C, H, W), w (O, C, kH, kW), b (O,) or None.

        out[n, o, y, x] = b[o] + Σ_{c,i,j} w[o, c, i, j] · x_pad[n, c, y·s + i, x·s + j]

    computed per block of images as ``cols · w_rowsᵀ``. Returns an (N, O, Ho, Wo)
    array whose memory is channels-last.
    """
    xp = get_array_module(x)
    batch, channels, height, width = x.shape
    out_channels, _, kernel_h, kernel_w = weight.shape
    out_h = output_size(height, kernel_h, stride[0], padding[0])
    out_w = output_size(width, kernel_w, stride[1], padding[1])
    patch = kernel_h * kernel_w * channels
    pixels = out_h * out_w
    dtype = xp.result_type(x.dtype, weight.dtype)

    w_rows = weight_rows(weight)
    out = xp.empty((batch, out_h, out_w, out_channels), dtype=dtype)
    out_rows = out.reshape(batch * pixels, out_channels)

    per_block = images_per_block(batch, pixels * patch * dtype.itemsize, device_of(x))
    padder = _Padder(xp, per_block, height, width, channels, padding, dtype)
    cols = scratch(xp, "cols", (per_block, out_h, out_w, kernel_h, kernel_w, channels), dtype)
    x_last = channels_last(x)
    for start, stop in _blocks(batch, per_block):
        n = stop - start
        block_cols = cols[:n]
        im2col(padder.pad(x_last[start:stop]), block_cols, (kernel_h, kernel_w), stride)
        block_out = out_rows[start * pixels : stop * pixels]
        xp.matmul(block_cols.reshape(n * pixels, patch), w_rows.T, out=block_out)
        if bias is not None:
            block_out += bias
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

        ∂L/∂b[o] = Σ_{n,y,x} g[n, o, y, x]

    and ∂L/∂w, ∂L/∂x by one of two routes that give the same numbers:

    - stride 1 (the usual case) with an input gradient: :func:`_backward_stride_1`,
      which needs no col2im;
    - otherwise :func:`_backward_col2im`, the textbook im2col/col2im route.

    ∂L/∂x is None unless ``need_input_grad``; ∂L/∂b is None unless ``need_bias_grad``.
    """
    xp = get_array_module(x)
    out_channels, _, kernel_h, kernel_w = weight.shape
    # g channels-last, (N, Ho, Wo, O); a copy only when it is not channels-last already.
    g_last = xp.ascontiguousarray(channels_last(grad_out))
    grad_b = None
    if need_bias_grad:  # Σ over the rows of g, as the product 1ᵀ·g (BLAS: several times faster than sum)
        g_rows = g_last.reshape(-1, out_channels)
        grad_b = xp.ones(g_rows.shape[0], dtype=g_rows.dtype) @ g_rows
    if need_input_grad and stride == (1, 1) and padding[0] < kernel_h and padding[1] < kernel_w:
        grad_x, grad_w = _backward_stride_1(g_last, x, weight, padding)
        # That route multiplies every pixel by the zeros that pad g, so an inf or NaN pixel would
        # make all of ∂L/∂w NaN (0·inf); PyTorch's stays finite where the pixel never meets the
        # weight. Checked on ∂L/∂w, which is small; the columns route has no such product.
        if not bool(xp.isfinite(grad_w).all()):
            grad_x, grad_w = _backward_col2im(g_last, x, weight, stride, padding, need_input_grad)
    else:
        grad_x, grad_w = _backward_col2im(g_last, x, weight, stride, padding, need_input_grad)
    return grad_x, grad_w, grad_b


def _backward_col2im(
    g_last: Any, x: Any, weight: Any, stride: tuple[int, int], padding: tuple[int, int],
    need_input_grad: bool,
) -> tuple[Any | None, Any]:
    """∂L/∂x and ∂L/∂w through the columns, for any stride:

        ∂L/∂w_rows = Σ_blocks gᵀ · cols      ∂L/∂cols = g · w_rows      ∂L/∂x = col2im(∂L/∂cols), cropped

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
    grad_w_rows = xp.zeros((out_channels, patch), dtype=dtype)
    grad_x = xp.empty((batch, height, width, channels), dtype=dtype) if need_input_grad else None
    # w[:, :, i, j] for every offset, each a contiguous (O, C) matrix.
    w_by_offset = xp.ascontiguousarray(weight.transpose(2, 3, 0, 1))

    per_block = images_per_block(batch, pixels * patch * dtype.itemsize, device_of(x))
    padder = _Padder(xp, per_block, height, width, channels, padding, dtype)
    grad_pad = scratch(xp, "grad_padded", padder.buffer.shape, dtype)  # ∂L/∂x_pad of one block
    cols = scratch(xp, "cols", (per_block, out_h, out_w, kernel_h, kernel_w, channels), dtype)
    x_last = channels_last(x)
    for start, stop in _blocks(batch, per_block):
        n = stop - start
        block_cols = cols[:n]
        g_block = g_rows[start * pixels : stop * pixels]
        im2col(padder.pad(x_last[start:stop]), block_cols, (kernel_h, kernel_w), stride)
        grad_w_rows += g_block.T @ block_cols.reshape(n * pixels, patch)
        if need_input_grad:
            grad_cols = block_cols.reshape(kernel_h, kernel_w, n * pixels, channels)  # same buffer
            xp.matmul(g_block, w_by_offset, out=grad_cols)
            col2im(grad_cols.reshape(kernel_h, kernel_w, n, out_h, out_w, channels), grad_pad[:n], stride)
            grad_x[start:stop] = padder.crop(grad_pad[:n])

    grad_w = grad_w_rows.reshape(out_channels, kernel_h, kernel_w, channels).transpose(0, 3, 1, 2)
    return (channels_first(grad_x) if need_input_grad else None), xp.ascontiguousarray(grad_w)


def _backward_stride_1(g_last: Any, x: Any, weight: Any, padding: tuple[int, int]) -> tuple[Any, Any]:
    """∂L/∂x and ∂L/∂w of a stride-1 convolution from one im2col of g, without col2im.

    With stride 1, input pixel (h, w) meets weight (i, j) through output pixel
    (h + p − i, w + p − j), so both gradients are themselves convolutions:

        ∂L/∂x[n, c, h, w] = Σ_{o,i,j} g[n, o, h + p − i, w + p − j] · w[o, c, i, j]
        ∂L/∂w[o, c, i, j] = Σ_{n,h,w} g[n, o, h + p − i, w + p − j] · x[n, c, h, w]

    (g is 0 outside the output). Pad g by kH − 1 − p rows and kW − 1 − p
    columns on each side and im2col it with the image's size as output:

        g_cols[n, h, w, i', j', o] = g[n, o, h + p − i, w + p − j]   with i = kH − 1 − i', j = kW − 1 − j'

    one row per *input* pixel. Then ∂L/∂x is a matrix product with the kernel
    flipped (i' ↔ kH − 1 − i) and its channel axes swapped, and ∂L/∂w the
    product of the image's rows with the same columns:

        ∂L/∂x_rows = g_cols · w_flipped            (N·H·W, C)
        ∂L/∂w_flipped = x_rowsᵀ · g_cols            (C, kH·kW·O)
    """
    xp = get_array_module(x)
    batch, channels, height, width = x.shape
    out_channels, _, kernel_h, kernel_w = weight.shape
    _, out_h, out_w, _ = g_last.shape
    patch = kernel_h * kernel_w * out_channels
    pixels = height * width
    dtype = g_last.dtype

    x_rows = xp.ascontiguousarray(channels_last(x)).reshape(batch * pixels, channels)
    # w_flipped[(i', j', o), c] = w[o, c, kH − 1 − i', kW − 1 − j']
    w_flipped = xp.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(2, 3, 0, 1)).reshape(patch, channels)
    grad_w_flipped = xp.zeros((channels, patch), dtype=dtype)
    grad_x = xp.empty((batch, height, width, channels), dtype=dtype)
    grad_x_rows = grad_x.reshape(batch * pixels, channels)

    per_block = images_per_block(batch, pixels * patch * dtype.itemsize, device_of(x))
    g_padding = (kernel_h - 1 - padding[0], kernel_w - 1 - padding[1])
    padder = _Padder(xp, per_block, out_h, out_w, out_channels, g_padding, dtype)
    cols = scratch(xp, "cols", (per_block, height, width, kernel_h, kernel_w, out_channels), dtype)
    for start, stop in _blocks(batch, per_block):
        n = stop - start
        g_cols = cols[:n].reshape(n * pixels, patch)
        im2col(padder.pad(g_last[start:stop]), cols[:n], (kernel_h, kernel_w), (1, 1))
        rows = slice(start * pixels, stop * pixels)
        grad_w_flipped += x_rows[rows].T @ g_cols
        xp.matmul(g_cols, w_flipped, out=grad_x_rows[rows])

    # back from [c, i', j', o] to PyTorch's [o, c, i, j]
    grad_w = grad_w_flipped.reshape(channels, kernel_h, kernel_w, out_channels)[:, ::-1, ::-1, :]
    return channels_first(grad_x), xp.ascontiguousarray(grad_w.transpose(3, 0, 1, 2))


# --------------------------------------------------------------------- pooling
def _along(axis: int, part: slice) -> tuple[slice, ...]:
    """An index that takes ``part`` along ``axis`` of a 4-D array and everything along the others."""
    index = [slice(None)] * 4
    index[axis] = part
    return tuple(index)


def max_pool_along(x: Any, axis: int, kernel: int, stride: int) -> tuple[Any, Any]:
    """One-dimensional max pooling along ``axis``, and the winning offset of each window.

        out[…, t, …] = max_{i < kernel} x[…, t·stride + i, …]
        winner[…, t, …] = the smallest i that attains the maximum

    A running maximum over the ``kernel`` strided slices x[…, i::stride, …]. The
    strict ``>`` keeps the earlier offset on ties, like PyTorch.
    """
    xp = get_array_module(x)
    count = output_size(x.shape[axis], kernel, stride, 0)
    out = x[_along(axis, _window(0, stride, count))].copy()  # a copy: the running maximum is written in place
    winner = xp.zeros(out.shape, dtype=xp.uint8)
    for i in range(1, kernel):
        candidate = x[_along(axis, _window(i, stride, count))]
        # strict: on a tie the earlier offset stays the winner; a NaN wins (it is the maximum, as in PyTorch)
        better = (candidate > out) | (candidate != candidate)
        winner += better * (i - winner)  # winner = i where better (cheaper than where() on random masks)
        xp.maximum(out, candidate, out=out)
    return out, winner


def max_unpool_along(grad_out: Any, winner: Any, axis: int, size: int, kernel: int, stride: int) -> Any:
    """The backward of :func:`max_pool_along`: each window's gradient goes to its winner.

        ∂L/∂x[…, t·stride + i, …] += g[…, t, …] · [winner[…, t, …] = i]

    ``size`` is the input's length along ``axis``. Windows that overlap
    (stride < kernel) add their contributions.
    """
    xp = get_array_module(grad_out)
    shape = list(grad_out.shape)
    shape[axis] = size
    grad_x = xp.zeros(shape, dtype=grad_out.dtype)
    count = grad_out.shape[axis]
    for i in range(kernel):
        part = _along(axis, _window(i, stride, count))
        if stride >= kernel:  # disjoint windows: every input element gets at most one gradient
            xp.multiply(grad_out, winner == i, out=grad_x[part])
        else:
            grad_x[part] += grad_out * (winner == i)
    return grad_x


def max_pool2d_forward(x: Any, kernel: tuple[int, int], stride: tuple[int, int]) -> tuple[Any, Any]:
    """out[n, c, y, x] = max_{i < kH, j < kW} x[n, c, y·s_h + i, x·s_w + j].

    The maximum over a rectangle is the maximum over its rows of the maximum
    along each row, so 2-D max pooling is two 1-D poolings: along the width
    (every row of every window), then along the height. On ties the first
    maximum in row-major order wins, as in PyTorch: the width pass keeps the
    leftmost, the height pass the topmost row. Returns ``(out, winners)``;
    ``winners`` (the winning offsets of both passes) is what the backward needs.
    """
    x_last = channels_last(x)
    along_width, winner_w = max_pool_along(x_last, 2, kernel[1], stride[1])
    out, winner_h = max_pool_along(along_width, 1, kernel[0], stride[0])
    return channels_first(out), (winner_w, winner_h)


def max_pool2d_backward(
    grad_out: Any, winners: tuple[Any, Any], input_shape: tuple[int, ...], kernel: tuple[int, int],
    stride: tuple[int, int],
) -> Any:
    """∂L/∂x[n, c, y·s_h + i, x·s_w + j] += g[n, c, y, x] where (i, j) won the window (y, x).

    The chain rule through the two passes of :func:`max_pool2d_forward`, in reverse order.
    """
    _, _, height, width = input_shape
    winner_w, winner_h = winners
    grad_rows = max_unpool_along(channels_last(grad_out), winner_h, 1, height, kernel[0], stride[0])
    grad_x = max_unpool_along(grad_rows, winner_w, 2, width, kernel[1], stride[1])
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
