"""``python -m minisgd``: train a CNN, run the LR range test, plot schedules, or grade an exercise.

    python -m minisgd train                      # LeNet on the built-in dataset, about half a minute on a CPU
    python -m minisgd train --dataset cifar10 --model small-vgg --augment --schedule cosine --epochs 30
    python -m minisgd train --resume runs/<run>  # continue an interrupted run exactly
    python -m minisgd lr-find                    # LR range test, saves its plot
    python -m minisgd schedules --schedule step cosine sgdr   # plots schedules to a PNG
    python -m minisgd notebooks --out notebooks  # the lectures as .ipynb files
    python -m minisgd exercise check momentum    # grades ./exercises/momentum.py (see minisgd.exercises)

This module only parses arguments, calls :mod:`minisgd.recipe` and :mod:`minisgd.runs`, and prints.
Every schedule parameter counted in time (``--step-size``, ``--milestones``,
``--t0``) is in **epochs**; the recipe turns it into optimizer updates, so the
schedule moves every mini-batch. ``--warmup-steps`` counts updates.

A bad argument gets one line that names the argument and what is allowed, and
exit code 2; so does a path that cannot be used (inside a file, too long,
read-only). A run never writes into a folder that already holds another run,
or that another run is using (its lock file, see :mod:`minisgd.runs`). A save
that fails during a run (a full disk) gets one line saying which checkpoint is
kept, and exit code 1. Ctrl-C gets one line and exit code 130, at any moment.
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import re
import signal
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from minisgd import distributed, recipe, runs

# Options that may be given with --resume: everything else is the saved run's.
RESUME_OPTIONS = ("--resume", "--epochs", "--quiet")  # and the number of workers, mpiexec's -n


class UsageError(Exception):
    """A bad command-line value: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line (with the fix) and exit with code 2; no abbreviated options."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see `python -m {self.prog} --help`)")


# --------------------------------------------------------------------- parser
# The largest value an integer flag takes: what a C int holds. Counts beyond it (epochs, images, updates) are
# mistakes, and refusing them here keeps every later product of counts exact and every array allocatable.
MAX_INTEGER = 2**31 - 1
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")  # ASCII digits only: '١٢' or '1_000' is refused, not reinterpreted
_NUMBER_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(inf|infinity|nan)", re.I)


def _at_least(kind: type, minimum: int, maximum: float | None = None):
    """An argparse type: a finite ``kind`` (int or float) >= ``minimum``, integers <= MAX_INTEGER.

    Only plain ASCII numbers are read (``12``, ``-3``, ``1e-3``), without surrounding spaces; argparse
    names the option in the error. ``maximum`` bounds a float too (a time limit beyond what the
    system's clocks take).
    """
    if kind is int:
        allowed = f"an integer in [{minimum}, {MAX_INTEGER}]"
    else:
        allowed = f"a finite number >= {minimum}" if maximum is None else f"a number in [{minimum}, {maximum:g}]"

    def parse(text: str):
        pattern = _INTEGER_TEXT if kind is int else _NUMBER_TEXT
        if not pattern.fullmatch(text):
            raise argparse.ArgumentTypeError(f"must be {allowed} (plain ASCII digits, no spaces); got {text!r}")
        value = kind(text) + 0  # + 0 turns -0.0 into 0.0
        too_large = value > MAX_INTEGER if kind is int else not math.isfinite(value)  # (a huge int has no float)
        too_large = too_large or (maximum is not None and value > maximum)
        if too_large or value < minimum:
            raise argparse.ArgumentTypeError(f"must be {allowed}; got {_short(text)}")
        return value

    return parse


def _finite(text: str) -> float:
    """An argparse type: any finite number (its range is checked by the recipe, which names it)."""
    if not _NUMBER_TEXT.fullmatch(text):
        raise argparse.ArgumentTypeError(f"must be a finite number (plain ASCII digits, no spaces); got {text!r}")
    value = float(text) + 0.0
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number; got {_short(text)}")
    return value


