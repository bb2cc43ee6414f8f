"""Where a training step's time goes, part by part: minisgd beside PyTorch CPU.

    python benchmarks/step_breakdown.py            # batch 128, 2 threads, 3 alternating rounds (a minute)
    python benchmarks/step_breakdown.py --quick    # a few seconds: batch 16, 3 steps, one round
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/step_breakdown.py   # OpenBLAS's own kernel

The step is ``benchmarks/train_step.py``'s (forward, cross-entropy, backward,
SGD with momentum 0.9), and each part is its forward and its backward
together:

- **minisgd**: a clock around each layer's ``forward`` and around each
  backward function the engine records (the ``backward`` passed to
  ``from_op``), grouped by layer type and by operation name; ``zero_grad``
  and ``step`` are the update.
- **PyTorch**: ``torch.profiler`` over the same steps; each top-level event
  (an ``aten::`` call of the forward, an ``autograd::engine::evaluate_function``
  of the backward, ``Optimizer.step`` / ``zero_grad``) goes to the part its
  name says, by its total CPU time.

Clocks cost time themselves (a few µs per operation in both), so the parts
add up to a little more than the plain step, which the last row gives
without clocks. Each framework runs in a fresh process; with ``--rounds`` the
two alternate and each keeps the round with its fastest plain step.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_step  # noqa: E402  (the step, the worker processes, the BLAS description)

PARTS = ("convolutions", "max pooling", "ReLU", "linear layers", "loss", "update", "other")


def part_of(name: str) -> str:
    """The part an operation, layer or profiler event belongs to, from its name (either framework's)."""
    lowered = name.lower()
    for part, keys in (("convolutions", ("conv",)), ("max pooling", ("max_pool", "maxpool")),
                       ("ReLU", ("relu", "threshold")), ("linear layers", ("linear", "addmm", "tbackward")),
                       ("loss", ("cross_entropy", "log_softmax", "logsoftmax", "nll")),
                       ("update", ("optimizer", "zero_grad", "accumulategrad"))):
        if any(key in lowered for key in keys):
            return part
    return "other"


def breakdown_minisgd(network: str, batch: int, warmup: int, steps: int) -> dict[str, float]:
    """Seconds per step of each part (the median over ``steps`` clocked steps)."""
    import importlib

    import minisgd.nn.functional
    import minisgd.ops

    engine = importlib.import_module("minisgd.tensor")  # the module (``minisgd.tensor`` is also a function)

    model, optimizer, step = train_step.minisgd_training_step(network, batch)
    totals: dict[str, float] = {}

    def clocked(function, part):
        def run(*args, **kwargs):
            start = time.perf_counter()
            result = function(*args, **kwargs)
            totals[part] = totals.get(part, 0.0) + time.perf_counter() - start
            return result
        return run

    original_from_op = engine.from_op

    def from_op_clocked(data, parents, backward, op, **kwargs):
        return original_from_op(data, parents, clocked(backward, part_of(op)), op, **kwargs)

    for layer in model:
        layer.forward = clocked(layer.forward, part_of(type(layer).__name__))
    optimizer.zero_grad = clocked(optimizer.zero_grad, "update")
    optimizer.step = clocked(optimizer.step, "update")
    # the library's functions, clocked for as long as this runs
    functional = minisgd.nn.functional
    patched = [(module, "from_op", from_op_clocked) for module in (engine, minisgd.ops, functional)]
    patched.append((functional, "cross_entropy", clocked(functional.cross_entropy, "loss")))
    originals = [(module, name, getattr(module, name)) for module, name, _ in patched]
    per_step: dict[str, list[float]] = {part: [] for part in PARTS}
    try:
        for module, name, replacement in patched:
            setattr(module, name, replacement)
        for index in range(warmup + steps):
            totals.clear()
            step()
            if index >= warmup:
                for part in PARTS:
                    per_step[part].append(totals.get(part, 0.0))
    finally:
        for module, name, original in originals:
            setattr(module, name, original)
    return {part: statistics.median(values) for part, values in per_step.items()}


def breakdown_torch(network: str, batch: int, warmup: int, steps: int) -> dict[str, float]:
    """Seconds per step of each part: torch.profiler's top-level events over ``steps`` steps, averaged."""
    from torch.profiler import ProfilerActivity, profile

    _, _, step = train_step.torch_training_step(network, batch)
    for _ in range(warmup):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(steps):
            step()
    parts = dict.fromkeys(PARTS, 0.0)
    for event in profiler.events():
        if event.cpu_parent is None:  # a top-level event: its total time holds everything under it
            parts[part_of(event.name)] += event.cpu_time_total * 1e-6 / steps
    return parts


def worker(kind: str, network: str, batch: int, warmup: int, steps: int) -> dict:
    """One framework's parts and its plain step (no clocks), in this process."""
    if kind == "minisgd":
        parts = breakdown_minisgd(network, batch, warmup, steps)
        plain = train_step.worker_minisgd(network, batch, warmup, steps)
    else:
        parts = breakdown_torch(network, batch, warmup, steps)
        plain = train_step.worker_torch(network, batch, warmup, steps)
    return {"parts": parts, "seconds": plain["seconds"]}


def main(argv: list[str] | None = None) -> int:
    count = train_step.bounded_int
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds: batch 16, 1 warm-up, 3 steps, 1 round")
    parser.add_argument("--batch", type=count(1, 4096), nargs="+", help="images per step (default 128)")
    parser.add_argument("--threads", type=count(1, 256), default=2, help="BLAS/OpenMP threads (default 2)")
    parser.add_argument("--warmup", type=count(0, 1000), help="untimed steps first (default 3)")
    parser.add_argument("--steps", type=count(1, 1000), help="clocked steps (default 10)")
    parser.add_argument("--rounds", type=count(1, 100), help="alternating rounds, fastest kept (default 3)")
    parser.add_argument("--networks", nargs="+", choices=train_step.NETWORKS, default=list(train_step.NETWORKS))
    parser.add_argument("--no-torch", action="store_true", help="minisgd only")
    parser.add_argument("--device", choices=("cpu",), default="cpu", help=argparse.SUPPRESS)
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.batch = args.batch or [16 if args.quick else 128]
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    args.steps = args.steps or (3 if args.quick else 10)
    args.rounds = args.rounds or (1 if args.quick else 3)
    if args.worker:
        print(json.dumps(worker(*args.worker, args.batch[0], args.warmup, args.steps)))
        return 0

    frameworks = ["minisgd"] + (["pytorch"] if not args.no_torch and train_step._torch_installed() else [])
    batch = args.batch[0]
    print(f"cpu, float32, batch {batch}, {args.threads} threads, median of {args.steps} clocked steps "
          f"(PyTorch: their mean under torch.profiler), fastest of {args.rounds} alternating round(s)")
    sgemm = train_step._run_worker(args, batch, "sgemm", *frameworks)  # train_step.py's worker: the BLAS header
    if sgemm:
        print(sgemm["blas"] + (f"; {sgemm['torch']}" if "torch" in sgemm else ""))
    header = (f"{'network':<10} {'part':<15} {'minisgd ms':>10} {'share':>6} {'PyTorch ms':>10} {'share':>6} "
              f"{'ratio':>7}")
    print(header)
    print("-" * len(header))
    script = Path(__file__).resolve()
    for network in args.networks:
        best: dict[str, dict | None] = dict.fromkeys(frameworks)
        for _ in range(args.rounds):
            for framework in frameworks:
                result = train_step._run_worker(args, batch, "minisgd" if framework == "minisgd" else "torch", network,
                                                script=script)
                if result and (best[framework] is None or result["seconds"] < best[framework]["seconds"]):
                    best[framework] = result
        ours, theirs = best["minisgd"], best.get("pytorch")
        if ours is None:
            print(f"{network:<10} failed")
            continue
        rows = [(part, ours["parts"][part], theirs["parts"][part] if theirs else float("nan")) for part in PARTS]
        rows.append(("sum of parts", sum(ours["parts"].values()),
                     sum(theirs["parts"].values()) if theirs else float("nan")))
        rows.append(("step, no clocks", ours["seconds"], theirs["seconds"] if theirs else float("nan")))
        our_total, their_total = rows[-2][1], rows[-2][2]
        for part, our_seconds, their_seconds in rows:
            ratio = f"{their_seconds / our_seconds:.2f}x" if our_seconds > 0 and theirs else ""
            print(f"{network:<10} {part:<15} {1e3 * our_seconds:10.2f} {100 * our_seconds / our_total:5.0f}% "
                  f"{1e3 * their_seconds:10.2f} {100 * their_seconds / their_total:5.0f}% {ratio:>7}")
    print("ratio = PyTorch ms ÷ minisgd ms (above 1: minisgd faster); each part is its forward and backward together")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
