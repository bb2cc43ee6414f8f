"""The array kernels of minisgd/nn/conv.py against direct nested-loop references.

Each reference below is written from the definition, one output element at a
time, independently of im2col: a convolution sums weight × input over the
window under each output pixel; a max pool takes each window's maximum and
sends the gradient to its first maximum in row-major order (PyTorch's rule).
"""

import numpy as np
import pytest

from minisgd.nn import conv

# (N, C, H, W, O, kH, kW, stride, padding): stride 1 and 2, padding 0/1/2,
# non-square kernels, one and several channels, batch 1 and > 1.
CONV_CASES = [
    (1, 1, 5, 5, 1, 3, 3, (1, 1), (0, 0)),
    (2, 3, 6, 7, 4, 3, 2, (2, 1), (1, 2)),
    (3, 2, 8, 8, 3, 3, 3, (2, 2), (1, 1)),
    (2, 2, 5, 4, 2, 1, 1, (1, 1), (0, 0)),
    (1, 3, 7, 7, 2, 5, 5, (2, 2), (2, 2)),
    (2, 1, 4, 6, 3, 2, 3, (1, 2), (0, 1)),
]


def direct_conv2d(x, w, b, stride, padding):
    """out[n, o, y, x] = b[o] + Σ_{c,i,j} w[o, c, i, j] · x_pad[n, c, y·s + i, x·s + j], one element at a time."""
    n_images, channels, height, width = x.shape
    out_channels, _, kernel_h, kernel_w = w.shape
    (sh, sw), (ph, pw) = stride, padding
    x_pad = np.zeros((n_images, channels, height + 2 * ph, width + 2 * pw))
    x_pad[:, :, ph : ph + height, pw : pw + width] = x
    out_h = (height + 2 * ph - kernel_h) // sh + 1
    out_w = (width + 2 * pw - kernel_w) // sw + 1
    out = np.zeros((n_images, out_channels, out_h, out_w))
    for n in range(n_images):
        for o in range(out_channels):
            for y in range(out_h):
                for x_ in range(out_w):
                    total = b[o] if b is not None else 0.0
                    for c in range(channels):
                        for i in range(kernel_h):
                            for j in range(kernel_w):
                                total += w[o, c, i, j] * x_pad[n, c, y * sh + i, x_ * sw + j]
                    out[n, o, y, x_] = total
    return out


def direct_conv2d_grads(x, w, g, stride, padding):
    """∂L/∂x, ∂L/∂w, ∂L/∂b for L = Σ g · conv(x, w), scattering each term of the sum back by hand."""
    n_images, channels, height, width = x.shape
    out_channels, _, kernel_h, kernel_w = w.shape
    (sh, sw), (ph, pw) = stride, padding
    x_pad = np.zeros((n_images, channels, height + 2 * ph, width + 2 * pw))
    x_pad[:, :, ph : ph + height, pw : pw + width] = x
    grad_pad = np.zeros_like(x_pad)
    grad_w = np.zeros_like(w)
    for n in range(n_images):
        for o in range(out_channels):
            for y in range(g.shape[2]):
                for x_ in range(g.shape[3]):
                    for c in range(channels):
                        for i in range(kernel_h):
                            for j in range(kernel_w):
                                grad_w[o, c, i, j] += g[n, o, y, x_] * x_pad[n, c, y * sh + i, x_ * sw + j]
                                grad_pad[n, c, y * sh + i, x_ * sw + j] += g[n, o, y, x_] * w[o, c, i, j]
    return grad_pad[:, :, ph : ph + height, pw : pw + width], grad_w, g.sum(axis=(0, 2, 3))


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_forward_and_backward_match_direct_loops(rng, case):
    n, c, h, w_, o, kh, kw, stride, padding = case
    x = rng.standard_normal((n, c, h, w_))
    w = rng.standard_normal((o, c, kh, kw))
    b = rng.standard_normal(o)
    out = conv.conv2d_forward(x, w, b, stride, padding)
    np.testing.assert_allclose(out, direct_conv2d(x, w, b, stride, padding), rtol=1e-12, atol=1e-12)

    g = rng.standard_normal(out.shape)
    grad_x, grad_w, grad_b = conv.conv2d_backward(g, x, w, stride, padding)
    ref_x, ref_w, ref_b = direct_conv2d_grads(x, w, g, stride, padding)
    np.testing.assert_allclose(grad_x, ref_x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad_w, ref_w, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad_b, ref_b, rtol=1e-12, atol=1e-12)


