"""Test accuracy of SGD+momentum, Adam, AdamW and SGD+SWA on the same network, data and budget.

Not a speed benchmark: it answers "why not Adam?" with numbers. Every
optimizer trains ``lenet()`` from the same initial weights on the same
mini-batches (same seed) for the same number of epochs, each with the usual
recipe for its kind, and the script prints one table of test accuracies::

    python benchmarks/compare_optimizers.py --dataset synthetic --epochs 4
    python benchmarks/compare_optimizers.py --dataset cifar10 --data-dir ~/data --download --epochs 4
    python benchmarks/compare_optimizers.py --quick     # a few seconds; the test suite runs this

``--data-dir`` defaults to ``$MINISGD_DATA`` or ``~/.cache/minisgd``;
``--download`` fetches CIFAR-10 there (163 MB, MD5-checked) when it is missing.

The recipes (cosine decay to 0 over the run for every rate):

- ``sgd``:   SGD, lr 0.05, momentum 0.9, weight decay 5e-4 (the command line's defaults);
- ``adam``:  Adam, lr 1e-3 (PyTorch's default), no weight decay;
- ``adamw``: AdamW, lr 1e-3, weight decay 0.05 (decoupled);
- ``swa``:   the ``sgd`` recipe until half the run, then (``swa_schedule``) a
  one-epoch cosine anneal to swa_lr 0.01 that is held; the weights are averaged
  every quarter epoch from the start of SWA on, and the table gives the
  averaged model's accuracy beside the last iterate's (``update_bn`` is
  called, a no-op for lenet, which has no BatchNorm).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import minisgd  # noqa: E402
from minisgd import data, models, optim, recipe, schedules  # noqa: E402
from minisgd.optim.swa_utils import AveragedModel, swa_schedule, update_bn  # noqa: E402
from minisgd.train import evaluate, fit  # noqa: E402

OPTIMIZERS = ("sgd", "adam", "adamw", "swa")


def load(
    dataset: str, data_dir: str | None, seed: int, batch_size: int, sizes: tuple[int, int] = (10_000, 2_000),
    download: bool = False,
) -> tuple[data.DataLoader, data.DataLoader]:
    """The recipe's data and loaders (CIFAR-10: every data_batch_i in the folder; the shared subset has 1 … 4)."""
    train_size, test_size = sizes if dataset == "synthetic" else (None, None)
    train, test = recipe.load_datasets(dataset, data_dir=data_dir, download=download, train_size=train_size,
                                       test_size=test_size, seed=seed)
    if dataset == "cifar10":
        print(f"# data: {train.folder}: {len(train)} training images ({train.describe_files()}), "
              f"{len(test)} test images", flush=True)
    return recipe.build_loaders(train, test, batch_size=batch_size, seed=seed)


def run(name: str, train_loader: data.DataLoader, test_loader: data.DataLoader, epochs: int, seed: int) -> dict:
    minisgd.random.manual_seed(seed)
    model = models.lenet()
    steps_per_epoch = len(train_loader)
    steps = epochs * steps_per_epoch
    train_loader.set_epoch(0)
    swa_model, on_step_end = None, None
    if name == "sgd":
        optimizer = optim.SGD(model.parameters(), lr=schedules.cosine(0.05, steps), momentum=0.9, weight_decay=5e-4)
    elif name == "adam":
        optimizer = optim.Adam(model.parameters(), lr=schedules.cosine(1e-3, steps))
    elif name == "adamw":
        optimizer = optim.AdamW(model.parameters(), lr=schedules.cosine(1e-3, steps), weight_decay=0.05)
    else:
        swa_start = (epochs // 2) * steps_per_epoch
        lr = swa_schedule(schedules.cosine(0.05, steps), swa_start, swa_lr=0.01, anneal_steps=steps_per_epoch)
        optimizer = optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
        swa_model = AveragedModel(model)
        every = max(1, steps_per_epoch // 4)

        def on_step_end(t: int) -> None:
            if t > swa_start and (t - swa_start) % every == 0:
                swa_model.update_parameters(model)

    started = time.perf_counter()
    history = fit(model, train_loader, optimizer, epochs=epochs, test_loader=test_loader,
                  on_step_end=on_step_end, progress=False)
    result = {"optimizer": name, "test_acc": history.last("test_acc"), "seconds": time.perf_counter() - started}
    if swa_model is not None:
        update_bn(train_loader, swa_model)
        result["swa_test_acc"] = evaluate(swa_model, test_loader)["acc"]
        result["averaged"] = int(swa_model.n_averaged)
    return result


def cell(values: list[float]) -> str:
    """Mean accuracy, ± the standard deviation over seeds when there are several."""
    return f"{np.mean(values):.4f}" + (f" ± {np.std(values):.4f}" if len(values) > 1 else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("synthetic", "cifar10"), default="synthetic")
    parser.add_argument("--data-dir", default=None,
                        help="CIFAR-10 folder (holding cifar-10-batches-py); default $MINISGD_DATA or ~/.cache/minisgd")
    parser.add_argument("--download", action="store_true",
                        help="download CIFAR-10 (163 MB, MD5-checked) into --data-dir when it is missing")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--optimizers", choices=OPTIMIZERS, nargs="+", default=list(OPTIMIZERS))
    parser.add_argument("--quick", action="store_true",
                        help="a few seconds: 256 synthetic training images, 128 test images, 2 epochs (tests run this)")
    args = parser.parse_args(argv)
    sizes = (256, 128) if args.quick else (10_000, 2_000)
    if args.quick:
        args.dataset, args.epochs = "synthetic", 2

    rows = []
    for seed in args.seeds:
        try:
            train_loader, test_loader = load(args.dataset, args.data_dir, seed, args.batch_size, sizes,
                                             download=args.download)
        except ValueError as error:  # the recipe's one-line message for missing or damaged data
            print(f"compare_optimizers.py: --data-dir: {error}", file=sys.stderr)
            return 2
        for name in args.optimizers:
            row = run(name, train_loader, test_loader, args.epochs, seed)
            rows.append({**row, "seed": seed})
            print(f"# {row}", flush=True)
    print(f"\nlenet on {args.dataset} ({len(train_loader.inputs)} train / {len(test_loader.inputs)} test images), "
          f"{args.epochs} epochs, batch {args.batch_size}, seeds {args.seeds}")
    print(f"{'optimizer':<10} {'test acc (last iterate)':>24} {'test acc (SWA)':>15} {'s/run':>7}")
    for name in args.optimizers:
        mine = [r for r in rows if r["optimizer"] == name]
        acc = np.array([r["test_acc"] for r in mine])
        swa = [r["swa_test_acc"] for r in mine if "swa_test_acc" in r]
        seconds = np.mean([r["seconds"] for r in mine])
        print(f"{name:<10} {cell(acc):>24} {cell(swa) if swa else '':>15} {seconds:>7.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