def _path(text: str) -> str:
    """An argparse type: a file or folder name, not empty (``--resume ''`` must not mean "no resume")."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"must be a file or folder name; got {text!r}")
    if "\0" in text:
        raise argparse.ArgumentTypeError(f"must be a file or folder name without NUL characters; got {text!r}")
    return text


def _short(text: str, limit: int = 40) -> str:
    """``text``, or its start and length when it is long (a 400-digit number fits on one line)."""
    return text if len(text) <= limit else f"{text[:20]}…({len(text)} characters)"


_positive_int = _at_least(int, 1)
_non_negative_int = _at_least(int, 0)
_non_negative_float = _at_least(float, 0)
DEFAULTS = recipe.RunConfig()
SGD_DEFAULTS = recipe.OPTIMIZER_DEFAULTS["sgd"]  # lr-find sweeps SGD's rate


def _add_data_and_model(parser: argparse.ArgumentParser, validation: bool = False) -> None:
    group = parser.add_argument_group("data and model")
    group.add_argument("--dataset", choices=recipe.DATASETS, default="synthetic",
                       help="'synthetic': the built-in offline CIFAR-shaped set of coloured shapes (default); "
                            "'cifar10': the real CIFAR-10 from --data-dir")
    group.add_argument("--data-dir", type=_path, default=None,
                       help="folder holding cifar-10-batches-py/ or cifar-10-python.tar.gz "
                            "(default: $MINISGD_DATA or ~/.cache/minisgd)")
    group.add_argument("--download", action="store_true",
                       help="download CIFAR-10 (163 MB, MD5-checked) into --data-dir when it is missing")
    group.add_argument("--train-size", type=_positive_int, default=None,
                       help="use only the first N training images (default: all; synthetic: 10000)")
    group.add_argument("--test-size", type=_positive_int, default=None,
                       help="use only the first N test images (default: all; synthetic: 2000)")
    if validation:
        group.add_argument("--val-size", type=_positive_int, default=None, metavar="N",
                           help="hold N of the training images out at random (from --seed) as a validation split: "
                                "scored every epoch (val_loss, val_acc; reduce-on-plateau steps on it), while the "
                                "test set is scored once, at the end (default: none; every epoch scores the test set)")
    group.add_argument("--augment", action="store_true",
                       help="random crop (padding 4) and horizontal flip of the training images")
    group.add_argument("--model", choices=recipe.MODELS, default=DEFAULTS.model,
                       help=f"network to train (default: {DEFAULTS.model}); small-vgg is slower and stronger")
    group.add_argument("--batch-norm", action="store_true", help="small-vgg only: BatchNorm after each convolution")
    group.add_argument("--batch-size", type=_positive_int, default=DEFAULTS.batch_size,
                       help=f"mini-batch size B (default: {DEFAULTS.batch_size})")
    group.add_argument("--device", choices=("cpu", "cuda"), default=None,
                       help="where to compute (default: $MINISGD_DEVICE or cpu); cuda needs CuPy and a GPU")
    group.add_argument("--seed", type=_non_negative_int, default=DEFAULTS.seed,
                       help="seed for initialisation, data, shuffling and dropout (default: 0)")


def _defaults_of(setting: str) -> str:
    """``"sgd, heavy-ball 0.05; adam 0.001 …"``: each optimizer's default for ``setting``, for --help."""
    by_value: dict[str, list[str]] = {}
    for name, defaults in recipe.OPTIMIZER_DEFAULTS.items():
        if setting in defaults:
            value = defaults[setting]
            text = " ".join(f"{v:g}" for v in value) if isinstance(value, tuple) else f"{value:g}"
            by_value.setdefault(text, []).append(name)
    return "; ".join(f"{', '.join(names)} {value}" for value, names in by_value.items())


def _add_optimizer(group: Any) -> None:
    group.add_argument("--optimizer", choices=recipe.OPTIMIZERS, default=DEFAULTS.optimizer,
                       help="sgd: PyTorch's SGD (default); heavy-ball: the recitation's V ← βV + αg, W ← W − V; "
                            "adagrad, rmsprop, adam, adamw: as in PyTorch")
    group.add_argument("--lr", type=_non_negative_float, default=None,
                       help=f"learning rate α, the peak rate for cyclic and one-cycle (default: {_defaults_of('lr')})")
    group.add_argument("--momentum", type=_non_negative_float, default=None,
                       help=f"sgd, heavy-ball, rmsprop: momentum μ in [0, 1) (default: {_defaults_of('momentum')})")
    group.add_argument("--nesterov", action="store_true", help="sgd, heavy-ball: Nesterov momentum")
    group.add_argument("--weight-decay", type=_non_negative_float, default=None,
                       help="L2 weight decay λ, coupled like PyTorch's (adamw: decoupled) "
                            f"(default: {_defaults_of('weight_decay')})")
    group.add_argument("--betas", type=_finite, nargs=2, metavar=("BETA1", "BETA2"), default=None,
                       help=f"adam, adamw: decay rates of the gradient's running mean and mean square, in [0, 1) "
                            f"(default: {_defaults_of('betas')})")
    group.add_argument("--eps", type=_non_negative_float, default=None,
                       help=f"adagrad, rmsprop, adam, adamw: ε added to the denominator "
                            f"(default: {_defaults_of('eps')})")
    group.add_argument("--amsgrad", action="store_true", help="adam, adamw: the AMSGrad variant (max of v)")
    group.add_argument("--alpha", type=_finite, default=None,
                       help=f"rmsprop: decay rate of the mean square, in [0, 1] (default: {_defaults_of('alpha')})")
    group.add_argument("--centered", action="store_true", help="rmsprop: divide by the gradient's variance "
                                                               "estimate instead of its mean square")
    group.add_argument("--lr-decay", type=_non_negative_float, default=None,
                       help=f"adagrad: α / (1 + (t − 1) · lr_decay) (default: {_defaults_of('lr_decay')})")
    group.add_argument("--no-decay-bias-bn", action="store_true",
                       help="no weight decay on biases and BatchNorm's γ, β (a second parameter group)")
    group.add_argument("--clip-grad-norm", type=_finite, default=None, metavar="MAX",
                       help="rescale the gradients before each update so that their total 2-norm is <= MAX")
    group.add_argument("--swa-start", type=_positive_int, default=None, metavar="EPOCH",
                       help="stochastic weight averaging: after epoch EPOCH the rate anneals over one epoch to "
                            "--swa-lr and holds it, and the weights at the end of every later epoch are averaged; "
                            "the average is scored beside the last iterate (EPOCH < --epochs)")
    group.add_argument("--swa-lr", type=_non_negative_float, default=None,
                       help="with --swa-start: the rate held while averaging (default: --lr / 5)")


