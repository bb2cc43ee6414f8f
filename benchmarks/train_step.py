"""One training step of small_vgg and lenet: minisgd beside PyTorch CPU, speed and peak memory.

    python benchmarks/train_step.py            # batch 128, float32, 2 threads (a minute or two)
    python benchmarks/train_step.py --quick    # a few seconds: smaller batch, fewer steps
    python benchmarks/train_step.py --device cuda   # minisgd on CuPy beside PyTorch eager CUDA, batch 128 and 512

A step is what a training loop does per mini-batch: forward pass, cross-entropy
loss, backward pass, and an SGD update with momentum 0.9. The data are random
CIFAR-shaped images (N, 3, 32, 32) and labels. After ``--warmup`` steps the
benchmark times ``--steps`` steps and reports the median.

Every measurement runs in its own fresh Python process, with the BLAS/OpenMP
thread count set to ``--threads`` before NumPy or PyTorch is imported, so the
two frameworks get the same cores and one cannot inherit the other's memory.
Each framework is measured ``--rounds`` times, alternating with the other,
and keeps its best round: on a shared machine a burst of someone else's work
then cannot land on one framework only.

Peak memory, measured the same way for both frameworks: the growth of the
process's resident memory during the timed steps. After building the model,
the batch and the optimizer, the worker resets the kernel's high-water mark
(``/proc/self/clear_refs``) and notes its resident size; after the warm-up and
timed steps it reads the high-water mark (``VmHWM``). The difference is everything a
training step keeps alive at its worst moment: saved activations, gradients,
momentum buffers and scratch space (im2col blocks in minisgd, oneDNN
workspaces in PyTorch), independent of what importing the library costs.

On ``--device cuda`` the model, the batch and the optimizer's buffers live on
the GPU (CuPy for minisgd, PyTorch eager for the peer), the device is
synchronised before every clock reading (GPU work is asynchronous), and peak
memory is what each framework's GPU memory pool holds at the end: CuPy's
default pool (``total_bytes``) against ``torch.cuda.max_memory_reserved``.

The table also gives the machine's sgemm rate (NumPy, or CuPy on the GPU) (a 2048×2048 float32
matrix product) and the fraction of it each step reaches, counting the
multiply-adds of the convolutions and linear layers (forward, weight gradient,
and input gradient except for the first layer): the matrix products are the
work; everything else is overhead.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing minisgd
NETWORKS = ("small_vgg", "lenet")


def bounded_int(low: int, high: int):
    """An argparse ``type``: an integer from ``low`` to ``high``, else argparse's one-line error naming the range."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer from {low} to {high}; got {text[:40]!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}; got {text.strip()[:40]}")
        return value

    return parse


