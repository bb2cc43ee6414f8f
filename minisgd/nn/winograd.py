"""Winograd's F(2×2, 3×3): a 3×3 stride-1 convolution with 2.25× fewer multiplications, on plain arrays.

Read :mod:`minisgd.nn.conv_reference` first (the definition) and
:mod:`minisgd.nn.conv` (the im2col route that training runs by default). This
module computes the same convolution by another algorithm (Lavin & Gray 2016,
"Fast Algorithms for Convolutional Neural Networks"); the tests check it
against the reference, forward and every gradient.

**Not used in training.** ``F.conv2d`` does not call this module: measured on
small_vgg's convolutions (issue 22, ``benchmarks/README.md``), it is no faster
than im2col in NumPy, and its backward is slower, with either BLAS kernel. The
matrix products are 2.25× smaller, as promised, but the transforms are
NumPy additions over strided slices, each a pass through memory: Bᵀ d B alone
costs as much as im2col's copies, and the backward's B (∂L/∂V) Bᵀ more.
A compiled kernel would fuse the transforms with the products (as oneDNN and
cuDNN do); one NumPy operation at a time cannot. It stays as a second,
tested algorithm to read and to compare with. F(4×4, 3×3), with 4× fewer
multiplications, was tried too (``benchmarks/winograd_f4.py``, forward only).
On one core it beats im2col, but its ~80 small NumPy calls per block hand the
GIL back and forth on two cores, and it ends up slower there as well.

**The identity.** Cut the (padded) image into 4×4 tiles d that overlap by two
pixels (tile (t, u) starts at pixel (2t, 2u)); each gives the 2×2 block of
output pixels Y at (2t, 2u). For one input and one output channel and the
3×3 kernel g,

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A                      (⊙: elementwise, 4×4)

with

         ⎡1  0 −1  0⎤          ⎡ 1    0    0 ⎤
    Bᵀ = ⎢0  1  1  0⎥      G = ⎢1/2  1/2  1/2⎥      Aᵀ = ⎡1  1  1  0⎤
         ⎢0 −1  1  0⎥          ⎢1/2 −1/2  1/2⎥           ⎣0  1 −1 −1⎦
         ⎣0  1  0 −1⎦          ⎣ 0    0    1 ⎦

Direct convolution needs 2·2·3·3 = 36 multiplications per output block, this
needs 16. Over C input and O output channels, the products for one of the
16 positions (ξ, ν) of the 4×4 tile are a matrix product over the channels:

    U[ξν] = (G g Gᵀ)[ξν]       (C, O)     the kernel, transformed once per call
    V[ξν] = (Bᵀ d B)[ξν]       (T, C)     every tile of every image, T tiles
    M[ξν] = V[ξν] · U[ξν]      (T, O)     16 matrix products: 4·C·O multiply-adds per output pixel
    Y     = Aᵀ M A, per tile, plus the bias                    (9·C·O for im2col)

**The backward** is the chain rule through those three steps, in reverse,
with the transposed transforms (g = ∂L/∂Y, per 2×2 output block):

    ∂L/∂M  = A g Aᵀ                              (4×4 per tile)
    ∂L/∂U[ξν] = V[ξν]ᵀ · ∂L/∂M[ξν]              ∂L/∂w = Gᵀ (∂L/∂U) G, per (c, o)
    ∂L/∂V[ξν] = ∂L/∂M[ξν] · U[ξν]ᵀ              ∂L/∂d = B (∂L/∂V) Bᵀ, added into the overlapping tiles
    ∂L/∂b  = Σ g

The ∂L/∂x this gives is (up to rounding) the Winograd convolution of g,
padded by 2 − p, with the kernel flipped and its channel axes swapped, the
identity :func:`minisgd.nn.conv._backward_stride_1` uses with im2col; going
through ∂L/∂M shares the transform of g between the two gradients.

Each 4×4 transform is applied along one axis, then the other (Bᵀ d B =
Bᵀ (Bᵀ dᵀ)ᵀ): an axis pass is four additions of strided slices of the image,
so no tile is ever copied out one by one. As in :mod:`minisgd.nn.conv`, the
arrays are channels-last, the batch runs in blocks of images on every core
(:func:`minisgd.backend.map_blocks`), and the work arrays are reused scratch
buffers. An output of odd size gets a last row or column of tiles that
reaches one pixel past the padded image: that pixel is a zero.

Numerics: in float64 the results match the reference to ~1e-15 relative; in
float32 the transforms add a few roundings per value (the tests state the
bound they check).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minisgd.backend import device_of, get_array_module, map_blocks
from minisgd.nn import conv
from minisgd.nn.conv import _bias_grad, channels_first, channels_last, image_blocks, output_size, scratch

# Bytes of transformed tiles (V or M, the larger) per block of images on the CPU: the transforms are
# additions that stream through memory, fastest when a block's arrays stay in the core's L2 cache.
BLOCK_BYTES = 1 * 2**20

B_T = ((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1))
G = ((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.0, 0.0, 1.0))
A_T = ((1, 1, 1, 0), (0, 1, -1, -1))


def applies(weight_shape: tuple[int, ...], stride: tuple[int, int], padding: tuple[int, int]) -> bool:
    """True for what this module computes: a 3×3 kernel, stride 1, padding 0 or 1 on both axes."""
    return tuple(weight_shape[2:]) == (3, 3) and stride == (1, 1) and padding[0] == padding[1] in (0, 1)


def _blocks(batch: int, tiles: tuple[int, int], channels: int, dtype: Any, device: str) -> list[tuple[int, int]]:
    """Blocks of images of about BLOCK_BYTES of transformed tiles each (:func:`minisgd.nn.conv.image_blocks`)."""
    per_image = 16 * tiles[0] * tiles[1] * channels * dtype.itemsize
    return image_blocks(batch, per_image * (conv.BLOCK_BYTES // BLOCK_BYTES), device)


def _tiles(out_size: int) -> int:
    """Tiles along one axis: one per two output pixels, the last one half used when the size is odd."""
    return -(-out_size // 2)


# ------------------------------------------------------------- the transforms
def kernel_transform(weight: Any) -> Any:
    """U[ξ, ν, c, o] = (G w[o, c] Gᵀ)[ξ, ν] for w (O, C, 3, 3): (4, 4, C, O)."""
    xp = get_array_module(weight)
    g_matrix = xp.asarray(G, dtype=weight.dtype)
    u = g_matrix @ weight @ g_matrix.T  # (O, C, 4, 4)
    return xp.ascontiguousarray(u.transpose(2, 3, 1, 0))


def kernel_transform_adjoint(grad_u: Any) -> Any:
    """∂L/∂w[o, c] = Gᵀ ∂L/∂U[:, :, c, o] G for ∂L/∂U (4, 4, C, O): (O, C, 3, 3)."""
    xp = get_array_module(grad_u)
    g_matrix = xp.asarray(G, dtype=grad_u.dtype)
    grad_w = g_matrix.T @ grad_u.transpose(3, 2, 0, 1) @ g_matrix  # (O, C, 3, 3)
    return xp.ascontiguousarray(grad_w)


def _b_t(d0: Any, d1: Any, d2: Any, d3: Any, out: Any) -> None:
    """out[k] = Σ_l Bᵀ[k, l] · d_l, the four rows of Bᵀ d along one axis of the tiles:

        out[0] = d₀ − d₂    out[1] = d₁ + d₂    out[2] = d₂ − d₁    out[3] = d₁ − d₃
    """
    xp = get_array_module(d0)
    xp.subtract(d0, d2, out=out[0])
    xp.add(d1, d2, out=out[1])
    xp.subtract(d2, d1, out=out[2])
    xp.subtract(d1, d3, out=out[3])


def _b_add(v: Any, d0: Any, d1: Any, d2: Any, d3: Any) -> None:
    """The adjoint of :func:`_b_t`: ∂L/∂d_l += Σ_k Bᵀ[k, l] · ∂L/∂out[k] for v = ∂L/∂out (4, …):

        ∂d₀ += v₀    ∂d₁ += v₁ − v₂ + v₃    ∂d₂ += v₁ + v₂ − v₀    ∂d₃ −= v₃

    Added, not assigned: neighbouring tiles overlap by two pixels, so d₂ of tile t and d₀ of
    tile t + 1 (and d₃ and d₁) are the same pixels."""
    v0, v1, v2, v3 = v
    d0 += v0
    d1 += v1
    d1 -= v2
    d1 += v3
    d2 += v1
    d2 += v2
    d2 -= v0
    d3 -= v3


def _rows(array: Any, axis: int, offset: int, count: int) -> Any:
    """array[…, offset + 2t, …] along ``axis`` for t < count: row ``offset`` of every tile."""
    index = [slice(None)] * array.ndim
    index[axis] = slice(offset, offset + 2 * count - 1, 2)
    return array[tuple(index)]


def _column_halves(padding: int, width: int) -> list[tuple[int, slice, slice]]:
    """(parity s, the columns of x, their columns q in half s) for each half: x's column w is column
    w + p of x_pad, so column q = (w + p) // 2 of the half of parity (w + p) % 2."""
    halves = []
    for parity in range(2):
        first = padding + (parity - padding) % 2  # the first column of x_pad with this parity inside x
        count = len(range(first - padding, width, 2))
        halves.append((parity, slice(first - padding, None, 2), slice(first // 2, first // 2 + count)))
    return halves


def split_columns(x_last: Any, padding: int, padded: Any) -> None:
    """Pad ``x_last`` (n, H, W, C) and store it with its even and odd columns apart, in ``padded``
    (n, Hp, 2, Wp/2, C), overwritten:

        padded[n, h, s, q, c] = x_pad[n, h, 2q + s, c]

    A tile's four columns 2u … 2u + 3 are then column u of the even half, of the odd half, and
    column u + 1 of each: slices whose rows are runs of (Wp/2 − 1)·C contiguous numbers, so the
    transforms along the width run long loops (on x_pad itself they would be loops of C)."""
    height, width = x_last.shape[1:3]
    padded.fill(0)
    for parity, x_columns, half_columns in _column_halves(padding, width):
        padded[:, padding : padding + height, parity, half_columns] = x_last[:, :, x_columns]


def merge_columns(padded: Any, padding: int, x_last: Any) -> None:
    """The inverse of :func:`split_columns` on the interior: x_last (n, H, W, C) from ``padded``."""
    height, width = x_last.shape[1:3]
    for parity, x_columns, half_columns in _column_halves(padding, width):
        x_last[:, :, x_columns] = padded[:, padding : padding + height, parity, half_columns]


def input_transform(padded: Any, tiles: tuple[int, int], columns: Any, v: Any) -> None:
    """v[ξ, ν, n, t, u, c] = (Bᵀ d B)[ξ, ν] for the tile d at (2t, 2u), from ``padded`` (n, Hp, 2, Wp/2, C)
    (:func:`split_columns`). Along the width first, into the work array ``columns`` (4, n, Hp, tiles_w, C),
    then along the height."""
    tiles_h, tiles_w = tiles
    even, odd = padded[:, :, 0], padded[:, :, 1]
    _b_t(even[:, :, :tiles_w], odd[:, :, :tiles_w], even[:, :, 1 : tiles_w + 1], odd[:, :, 1 : tiles_w + 1], columns)
    _b_t(*(_rows(columns, 2, k, tiles_h) for k in range(4)), v)  # v[ξ] (4 ν, n, t, u, C)


def input_transform_adjoint(grad_v: Any, tiles: tuple[int, int], columns: Any, grad_padded: Any) -> None:
    """∂L/∂padded from ∂L/∂v (4, 4, n, t, u, C): B (∂L/∂v) Bᵀ per tile, summed where the tiles overlap."""
    tiles_h, tiles_w = tiles
    columns.fill(0)
    _b_add(grad_v, *(_rows(columns, 2, k, tiles_h) for k in range(4)))
    grad_padded.fill(0)
    even, odd = grad_padded[:, :, 0], grad_padded[:, :, 1]
    _b_add(columns, even[:, :, :tiles_w], odd[:, :, :tiles_w], even[:, :, 1 : tiles_w + 1], odd[:, :, 1 : tiles_w + 1])


def output_matrix(xp: Any, dtype: Any) -> Any:
    """Aᵀ ⊗ Aᵀ (4, 16): Y[(i, j)] = Σ_{(ξ, ν)} Aᵀ[i, ξ] · Aᵀ[j, ν] · M[(ξ, ν)], the output transform Aᵀ M A
    of every tile at once as one matrix product (16 numbers in, 4 out)."""
    return xp.asarray(np.kron(np.array(A_T), np.array(A_T)), dtype=dtype)


# --------------------------------------------------------------------- forward
def conv2d_forward(x: Any, weight: Any, bias: Any | None, padding: tuple[int, int]) -> Any:
    """out = conv(x, w) + b for a 3×3 kernel at stride 1 (see :func:`applies`): x (N, C, H, W), w (O, C, 3, 3).

    Per block of images: pad to whole tiles, V = Bᵀ d B, M[ξν] = V[ξν] · U[ξν]
    (16 matrix products), Y = Aᵀ M A (one product with Aᵀ ⊗ Aᵀ), and Y + b
    written into the (N, Ho, Wo, O) output. Returns an (N, O, Ho, Wo) array
    whose memory is channels-last.
    """
    xp = get_array_module(x)
    batch, channels, height, width = x.shape
    out_channels = weight.shape[0]
    p = padding[0]
    out_h, out_w = output_size(height, 3, 1, p), output_size(width, 3, 1, p)
    tiles = (_tiles(out_h), _tiles(out_w))
    padded_h, half_w = 2 * tiles[0] + 2, tiles[1] + 1
    dtype = xp.result_type(x.dtype, weight.dtype)
    u = kernel_transform(weight.astype(dtype, copy=False)).reshape(16, channels, out_channels)
    a_t2 = output_matrix(xp, dtype)
    out = xp.empty((batch, out_h, out_w, out_channels), dtype=dtype)
    x_last = channels_last(x)

    def forward_block(block: tuple[int, int]) -> None:
        start, stop = block
        n = stop - start
        padded = scratch(xp, "padded", (n, padded_h, 2, half_w, channels), dtype)
        split_columns(x_last[start:stop], p, padded)
        columns = scratch(xp, "winograd_columns", (4, n, padded_h, tiles[1], channels), dtype)
        v = scratch(xp, "winograd_v", (4, 4, n, tiles[0], tiles[1], channels), dtype)
        input_transform(padded, tiles, columns, v)
        m = scratch(xp, "winograd_m", (16, n * tiles[0] * tiles[1], out_channels), dtype)
        xp.matmul(v.reshape(16, -1, channels), u, out=m)
        y = scratch(xp, "winograd_y", (2, 2, n, tiles[0], tiles[1], out_channels), dtype)
        xp.matmul(a_t2, m.reshape(16, -1), out=y.reshape(4, -1))
        block_out = out[start:stop]
        for i in range(2):
            for j in range(2):
                target = block_out[:, i::2, j::2]  # output pixels (2t + i, 2u + j)
                tile_pixels = y[i, j][:, : target.shape[1], : target.shape[2]]
                if bias is None:
                    target[...] = tile_pixels
                else:
                    xp.add(tile_pixels, bias, out=target)

    device = device_of(x)
    map_blocks(forward_block, _blocks(batch, tiles, max(channels, out_channels), dtype, device), device)
    return channels_first(out)


# -------------------------------------------------------------------- backward
def conv2d_backward(
    grad_out: Any, x: Any, weight: Any, padding: tuple[int, int], need_input_grad: bool = True,
    need_bias_grad: bool = True,
) -> tuple[Any | None, Any, Any | None]:
    """(∂L/∂x, ∂L/∂w, ∂L/∂b) of :func:`conv2d_forward` given g = ∂L/∂out (N, O, Ho, Wo).

    Per block: ∂L/∂M = A g Aᵀ, V rebuilt from x, ∂L/∂U += V[ξν]ᵀ · ∂L/∂M[ξν];
    ∂L/∂V = ∂L/∂M[ξν] · U[ξν]ᵀ and ∂L/∂x = B ∂L/∂V Bᵀ added over the
    overlapping tiles, cropped to the image; finally ∂L/∂w = Gᵀ ∂L/∂U G.
    ∂L/∂x is None unless ``need_input_grad``; ∂L/∂b is None unless ``need_bias_grad``.
    """
    xp = get_array_module(x)
    batch, channels, height, width = x.shape
    out_channels = weight.shape[0]
    p = padding[0]
    _, _, out_h, out_w = grad_out.shape
    tiles = (_tiles(out_h), _tiles(out_w))
    padded_h, half_w = 2 * tiles[0] + 2, tiles[1] + 1
    dtype = grad_out.dtype
    a_t2 = output_matrix(xp, dtype)
    u = kernel_transform(weight.astype(dtype, copy=False)).reshape(16, channels, out_channels)
    u_t = xp.ascontiguousarray(u.transpose(0, 2, 1))  # U[ξν]ᵀ, (16, O, C)
    g_last = xp.ascontiguousarray(channels_last(grad_out))  # (N, Ho, Wo, O), a copy only if not already
    x_last = channels_last(x)
    grad_x = xp.empty((batch, height, width, channels), dtype=dtype) if need_input_grad else None

    def backward_block(block: tuple[int, int]) -> tuple[Any, Any | None]:
        start, stop = block
        n = stop - start
        g_block = g_last[start:stop]
        # g in whole 2×2 blocks, g_tiles[(i, j), n, t, u, o] = g[n, 2t + i, 2u + j, o] (zeros past an odd
        # edge), then ∂L/∂M = (Aᵀ ⊗ Aᵀ)ᵀ · g_tiles: every tile's A g Aᵀ in one matrix product
        g_tiles = scratch(xp, "winograd_y", (2, 2, n, tiles[0], tiles[1], out_channels), dtype)
        if (out_h % 2, out_w % 2) != (0, 0):
            g_tiles.fill(0)
        for i in range(2):
            for j in range(2):
                part = g_block[:, i::2, j::2]
                g_tiles[i, j, :, : part.shape[1], : part.shape[2]] = part
        grad_m = scratch(xp, "winograd_m", (16, n * tiles[0] * tiles[1], out_channels), dtype)
        xp.matmul(a_t2.T, g_tiles.reshape(4, -1), out=grad_m.reshape(16, -1))

        padded = scratch(xp, "padded", (n, padded_h, 2, half_w, channels), dtype)
        split_columns(x_last[start:stop], p, padded)
        columns = scratch(xp, "winograd_columns", (4, n, padded_h, tiles[1], channels), dtype)
        v = scratch(xp, "winograd_v", (4, 4, n, tiles[0], tiles[1], channels), dtype)
        input_transform(padded, tiles, columns, v)
        v_rows = v.reshape(16, -1, channels)
        grad_u = xp.matmul(v_rows.transpose(0, 2, 1), grad_m)  # (16, C, O)
        grad_b = _bias_grad(g_block.reshape(-1, out_channels)) if need_bias_grad else None
        if need_input_grad:
            xp.matmul(grad_m, u_t, out=v_rows)  # ∂L/∂V in V's buffer
            input_transform_adjoint(v, tiles, columns, padded)  # ∂L/∂padded in padded's buffer
            merge_columns(padded, p, grad_x[start:stop])
        return grad_u, grad_b

    device = device_of(x)
    parts = map_blocks(backward_block, _blocks(batch, tiles, max(channels, out_channels), dtype, device), device)
    grad_u = xp.zeros((16, channels, out_channels), dtype=dtype)  # an empty batch has no blocks: zero gradients
    for part, _ in parts:
        grad_u += part
    grad_w = kernel_transform_adjoint(grad_u.reshape(4, 4, channels, out_channels))
    grad_b = None
    if need_bias_grad:
        grad_b = xp.zeros(out_channels, dtype=dtype)
        for _, part in parts:
            grad_b += part
    return (channels_first(grad_x) if need_input_grad else None), grad_w, grad_b
