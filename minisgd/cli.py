"""``python -m minisgd``: train a CNN, run the LR range test, or plot schedules.

    python -m minisgd train                      # LeNet on the built-in dataset, a few minutes on a CPU
    python -m minisgd train --dataset cifar10 --model small-vgg --augment --schedule cosine --epochs 30
    python -m minisgd train --resume runs/<run>/checkpoint.npz --epochs 20
    python -m minisgd lr-find                    # LR range test, saves its plot
    python -m minisgd schedules --schedule step cosine sgdr   # plots schedules to a PNG

Every schedule parameter counted in time (``--step-size``, ``--milestones``,
``--t0``) is in **epochs**; the command turns it into optimizer updates with the
number of mini-batches per epoch, so the schedule moves every mini-batch (SGDR
in fractional epochs, as in the paper). ``--warmup-steps`` counts updates.

Bad arguments get one line that names the argument and what is allowed, and
exit code 2. A run never writes into a folder that already holds another run.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

SCHEDULES = ("constant", "step", "multistep", "exponential", "linear", "cosine", "sgdr", "cyclic", "one-cycle")
MODELS = ("lenet", "small-vgg")
DATASETS = ("synthetic", "cifar10")

RUN_FILES = ("checkpoint.npz", "history.json", "curves.png")


class UsageError(Exception):
    """A bad command-line value: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line (with the fix) and exit with code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see `python -m {self.prog} --help`)")


# --------------------------------------------------------------------- parser
def _at_least(kind: type, minimum: int):
    """An argparse type: a finite ``kind`` (int or float) >= ``minimum``; argparse names the option."""
    noun = "an integer" if kind is int else "a finite number"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {noun} >= {minimum}; got {text!r}") from None
        if not math.isfinite(value) or value < minimum:
            raise argparse.ArgumentTypeError(f"must be {noun} >= {minimum}; got {text}")
        return value

    return parse


_positive_int = _at_least(int, 1)
_non_negative_int = _at_least(int, 0)
_non_negative_float = _at_least(float, 0)


def _add_data_and_model(parser: argparse.ArgumentParser, model_default: str = "lenet") -> None:
    group = parser.add_argument_group("data and model")
    group.add_argument("--dataset", choices=DATASETS, default="synthetic",
                       help="'synthetic': the built-in offline CIFAR-shaped set of coloured shapes (default); "
                            "'cifar10': the real CIFAR-10 from --data-dir")
    group.add_argument("--data-dir", default=None,
                       help="folder holding cifar-10-batches-py/ or cifar-10-python.tar.gz "
                            "(default: $MINISGD_DATA or ~/.cache/minisgd)")
    group.add_argument("--download", action="store_true",
                       help="download CIFAR-10 (163 MB, MD5-checked) into --data-dir when it is missing")
    group.add_argument("--train-size", type=_positive_int, default=None,
                       help="use only the first N training images (default: all; synthetic: 10000)")
    group.add_argument("--test-size", type=_positive_int, default=None,
                       help="use only the first N test images (default: all; synthetic: 2000)")
    group.add_argument("--augment", action="store_true",
                       help="random crop (padding 4) and horizontal flip of the training images")
    group.add_argument("--model", choices=MODELS, default=model_default,
                       help=f"network to train (default: {model_default}); small-vgg is slower and stronger")
    group.add_argument("--batch-norm", action="store_true", help="small-vgg only: BatchNorm after each convolution")
    group.add_argument("--batch-size", type=_positive_int, default=64,
                       help="mini-batch size B (default: 64)")
    group.add_argument("--device", choices=("cpu", "cuda"), default=None,
                       help="where to compute (default: $MINISGD_DEVICE or cpu); cuda needs CuPy and a GPU")
    group.add_argument(
        "--seed", type=_non_negative_int, default=0, help="seed for initialisation, shuffling and dropout (default: 0)"
    )


