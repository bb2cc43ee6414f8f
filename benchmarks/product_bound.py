"""How fast an im2col training step could be: its matrix products alone, beside PyTorch's whole step.

    python benchmarks/product_bound.py            # batch 128, 2 threads (half a minute)
    python benchmarks/product_bound.py --quick    # a few seconds: batch 16, fewer repeats
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/product_bound.py   # OpenBLAS's own kernel

minisgd's convolutions and linear layers are matrix products (im2col,
:mod:`minisgd.nn.conv`); everything else in a step (copies, pooling, ReLU,
the update) adds to them. So the time the products take alone, at the shapes
minisgd gives them, is a floor under minisgd's step, and PyTorch's step ÷
that floor is the best speed ratio against PyTorch this design could reach
if everything else took no time. Each product is timed as one NumPy call
with the BLAS on ``--threads`` threads (best of ``--repeats``), on the shapes
listed in :func:`step_products`; PyTorch's step and minisgd's are measured by
``benchmarks/train_step.py``'s workers, in fresh processes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_step  # noqa: E402  (its workers time the two frameworks' steps)

# One product: (what it is, how many of that shape, rows M, inner K, columns N): count × (M×K)·(K×N)
Product = tuple[str, int, int, int, int]


def step_products(network: str, batch: int) -> list[Product]:
    """The matrix products of one training step, with the shapes :mod:`minisgd.nn.conv` and the linear layers use.

    Convolution with P output pixels per image, C → O channels, a k×k kernel:
    forward (B·P, k²C)·(k²C, O); weight gradient (O, B·P)·(B·P, k²C) (for
    small_vgg's stride-1 layers (C, B·P)·(B·P, k²O), the columns of g); input
    gradient, stride-1 route, (B·P, k²O)·(k²O, C); col2im route (lenet's second
    layer), k² products (B·P, O)·(O, C). lenet's first layer runs on its
    widened kernel (4 output pixels per row: 24 channels, 5×8×3 = 120 columns).
    A linear layer I → O: forward (B, I)·(I, O), weight gradient (O, B)·(B, I),
    input gradient (B, O)·(O, I). A first layer has no input gradient.
    """
    b = batch
    if network == "small_vgg":
        products = [("conv1 forward", 1, b * 1024, 27, 32), ("conv1 weight gradient", 1, 32, b * 1024, 27)]
        for name, pixels, c, o in (("conv2", 1024, 32, 32), ("conv3", 256, 32, 64), ("conv4", 256, 64, 64)):
            products += [(f"{name} forward", 1, b * pixels, 9 * c, o),
                         (f"{name} weight gradient", 1, c, b * pixels, 9 * o),
                         (f"{name} input gradient", 1, b * pixels, 9 * o, c)]
        linears = [("fc1", 4096, 256), ("fc2", 256, 10)]
    elif network == "lenet":
        products = [("conv1 forward (widened)", 1, b * 196, 120, 24),
                    ("conv1 weight gradient (widened)", 1, 24, b * 196, 120),
                    ("conv2 forward", 1, b * 100, 150, 16), ("conv2 weight gradient", 1, 16, b * 100, 150),
                    ("conv2 input gradient (25 offsets)", 25, b * 100, 16, 6)]
        linears = [("fc1", 400, 120), ("fc2", 120, 84), ("fc3", 84, 10)]
    else:
        raise ValueError(f"step_products: network must be one of {train_step.NETWORKS}; got {network!r}")
    for name, inputs, outputs in linears:
        products += [(f"{name} forward", 1, b, inputs, outputs), (f"{name} weight gradient", 1, outputs, b, inputs),
                     (f"{name} input gradient", 1, b, outputs, inputs)]
    return products


def time_products(products: list[Product], repeats: int) -> list[float]:
    """Seconds each product takes, the best of ``repeats`` NumPy calls (after one untimed call)."""
    import numpy as np

    seconds = []
    for _, count, rows, inner, columns in products:
        left = np.ones((count, rows, inner), np.float32)
        right = np.ones((count, inner, columns), np.float32)
        out = np.empty((count, rows, columns), np.float32)
        np.matmul(left, right, out=out)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            np.matmul(left, right, out=out)
            best = min(best, time.perf_counter() - start)
        seconds.append(best)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds: batch 16, 2 repeats, 1 warm-up, 3 steps")
    count = train_step.bounded_int
    parser.add_argument("--batch", type=count(1, 4096), help="images per step (default 128; 16 with --quick)")
    parser.add_argument("--threads", type=count(1, 256), default=2, help="BLAS/OpenMP threads (default 2)")
    parser.add_argument("--repeats", type=count(1, 1000), help="calls per product, best kept (default 7)")
    parser.add_argument("--no-torch", action="store_true", help="minisgd only")
    args = parser.parse_args(argv)
    batch = args.batch or (16 if args.quick else 128)
    repeats = args.repeats or (2 if args.quick else 7)
    # the products run in this process: give its BLAS the threads before NumPy loads
    if "numpy" not in sys.modules:
        os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(args.threads)
    workers = argparse.Namespace(threads=args.threads, warmup=1 if args.quick else 3, steps=3 if args.quick else 15,
                                 device="cpu", quick=args.quick)
    with_torch = not args.no_torch and train_step._torch_installed()

    print(f"cpu, float32, batch {batch}, {args.threads} threads; products: one NumPy call each, best of {repeats}; "
          f"steps: median of {workers.steps}")
    print(train_step.blas_description())
    header = (f"{'network':<10} {'products ms':>11} {'of which convolutions':>21} {'minisgd step ms':>15} "
              f"{'PyTorch step ms':>15} {'bound ratio':>11} {'speed ratio':>11}")
    print(header)
    print("-" * len(header))
    for network in train_step.NETWORKS:
        products = step_products(network, batch)
        seconds = time_products(products, repeats)
        floor_ms = 1e3 * sum(seconds)
        convolutions_ms = 1e3 * sum(s for product, s in zip(products, seconds) if product[0].startswith("conv"))
        minisgd = train_step._run_worker(workers, batch, "minisgd", network)
        torch = train_step._run_worker(workers, batch, "torch", network) if with_torch else None
        minisgd_ms = 1e3 * minisgd["seconds"] if minisgd else float("nan")
        torch_ms = 1e3 * torch["seconds"] if torch else float("nan")
        print(f"{network:<10} {floor_ms:11.1f} {convolutions_ms:21.1f} {minisgd_ms:15.1f} {torch_ms:15.1f} "
              f"{torch_ms / floor_ms:10.2f}x {torch_ms / minisgd_ms:10.2f}x")
    print("bound ratio = PyTorch step ÷ minisgd's products alone (the best speed ratio an im2col step could reach); "
          "speed ratio = PyTorch step ÷ minisgd step")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