def _add_schedule_settings(group: Any, step_size: int = DEFAULTS.step_size, t0: int = DEFAULTS.t0) -> None:
    """The schedules' settings; ``step_size`` and ``t0`` are the defaults (``schedules`` draws longer ones)."""
    group.add_argument("--step-size", type=_positive_int, default=step_size,
                       help=f"step: epochs between decays (default: {step_size})")
    group.add_argument("--milestones", type=_positive_int, nargs="+", default=None,
                       help="multistep: epochs at which α is multiplied by --gamma, increasing "
                            "(default: half and three quarters of --epochs)")
    group.add_argument("--gamma", type=_finite, default=None,
                       help="decay factor γ > 0 (step, multistep: 0.1; exponential: per epoch, 0.5; "
                            "cyclic exp_range: per update, 0.99994)")
    group.add_argument("--t0", type=_positive_int, default=t0,
                       help=f"sgdr: epochs in the first cycle T₀ (default: {t0})")
    group.add_argument("--t-mult", type=_positive_int, default=DEFAULTS.t_mult,
                       help="sgdr: cycle-length multiplier T_mult (default: 2)")
    group.add_argument("--min-lr", type=_non_negative_float, default=DEFAULTS.min_lr,
                       help="floor η_min of linear, polynomial, cosine, sgdr and reduce-on-plateau; "
                            "base rate of cyclic (default: 0)")
    group.add_argument("--power", type=_finite, default=DEFAULTS.power,
                       help="polynomial: exponent p > 0 (default: 1)")
    group.add_argument("--decay-rate", type=_non_negative_float, default=DEFAULTS.decay_rate,
                       help="inverse-time: α / (1 + rate · epochs done) (default: 1)")
    group.add_argument("--cycles", type=_positive_int, default=None,
                       help="snapshot: number of equal cosine cycles (default: one per epoch)")
    group.add_argument("--cyclic-mode", choices=recipe.CYCLIC_MODES, default=DEFAULTS.cyclic_mode,
                       help="cyclic: how the cycle's height changes (default: triangular)")
    group.add_argument("--patience", type=_non_negative_int, default=DEFAULTS.patience,
                       help="reduce-on-plateau: epochs without a better validation loss (--val-size), else test "
                            "loss, before a cut (default: 1)")
    group.add_argument("--factor", type=_finite, default=DEFAULTS.factor,
                       help="reduce-on-plateau: α ← α · factor, factor in (0, 1) (default: 0.1)")
    group.add_argument("--warmup-steps", type=_non_negative_int, default=DEFAULTS.warmup_steps,
                       help="linear warm-up over this many updates before any schedule "
                            "(inverse-sqrt: its own warm-up, default one epoch; default: 0)")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m minisgd``."""
    parser = _Parser(prog="minisgd", description="minisgd: neural-network training with SGD, from scratch in NumPy.")
    commands = parser.add_subparsers(dest="command", metavar="{train,lr-find,schedules,notebooks,exercise}",
                                     parser_class=_Parser)

    train = commands.add_parser("train", help="train a CNN with SGD (or another optimizer) and a learning-rate "
                                              "schedule",
                                description="Train a CNN with SGD + momentum (or Adagrad, RMSprop, Adam, AdamW) "
                                            "+ a learning-rate schedule.")
    _add_data_and_model(train, validation=True)
    opt = train.add_argument_group("optimisation")
    opt.add_argument("--epochs", type=_positive_int, default=DEFAULTS.epochs,
                     help=f"number of epochs (default: {DEFAULTS.epochs})")
    _add_optimizer(opt)
    sched = train.add_argument_group("learning-rate schedule (times in epochs unless named steps)")
    sched.add_argument("--schedule", choices=recipe.SCHEDULES, default=DEFAULTS.schedule,
                       help=f"learning-rate schedule (default: {DEFAULTS.schedule})")
    _add_schedule_settings(sched)
    out = train.add_argument_group("output")
    out.add_argument("--snapshots", action="store_true",
                     help="with --schedule sgdr, snapshot or cyclic: keep the weights at the end of each cycle "
                          "and report the snapshot ensemble's accuracy beside the single model's")
    out.add_argument("--out", type=_path, default=None,
                     help="folder for history.json, checkpoint.npz and curves.png "
                          "(default: runs/<model>-<dataset>-<time>)")
    out.add_argument("--resume", type=_path, default=None, metavar="RUN",
                     help="continue a run from its folder (or its checkpoint.npz) with its saved settings; "
                          "only --epochs and --quiet may be given with it")
    out.add_argument("--quiet", action="store_true", help="no progress bars (they are off anyway when the "
                                                          "output is not a terminal)")
    parallel = train.add_argument_group("many workers (run under mpiexec -n K; --batch-size is the global batch)")
    parallel.add_argument("--data-parallel", choices=distributed.MODES, default=None,
                          help="sync: mini-batch SGD with the global batch, gradients averaged by MPI's all-reduce; "
                               "ring: the same with minisgd's ring all-reduce; local-sgd: average the weights every "
                               "--sync-every updates; async: rank 0 is a parameter server")
    parallel.add_argument("--sync-every", type=_positive_int, default=DEFAULTS.sync_every, metavar="H",
                          help="local-sgd: updates between weight averages (default: 1, which is sync)")

    finder = commands.add_parser(
        "lr-find",
        help="LR range test: sweep the learning rate exponentially, plot the loss, suggest a rate",
        description="LR range test: an exponential ramp of the learning rate over mini-batches.",
    )
    _add_data_and_model(finder)
    finder_opt = finder.add_argument_group("range test")
    finder_opt.add_argument("--start-lr", type=_non_negative_float, default=1e-5, help="first rate (default: 1e-5)")
    finder_opt.add_argument("--end-lr", type=_non_negative_float, default=10.0, help="last rate (default: 10)")
    finder_opt.add_argument("--steps", type=_at_least(int, 10), default=200,
                            help="mini-batches in the ramp, >= 10 (default: 200: a CNN needs a few hundred "
                                 "updates to leave its initial plateau)")
    finder_opt.add_argument("--momentum", type=_non_negative_float, default=SGD_DEFAULTS["momentum"],
                            help=f"momentum μ in [0, 1) (default: {SGD_DEFAULTS['momentum']:g})")
    finder_opt.add_argument("--nesterov", action="store_true", help="Nesterov momentum")
    finder_opt.add_argument("--weight-decay", type=_non_negative_float, default=SGD_DEFAULTS["weight_decay"],
                            help=f"L2 weight decay λ (default: {SGD_DEFAULTS['weight_decay']:g})")
    finder_opt.add_argument("--out", type=_path, default=None,
                            help="PNG file for the plot (default: runs/lr-find-<model>-<dataset>-<time>.png)")

    plot = commands.add_parser("schedules", help="plot learning-rate schedules to a PNG",
                               description="Plot learning-rate schedules, in updates, to a PNG.")
    plot.add_argument("--schedule", choices=recipe.SCHEDULES, nargs="+",
                      default=["step", "cosine", "sgdr", "one-cycle"],
                      help="schedules to draw (default: step cosine sgdr one-cycle)")
    plot.add_argument("--lr", type=_non_negative_float, default=0.1, help="base (peak) rate (default: 0.1)")
    plot.add_argument("--epochs", type=_positive_int, default=30, help="epochs to draw (default: 30)")
    plot.add_argument("--steps-per-epoch", type=_positive_int, default=10, help="updates per epoch (default: 10)")
    _add_schedule_settings(plot, step_size=10, t0=2)  # over the drawn 30 epochs: three steps, three SGDR cycles
    plot.add_argument("--out", type=_path, default=None, help="PNG file (default: runs/schedules-<time>.png)")

    books = commands.add_parser("notebooks", help="write the lectures as Jupyter notebooks (.ipynb)",
                                description="Write lectures/NN_name.py (Jupytext) as NN_name.ipynb notebooks.")
    books.add_argument("--out", type=_path, default=None, metavar="DIR",
                       help="folder for the notebooks (default: the lectures' folder, beside their sources); "
                            "a file in the way that is not a notebook written by this command is never replaced")
    books.add_argument("--source", default=None, metavar="PIP_TARGET",
                       help="the default of MINISGD_SOURCE in each notebook's set-up cell: what `pip install` "
                            "takes to install minisgd where it is missing (Colab), e.g. a git URL")
    books.add_argument("--force", action="store_true", help="replace files in the way, even edited notebooks")
    _add_exercise_command(commands)
    return parser


# ------------------------------------------------------------------ errors
_RECIPE_FUNCTIONS = ("RunConfig", "load_datasets", "build_loaders", "build_model", "build_schedule",
                     "build_optimizer", "resume_run", "hold_out_validation")


def _usage(error: ValueError) -> UsageError:
    """A recipe error as a command-line one: its setting named as the flag (``milestones`` → ``--milestones``)."""
    message = " ".join(str(error).split())
    where, separator, rest = message.partition(": ")
    if separator and where in _RECIPE_FUNCTIONS:
        message = rest
    name = re.match(r"[a-z_0-9]+", message)
    flags = {f.name for f in fields(recipe.RunConfig)} | {"out", "optimizer", "schedule", "device"}
    if name and name.group() in flags and message[name.end():name.end() + 1] in (" ", ":"):
        message = "--" + name.group().replace("_", "-") + message[name.end():]
    return UsageError(message)


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


# ------------------------------------------------------------------ commands
def _config_from(args: argparse.Namespace) -> recipe.RunConfig:
    names = {f.name for f in fields(recipe.RunConfig)}
    return recipe.RunConfig(**{name: getattr(args, name) for name in names})


def _images(dataset: Any, noun: str) -> str:
    """``"4,068 training images"``, or ``"256 of 4,068 training images"`` for a cut (--train-size)."""
    total = getattr(dataset, "total", len(dataset))
    count = f"{len(dataset):,}" if total == len(dataset) else f"{len(dataset):,} of {total:,}"
    return f"{count} {noun} images"


def _cifar_line(train_set: Any, test_set: Any) -> str:
    """``data: cifar10 from DIR: 4,068 training images (data_batch_1-4 of 5), 1,017 test images; <checksums>``.

    <checksums> is "the official files (MD5 checked)" or "not the official files: MD5 differs for …".
    """
    from minisgd.data.cifar import META_FILE, describe_checksums, describe_files

    read = [*train_set.files, *test_set.files, META_FILE]
    differing = [*getattr(train_set, "md5_differs", []), *getattr(test_set, "md5_differs", [])]
    return (f"data: cifar10 from {train_set.folder}: {_images(train_set, 'training')} "
            f"({describe_files(train_set.files)}), {_images(test_set, 'test')}; {describe_checksums(read, differing)}")


def command_train(args: argparse.Namespace, argv: Sequence[str]) -> int:
    show_bars = not args.quiet and sys.stderr.isatty()
    if distributed.launched_rank() > 0:  # data parallel: rank 0 alone prints and draws the bar
        sys.stdout, show_bars = open(os.devnull, "w"), False
    run = None
    try:
        try:
            if args.resume is not None:
                given = {token.split("=", 1)[0] for token in argv if token.startswith("--")}
                refused = sorted(given - set(RESUME_OPTIONS))
                if "--optimizer" in refused:
                    raise UsageError(
                        "--optimizer cannot be given with --resume: the run's checkpoint holds the state of the "
                        "optimizer it was trained with, and a resumed run continues with it; start a new run "
                        "(a new --out) to train with another optimizer"
                    )
                if refused:
                    raise UsageError(
                        f"{refused[0]} cannot be given with --resume: a resumed run keeps its saved settings "
                        f"(only --epochs and --quiet may be given; start a new run to change the others)"
                    )
                try:
                    run = runs.resume_run(args.resume, epochs=args.epochs if "--epochs" in given else None)
                except ValueError as error:
                    usage = str(_usage(error))
                    if usage.startswith("--epochs") and "--epochs" in given:  # the only setting one may give
                        raise UsageError(usage) from None
                    raise UsageError("--resume: " + " ".join(str(error).split())) from None
            else:
                try:
                    run = runs.start_run(_config_from(args), args.out)
                except ValueError as error:
                    usage = str(_usage(error))
                    if usage.startswith("--out") and args.out is None:  # the default folder, runs/…
                        raise UsageError(f"the default run folder cannot be used{usage[5:]}; name another "
                                         f"with --out") from None
                    raise UsageError(usage) from None
        except ValueError as error:
            raise _usage(error) from None
        config = run.config
        for note in run.notes:
            print(note, file=sys.stderr, flush=True)
        if config.dataset == "cifar10":
            print(_cifar_line(run.train_set, run.test_set), flush=True)
        if run.val_set is not None:
            print(f"validation: {len(run.val_set):,} of the {len(run.train_set) + len(run.val_set):,} training images "
                  f"held out at random (seed {config.seed}), scored every epoch; the test set is scored once, at "
                  f"the end", flush=True)
        print(f"training {config.model} on {config.dataset} ({len(run.train_set)} train / {len(run.test_set)} test "
              f"images, {run.steps_per_epoch} updates per epoch) on {run.device}; writing to {run.out}", flush=True)
        settings = {"lr": config.lr, **{k: v for k, v in config.optimizer_settings().items()
                                        if k in recipe.OPTIMIZER_DEFAULTS[config.optimizer]}}
        extras = []
        if config.no_decay_bias_bn:
            extras.append("no weight decay on biases and BatchNorm")
        if config.clip_grad_norm is not None:
            extras.append(f"gradients clipped to norm {config.clip_grad_norm:g}")
        if config.swa_start is not None:
            extras.append(f"SWA after epoch {config.swa_start} at swa_lr={config.swa_lr:g}")
        print(f"optimizer: {config.optimizer} (" + ", ".join(f"{k}={v}" for k, v in settings.items()) + ")"
              + "".join(f"; {text}" for text in extras), flush=True)
        if run.start_epoch:
            print(f"resuming after epoch {run.start_epoch} of {config.epochs}", flush=True)
        if run.workers is not None:
            print(_workers_line(run), flush=True)
        result = runs.train_run(run, progress=show_bars, log=lambda line: print(line, flush=True))
    except distributed.WorkerLost as error:
        return _worker_lost(run, error)
    except runs.SaveError as error:
        print(f"minisgd: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if run is not None and run.saved_epoch is not None:
            print(f"interrupted: {run.out / runs.CHECKPOINT} holds epoch {run.saved_epoch} of "
                  f"{run.config.epochs}; continue exactly where it stopped with: "
                  f"python -m minisgd train --resume {run.out}", file=sys.stderr)
        else:
            print("interrupted before the first epoch ended: nothing was saved", file=sys.stderr)
        return 130
    finally:
        if run is not None:
            run.release()

    names = ", ".join(path.name for path in result.saved)
    if result.stopped:
        print(result.stopped, file=sys.stderr)
        if result.saved_epoch is not None:
            kept = (f"{run.out / runs.CHECKPOINT} holds epoch {result.saved_epoch}, the last good weights; "
                    f"resuming it would repeat the same updates and diverge again, so ")
        else:
            kept = "no epoch ended before the divergence, so no checkpoint was written; "
        print(f"saved in {run.out}: {names}. {kept}start a new run with a smaller --lr (now {config.lr:g}) "
              f"or a --warmup-steps warm-up.", file=sys.stderr)
        return 1
    print(f"saved in {run.out}: {names} ({result.seconds:.0f}s)")
    if result.snapshot_test_acc is not None:
        print(f"snapshot ensemble of {_plural(result.snapshot_count, 'model')}: "
              f"test_acc={result.snapshot_test_acc:.4f} (single model {result.test_acc:.4f})")
    swa = ""
    if result.swa_test_acc is not None:
        count = int(run.swa_model.n_averaged)
        print(f"SWA average of {_plural(count, 'model')} (epochs {config.swa_start + 1}–{config.epochs}, "
              f"swa_lr {config.swa_lr:g}): test_acc={result.swa_test_acc:.4f} test_loss={result.swa_test_loss:.4f} "
              f"(last iterate {result.test_acc:.4f})")
        swa = f" swa_test_acc={result.swa_test_acc:.4f}"
    print(f"test_acc={result.test_acc:.4f} test_loss={result.test_loss:.4f}{swa}")
    return 0


def _workers_line(run: Any) -> str:
    """What the K workers do, and which process is which rank (mpiexec's own messages name PIDs)."""
    workers, config = run.workers, run.config
    if workers.size == 1:
        return (f"--data-parallel {config.data_parallel}: not started by mpiexec (or mpi4py is missing), so this "
                f"runs as one process, K = 1: plain mini-batch SGD with B = {config.batch_size}")
    pids = distributed.gather_pids(workers.comm)
    ranks = ", ".join(f"{rank}={pid}" for rank, pid in enumerate(pids))
    slice_size = config.batch_size // workers.size
    if config.data_parallel == "async":
        share = (f"rank 0 serves the weights, {workers.size - 1} workers push gradients of batches of "
                 f"{config.batch_size}")
    elif config.data_parallel == "local-sgd":
        share = f"each worker steps on {slice_size} images, the weights are averaged every {config.sync_every} updates"
    else:
        share = (f"each worker takes {slice_size} images of the global batch B = {config.batch_size}; gradients "
                 f"averaged ({config.data_parallel})")
    resumed = ""
    if run.start_epoch and run.saved_workers != workers.size:
        resumed = (f"; trained so far on K = {run.saved_workers}, continuing on K = {workers.size} with the same "
                   f"global batch")
    return f"data parallel: K = {workers.size} workers, {share}{resumed} (process ids: rank {ranks})"


def _worker_lost(run: Any, error: Exception) -> int:
    """One line naming the rank that stopped answering and what the checkpoint holds; then stop every worker."""
    if distributed.launched_rank() > 0 and 0 not in error.lost:
        time.sleep(2 * distributed.TIMEOUT)  # rank 0 reports and stops the run
        os._exit(1)
    kept = "nothing was saved yet"
    if run is not None and run.saved_epoch is not None:
        kept = (f"{run.out / runs.CHECKPOINT} holds epoch {run.saved_epoch} of {run.config.epochs}; continue with: "
                f"mpiexec -n K python -m minisgd train --resume {run.out}")
    distributed.abort(f"{error}; the run stopped: {kept}", code=1)
    return 1


def command_lr_find(args: argparse.Namespace, argv: Sequence[str] = ()) -> int:
    import minisgd
    from minisgd.lr_finder import SUGGESTION_DIVISOR, lr_range_test

    given = {token.split("=", 1)[0] for token in argv if token.startswith("--")}
    subject = "--end-lr" if "--start-lr" not in given else "--start-lr"  # the one the user gave
    if args.start_lr <= 0 or args.end_lr <= args.start_lr:
        raise UsageError(f"--start-lr must be > 0 and below --end-lr; got {args.start_lr:g} and {args.end_lr:g}"
                         if subject == "--start-lr" else
                         f"--end-lr must be above --start-lr ({args.start_lr:g}); got {args.end_lr:g}")
    if args.end_lr / args.start_lr > MAX_LR_RANGE:
        raise UsageError(f"{subject}: --end-lr / --start-lr must be <= {MAX_LR_RANGE:g} (the sweep's factor per "
                         f"update would be lost in rounding beyond it); got {args.end_lr:g} / {args.start_lr:g}")
    out = _figure_path(args.out, Path("runs") / f"lr-find-{args.model}-{args.dataset}-{_stamp()}.png")
    try:
        recipe.check_optimizer_settings("sgd", momentum=args.momentum, nesterov=args.nesterov,
                                        weight_decay=args.weight_decay)
        device = recipe.resolve_device(args.device)
        minisgd.random.manual_seed(args.seed)
        model = recipe.build_model(args.model, batch_norm=args.batch_norm).to(device)
        train_set, test_set = recipe.load_datasets(args.dataset, data_dir=args.data_dir, download=args.download,
                                                   train_size=args.train_size, test_size=args.test_size or 1,
                                                   seed=args.seed)  # the range test uses training images only
        train_loader, _ = recipe.build_loaders(train_set, test_set, batch_size=args.batch_size,
                                               augment=args.augment, seed=args.seed, device=device)
        optimizer = recipe.build_optimizer(model, lr=args.start_lr, momentum=args.momentum,
                                           nesterov=args.nesterov, weight_decay=args.weight_decay)
    except ValueError as error:
        raise _usage(error) from None
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # the sweep diverges on purpose
        try:
            result = lr_range_test(model, optimizer, train_loader, start_lr=args.start_lr, end_lr=args.end_lr,
                                   steps=args.steps)
        except ValueError as error:
            raise _usage(error) from None
    path = _save(lambda: result.plot(out), out)
    ending = f"stopped early: {result.stopped}" if result.stopped else f"ran all of them, up to lr={args.end_lr:g}"
    print(f"swept {_plural(len(result.lrs), 'update')} from lr={args.start_lr:g}; {ending}")
    print(f"suggested lr {result.suggested_lr:.3g} (the smoothed loss's minimum, at lr={result.min_loss_lr:.3g}, "
          f"divided by {SUGGESTION_DIVISOR:g}); alternatives: steepest descent before the minimum "
          f"{result.steepest_lr:.3g}, valley "
          + (f"{result.valley_lr:.3g}" if math.isfinite(result.valley_lr) else "none (the loss never left its "
             "initial plateau)"))
    if result.drop < 0.02:
        print(f"note: the smoothed loss fell only {100 * result.drop:.1f}% during the sweep, so the suggestion "
              f"is unreliable; sweep longer (--steps) or from a higher --start-lr")
    print(f"saved {path}")
    print(f"suggested_lr={result.suggested_lr:.4g}")
    return 0


def command_schedules(args: argparse.Namespace) -> int:
    from minisgd import schedules
    from minisgd.plots import plot_schedules, pyplot, save_figure

    settings = {name: getattr(args, name) for name in ("lr", "epochs", "step_size", "milestones", "gamma", "t0",
                                                        "t_mult", "min_lr", "power", "decay_rate", "cycles",
                                                        "cyclic_mode", "patience", "factor", "warmup_steps")}
    steps = args.epochs * args.steps_per_epoch
    if steps > MAX_DRAWN_UPDATES:
        raise UsageError(f"--epochs × --steps-per-epoch must be <= {MAX_DRAWN_UPDATES:,} (every update is drawn); "
                         f"got {args.epochs} × {args.steps_per_epoch} = {steps:,}")
    try:
        drawn = [recipe.build_schedule(name, **settings, steps_per_epoch=args.steps_per_epoch)
                 for name in args.schedule]
    except ValueError as error:
        raise _usage(error) from None
    out = _figure_path(args.out, Path("runs") / f"schedules-{_stamp()}.png")
    with np.errstate(over="ignore", invalid="ignore"):
        rates = [schedules.evaluate(schedule, np.arange(steps, dtype=np.float64)) for schedule in drawn]
    for name, values in zip(args.schedule, rates):
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise UsageError(f"--schedule {name}: with these settings the rate overflows at update {bad[0]} "
                             f"(lr(t) = {values[bad[0]]}); choose a smaller --gamma or --lr")
    figure, ax = pyplot().subplots(figsize=(8, 4.5))
    try:
        plot_schedules(*drawn, steps=steps, ax=ax, labels=args.schedule)
        ax.set_title(f"learning-rate schedules ({args.steps_per_epoch} updates per epoch)")
        print(f"saved {_save(lambda: save_figure(figure, out), out)}")
    finally:
        pyplot().close(figure)
    return 0


def command_notebooks(args: argparse.Namespace) -> int:
    from minisgd import notebooks

    try:
        written = notebooks.write_notebooks(args.out or notebooks.LECTURES, install_source=args.source,
                                            force=args.force)
    except notebooks.NotebookError as error:
        raise UsageError(str(error)) from None
    print(f"wrote {_plural(len(written), 'notebook')} in {written[0].parent}: {', '.join(p.name for p in written)}")
    return 0


# ------------------------------------------------------------------ exercise (minisgd.exercises)
def _add_exercise_command(commands: Any) -> None:
    """``exercise list | start TOPIC | check TOPIC``: the students' exercises and their grader."""
    from minisgd.exercises import TOPIC_NAMES
    from minisgd.exercises.grading import DEFAULT_TIME_LIMIT

    exercise = commands.add_parser("exercise", help="exercises: write the update rules yourself, and have them graded",
                                   description="Exercises: stubs you fill in, graded against minisgd itself.")
    actions = exercise.add_subparsers(dest="action", metavar="{list,start,check}", parser_class=_Parser,
                                      required=True)
    actions.add_parser("list", help="the topics, their tasks, and the lecture each follows")
    for action, text in (("start", "write ./exercises/TOPIC.py, stubs with docstrings (never overwrites)"),
                         ("check", "grade ./exercises/TOPIC.py: one line per task; exit code 0 when all pass")):
        parser = actions.add_parser(action, help=text, description=text)
        parser.add_argument("topic", choices=TOPIC_NAMES, metavar="TOPIC", help=f"one of {', '.join(TOPIC_NAMES)}")
        parser.add_argument("--file", type=_path, default=None, metavar="PATH", help="the exercise file (default: "
                                                                        "exercises/TOPIC.py)")
    actions.choices["check"].add_argument(
        "--time-limit", type=_at_least(float, 0.1, maximum=3600), default=DEFAULT_TIME_LIMIT, metavar="SECONDS",
        help=f"stop a task that runs longer than this, at most 3600 (default: {DEFAULT_TIME_LIMIT:g})")


def command_exercise(args: argparse.Namespace) -> int:
    from minisgd import exercises
    from minisgd.exercises import grading

    if args.action == "list":
        width = max(len(name) for name in exercises.TOPIC_NAMES)
        for name in exercises.TOPIC_NAMES:
            lectures = ", ".join(exercises.topic(name).LECTURES)
            print(f"{name:<{width}}  lectures {lectures}: {', '.join(exercises.task_names(name))}")
        print("start one: python -m minisgd exercise start TOPIC; grade it: python -m minisgd exercise check TOPIC")
        return 0
    path = Path(args.file) if args.file else Path("exercises") / f"{args.topic}.py"
    try:
        is_folder, exists = path.is_dir(), path.exists() or path.is_symlink()
        parent = next((folder for folder in path.parents if folder.exists()), Path("."))
    except OSError as error:  # a name too long
        raise UsageError(f"--file: cannot use {_short(str(path))}: {error.strerror or error}") from None
    if is_folder:
        raise UsageError(f"--file must be a file; got {path} (a folder)")
    if not parent.is_dir():
        raise UsageError(f"--file: {parent} is a file, so {path} cannot be inside it")
    if args.action == "start":
        if exists:
            raise UsageError(f"{path} already exists; start never overwrites: grade it with "
                             f"`python -m minisgd exercise check {args.topic}`, or move it away to start again")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "x", encoding="utf-8") as file:  # "x": fails rather than overwrite
                file.write(exercises.topic(args.topic).STUB)
        except OSError as error:
            raise UsageError(f"cannot write {path}: {error.strerror or error}") from None
        tasks = exercises.task_names(args.topic)
        print(f"wrote {path}: {len(tasks)} functions to write ({', '.join(tasks)}); "
              f"grade it with: python -m minisgd exercise check {args.topic}"
              + (f" --file {path}" if args.file else ""))
        return 0
    if not exists:
        raise UsageError(f"{path} does not exist; create it with `python -m minisgd exercise start {args.topic}`"
                         + (f" --file {path}" if args.file else "") + " (or give --file PATH)")
    print(f"grading {path} (topic {args.topic}, lectures {', '.join(exercises.topic(args.topic).LECTURES)})",
          flush=True)
    import_error, results = grading.grade(args.topic, path, time_limit=args.time_limit)
    if import_error:
        print(f"{path} {import_error}")
        return 1
    width = max(len(result.task) for result in results)
    for result in results:
        print(result.line(width), flush=True)
    passed = sum(result.status == grading.PASS for result in results)
    print(f"{passed} of {_plural(len(results), 'task')} pass")
    return 0 if passed == len(results) else 1