# ------------------------------------------------------------------ memory
def _rss_mb(field: str) -> float | None:
    """A memory field of /proc/self/status (VmRSS, VmHWM) in MB, or None off Linux."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset the resident-memory high-water mark; False when the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def _peak_since_reset_mb() -> float:
    """Peak resident memory since the last reset, in MB (ru_maxrss where /proc is missing)."""
    peak = _rss_mb("VmHWM")
    if peak is None:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return peak


# ------------------------------------------------------------------ counting
def gemm_flops(network: str, batch: int) -> float:
    """Floating-point operations of the matrix products in one training step (2 per multiply-add).

    Forward, weight gradient and input gradient each cost one product of the
    layer's size; the first layer needs no input gradient.
    """
    # (multiply-adds per image of one layer's product, is the first layer)
    if network == "small_vgg":
        convs = [(32, 32, 3, 32, 9), (32, 32, 32, 32, 9), (16, 16, 32, 64, 9), (16, 16, 64, 64, 9)]
        linears = [(4096, 256), (256, 10)]
    else:
        convs = [(28, 28, 3, 6, 25), (10, 10, 6, 16, 25)]
        linears = [(400, 120), (120, 84), (84, 10)]
    layer_macs = [h * w * c * o * k for h, w, c, o, k in convs] + [i * o for i, o in linears]
    products = [2] + [3] * (len(layer_macs) - 1)  # the first layer: forward and weight gradient
    return 2.0 * batch * sum(m * p for m, p in zip(layer_macs, products))


# ------------------------------------------------------------------ workers
def _time_steps(step, warmup: int, steps: int, synchronize=lambda: None) -> tuple[float, float]:
    """Run ``warmup`` untimed steps, then ``steps`` timed ones: (median seconds, peak MB growth).

    The memory peak covers every step, the first included (it creates the
    momentum buffers and any caches a framework keeps), measured from the
    resident size just before it. ``synchronize`` waits for queued GPU work
    before each clock reading.
    """
    _reset_peak()
    before = _rss_mb("VmRSS") or 0.0
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        synchronize()
        start = time.perf_counter()
        step()
        synchronize()
        times.append(time.perf_counter() - start)
    peak = _peak_since_reset_mb() - before
    times.sort()
    return times[len(times) // 2], peak


def minisgd_training_step(network: str, batch: int, device: str = "cpu"):
    """(model, optimizer, step) for minisgd: ``step()`` is zero_grad, forward, cross-entropy, backward, and SGD
    with momentum 0.9."""
    import numpy as np

    import minisgd
    from minisgd import models, optim
    from minisgd.nn import functional as F

    minisgd.random.manual_seed(0)
    model = getattr(models, network)().to(device)
    optimizer = optim.SGD(list(model.parameters()), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    images = minisgd.Tensor(rng.standard_normal((batch, 3, 32, 32), dtype=np.float32), device=device)
    labels = minisgd.Tensor(rng.integers(0, 10, batch), device=device)

    def step() -> None:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()

    return model, optimizer, step


def worker_minisgd(network: str, batch: int, warmup: int, steps: int, device: str = "cpu") -> dict:
    from minisgd import backend

    _, _, step = minisgd_training_step(network, batch, device)
    seconds, peak = _time_steps(step, warmup, steps, synchronize=lambda: backend.synchronize(device))
    if device == "cuda":  # what CuPy's memory pool holds: its peak, since a pool only grows
        pool = getattr(backend.array_module("cuda"), "get_default_memory_pool", None)
        peak = pool().total_bytes() / 2**20 if pool else float("nan")
    return {"seconds": seconds, "peak_mb": peak}


def torch_training_step(network: str, batch: int, device: str = "cpu"):
    """(model, optimizer, step) for the same network and step in PyTorch, on ``OMP_NUM_THREADS`` threads."""
    import torch
    from torch import nn

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    torch.manual_seed(0)
    if network == "small_vgg":
        model = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(4096, 256), nn.ReLU(), nn.Linear(256, 10),
        )
    else:
        model = nn.Sequential(
            nn.Conv2d(3, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
        )
    model = model.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.randn(batch, 3, 32, 32, device=device)
    labels = torch.randint(0, 10, (batch,), device=device)

    def step() -> None:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()

    return model, optimizer, step


def worker_torch(network: str, batch: int, warmup: int, steps: int, device: str = "cpu") -> dict:
    import torch

    _, _, step = torch_training_step(network, batch, device)
    synchronize = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds, peak = _time_steps(step, warmup, steps, synchronize=synchronize)
    if device == "cuda":
        peak = torch.cuda.max_memory_reserved() / 2**20
    return {"seconds": seconds, "peak_mb": peak, "version": torch.__version__}


def worker_sgemm(size: int = 2048, repeats: int = 5, device: str = "cpu") -> dict:
    """The float32 matrix-product rate of the device's array module (NumPy or CuPy): 2·n³ per n×n product."""
    import numpy as np

    from minisgd import backend

    xp = backend.array_module(device)
    a = xp.asarray(np.random.default_rng(0).standard_normal((size, size), dtype=np.float32))
    b = a.T.copy()
    a @ b
    best = float("inf")
    for _ in range(repeats):
        backend.synchronize(device)
        start = time.perf_counter()
        a @ b
        backend.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return {"gflops": 2 * size**3 / best / 1e9, "blas": blas_description()}


def blas_description() -> str:
    """The BLAS NumPy runs on, as threadpoolctl reports it: library, version, kernel architecture, threads.

    The kernel architecture is what OpenBLAS chose for this processor, or what
    ``OPENBLAS_CORETYPE`` forced; the header also says whether that variable is set.
    """
    forced = ", ".join(f"{name}={os.environ[name]}" for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
                       if name in os.environ) or "OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset"
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return f"BLAS unknown (pip install threadpoolctl); {forced}"
    import numpy  # noqa: F401  (loads the BLAS that threadpoolctl then finds)

    libraries = [
        f"{info.get('internal_api')} {info.get('version')} kernel {info.get('architecture', '?')}, "
        f"{info.get('num_threads')} threads"
        for info in threadpool_info() if info.get("user_api") == "blas"
    ]
    return f"NumPy BLAS: {'; '.join(libraries) or 'none found'} ({forced})"


def torch_description() -> str:
    """PyTorch's version and the CPU instruction set its kernels use."""
    import torch

    return f"PyTorch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}"


