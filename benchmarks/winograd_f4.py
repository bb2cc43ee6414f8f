"""Winograd F(4×4, 3×3) beside im2col: the forward pass of small_vgg's 3×3 convolutions (issue 22).

    python benchmarks/winograd_f4.py                  # batch 128, best of 9 alternating rounds (a minute)
    python benchmarks/winograd_f4.py --quick          # a few seconds: batch 8, one round
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/winograd_f4.py   # OpenBLAS's own kernel

:mod:`minisgd.nn.winograd` (F(2×2, 3×3), forward and backward) was measured
no faster than im2col: its transforms, NumPy passes through memory, cost
what its 2.25× smaller products saved. F(4×4, 3×3) cuts the products further,
to 36 multiplications per 4×4 block of outputs instead of 144 (4×), and its
transformed tiles are 2.25× the image instead of 4×. This script asks whether
that is enough, on the forward pass alone: if the forward is not faster, the
backward (two more transforms) cannot make it so. It is an experiment, not a
route of ``F.conv2d``.

The identity (Lavin & Gray 2016), for one input and one output channel, a
3×3 kernel g and a 6×6 tile d of the padded image (tile (t, u) starts at
pixel (4t, 4u); neighbouring tiles overlap by two pixels), giving the 4×4
block of outputs Y at (4t, 4u):

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A

         ⎡4  0 −5  0  1  0⎤         ⎡ 1/4     0     0 ⎤
         ⎢0 −4 −4  1  1  0⎥         ⎢−1/6  −1/6  −1/6 ⎥         ⎡1  1  1  1  1  0⎤
    Bᵀ = ⎢0  4 −4 −1  1  0⎥     G = ⎢−1/6   1/6  −1/6 ⎥    Aᵀ = ⎢0  1 −1  2 −2  0⎥
         ⎢0 −2 −1  2  1  0⎥         ⎢1/24  1/12   1/6 ⎥         ⎢0  1  1  4  4  0⎥
         ⎢0  2 −1 −2  1  0⎥         ⎢1/24 −1/12   1/6 ⎥         ⎣0  1 −1  8 −8  1⎦
         ⎣0  4  0 −5  0  1⎦         ⎣  0     0     1  ⎦

Over C input and O output channels each of the 36 tile positions is one
matrix product over the channels, M[ξν] = V[ξν] · U[ξν] with V = Bᵀ d B
(tiles × C) and U = G g Gᵀ (C × O). The code follows :mod:`minisgd.nn.winograd`:
channels-last blocks of images on every core (``map_blocks``), scratch
buffers, each 6-point transform along one axis at a time with shared
partial sums (:func:`transform_b`, :func:`transform_a`), and the image's
columns stored by their position modulo 4 so that the width transform runs
long loops. It takes stride 1, padding 1 and image sides divisible by 4
(small_vgg's convolutions), and checks its output against im2col's before
timing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing minisgd

import numpy as np  # noqa: E402

from minisgd import backend  # noqa: E402
from minisgd.nn import conv  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_step import blas_description, bounded_int  # noqa: E402

G = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]])
# small_vgg's convolutions after the first: (C, side, O)
LAYERS = ((32, 32, 32), (32, 16, 64), (64, 16, 64))


def transform_b(d: list[Any], out: Any, a: Any, b: Any) -> None:
    """out[k] = Σ_l Bᵀ[k, l] · d[l] along one axis (six arrays in, six out; a, b: work arrays):

        out₀ = 4(d₀ − d₂) + (d₄ − d₂)       out₁ = (d₃ + d₄) − 4(d₁ + d₂)      out₂ = 4(d₁ − d₂) − d₃ + d₄
        out₃ = (d₄ − d₂) + 2(d₃ − d₁)       out₄ = (d₄ − d₂) − 2(d₃ − d₁)      out₅ = 4(d₁ − d₃) + d₅ − d₃
    """
    np.subtract(d[4], d[2], out=a)
    np.subtract(d[0], d[2], out=out[0]); out[0] *= 4; out[0] += a  # noqa: E702
    np.subtract(d[3], d[1], out=b)
    np.multiply(b, 2, out=out[3]); out[3] += a  # noqa: E702
    np.multiply(b, -2, out=out[4]); out[4] += a  # noqa: E702
    np.add(d[1], d[2], out=a); a *= -4; np.add(a, d[3], out=out[1]); out[1] += d[4]  # noqa: E702
    np.subtract(d[1], d[2], out=a); a *= 4; np.subtract(a, d[3], out=out[2]); out[2] += d[4]  # noqa: E702
    np.subtract(d[1], d[3], out=out[5]); out[5] *= 4; out[5] += d[5]; out[5] -= d[3]  # noqa: E702


def transform_a(m: list[Any], out: list[Any], work: list[Any]) -> None:
    """out[k] = Σ_l Aᵀ[k, l] · m[l] along one axis (six arrays in, four out), with s = m₁ ± m₂, t = m₃ ± m₄:

        out₀ = m₀ + s₊ + t₊     out₁ = s₋ + 2t₋     out₂ = s₊ + 4t₊     out₃ = s₋ + 8t₋ + m₅
    """
    s_plus, s_minus, t_plus, t_minus = work
    np.add(m[1], m[2], out=s_plus); np.subtract(m[1], m[2], out=s_minus)  # noqa: E702
    np.add(m[3], m[4], out=t_plus); np.subtract(m[3], m[4], out=t_minus)  # noqa: E702
    np.add(m[0], s_plus, out=out[0]); out[0] += t_plus  # noqa: E702
    np.multiply(t_minus, 2, out=out[1]); out[1] += s_minus  # noqa: E702
    np.multiply(t_plus, 4, out=out[2]); out[2] += s_plus  # noqa: E702
    np.multiply(t_minus, 8, out=out[3]); out[3] += s_minus; out[3] += m[5]  # noqa: E702


def conv2d_f4(x: Any, weight: Any, bias: Any) -> Any:
    """conv(x, w) + b, stride 1, padding 1, for x (N, C, H, W) with H and W divisible by 4: (N, O, H, W),
    channels-last memory, as :func:`minisgd.nn.conv.conv2d_forward` returns it."""
    batch, channels, height, width = x.shape
    out_channels = weight.shape[0]
    if weight.shape[2:] != (3, 3) or height % 4 or width % 4:
        raise ValueError(f"conv2d_f4: a 3×3 kernel and sides divisible by 4; got x {x.shape}, w {weight.shape}")
    dtype = x.dtype
    tiles_h, tiles_w = height // 4, width // 4
    padded_h, quarter_w = height + 2, tiles_w + 1
    g = G.astype(dtype)
    u = np.ascontiguousarray((g @ weight @ g.T).transpose(2, 3, 1, 0)).reshape(36, channels, out_channels)
    out = np.empty((batch, height, width, out_channels), dtype)
    x_last = conv.channels_last(x)

    def forward_block(block: tuple[int, int]) -> None:
        start, stop = block
        n = stop - start
        tiles = n * tiles_h * tiles_w

        def work(role: str, *shape: int) -> Any:
            return conv.scratch(np, "f4_" + role, shape, dtype)

        # padded[n, h, r, q, c] = x_pad[n, h, 4q + r, c]: a tile's column 4u + l is column u + l // 4 of part l % 4
        padded = work("padded", n, padded_h, 4, quarter_w, channels)
        padded.fill(0)
        for part in range(4):
            first = (part - 1) % 4  # the first column w of x with w + 1 ≡ part (mod 4)
            count = len(range(first, width, 4))
            begin = (first + 1) // 4
            padded[:, 1 : height + 1, part, begin : begin + count] = x_last[start:stop, :, first::4]
        along_w = work("along_w", 6, n, padded_h, tiles_w, channels)
        transform_b([padded[:, :, k % 4, k // 4 : k // 4 + tiles_w] for k in range(6)], along_w,
                    work("a", n, padded_h, tiles_w, channels), work("b", n, padded_h, tiles_w, channels))
        v = work("v", 6, 6, n, tiles_h, tiles_w, channels)
        transform_b([along_w[:, :, k : k + 4 * (tiles_h - 1) + 1 : 4] for k in range(6)], v,
                    work("a", 6, n, tiles_h, tiles_w, channels), work("b", 6, n, tiles_h, tiles_w, channels))
        m = work("m", 36, tiles, out_channels)
        np.matmul(v.reshape(36, tiles, channels), u, out=m)
        along_h = work("along_h", 4, 6, n, tiles_h, tiles_w, out_channels)
        transform_a(m.reshape(6, 6, n, tiles_h, tiles_w, out_channels), along_h,
                    [work(f"s{k}", 6, n, tiles_h, tiles_w, out_channels) for k in range(4)])
        # out[n, 4t + i, 4u + j, o] = Y[i, j, n, t, u, o], written straight into the output
        out_tiles = out[start:stop].reshape(n, tiles_h, 4, tiles_w, 4, out_channels)
        targets = [out_tiles[:, :, :, :, j].transpose(2, 0, 1, 3, 4) for j in range(4)]  # (4 i, n, t, u, O) each
        transform_a([along_h[:, k] for k in range(6)], targets,
                    [work(f"s{k}", 4, n, tiles_h, tiles_w, out_channels) for k in range(4)])
        out[start:stop] += bias

    per_image = 36 * tiles_h * tiles_w * max(channels, out_channels) * dtype.itemsize
    # blocks of ~1 MB of transformed tiles (conv.image_blocks sizes blocks by BLOCK_BYTES of columns)
    backend.map_blocks(forward_block, conv.image_blocks(batch, per_image * conv.BLOCK_BYTES // 2**20, "cpu"), "cpu")
    return conv.channels_first(out)


def _best_ms(function: Any, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def measure(batch: int, rounds: int) -> list[dict]:
    """Per layer: each route's forward (the two alternating, best of ``rounds``), and each route's matrix
    products alone (one BLAS call on every thread, the same shapes), in ms."""
    rng = np.random.default_rng(0)
    rows = []
    for channels, side, out_channels in LAYERS:
        x = conv.channels_first(rng.standard_normal((batch, side, side, channels), dtype=np.float32))
        w = (rng.standard_normal((out_channels, channels, 3, 3)) / np.sqrt(9 * channels)).astype(np.float32)
        b = rng.standard_normal(out_channels).astype(np.float32)
        im2col = lambda: conv.conv2d_forward(x, w, b, (1, 1), (1, 1))  # noqa: E731
        winograd = lambda: conv2d_f4(x, w, b)  # noqa: E731
        expected, got = im2col(), winograd()
        difference = float(np.abs(got - expected).max() / np.abs(expected).max())
        if difference > 1e-5:
            raise AssertionError(f"F(4,3) differs from im2col by {difference:.1e} of the largest output")
        times = {"im2col": float("inf"), "f4": float("inf")}
        for _ in range(rounds):
            times["im2col"] = min(times["im2col"], _best_ms(im2col, 1))
            times["f4"] = min(times["f4"], _best_ms(winograd, 1))
        tiles = batch * side * side // 16
        cols = np.ones((batch * side * side, 9 * channels), np.float32)
        w_rows = np.ones((9 * channels, out_channels), np.float32)
        v, u = np.ones((36, tiles, channels), np.float32), np.ones((36, channels, out_channels), np.float32)
        cols @ w_rows, v @ u  # warm-up: the first product pays for the BLAS's buffers
        rows.append({
            "layer": f"{channels} → {out_channels}, {side}×{side}", "im2col": times["im2col"], "f4": times["f4"],
            "im2col_products": _best_ms(lambda: cols @ w_rows, rounds), "f4_products": _best_ms(lambda: v @ u, rounds),
            "difference": difference,
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds: batch 8, one round")
    parser.add_argument("--batch", type=bounded_int(1, 4096), default=None, help="images (default 128; 8 with --quick)")
    parser.add_argument("--rounds", type=bounded_int(1, 100), default=None,
                        help="alternating rounds, best kept (default 9; 1 with --quick)")
    args = parser.parse_args(argv)
    batch = args.batch or (8 if args.quick else 128)
    rounds = args.rounds or (1 if args.quick else 9)
    rows = measure(batch, rounds)
    print(f"forward pass, float32, batch {batch}, {backend.CPU_THREADS} threads, "
          f"best of {rounds} alternating round(s); "
          f"F(4,3) within {max(row['difference'] for row in rows):.1e} of im2col's largest output")
    print(blas_description())
    header = (f"{'convolution':22s} {'im2col ms':>9s} {'F(4,3) ms':>9s} {'speed ratio':>11s} "
              f"{'im2col products':>15s} {'F(4,3) products':>15s}")
    print(header)
    print("-" * len(header))
    for row in rows:
        print(f"{row['layer']:22s} {row['im2col']:9.2f} {row['f4']:9.2f} {row['im2col'] / row['f4']:10.2f}x "
              f"{row['im2col_products']:15.2f} {row['f4_products']:15.2f}")
    print("speed ratio = im2col ms ÷ F(4,3) ms (above 1: F(4,3) faster); products: the matrix products alone, ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