FIGURE_SUFFIXES = (".png", ".pdf", ".svg")
MAX_DRAWN_UPDATES = 1_000_000
MAX_LR_RANGE = 1e30


def _figure_path(text: str | None, default: Path) -> Path:
    """``--out`` of lr-find and schedules, checked before any work: a figure's file name in a usable folder."""
    out = Path(text) if text else default
    if out.suffix.lower() not in FIGURE_SUFFIXES:
        raise UsageError(f"--out must be a file name ending in {', '.join(FIGURE_SUFFIXES)}; got {_short(str(out))}")
    try:
        if out.is_dir():
            raise UsageError(f"--out must be a file name ending in .png, .pdf or .svg; got {out} (a folder)")
        blocking = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    except OSError as error:
        raise UsageError(f"--out: cannot write {_short(str(out))}: {error.strerror or error}") from None
    if blocking is not None:
        raise UsageError(f"--out: cannot write {out}: {blocking} is a file, not a folder")
    return out


def _save(write: Any, out: Path) -> Any:
    """Run ``write()``; an OSError (full disk, read-only folder) becomes one line naming ``out``."""
    try:
        return write()
    except OSError as error:
        reason = error.strerror or str(error)
        if error.errno == errno.ENOSPC:
            reason = f"the disk is full ({reason})"
        raise UsageError(f"--out: could not save {_short(str(out))}: {reason}; nothing was saved") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (2 for a bad argument, 130 after Ctrl-C)."""
    import minisgd

    try:  # the handler is swapped inside the try, so a Ctrl-C at any moment after it is caught below
        if signal.getsignal(signal.SIGINT) is minisgd._interrupted_while_starting:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        argv = list(sys.argv[1:] if argv is None else argv)
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        if args.command == "train":
            return command_train(args, argv[1:])
        if args.command == "lr-find":
            return command_lr_find(args, argv[1:])
        if args.command == "notebooks":
            return command_notebooks(args)
        if args.command == "exercise":
            return command_exercise(args)
        return command_schedules(args)
    except UsageError as error:
        from minisgd.distributed import launched_rank

        if launched_rank() == 0:  # under mpiexec every rank finds the same error: one line
            print(f"minisgd: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: nothing was saved", file=sys.stderr)
        return 130
