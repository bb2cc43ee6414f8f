"""The worker side of lecture 11 (many workers): what each of the K processes does, started by the lecture.

    mpiexec -n 4 python -m minisgd.lecture_workers TASK RESULT.json [--data-dir DIR] [--size smoke|default|full]

Tasks: ``equivalence`` (K workers × B/K against one process with B: the
weights after some updates), ``allreduce`` (time of MPI's and the ring's
all-reduce against the message size), ``step`` (compute and communication
per step of lenet and small_vgg), ``local-sgd`` (H = 1, 4, 16: test accuracy
against communication rounds), ``async`` (a parameter server: loss and
staleness). Rank 0 writes the numbers to RESULT.json; the lecture draws them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from minisgd import distributed, models, nn, optim, random, recipe
from minisgd.nn import functional as F
from minisgd.tensor import Tensor
from minisgd.train import evaluate

SIZES = {  # (training images, test images, epochs of local SGD / async)
    "smoke": (512, 256, 1),  # 1 epoch: the lecture's --smoke trains one epoch too
    "default": (2_048, 1_000, 3),
    "full": (8_192, 2_000, 10),
}


LR = 0.01  # the small network's rate at B = 64 (0.05 diverges to chance at B/K = 16)


def small_net() -> nn.Module:
    """The lectures' small fully connected network, 3072 → 64 → 10."""
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 64), nn.ReLU(), nn.Linear(64, 10))


def data(options, n_train, n_test, batch_size, seed=0):
    if options.data_dir:
        train, test = recipe.load_datasets("cifar10", data_dir=options.data_dir, train_size=n_train,
                                           test_size=n_test)
    else:
        train, test = recipe.load_datasets("synthetic", train_size=n_train, test_size=n_test, seed=seed)
    return recipe.build_loaders(train, test, batch_size=batch_size, seed=seed)


def equivalence(options, size):
    """LeNet, 24 updates of the global batch B = 64 on K workers; rank 0's weights."""
    workers = distributed.Workers("sync")
    train_loader, _ = data(options, 64 * 24, 100, 64)
    random.manual_seed(0)
    model = recipe.build_model("lenet")
    optimizer = recipe.build_optimizer(model, lr=0.05, momentum=0.9, weight_decay=5e-4)
    workers.fit(model, workers.shard(train_loader), optimizer, epochs=1, progress=False)
    return {"weights": {k: v.tolist() for k, v in model.state_dict().items()}, "workers": workers.size}


def allreduce_timing(options, size):
    """Median time of one all-reduce of n float32 numbers, for MPI and the ring, n = 2^0 … 2^22."""
    comm = distributed.communicator()
    exponents = range(0, 19 if size == "smoke" else 23, 2)
    repeats = 3 if size == "smoke" else 7
    out = {"n": [], "mpi": [], "ring": []}
    for e in exponents:
        n = 2 ** e
        buffer = np.ones(n, dtype=np.float32)
        out["n"].append(n)
        for algorithm in ("mpi", "ring"):
            times = []
            for _ in range(repeats if n < 2 ** 20 else 3):
                comm.Barrier()
                started = time.perf_counter()
                distributed.allreduce([buffer], "sum", algorithm, comm=comm)
                times.append(time.perf_counter() - started)
            out[algorithm].append(float(np.max(comm.allgather(float(np.median(times))))))
    return out


def step_parts(options, size):
    """Compute (forward + backward of B/K images) and communication (gradient all-reduce) per step."""
    comm = distributed.communicator()
    rank, k = distributed.world()
    out = {}
    batch = 64 if size == "smoke" else 128
    for name in ("lenet", "small_vgg"):
        random.manual_seed(0)
        model = getattr(models, name)()
        params = list(model.parameters())
        rng = np.random.default_rng(rank)
        x = Tensor(rng.standard_normal((batch // k, 3, 32, 32)).astype(np.float32))
        y = Tensor(rng.integers(0, 10, size=batch // k))
        compute, communicate = [], []
        for step in range(3 if size == "smoke" else 4):
            if comm is not None:
                comm.Barrier()
            started = time.perf_counter()
            loss = F.cross_entropy(model(x), y)
            for p in params:
                p.grad = None
            loss.backward()
            middle = time.perf_counter()
            distributed.allreduce([p.grad for p in params], "mean", "ring", comm=comm)
            done = time.perf_counter()
            if step > 0:
                compute.append(middle - started)
                communicate.append(done - middle)
        gathered = comm.allgather((float(np.median(compute)), float(np.median(communicate)))) if comm else [
            (float(np.median(compute)), float(np.median(communicate)))]
        out[name] = {"compute": max(g[0] for g in gathered), "comm": max(g[1] for g in gathered),
                     "weights": int(sum(p.data.size for p in params)), "batch": batch}
    return out


def local_sgd(options, size):
    """H = 1, 4, 16 on K workers: rank 0's test accuracy (at averaged weights) against communication rounds."""
    n_train, n_test, epochs = SIZES[size]
    results = {}
    for every in (1, 4, 16):
        workers = distributed.Workers("local-sgd", sync_every=every)
        train_loader, test_loader = data(options, n_train, n_test, 64)
        random.manual_seed(0)
        model = small_net()
        optimizer = recipe.build_optimizer(model, lr=LR, momentum=0.9, weight_decay=5e-4)
        curve = {"rounds": [0], "acc": [evaluate(model, test_loader)["acc"] if workers.rank == 0 else 0.0]}

        def on_step_end(t, workers=workers, curve=curve, model=model, loader=test_loader):
            if t % 16 == 0 and workers.rank == 0:  # 16 is a multiple of every H: the weights are averaged here
                curve["rounds"].append(workers.rounds)
                curve["acc"].append(evaluate(model, loader)["acc"])

        history = workers.fit(model, workers.shard(train_loader), optimizer, epochs=epochs, progress=False,
                              test_loader=test_loader, on_step_end=on_step_end)
        results[str(every)] = {**curve, "final_acc": history.last("test_acc"), "total_rounds": workers.rounds,
                               "updates": len(history.step_loss)}
    return results


def asynchronous(options, size):
    """The parameter server on K processes (K − 1 workers): its loss per update and each gradient's staleness τ."""
    n_train, n_test, epochs = SIZES[size]
    workers = distributed.Workers("async")
    train_loader, test_loader = data(options, n_train, n_test, 64)
    random.manual_seed(0)
    model = small_net()
    optimizer = optim.SGD(model.parameters(), lr=LR, momentum=0.9, weight_decay=5e-4)
    history = workers.fit(model, workers.shard(train_loader), optimizer, epochs=epochs, progress=False,
                          test_loader=test_loader)
    return {"step_loss": history.step_loss, "staleness": workers.staleness, "final_acc": history.last("test_acc"),
            "final_loss": history.last("test_loss"), "workers": workers.size - 1}


TASKS = {"equivalence": equivalence, "allreduce": allreduce_timing, "step": step_parts, "local-sgd": local_sgd,
         "async": asynchronous}

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("task", choices=TASKS)
    parser.add_argument("result", type=Path)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--size", choices=SIZES, default="default")
    options = parser.parse_args()
    result = TASKS[options.task](options, options.size)
    if distributed.world()[0] == 0:
        options.result.write_text(json.dumps(result))