def test_conv2d_without_bias_and_without_input_gradient(rng):
    x, w = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    out = conv.conv2d_forward(x, w, None, (1, 1), (1, 1))
    np.testing.assert_allclose(out, direct_conv2d(x, w, None, (1, 1), (1, 1)), atol=1e-12)
    g = rng.standard_normal(out.shape)
    grad_x, grad_w, grad_b = conv.conv2d_backward(
        g, x, w, (1, 1), (1, 1), need_input_grad=False, need_bias_grad=False
    )
    assert grad_x is None and grad_b is None
    np.testing.assert_allclose(grad_w, direct_conv2d_grads(x, w, g, (1, 1), (1, 1))[1], atol=1e-12)


def test_blocks_of_images_give_the_same_result_as_one_block(rng, monkeypatch):
    """With a tiny block size every image is its own block (and the last block is shorter)."""
    x, w, b = rng.standard_normal((5, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    g = rng.standard_normal((5, 4, 3, 3))
    whole = conv.conv2d_forward(x, w, b, (2, 2), (1, 1)), conv.conv2d_backward(g, x, w, (2, 2), (1, 1))
    for block_bytes in (1, 2 * 9 * 27 * 8):  # one image per block; two images, then a last block of one
        monkeypatch.setattr(conv, "BLOCK_BYTES", block_bytes)
        out = conv.conv2d_forward(x, w, b, (2, 2), (1, 1))
        grads = conv.conv2d_backward(g, x, w, (2, 2), (1, 1))
        np.testing.assert_allclose(out, whole[0], rtol=1e-13)
        for got, expected in zip(grads, whole[1]):
            np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-14)


def test_im2col_copies_each_patch_and_col2im_is_its_adjoint(rng):
    x_pad = rng.standard_normal((2, 7, 6, 3))  # channels-last
    cols = np.empty((2, 3, 2, 3, 2, 3))  # Ho = (7-3)//2+1, Wo = (6-2)//3+1 with kernel 3×2, stride (2, 3)
    conv.im2col(x_pad, cols, (3, 2), (2, 3))
    for n in range(2):
        for y in range(3):
            for x_ in range(2):
                np.testing.assert_array_equal(cols[n, y, x_], x_pad[n, 2 * y : 2 * y + 3, 3 * x_ : 3 * x_ + 2, :])
    # ⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩ for every x and c: col2im is the transpose of im2col.
    c = rng.standard_normal(cols.shape)
    back = np.empty_like(x_pad)
    conv.col2im(c.transpose(3, 4, 0, 1, 2, 5), back, (2, 3))  # col2im takes the columns grouped by offset
    assert np.isclose((cols * c).sum(), (x_pad * back).sum(), rtol=1e-12)


@pytest.mark.parametrize("pixels, stride_w", [(2, 1), (4, 1), (4, 2), (2, 3)])
def test_widen_and_narrow_are_adjoint_and_widen_computes_neighbouring_pixels(rng, pixels, stride_w):
    w = rng.standard_normal((3, 2, 3, 4))
    wide = conv.widen(w, pixels, stride_w)
    assert wide.shape == (pixels * 3, 2, 3, (pixels - 1) * stride_w + 4)
    big = rng.standard_normal(wide.shape)
    # ⟨widen(w), W⟩ = ⟨w, narrow(W)⟩: narrow is the transpose of widen, the rule for the weight gradient
    np.testing.assert_allclose(np.sum(wide * big), np.sum(w * conv.narrow(big, pixels, stride_w, 4)), rtol=1e-12)
    # the wide kernel at stride X·s gives the narrow convolution's outputs, X per wide pixel
    x = rng.standard_normal((2, 2, 5, 4 * pixels * stride_w + 6))
    narrow_out = direct_conv2d(x, w, None, (1, stride_w), (0, 0))
    wide_out = direct_conv2d(x, wide, None, (1, pixels * stride_w), (0, 0))
    count = wide_out.shape[3]
    wide_as_narrow = wide_out.reshape(2, pixels, 3, 3, count).transpose(0, 2, 3, 4, 1).reshape(2, 3, 3, -1)
    np.testing.assert_allclose(wide_as_narrow, narrow_out[..., : count * pixels], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("batch, bytes_per_image", [(128, 1024 * 288 * 4), (128, 196 * 120 * 4), (7, 10**9), (5, 0)])
def test_image_blocks_cover_the_batch_evenly_in_a_multiple_of_the_threads(batch, bytes_per_image, monkeypatch):
    monkeypatch.setattr(conv, "CPU_THREADS", 2)
    bounds = conv.image_blocks(batch, bytes_per_image, "cpu")
    assert [start for start, _ in bounds] == [0] + [stop for _, stop in bounds[:-1]] and bounds[-1][1] == batch
    sizes = [stop - start for start, stop in bounds]
    assert len(sizes) % 2 == 0 or len(sizes) == batch  # a multiple of the threads, unless there are too few images
    assert max(sizes) - min(sizes) <= 1
    assert max(sizes) == 1 or max(sizes) * bytes_per_image <= conv.BLOCK_BYTES
    assert conv.image_blocks(batch, bytes_per_image, "cuda") == [(0, batch)]
    assert conv.image_blocks(0, bytes_per_image, "cpu") == []


def test_pixels_per_row_widens_only_layers_with_few_output_channels():
    assert conv.pixels_per_row(28, 6) == 4  # lenet's first convolution
    assert conv.pixels_per_row(10, 16) == 1  # lenet's second
    assert conv.pixels_per_row(10, 12) == 2
    assert conv.pixels_per_row(32, 32) == 1  # small_vgg's
    assert conv.pixels_per_row(7, 2) == 1  # no X > 1 divides the width


def test_im2col_refuses_an_image_whose_rows_are_not_contiguous(rng):
    x_pad = rng.standard_normal((2, 5, 5, 3)).transpose(0, 2, 1, 3)  # (n, H, W, C) with W not contiguous
    with pytest.raises(ValueError, match="contiguous along its last two axes"):
        conv.im2col(x_pad, np.empty((2, 3, 3, 3, 3, 3)), (3, 3), (1, 1))


def test_conv2d_output_is_channels_last_in_memory(rng):
    """The layout the design relies on: ReLU and the next conv read it without a copy."""
    out = conv.conv2d_forward(
        rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((4, 3, 3, 3)), None, (1, 1), (1, 1)
    )
    assert out.shape == (2, 4, 5, 5)
    assert conv.channels_last(out).flags.c_contiguous


# --------------------------------------------------------------------- pooling
def window_loop_max_pool(x, kernel, stride, g):
    """Max over each window, and the gradient routed to its first maximum in row-major order."""
    n_images, channels, height, width = x.shape
    out_h, out_w = (height - kernel[0]) // stride[0] + 1, (width - kernel[1]) // stride[1] + 1
    out = np.zeros((n_images, channels, out_h, out_w))
    grad_x = np.zeros_like(x)
    for n in range(n_images):
        for c in range(channels):
            for y in range(out_h):
                for x_ in range(out_w):
                    top, left = y * stride[0], x_ * stride[1]
                    window = x[n, c, top : top + kernel[0], left : left + kernel[1]]
                    out[n, c, y, x_] = window.max()
                    i, j = divmod(int(np.argmax(window)), kernel[1])  # argmax: first maximum, row-major
                    grad_x[n, c, top + i, left + j] += g[n, c, y, x_]
    return out, grad_x


def window_loop_avg_pool(x, kernel, stride, g):
    n_images, channels, height, width = x.shape
    out_h, out_w = (height - kernel[0]) // stride[0] + 1, (width - kernel[1]) // stride[1] + 1
    out = np.zeros((n_images, channels, out_h, out_w))
    grad_x = np.zeros_like(x)
    for n in range(n_images):
        for c in range(channels):
            for y in range(out_h):
                for x_ in range(out_w):
                    top, left = y * stride[0], x_ * stride[1]
                    out[n, c, y, x_] = x[n, c, top : top + kernel[0], left : left + kernel[1]].mean()
                    grad_x[n, c, top : top + kernel[0], left : left + kernel[1]] += g[n, c, y, x_] / (
                        kernel[0] * kernel[1]
                    )
    return out, grad_x


# (shape, kernel, stride): non-overlapping, overlapping, non-square, sizes not divisible by the stride, gaps
POOL_CASES = [
    ((2, 3, 6, 8), (2, 2), (2, 2)),
    ((1, 2, 7, 7), (3, 3), (2, 2)),
    ((2, 1, 5, 6), (2, 3), (1, 2)),
    ((1, 2, 5, 7), (3, 2), (1, 1)),
    ((2, 2, 7, 5), (2, 2), (2, 2)),
    ((2, 2, 5, 8), (2, 2), (3, 3)),  # stride > kernel: gaps between the windows
]


@pytest.mark.parametrize("shape, kernel, stride", POOL_CASES)
def test_max_pool_matches_window_loops(rng, shape, kernel, stride):
    x = rng.standard_normal(shape)
    out, winners = conv.max_pool2d_forward(x, kernel, stride)
    g = rng.standard_normal(out.shape)
    ref_out, ref_grad = window_loop_max_pool(x, kernel, stride, g)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_allclose(conv.max_pool2d_backward(g, winners, shape, kernel, stride), ref_grad, rtol=1e-14)


@pytest.mark.parametrize("kernel, stride", [((2, 2), (2, 2)), ((3, 3), (1, 1)), ((2, 3), (1, 2))])
def test_max_pool_ties_send_the_gradient_to_the_first_maximum(rng, kernel, stride):
    """Inputs with many equal values (integers from 0 to 2, as after a ReLU): PyTorch's rule, row-major first."""
    x = rng.integers(0, 3, size=(2, 2, 6, 7)).astype(np.float64)
    out, winners = conv.max_pool2d_forward(x, kernel, stride)
    g = rng.standard_normal(out.shape)
    ref_out, ref_grad = window_loop_max_pool(x, kernel, stride, g)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_allclose(conv.max_pool2d_backward(g, winners, x.shape, kernel, stride), ref_grad, rtol=1e-14)


@pytest.mark.parametrize("shape, kernel, stride", POOL_CASES)
def test_avg_pool_matches_window_loops(rng, shape, kernel, stride):
    x = rng.standard_normal(shape)
    out = conv.avg_pool2d_forward(x, kernel, stride)
    g = rng.standard_normal(out.shape)
    ref_out, ref_grad = window_loop_avg_pool(x, kernel, stride, g)
    np.testing.assert_allclose(out, ref_out, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(conv.avg_pool2d_backward(g, shape, kernel, stride), ref_grad, rtol=1e-13, atol=1e-15)


def test_pooling_keeps_float32(rng):
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    out, _ = conv.max_pool2d_forward(x, (2, 2), (2, 2))
    assert out.dtype == np.float32 and conv.avg_pool2d_forward(x, (2, 2), (2, 2)).dtype == np.float32


@pytest.mark.parametrize(
    "kernel, padding", [((3, 3), (1, 1)), ((3, 2), (0, 1)), ((5, 5), (4, 4)), ((2, 3), (0, 0))]
)
def test_stride_1_backward_without_col2im_agrees_with_the_col2im_route(rng, kernel, padding):
    x = rng.standard_normal((3, 2, 6, 5))
    w = rng.standard_normal((4, 2) + kernel)
    out = conv.conv2d_forward(x, w, None, (1, 1), padding)
    g_last = np.ascontiguousarray(conv.channels_last(rng.standard_normal(out.shape)))
    via_col2im = conv._backward_col2im(g_last, x, w, (1, 1), padding, need_input_grad=True, need_bias_grad=True)
    without = conv._backward_stride_1(g_last, x, w, padding, need_bias_grad=True)
    for a, b in zip(without, via_col2im):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_a_padding_as_large_as_the_kernel_takes_the_col2im_route(rng):
    """1×1 kernel with padding 1: the border outputs see only padding; x's gradient ignores them."""
    x, w, b = rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((2, 3, 1, 1)), rng.standard_normal(2)
    out = conv.conv2d_forward(x, w, b, (1, 1), (1, 1))
    np.testing.assert_allclose(out, direct_conv2d(x, w, b, (1, 1), (1, 1)), atol=1e-12)
    g = rng.standard_normal(out.shape)
    for got, expected in zip(
        conv.conv2d_backward(g, x, w, (1, 1), (1, 1)), direct_conv2d_grads(x, w, g, (1, 1), (1, 1))
    ):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_stride_1_backward_without_bias_gradient(rng):
    x, w = rng.standard_normal((3, 2, 6, 6)), rng.standard_normal((4, 2, 3, 3))
    g = rng.standard_normal((3, 4, 6, 6))
    grad_x, grad_w, grad_b = conv.conv2d_backward(g, x, w, (1, 1), (1, 1), need_bias_grad=False)
    ref_x, ref_w, _ = direct_conv2d_grads(x, w, g, (1, 1), (1, 1))
    assert grad_b is None
    np.testing.assert_allclose(grad_x, ref_x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad_w, ref_w, rtol=1e-12, atol=1e-12)