def build_parser(train_defaults: dict[str, Any] | None = None) -> argparse.ArgumentParser:
    """The parser of ``python -m minisgd``; ``train_defaults`` replaces train's defaults (resuming)."""
    parser = _Parser(prog="minisgd", description="minisgd: neural-network training with SGD, from scratch in NumPy.")
    commands = parser.add_subparsers(dest="command", metavar="{train,lr-find,schedules}", parser_class=_Parser)

    train = commands.add_parser("train", help="train a CNN with SGD, momentum and a learning-rate schedule",
                                description="Train a CNN with SGD + momentum + a learning-rate schedule.")
    _add_data_and_model(train)
    opt = train.add_argument_group("optimisation")
    opt.add_argument("--epochs", type=_positive_int, default=4, help="number of epochs (default: 4)")
    opt.add_argument("--lr", type=_non_negative_float, default=0.05,
                     help="learning rate α (the peak rate for cyclic and one-cycle; default: 0.05)")
    opt.add_argument("--momentum", type=_non_negative_float, default=0.9, help="momentum μ (default: 0.9)")
    opt.add_argument("--nesterov", action="store_true", help="Nesterov momentum")
    opt.add_argument("--weight-decay", type=_non_negative_float, default=5e-4,
                     help="L2 weight decay λ, coupled like PyTorch's (default: 5e-4)")
    sched = train.add_argument_group("learning-rate schedule (times in epochs unless named steps)")
    sched.add_argument(
        "--schedule", choices=SCHEDULES, default="cosine", help="learning-rate schedule (default: cosine)"
    )
    sched.add_argument("--step-size", type=_positive_int, default=1, help="step: epochs between decays (default: 1)")
    sched.add_argument(
        "--milestones",
        type=_positive_int,
        nargs="+",
        default=None,
        help="multistep: epochs at which α is multiplied by --gamma (default: half and three quarters of --epochs)",
    )
    sched.add_argument(
        "--gamma",
        type=float,
        default=None,
        help="decay factor γ (step, multistep: 0.1; exponential: per epoch, 0.5; cyclic exp_range: per step, 0.99994)",
    )
    sched.add_argument("--t0", type=_positive_int, default=1, help="sgdr: epochs in the first cycle T₀ (default: 1)")
    sched.add_argument(
        "--t-mult", type=_positive_int, default=2, help="sgdr: cycle-length multiplier T_mult (default: 2)"
    )
    sched.add_argument("--min-lr", type=_non_negative_float, default=0.0,
                       help="floor η_min of cosine, sgdr and linear; base rate of cyclic (default: 0)")
    sched.add_argument("--cyclic-mode", choices=("triangular", "triangular2", "exp_range"), default="triangular",
                       help="cyclic: how the cycle's height changes (default: triangular)")
    sched.add_argument("--warmup-steps", type=_non_negative_int, default=0,
                       help="linear warm-up over this many updates first (default: 0)")
    out = train.add_argument_group("output")
    out.add_argument("--snapshots", action="store_true",
                     help="with --schedule sgdr or cyclic: keep the weights at the end of each cycle and report "
                          "the snapshot ensemble's accuracy beside the single model's")
    out.add_argument(
        "--out",
        default=None,
        help="folder for history.json, checkpoint.npz and curves.png (default: runs/<model>-<dataset>-<time>)",
    )
    out.add_argument("--resume", default=None, metavar="CHECKPOINT",
                     help="continue a run from its checkpoint.npz (settings come from the checkpoint; "
                          "options given here override them, e.g. more --epochs)")
    out.add_argument("--quiet", action="store_true", help="no progress bars")
    if train_defaults:
        train.set_defaults(**train_defaults)

    finder = commands.add_parser(
        "lr-find",
        help="LR range test: sweep the learning rate exponentially, plot the loss",
        description="LR range test: an exponential ramp of the learning rate over mini-batches.",
    )
    _add_data_and_model(finder)
    finder.add_argument("--start-lr", type=_non_negative_float, default=1e-5, help="first rate (default: 1e-5)")
    finder.add_argument("--end-lr", type=_non_negative_float, default=10.0, help="last rate (default: 10)")
    finder.add_argument("--steps", type=_positive_int, default=100, help="mini-batches in the ramp (default: 100)")
    finder.add_argument("--momentum", type=_non_negative_float, default=0.9, help="momentum μ (default: 0.9)")
    finder.add_argument("--out", default="lr_find.png", help="PNG file for the plot (default: lr_find.png)")

    plot = commands.add_parser("schedules", help="plot learning-rate schedules to a PNG",
                               description="Plot learning-rate schedules, in updates, to a PNG.")
    plot.add_argument("--schedule", choices=SCHEDULES, nargs="+", default=["step", "cosine", "sgdr", "one-cycle"],
                      help="schedules to draw (default: step cosine sgdr one-cycle)")
    plot.add_argument("--lr", type=_non_negative_float, default=0.1, help="base (peak) rate (default: 0.1)")
    plot.add_argument("--epochs", type=_positive_int, default=30, help="epochs to draw (default: 30)")
    plot.add_argument("--steps-per-epoch", type=_positive_int, default=10,
                      help="updates per epoch (default: 10)")
    for name, default in (("--step-size", 10), ("--t0", 2), ("--t-mult", 2)):
        plot.add_argument(name, type=_positive_int, default=default, help=f"as for train (default: {default})")
    plot.add_argument("--milestones", type=_positive_int, nargs="+", default=None, help="as for train")
    plot.add_argument("--gamma", type=float, default=None, help="as for train")
    plot.add_argument("--min-lr", type=_non_negative_float, default=0.0, help="as for train")
    plot.add_argument(
        "--cyclic-mode", choices=("triangular", "triangular2", "exp_range"), default="triangular", help="as for train"
    )
    plot.add_argument("--warmup-steps", type=_non_negative_int, default=0, help="as for train")
    plot.add_argument("--out", default="schedules.png", help="PNG file (default: schedules.png)")
    return parser


