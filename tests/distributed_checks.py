"""What tests/test_distributed.py runs under ``mpiexec -n K``: each check saves rank 0's numbers to OUT/<check>.npz.

    mpiexec -n 4 python tests/distributed_checks.py OUT allreduce gradients trajectory batchnorm local-sgd async

The expected values are computed by the test in one ordinary process (NumPy sums,
``train.fit`` with the whole batch), never here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from minisgd import distributed, nn, random, recipe  # noqa: E402
from minisgd.data import DataLoader  # noqa: E402

SIZES = (1, 2, 3, 5, 7, 64, 1001)  # some smaller than K, odd sizes


def rank_inputs(rank: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Rank ``rank``'s arrays: integer-valued float64 and random float32, one of each size in SIZES."""
    rng = np.random.default_rng(100 + rank)
    integers = [rng.integers(-1000, 1000, size=n).astype(np.float64) for n in SIZES]
    floats = [rng.standard_normal(n).astype(np.float32) for n in SIZES]
    return integers, floats


def float64_data(n: int = 320, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 3, 32, 32)), rng.integers(0, 10, size=n)


def float64_run(workers=None, *, batch_size=16, steps=20, model="lenet"):
    """SGD (momentum 0.9, weight decay 5e-4) in float64 on random images, ``steps`` updates of ``batch_size``."""
    from minisgd.train import fit

    random.manual_seed(0)
    net = recipe.build_model(model).double()
    loader = DataLoader(float64_data(batch_size * steps), batch_size=batch_size, shuffle=True, seed=0)
    optimizer = recipe.build_optimizer(net, lr=0.05, momentum=0.9, weight_decay=5e-4)
    if workers is None:
        history = fit(net, loader, optimizer, epochs=1, progress=False)
    else:
        history = workers.fit(net, workers.shard(loader), optimizer, epochs=1, progress=False)
    return net, history


def first_batch_gradients(workers=None, batch_size=16):
    """float32 LeNet's gradients on the first global batch of the built-in data."""
    from minisgd.nn import functional as F

    random.manual_seed(0)
    net = recipe.build_model("lenet")
    train, test = recipe.load_datasets("synthetic", train_size=64, test_size=16, seed=0)
    loader, _ = recipe.build_loaders(train, test, batch_size=batch_size, seed=0)
    optimizer = recipe.build_optimizer(net, lr=0.05)
    source = loader if workers is None else workers.shard(loader)
    x, y = next(iter(source))
    loss = F.cross_entropy(net(x), y)
    if workers is None:
        optimizer.zero_grad()
        loss.backward()
        value = loss.item()
    else:
        value, _, _ = workers.backward(optimizer, loss, 0, len(x))
    return [np.asarray(p.grad) for p in net.parameters()], value


def bn_net():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 30 * 30, 10))


def bn_gradients(workers=None, x=None, y=None):
    """The little BatchNorm network's gradients on the batch (x, y) (its slice, with ``workers``)."""
    from minisgd.nn import functional as F
    from minisgd.tensor import Tensor

    random.manual_seed(0)
    net = bn_net().double()
    optimizer = recipe.build_optimizer(net, lr=0.1, momentum=0.0, weight_decay=0.0)
    if workers is not None:
        k, size = workers.rank, workers.size
        lo, hi = k * len(x) // size, (k + 1) * len(x) // size
        x, y = x[lo:hi], y[lo:hi]
    loss = F.cross_entropy(net(Tensor(x)), Tensor(y))
    if workers is None:
        optimizer.zero_grad()
        loss.backward()
    else:
        workers.backward(optimizer, loss, 0, len(x))
    return net, [np.asarray(p.grad) for p in net.parameters()]


def main(out: Path, checks: list[str]) -> None:
    rank, size = distributed.world()
    saved: dict[str, dict[str, np.ndarray]] = {}
    if "allreduce" in checks:
        integers, floats = rank_inputs(rank)
        result = {}
        for algorithm in distributed.ALGORITHMS:
            for kind, arrays in (("int", integers), ("float", floats)):
                for op in distributed.OPS:
                    reduced = distributed.allreduce(arrays, op, algorithm)
                    everyone = distributed.communicator().allgather(np.concatenate(reduced))
                    result[f"{algorithm}.{kind}.{op}.same_on_all"] = np.array(
                        all(np.array_equal(everyone[0], other) for other in everyone))
                    for n, array in zip(SIZES, reduced):
                        result[f"{algorithm}.{kind}.{op}.{n}"] = array
        saved["allreduce"] = result
    if "gradients" in checks:
        for mode in ("sync", "ring"):
            grads, loss = first_batch_gradients(distributed.Workers(mode))
            saved[f"gradients-{mode}"] = {"loss": np.array(loss), **{str(i): g for i, g in enumerate(grads)}}
    if "trajectory" in checks:
        for mode in ("sync", "ring"):
            net, history = float64_run(distributed.Workers(mode))
            saved[f"trajectory-{mode}"] = {**net.state_dict(), "step_loss": np.array(history.step_loss)}
    if "local-sgd" in checks:
        for every in (1, 4):
            net, history = float64_run(distributed.Workers("local-sgd", sync_every=every))
            saved[f"local-sgd-{every}"] = {**net.state_dict(), "step_loss": np.array(history.step_loss)}
    if "batchnorm" in checks:
        x, y = float64_data(16, seed=3)
        net, grads = bn_gradients(distributed.Workers("sync"), x, y)
        saved["batchnorm"] = {**{str(i): g for i, g in enumerate(grads)},
                              "running_mean": np.asarray(net[1].running_mean)}
    if "async" in checks:
        workers = distributed.Workers("async")
        net, history = float64_run(workers)
        if rank == 0:
            saved["async"] = {**net.state_dict(), "step_loss": np.array(history.step_loss),
                              "staleness": np.array(workers.staleness)}
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        for name, arrays in saved.items():
            np.savez(out / f"{name}.npz", **arrays)
        print(f"saved {sorted(saved)} from {size} workers", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
