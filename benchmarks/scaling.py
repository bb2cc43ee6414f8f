"""Data-parallel scaling on this machine: K = 1, 2, 4 workers, step time, images/s, communication share.

    python benchmarks/scaling.py                  # lenet and small_vgg, global batch 128, K = 1 2 4, 3 rounds
    python benchmarks/scaling.py --quick          # a few seconds (what the test suite runs)
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/scaling.py   # OpenBLAS picks its kernel

Each K runs as ``mpiexec -n K python benchmarks/scaling.py --worker …`` (K = 1
too, so every row pays the same start-up). One synchronous data-parallel step
of the global batch B is timed in three parts on every worker, after a
barrier that lines the workers up:

- compute: forward and backward pass of the worker's B/K images;
- communication: the all-reduce of the flattened gradients (MPI's
  Allreduce, or minisgd's ring), including any wait for a slower worker;
- update: the SGD step (momentum 0.9).

The table gives the median over ``--steps`` steps of the slowest worker's
times (rank 0 gathers them), the images per second B / step, the
communication share of the step, and the speed-up over K = 1 as a ratio.
The K values alternate in every round (``--rounds``), and the table quotes
the range over rounds of the step time. Every worker gets one BLAS thread
(``--threads``): with K workers on a machine of C cores, K > C
oversubscribes the cores, and the speed-up measures that, not the algorithm.
K = 1 runs twice: on one thread (what each worker gets), and on all C cores,
the fair peer — one process using the whole machine; the last two columns
are the speed-ups over each.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing minisgd
NETWORKS = ("lenet", "small_vgg")


def worker(args: argparse.Namespace) -> None:
    import numpy as np

    from minisgd import distributed, models, optim, random
    from minisgd.nn import functional as F
    from minisgd.tensor import Tensor

    rank, size = distributed.world()
    comm = distributed.communicator() if size > 1 else None
    random.manual_seed(0)
    model = getattr(models, args.network)()
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    per_worker = args.batch_size // size
    rng = np.random.default_rng(rank)
    x = Tensor(rng.standard_normal((per_worker, 3, 32, 32)).astype(np.float32))
    y = Tensor(rng.integers(0, 10, size=per_worker))
    params = list(model.parameters())
    times = []
    for step in range(args.warmup + args.steps):
        if comm is not None:
            comm.Barrier()
        started = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        computed = time.perf_counter()
        averaged = distributed.allreduce([p.grad for p in params], "mean", args.algorithm, comm=comm)
        for p, g in zip(params, averaged):
            p.grad = g
        communicated = time.perf_counter()
        optimizer.step()
        done = time.perf_counter()
        if step >= args.warmup:
            times.append((computed - started, communicated - computed, done - communicated, done - started))
    gathered = comm.gather(times, root=0) if comm is not None else [times]
    if rank == 0:
        slowest = np.max(np.array(gathered), axis=0)  # per step: the slowest worker's parts
        median = np.median(slowest, axis=0)
        n_weights = sum(p.data.size for p in params)
        print(json.dumps({"compute": median[0], "comm": median[1], "update": median[2], "step": median[3],
                          "weights": int(n_weights)}))


def launch(network: str, k: int, algorithm: str, args: argparse.Namespace, mpiexec: str) -> dict:
    threads = os.cpu_count() if algorithm == "all-cores" else args.threads
    algorithm = "mpi" if algorithm == "all-cores" else algorithm
    env = {**os.environ, **{name: str(threads) for name in
                            ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
    command = [mpiexec, "-n", str(k), sys.executable, __file__, "--worker", "--network", network,
               "--algorithm", algorithm, "--batch-size", str(args.batch_size), "--steps", str(args.steps),
               "--warmup", str(args.warmup)]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"scaling: K = {k} {network} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--network", choices=NETWORKS, default="lenet", help=argparse.SUPPRESS)
    parser.add_argument("--algorithm", choices=("mpi", "ring"), default="mpi", help=argparse.SUPPRESS)
    parser.add_argument("--networks", nargs="+", choices=NETWORKS, default=list(NETWORKS))
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2, 4])
    parser.add_argument("--batch-size", type=int, default=128, help="the global batch B (default: 128)")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads per worker (default: 1)")
    parser.add_argument("--quick", action="store_true", help="batch 16, 2 steps, 1 round, lenet")
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if args.quick:
        args.batch_size, args.steps, args.warmup, args.rounds, args.networks = 16, 2, 1, 1, ["lenet"]
    mpiexec = shutil.which("mpiexec", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if mpiexec is None:
        raise SystemExit("scaling: mpiexec not found (pip install mpi4py mpich)")
    import numpy  # noqa: F401  (threadpoolctl sees the BLAS NumPy loaded)
    from threadpoolctl import threadpool_info

    blas = next((i for i in threadpool_info() if i.get("user_api") == "blas"), {})
    print(f"# global batch B = {args.batch_size}, {args.threads} BLAS thread(s) per worker, {os.cpu_count()} cores; "
          f"BLAS {blas.get('internal_api', '?')} {blas.get('version', '?')} kernel {blas.get('architecture', '?')}; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')} "
          f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE', 'unset')}")
    # K = 1 twice: on one thread (the workers' share) and on every core (the fair single-process peer)
    cases = [(net, k, alg) for net in args.networks for k in args.workers
             for alg in (("mpi", "ring") if k > 1 else ("mpi", "all-cores"))]
    results: dict = {case: [] for case in cases}
    for round_index in range(args.rounds):
        order = cases if round_index % 2 == 0 else cases[::-1]  # alternate the order between rounds
        for case in order:
            results[case].append(launch(*case, args, mpiexec))
    print(f"{'network':10} {'K':>2} {'all-reduce':10} {'step ms':>15} {'img/s':>7} {'compute ms':>10} "
          f"{'comm ms':>8} {'comm %':>6} {'vs K=1, 1 thread':>16} {f'vs K=1, {os.cpu_count()} threads':>17}")
    best_of = {case: min(results[case], key=lambda r: r["step"]) for case in cases}
    for net, k, alg in cases:
        rows, best = results[(net, k, alg)], best_of[(net, k, alg)]
        steps = [1e3 * r["step"] for r in rows]
        one, every = best_of[(net, 1, "mpi")]["step"], best_of[(net, 1, "all-cores")]["step"]
        label = {"all-cores": f"- ({os.cpu_count()} thr)", "mpi": "mpi" if k > 1 else "- (1 thr)"}.get(alg, alg)
        print(f"{net:10} {k:>2} {label:10} {min(steps):6.1f} – {max(steps):6.1f} "
              f"{args.batch_size / best['step']:7.0f} {1e3 * best['compute']:10.1f} {1e3 * best['comm']:8.2f} "
              f"{100 * best['comm'] / best['step']:6.1f} {one / best['step']:15.2f}× {every / best['step']:16.2f}×")


if __name__ == "__main__":
    main()