# ------------------------------------------------------------------ building
def build_schedule(args: argparse.Namespace, name: str, steps_per_epoch: int) -> Any:
    """The schedule ``name`` in optimizer updates, from epoch-based command-line settings."""
    from minisgd import schedules

    lr, total = args.lr, args.epochs * steps_per_epoch
    if args.min_lr > lr and name in ("cosine", "sgdr", "linear", "cyclic"):
        raise UsageError(f"--min-lr ({args.min_lr}) must not exceed --lr ({lr})")
    try:
        if name == "constant":
            schedule = schedules.constant(lr)
        elif name == "step":
            schedule = schedules.step(lr, step_size=args.step_size * steps_per_epoch, gamma=args.gamma or 0.1)
        elif name == "multistep":
            milestones = args.milestones or sorted({max(1, args.epochs // 2), max(1, 3 * args.epochs // 4)})
            schedule = schedules.multistep(lr, [m * steps_per_epoch for m in milestones], gamma=args.gamma or 0.1)
        elif name == "exponential":
            gamma_per_epoch = args.gamma or 0.5
            schedule = schedules.exponential(lr, gamma=gamma_per_epoch ** (1 / steps_per_epoch))
        elif name == "linear":
            schedule = schedules.linear(lr, total_steps=total, end_lr=args.min_lr)
        elif name == "cosine":
            schedule = schedules.cosine(lr, total_steps=total, min_lr=args.min_lr)
        elif name == "sgdr":
            schedule = schedules.sgdr(lr, t0=args.t0 * steps_per_epoch, t_mult=args.t_mult, min_lr=args.min_lr)
        elif name == "cyclic":
            base = args.min_lr if args.min_lr > 0 else lr / 10
            schedule = schedules.cyclic(base, lr, step_size=max(1, total // 8), mode=args.cyclic_mode,
                                        gamma=args.gamma or 0.99994)
        elif name == "one-cycle":
            schedule = schedules.one_cycle(lr, total_steps=total)
        else:
            raise UsageError(f"--schedule must be one of {', '.join(SCHEDULES)}; got {name!r}")
        if args.warmup_steps > 0:
            schedule = schedules.warmup(schedule, warmup_steps=args.warmup_steps)
    except ValueError as error:
        raise UsageError(str(error)) from None
    return schedule


def build_model(args: argparse.Namespace) -> Any:
    from minisgd import models

    if args.model == "lenet":
        if args.batch_norm:
            raise UsageError("--batch-norm applies to --model small-vgg only")
        return models.lenet()
    return models.small_vgg(batch_norm=args.batch_norm)


def load_datasets(args: argparse.Namespace) -> tuple[Any, Any]:
    """(train, test) datasets as (N, 32, 32, 3) uint8 images with targets and class names."""
    from minisgd import data

    if args.dataset == "synthetic":
        train = data.SyntheticShapes(train=True, n_samples=args.train_size or 10_000, seed=args.seed)
        test = data.SyntheticShapes(train=False, n_samples=args.test_size or 2_000, seed=args.seed)
        return train, test
    try:
        train = data.CIFAR10(args.data_dir, train=True, download=args.download)
        test = data.CIFAR10(args.data_dir, train=False)
    except (data.DatasetNotFoundError, data.CorruptDatasetError) as error:
        raise UsageError(" ".join(str(error).split())) from None  # one line, whatever the message's layout
    return _first(train, args.train_size), _first(test, args.test_size)


def _first(dataset: Any, count: int | None) -> Any:
    from minisgd.data import ArrayDataset

    if count is None:
        return dataset
    return ArrayDataset(dataset.data[:count], np.asarray(dataset.targets)[:count], getattr(dataset, "classes", None))


def build_loaders(args: argparse.Namespace, train_set: Any, test_set: Any, device: str) -> tuple[Any, Any]:
    from minisgd.data import DataLoader, transforms

    mean, std = transforms.channel_stats(train_set.data)
    train_transform = transforms.image_transforms(mean, std, augment=args.augment)
    test_transform = transforms.image_transforms(mean, std, augment=False)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, seed=args.seed,
                              transform=train_transform, device=device)
    test_loader = DataLoader(test_set, batch_size=500, transform=test_transform, device=device)
    return train_loader, test_loader


# ------------------------------------------------------------------ commands
def _default_out(args: argparse.Namespace) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{args.model}-{args.dataset}-{stamp}"


def _check_out_folder(out: Path, resuming_from: Path | None) -> None:
    """Refuse to write a new run over the files of an earlier one."""
    existing = [name for name in RUN_FILES if (out / name).exists()]
    if existing and (resuming_from is None or resuming_from.resolve().parent != out.resolve()):
        raise UsageError(
            f"--out {out} already holds a run ({', '.join(existing)}); choose another --out, "
            f"or continue that run with --resume {out / 'checkpoint.npz'}"
        )


def _resolve_device(args: argparse.Namespace) -> str:
    from minisgd import backend

    device = args.device or backend.default_device()
    try:
        backend.array_module(device)
    except backend.DeviceError as error:
        raise UsageError(f"--device {device}: {error}") from None
    return device


def command_train(args: argparse.Namespace, argv: Sequence[str]) -> int:
    import minisgd
    from minisgd import checkpoint, optim
    from minisgd.atomic import write_text
    from minisgd.ensemble import SnapshotEnsemble, cycle_ends
    from minisgd.plots import plot_history
    from minisgd.train import History, fit

    resumed = None
    if args.resume:
        try:
            resumed = checkpoint.load_checkpoint(args.resume)
        except checkpoint.CheckpointError as error:
            raise UsageError(f"--resume: {error}") from None
        # The checkpoint's settings are the defaults; options given now override them.
        saved = {k: v for k, v in resumed["meta"].get("args", {}).items() if k not in ("resume", "out", "quiet")}
        args = build_parser(train_defaults=saved).parse_args(["train", *argv])
    if args.snapshots and args.schedule not in ("sgdr", "cyclic"):
        raise UsageError(
            f"--snapshots needs a schedule with cycles (--schedule sgdr or cyclic); got --schedule {args.schedule}"
        )
    out = Path(args.out) if args.out else (Path(args.resume).parent if args.resume else _default_out(args))
    _check_out_folder(out, Path(args.resume) if args.resume else None)
    device = _resolve_device(args)

    minisgd.random.manual_seed(args.seed)
    train_set, test_set = load_datasets(args)
    train_loader, test_loader = build_loaders(args, train_set, test_set, device)
    model = build_model(args).to(device)
    steps_per_epoch = len(train_loader)
    schedule = build_schedule(args, args.schedule, steps_per_epoch)
    try:
        optimizer = optim.SGD(model.parameters(), lr=schedule, momentum=args.momentum,
                              nesterov=args.nesterov, weight_decay=args.weight_decay)
    except ValueError as error:
        raise UsageError(str(error)) from None

    history, start_epoch = History(), 0
    if resumed is not None:
        try:
            checkpoint.restore(resumed, model=model, optimizer=optimizer)
        except checkpoint.CheckpointError as error:
            raise UsageError(f"--resume {args.resume}: {error}") from None
        history = History.from_dict(resumed["history"])
        start_epoch = resumed["epoch"]
        if start_epoch >= args.epochs:
            raise UsageError(
                f"--epochs {args.epochs}: the checkpoint has already trained {start_epoch} epochs; ask for more"
            )
        train_loader.set_epoch(start_epoch)

    ensemble = None
    on_step_end = None
    if args.snapshots:
        snapshot_steps = set(cycle_ends(schedule, args.epochs * steps_per_epoch))
        if not snapshot_steps:
            raise UsageError(
                f"--snapshots: no cycle of --schedule {args.schedule} ends within --epochs {args.epochs}; train longer"
            )
        ensemble = SnapshotEnsemble()

        def on_step_end(t: int) -> None:
            if t in snapshot_steps:
                ensemble.add(model)

    meta = {"args": {k: v for k, v in vars(args).items() if k != "command"}, "device": device}

    def save(epoch: int, history: History) -> None:
        checkpoint.save_checkpoint(out / "checkpoint.npz", model=model, optimizer=optimizer,
                                   epoch=epoch, history=history.to_dict(), meta=meta)

    print(f"training {args.model} on {args.dataset} ({len(train_set)} train / {len(test_set)} test images, "
          f"{steps_per_epoch} updates per epoch) on {device}; writing to {out}")
    started = time.perf_counter()
    history = fit(model, train_loader, optimizer, epochs=args.epochs, test_loader=test_loader, history=history,
                  start_epoch=start_epoch, on_epoch_end=save, on_step_end=on_step_end, progress=not args.quiet)
    elapsed = time.perf_counter() - started

    if ensemble is not None and len(ensemble) > 0:
        history.snapshot_test_acc = ensemble.accuracy(test_loader)
    write_text(out / "history.json", json.dumps(history.to_dict(), indent=1))
    plot_history(history, out / "curves.png", title=f"{args.model} on {args.dataset}: SGD, {args.schedule} schedule")
    print(f"saved {out / 'history.json'}, {out / 'checkpoint.npz'}, {out / 'curves.png'} ({elapsed:.0f}s)")
    if history.stopped:
        print(history.stopped, file=sys.stderr)
        return 1
    if ensemble is not None:
        print(f"snapshot ensemble of {len(ensemble)} models: test_acc={history.snapshot_test_acc:.4f} "
              f"(single model {history.last('test_acc'):.4f})")
    print(f"test_acc={history.last('test_acc'):.4f} test_loss={history.last('test_loss'):.4f}")
    return 0


def command_lr_find(args: argparse.Namespace) -> int:
    import minisgd
    from minisgd import optim
    from minisgd.lr_finder import lr_range_test

    if args.end_lr <= args.start_lr or args.start_lr <= 0:
        raise UsageError(f"--start-lr must be > 0 and below --end-lr; got {args.start_lr} and {args.end_lr}")
    device = _resolve_device(args)
    minisgd.random.manual_seed(args.seed)
    train_set, test_set = load_datasets(args)
    train_loader, _ = build_loaders(args, train_set, test_set, device)
    model = build_model(args).to(device)
    optimizer = optim.SGD(model.parameters(), lr=args.start_lr, momentum=args.momentum)
    result = lr_range_test(model, optimizer, train_loader, start_lr=args.start_lr, end_lr=args.end_lr, steps=args.steps)
    path = result.plot(args.out)
    print(f"saved {path}")
    print(f"suggested_lr={result.suggested_lr:.4g}")
    return 0


def command_schedules(args: argparse.Namespace) -> int:
    from minisgd import schedules
    from minisgd.plots import pyplot, save_figure

    plt = pyplot()
    figure, ax = plt.subplots(figsize=(8, 4.5))
    drawn = [build_schedule(args, name, args.steps_per_epoch) for name in args.schedule]
    schedules.plot(*drawn, steps=args.epochs * args.steps_per_epoch, ax=ax, labels=args.schedule)
    ax.set_title(f"learning-rate schedules ({args.steps_per_epoch} updates per epoch)")
    path = save_figure(figure, args.out)
    print(f"saved {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (2 for a bad argument)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        if args.command == "train":
            return command_train(args, argv[1:])
        if args.command == "lr-find":
            return command_lr_find(args)
        return command_schedules(args)
    except UsageError as error:
        print(f"minisgd: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the last checkpoint written is intact", file=sys.stderr)
        return 130