def _run_worker(args: argparse.Namespace, batch: int, *worker_args: str, script: Path | None = None) -> dict | None:
    """Run one measurement (``script --worker …``, this script by default) in a fresh interpreter with the
    thread count fixed; None if it fails."""
    env = dict(os.environ)
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[variable] = str(args.threads)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    command = [
        sys.executable, str(script or Path(__file__).resolve()), "--worker", *worker_args,
        "--batch", str(batch), "--warmup", str(args.warmup), "--steps", str(args.steps),
        "--device", args.device, *(["--quick"] if args.quick else []),
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        print(f"worker {' '.join(worker_args)} failed:\n{result.stderr}", file=sys.stderr)
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


def _torch_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


# ------------------------------------------------------------------ report
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds: batch 32, 1 warm-up, 3 steps")
    parser.add_argument("--batch", type=bounded_int(1, 4096), nargs="+", default=None,
                        help="images per step, one or more (default 128, and 512 on cuda; 32 with --quick)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cpu: against PyTorch CPU; cuda: minisgd on CuPy against PyTorch eager CUDA")
    parser.add_argument("--warmup", type=bounded_int(0, 1000), default=None, help="untimed steps first (default 3)")
    parser.add_argument("--steps", type=bounded_int(1, 1000), default=None, help="timed steps (default 15)")
    parser.add_argument("--threads", type=bounded_int(1, 256), default=2,
                        help="BLAS/OpenMP threads for both frameworks")
    parser.add_argument(
        "--rounds",
        type=bounded_int(1, 100),
        default=None,
        help="alternating measurements per framework, best kept (default 3; 1 with --quick)",
    )
    parser.add_argument("--networks", nargs="+", choices=NETWORKS, default=list(NETWORKS))
    parser.add_argument("--no-torch", action="store_true", help="measure minisgd only")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.batch = args.batch or ([32] if args.quick else [128, 512] if args.device == "cuda" else [128])
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    args.steps = args.steps or (3 if args.quick else 15)
    args.rounds = args.rounds or (1 if args.quick else 3)

    if args.worker:  # inside a measurement process
        kind = args.worker[0]
        if kind == "sgemm":
            result = worker_sgemm(repeats=2 if args.quick else 5, device=args.device)
            if "pytorch" in args.worker[1:]:
                result["torch"] = torch_description()
        else:
            work = worker_minisgd if kind == "minisgd" else worker_torch
            result = work(args.worker[1], args.batch[0], args.warmup, args.steps, args.device)
        print(json.dumps(result))
        return 0

    if args.device == "cuda":
        from minisgd import backend

        try:
            backend.array_module("cuda")
        except backend.DeviceError as error:
            print(f"--device cuda: {error}", file=sys.stderr)
            return 2
    frameworks = ["minisgd"]
    if not args.no_torch:
        if _torch_installed():
            frameworks.append("pytorch")
        else:
            print("PyTorch is not installed: measuring minisgd only (pip install torch to compare)")

    sgemm = _run_worker(args, args.batch[0], "sgemm", *frameworks)
    sgemm_gflops = sgemm["gflops"] if sgemm else float("nan")
    peer = "PyTorch eager CUDA" if args.device == "cuda" else "PyTorch CPU"
    print(
        f"{args.device}, float32, {args.threads} threads, median of {args.steps} steps after "
        f"{args.warmup} warm-up, best of {args.rounds} alternating round(s); "
        f"{'CuPy' if args.device == 'cuda' else 'NumPy'} sgemm: {sgemm_gflops:.0f} GFLOP/s; peer: {peer}"
    )
    if sgemm:
        print(sgemm["blas"] + (f"; {sgemm['torch']}" if "torch" in sgemm else ""))
    header = (
        f"{'network':<10} {'batch':>5} {'framework':<9} {'ms/step':>8} {'img/s':>8} {'GFLOP/s':>8} "
        f"{'% sgemm':>8} {'peak MB':>8} {'speed ratio':>12} {'memory ratio':>13}"
    )
    print(header)
    print("-" * len(header))
    for network, batch in [(n, b) for n in args.networks for b in args.batch]:
        results: dict[str, dict | None] = {framework: None for framework in frameworks}
        # Rounds alternate the frameworks, so that a burst of load from another
        # process does not fall on one of them only; each keeps its best round.
        for _ in range(args.rounds):
            for framework in frameworks:
                worker = "minisgd" if framework == "minisgd" else "torch"
                result = _run_worker(args, batch, worker, network)
                best = results[framework]
                if result is not None and (best is None or result["seconds"] < best["seconds"]):
                    results[framework] = result
        torch_result = results.get("pytorch")
        for framework, result in results.items():
            if result is None:
                print(f"{network:<10} {batch:>5} {framework:<9} {'failed':>8}")
                continue
            images_per_second = batch / result["seconds"]
            gflops = gemm_flops(network, batch) / result["seconds"] / 1e9
            speed = memory = ""
            if framework == "minisgd" and torch_result:
                speed = f"{torch_result['seconds'] / result['seconds']:.2f}x"
                memory = f"{result['peak_mb'] / max(torch_result['peak_mb'], 1e-9):.2f}x"
            print(
                f"{network:<10} {batch:>5} {framework:<9} {result['seconds'] * 1e3:8.1f} {images_per_second:8.0f} "
                f"{gflops:8.1f} {100 * gflops / sgemm_gflops:7.0f}% {result['peak_mb']:8.0f} "
                f"{speed:>12} {memory:>13}"
            )
    print("speed ratio = minisgd img/s ÷ PyTorch img/s;  memory ratio = minisgd peak MB ÷ PyTorch peak MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
