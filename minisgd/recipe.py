"""The training recipe: data, model, schedule and optimizer from plain settings, and a run that resumes exactly.

``python -m minisgd train`` and the lectures both use these functions; each takes
plain arguments and raises ``ValueError`` naming the argument for a bad value.

Building blocks::

    train_set, test_set = load_datasets("synthetic", seed=0)
    train_loader, test_loader = build_loaders(train_set, test_set, batch_size=64, seed=0)
    model = build_model("lenet")
    schedule = build_schedule("sgdr", lr=0.05, epochs=3, steps_per_epoch=len(train_loader), t0=1, t_mult=2)
    optimizer = build_optimizer(model, lr=schedule, momentum=0.9, weight_decay=5e-4)
    optimizer = build_optimizer(model, "adam", lr=schedule)   # Adam with its own defaults (betas, eps, ...)

Schedule times are in **epochs** (``step_size``, ``milestones``, ``t0``); they are
turned into optimizer updates with ``steps_per_epoch``, so the schedule moves
every mini-batch. ``warmup_steps`` counts updates.

A whole run, with a checkpoint after every epoch::

    run = start_run(RunConfig(schedule="sgdr", snapshots=True, epochs=3), "runs/sgdr")
    result = train_run(run)              # result.test_acc, result.snapshot_test_acc
    run = resume_run("runs/sgdr")        # after an interruption: continues bit for bit
    result = train_run(run)

What a run folder holds, and why a resumed run ends exactly where an
uninterrupted one ends: ``checkpoint.npz`` (written atomically after every
epoch) carries the model, the optimizer (momentum buffers and update count t,
which fixes every schedule that is a function of t), the state of
``ReduceLROnPlateau``, minisgd's random generator, the history, the snapshot
ensemble's members taken so far, the SWA average (``swa/``: its weights and
the number of models in it), and the run's settings (:class:`RunConfig`).
The data loader's order and augmentation depend only on its seed and the epoch.
An interruption mid-epoch loses that epoch's partial work only: the resumed run
repeats it from the same state, drawing the same batches.

The schedule's horizon is part of the run. A schedule whose shape depends on
the number of epochs (``cosine``, ``linear``, ``polynomial``, ``snapshot``,
``cyclic``, ``one-cycle``) is rebuilt for the saved number of epochs, and
resuming with another ``epochs`` is refused: stretching it would make the rate
jump in the middle of the run. A schedule without a horizon (``constant``,
``step``, ``multistep``, ``exponential``, ``inverse-time``, ``inverse-sqrt``,
``sgdr``, ``reduce-on-plateau``) continues unchanged for as many epochs as asked.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np

from minisgd import checks

SCHEDULES = (
    "constant", "step", "multistep", "exponential", "linear", "polynomial", "inverse-time", "inverse-sqrt",
    "cosine", "sgdr", "snapshot", "cyclic", "one-cycle", "reduce-on-plateau",
)
# Schedules whose shape depends on the total number of updates: their horizon cannot change on resume.
HORIZON_SCHEDULES = ("linear", "polynomial", "cosine", "snapshot", "cyclic", "one-cycle")
# Schedules whose rate rises again after falling: snapshot ensembles take a member at each cycle's end.
CYCLIC_SCHEDULES = ("sgdr", "snapshot", "cyclic")
MODELS = ("lenet", "small-vgg")
DATASETS = ("synthetic", "cifar10")
CYCLIC_MODES = ("triangular", "triangular2", "exp_range")

CHECKPOINT, HISTORY, CURVES = "checkpoint.npz", "history.json", "curves.png"
RUN_FILES = (CHECKPOINT, HISTORY, CURVES)


# ------------------------------------------------------------------ data
def load_datasets(
    dataset: str = "synthetic",
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
    train_size: int | None = None,
    test_size: int | None = None,
    seed: int = 0,
) -> tuple[Any, Any]:
    """(train, test) datasets of (N, 32, 32, 3) uint8 images with integer targets.

    ``"synthetic"``: the built-in offline set (``train_size`` default 10 000,
    ``test_size`` 2 000, drawn from ``seed``). ``"cifar10"``: the official
    pickles under ``data_dir`` (``download=True`` fetches them), cut to the
    first ``train_size`` / ``test_size`` images when given. A missing or
    corrupt CIFAR-10 raises ValueError with one line saying what to do. A CIFAR-10
    folder with only some of the five training batches is read as it is; the
    datasets' ``files`` (and ``missing``, ``folder``) say what was read.
    """
    from minisgd import data

    where = "load_datasets"
    checks.choice(where, "dataset", dataset, DATASETS)
    for name, value in (("train_size", train_size), ("test_size", test_size)):
        if value is not None:
            checks.integer(where, name, value, low=1)
    checks.integer(where, "seed", seed, low=0)
    if dataset == "synthetic":
        train = data.SyntheticShapes(train=True, n_samples=train_size or 10_000, seed=seed)
        test = data.SyntheticShapes(train=False, n_samples=test_size or 2_000, seed=seed)
        return train, test
    try:
        train = data.CIFAR10(data_dir, train=True, download=download)
        test = data.CIFAR10(data_dir, train=False)
    except (data.DatasetNotFoundError, data.CorruptDatasetError) as error:
        raise ValueError(" ".join(str(error).split())) from None  # one line, whatever the message's layout
    return _first(train, train_size), _first(test, test_size)


def _first(dataset: Any, count: int | None) -> Any:
    from minisgd.data import ArrayDataset

    if count is None:
        return dataset
    first = ArrayDataset(dataset.data[:count], np.asarray(dataset.targets)[:count], getattr(dataset, "classes", None))
    for name in ("folder", "files", "missing"):  # where a CIFAR-10 cut came from
        if hasattr(dataset, name):
            setattr(first, name, getattr(dataset, name))
    first.total = len(dataset)
    return first


def build_loaders(
    train_set: Any,
    test_set: Any,
    *,
    batch_size: int = 64,
    augment: bool = False,
    seed: int = 0,
    device: str | None = None,
) -> tuple[Any, Any]:
    """(train, test) loaders: images normalised with the *training* set's channel statistics.

    The training loader shuffles with ``seed`` (its order in epoch e depends
    only on seed and e) and, with ``augment``, crops and flips at random; the
    test loader keeps the order, in batches of 500.
    """
    from minisgd.data import DataLoader, transforms

    checks.integer("build_loaders", "batch_size", batch_size, low=1)
    mean, std = transforms.channel_stats(train_set.data)
    train_transform = transforms.image_transforms(mean, std, augment=augment)
    test_transform = transforms.image_transforms(mean, std, augment=False)
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, seed=seed,
                              transform=train_transform, device=device)
    test_loader = DataLoader(test_set, batch_size=500, transform=test_transform, device=device)
    return train_loader, test_loader


# ----------------------------------------------------------------- model
def build_model(name: str = "lenet", *, batch_norm: bool = False) -> Any:
    """``"lenet"`` or ``"small-vgg"`` (``batch_norm=True``: BatchNorm after each convolution, small-vgg only)."""
    from minisgd import models

    checks.choice("build_model", "model", name, MODELS)
    if name == "lenet":
        if batch_norm:
            raise ValueError("build_model: batch_norm applies to model 'small-vgg' only")
        return models.lenet()
    return models.small_vgg(batch_norm=batch_norm)


# -------------------------------------------------------------- schedule
def build_schedule(
    name: str = "cosine",
    *,
    lr: float = 0.05,
    epochs: int = 4,
    steps_per_epoch: int = 1,
    step_size: int = 1,
    milestones: list[int] | None = None,
    gamma: float | None = None,
    t0: int = 1,
    t_mult: int = 2,
    min_lr: float = 0.0,
    power: float = 1.0,
    decay_rate: float = 1.0,
    cycles: int | None = None,
    cyclic_mode: str = "triangular",
    patience: int = 1,
    factor: float = 0.1,
    warmup_steps: int = 0,
) -> Any:
    """The schedule ``name`` in optimizer updates, from settings counted in epochs.

    With S = ``steps_per_epoch`` updates per epoch and T = ``epochs`` · S:

    - ``constant``: lr;  ``step``: ×gamma (default 0.1) every ``step_size`` epochs;
      ``multistep``: ×gamma at each of ``milestones`` (epochs; default ½ and ¾ of ``epochs``);
      ``exponential``: ×gamma (default 0.5) per epoch, applied smoothly per update;
    - ``linear``, ``polynomial`` (``power``), ``cosine``: from lr to ``min_lr`` over T;
    - ``inverse-time``: lr / (1 + ``decay_rate`` · epochs done);
      ``inverse-sqrt``: warm-up over ``warmup_steps`` updates (default one epoch), then lr · √(W/t);
    - ``sgdr``: restarts with first cycle ``t0`` epochs, each ``t_mult`` times longer;
      ``snapshot``: ``cycles`` (default: one per epoch) equal cosine cycles over T;
      ``cyclic``: from ``min_lr`` (default lr/10) up to lr and back, 8 half-cycles over T
      (``cyclic_mode``; exp_range's ``gamma`` per update, default 0.99994);
      ``one-cycle``: PyTorch's OneCycleLR peaking at lr;
    - ``reduce-on-plateau``: ×``factor`` when the test loss has not improved for
      more than ``patience`` epochs; the returned object is a
      :class:`~minisgd.plateau.ReduceLROnPlateau` (reachable as ``schedule.plateau``
      when a warm-up wraps it) whose ``step(test_loss)`` is called after each epoch.

    ``warmup_steps > 0`` puts a linear warm-up of that many updates in front of
    any schedule (for inverse-sqrt it is the schedule's own warm-up).
    """
    from minisgd import schedules
    from minisgd.plateau import ReduceLROnPlateau

    where = "build_schedule"
    checks.choice(where, "schedule", name, SCHEDULES)
    lr = checks.number(where, "lr", lr, low=0)
    epochs = checks.integer(where, "epochs", epochs, low=1)
    steps = checks.integer(where, "steps_per_epoch", steps_per_epoch, low=1)
    step_size = checks.integer(where, "step_size", step_size, low=1)
    t0 = checks.integer(where, "t0", t0, low=1)
    t_mult = checks.integer(where, "t_mult", t_mult, low=1)
    min_lr = checks.number(where, "min_lr", min_lr, low=0)
    power = checks.number(where, "power", power, low=0, low_open=True)
    decay_rate = checks.number(where, "decay_rate", decay_rate, low=0)
    warmup_steps = checks.integer(where, "warmup_steps", warmup_steps, low=0)
    cyclic_mode = checks.choice(where, "cyclic_mode", cyclic_mode, CYCLIC_MODES)
    patience = checks.integer(where, "patience", patience, low=0)
    factor = checks.number(where, "factor", factor, low=0, high=1, low_open=True, high_open=True)
    if gamma is not None:
        gamma = checks.number(where, "gamma", gamma, low=0, low_open=True)
    if milestones is not None:
        milestones = checks.increasing(where, "milestones", milestones)
        if not milestones or milestones[0] < 1 or not all(isinstance(m, int) for m in milestones):
            checks.fail(where, "milestones", "whole epochs >= 1", milestones)
    if cycles is not None:
        cycles = checks.integer(where, "cycles", cycles, low=1, high=epochs * steps)
    if min_lr > lr and name in ("linear", "polynomial", "cosine", "sgdr", "cyclic"):
        checks.fail(where, "min_lr", f"<= lr ({lr:g})", min_lr)
    total = epochs * steps

    if name == "constant":
        schedule = schedules.constant(lr)
    elif name == "step":
        schedule = schedules.step(lr, step_size=step_size * steps, gamma=0.1 if gamma is None else gamma)
    elif name == "multistep":
        milestones = milestones or default_milestones(epochs)
        schedule = schedules.multistep(lr, [m * steps for m in milestones], gamma=0.1 if gamma is None else gamma)
    elif name == "exponential":
        gamma_per_epoch = 0.5 if gamma is None else gamma
        schedule = schedules.exponential(lr, gamma=gamma_per_epoch ** (1 / steps))
    elif name == "linear":
        schedule = schedules.linear(lr, total_steps=total, end_lr=min_lr)
    elif name == "polynomial":
        schedule = schedules.polynomial(lr, total_steps=total, power=power, end_lr=min_lr)
    elif name == "inverse-time":
        schedule = schedules.inverse_time(lr, decay_rate=decay_rate, decay_steps=steps)
    elif name == "inverse-sqrt":
        return schedules.inverse_sqrt(lr, warmup_steps=warmup_steps or steps)
    elif name == "cosine":
        schedule = schedules.cosine(lr, total_steps=total, min_lr=min_lr)
    elif name == "sgdr":
        schedule = schedules.sgdr(lr, t0=t0 * steps, t_mult=t_mult, min_lr=min_lr)
    elif name == "snapshot":
        schedule = schedules.snapshot(lr, total_steps=total, cycles=cycles or epochs)
    elif name == "cyclic":
        base = min_lr if min_lr > 0 else lr / 10
        schedule = schedules.cyclic(base, lr, step_size=max(1, total // 8), mode=cyclic_mode,
                                    gamma=0.99994 if gamma is None else gamma)
    elif name == "one-cycle":
        schedule = schedules.one_cycle(lr, total_steps=total)
    else:  # reduce-on-plateau
        schedule = ReduceLROnPlateau(lr, factor=factor, patience=patience, min_lr=min_lr)
    if warmup_steps > 0:
        plateau = schedule if isinstance(schedule, ReduceLROnPlateau) else None
        schedule = schedules.warmup(schedule, warmup_steps=warmup_steps)
        if plateau is not None:
            schedule.plateau = plateau
    return schedule


def default_milestones(epochs: int) -> list[int]:
    """multistep's default milestones: half and three quarters of the epochs (whole epochs >= 1)."""
    return sorted({max(1, epochs // 2), max(1, 3 * epochs // 4)})


def plateau_of(schedule: Any) -> Any:
    """The ReduceLROnPlateau inside ``schedule`` (itself, or under a warm-up), else None."""
    from minisgd.plateau import ReduceLROnPlateau

    if isinstance(schedule, ReduceLROnPlateau):
        return schedule
    return getattr(schedule, "plateau", None)


# ------------------------------------------------------------- optimizer
# Each optimizer's settings and their defaults, used for every setting left unset (None). SGD's are the
# recipe's (lr 0.05, momentum 0.9, weight decay 5e-4); the others are PyTorch's defaults, except RMSprop's
# rate: 1e-3 (Hinton's lecture, Keras's default) rather than PyTorch's 0.01.
OPTIMIZER_DEFAULTS: dict[str, dict[str, Any]] = {
    "sgd": {"lr": 0.05, "momentum": 0.9, "nesterov": False, "weight_decay": 5e-4},
    "heavy-ball": {"lr": 0.05, "momentum": 0.9, "nesterov": False, "weight_decay": 5e-4},
    "adagrad": {"lr": 0.01, "lr_decay": 0.0, "weight_decay": 0.0, "eps": 1e-10},
    "rmsprop": {"lr": 1e-3, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0, "centered": False},
    "adam": {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False},
    "adamw": {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01, "amsgrad": False},
}
OPTIMIZERS = tuple(OPTIMIZER_DEFAULTS)
OPTIMIZER_SETTINGS = ("lr", "momentum", "nesterov", "weight_decay", "betas", "eps", "amsgrad", "alpha", "centered",
                      "lr_decay")


def check_optimizer_settings(name: str, **given: Any) -> dict[str, Any]:
    """The settings of optimizer ``name``: those given (not None, not False) over its :data:`OPTIMIZER_DEFAULTS`.

    Raises ValueError (before any data is loaded) for an unknown optimizer, a
    setting that optimizer does not take (``nesterov`` with ``adam``), or a value
    out of range: momentum μ in [0, 1) (μ >= 1 never forgets a gradient: the steps
    grow without bound), Nesterov only with μ > 0, betas a pair in [0, 1),
    alpha in [0, 1], weight_decay, eps, lr_decay >= 0, lr >= 0 or a schedule.
    """
    where = "build_optimizer"
    checks.choice(where, "optimizer", name, OPTIMIZERS)
    defaults = OPTIMIZER_DEFAULTS[name]
    for key, value in given.items():
        if key not in OPTIMIZER_SETTINGS:
            raise TypeError(f"{where}: unknown setting {key!r}")
        if value is not None and value is not False and key not in defaults:
            takers = ", ".join(other for other in OPTIMIZERS if key in OPTIMIZER_DEFAULTS[other])
            raise ValueError(f"{key} applies to optimizer {takers} only; got optimizer {name!r}")
    settings = {**defaults, **{k: v for k, v in given.items() if v is not None and k in defaults}}
    settings["lr"] = checks.schedule_or_number(where, "lr", settings["lr"])
    settings["weight_decay"] = checks.number(where, "weight_decay", settings["weight_decay"], low=0)
    if "momentum" in settings:
        settings["momentum"] = checks.number(where, "momentum", settings["momentum"], low=0, high=1, high_open=True)
    if settings.get("nesterov") and settings["momentum"] == 0:
        checks.fail(where, "momentum", "> 0 with nesterov", settings["momentum"])
    if "betas" in settings:
        betas = settings["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            checks.fail(where, "betas", "a pair (beta1, beta2), each in [0, 1)", betas)
        settings["betas"] = tuple(checks.number(where, "betas", beta, low=0, high=1, high_open=True)
                                  for beta in betas)
    for key in ("eps", "lr_decay"):
        if key in settings:
            settings[key] = checks.number(where, key, settings[key], low=0)
    if "alpha" in settings:
        settings["alpha"] = checks.number(where, "alpha", settings["alpha"], low=0, high=1)
    return settings


def build_optimizer(
    model: Any,
    name: str = "sgd",
    *,
    lr: Any = None,
    no_decay_bias_bn: bool = False,
    **settings: Any,
) -> Any:
    """The optimizer ``name`` of ``model``'s parameters; ``lr`` is a number or a schedule ``t -> lr``.

    ``name`` is one of :data:`OPTIMIZERS`: ``"sgd"`` (:class:`minisgd.optim.SGD`,
    PyTorch's rule), ``"heavy-ball"`` (:class:`~minisgd.optim.HeavyBallSGD`, the
    recitation's V ← βV + αg), ``"adagrad"``, ``"rmsprop"``, ``"adam"``, ``"adamw"``.
    ``settings`` are that optimizer's hyper-parameters (momentum, nesterov,
    weight_decay, betas, eps, amsgrad, alpha, centered, lr_decay); each one left
    out or None takes the optimizer's default (:func:`check_optimizer_settings`).
    ``no_decay_bias_bn`` puts biases and BatchNorm's γ, β in a group without
    weight decay (:func:`minisgd.optim.no_decay_groups`).
    """
    from minisgd import optim

    classes = {"sgd": optim.SGD, "heavy-ball": optim.HeavyBallSGD, "adagrad": optim.Adagrad,
               "rmsprop": optim.RMSprop, "adam": optim.Adam, "adamw": optim.AdamW}
    options = check_optimizer_settings(name, lr=lr, **settings)
    params = optim.no_decay_groups(model) if no_decay_bias_bn else model.parameters()
    return classes[name](params, **options)


# ------------------------------------------------------------------- runs
@dataclass
class RunConfig:
    """Every setting of a training run, as plain values (what the checkpoint stores to resume it).

    The fields are the arguments of :func:`load_datasets`, :func:`build_loaders`,
    :func:`build_model`, :func:`build_schedule` and :func:`build_optimizer`;
    ``schedule`` names the schedule and ``snapshots`` keeps a snapshot ensemble
    (a member at the end of each cycle of a cyclic schedule). Optimizer settings
    left None take the optimizer's default (:data:`OPTIMIZER_DEFAULTS`);
    :func:`check_config` writes them in. ``clip_grad_norm`` clips the gradients'
    total 2-norm before every update. ``swa_start`` (epochs) turns on stochastic
    weight averaging: see :func:`swa_settings`.
    """

    dataset: str = "synthetic"
    data_dir: str | None = None
    download: bool = False
    train_size: int | None = None
    test_size: int | None = None
    augment: bool = False
    model: str = "lenet"
    batch_norm: bool = False
    batch_size: int = 64
    device: str | None = None
    seed: int = 0
    epochs: int = 4
    optimizer: str = "sgd"
    lr: float | None = None  # None: the optimizer's default (OPTIMIZER_DEFAULTS), as for the next ones
    momentum: float | None = None
    nesterov: bool = False
    weight_decay: float | None = None
    betas: list[float] | None = None
    eps: float | None = None
    amsgrad: bool = False
    alpha: float | None = None
    centered: bool = False
    lr_decay: float | None = None
    no_decay_bias_bn: bool = False
    clip_grad_norm: float | None = None
    schedule: str = "cosine"
    step_size: int = 1
    milestones: list[int] | None = None
    gamma: float | None = None
    t0: int = 1
    t_mult: int = 2
    min_lr: float = 0.0
    power: float = 1.0
    decay_rate: float = 1.0
    cycles: int | None = None
    cyclic_mode: str = "triangular"
    patience: int = 1
    factor: float = 0.1
    warmup_steps: int = 0
    snapshots: bool = False
    swa_start: int | None = None
    swa_lr: float | None = None

    def optimizer_settings(self) -> dict[str, Any]:
        """The hyper-parameters of :func:`build_optimizer` (all but lr and no_decay_bias_bn)."""
        return {name: getattr(self, name) for name in OPTIMIZER_SETTINGS if name != "lr"}

    def schedule_settings(self) -> dict[str, Any]:
        """The keyword arguments of :func:`build_schedule` (all but steps_per_epoch)."""
        names = ("lr", "epochs", "step_size", "milestones", "gamma", "t0", "t_mult", "min_lr", "power",
                 "decay_rate", "cycles", "cyclic_mode", "patience", "factor", "warmup_steps")
        return {"name": self.schedule, **{name: getattr(self, name) for name in names}}


def check_config(config: RunConfig) -> RunConfig:
    """Check every setting before any data is loaded; return the config with defaults made explicit.

    Raises ValueError naming the setting. multistep's default milestones are
    written into the returned config, so that they stay where they were when
    a resumed run asks for more epochs.
    """
    where = "RunConfig"
    checks.choice(where, "dataset", config.dataset, DATASETS)
    checks.choice(where, "model", config.model, MODELS)
    for name in ("train_size", "test_size"):
        if getattr(config, name) is not None:
            checks.integer(where, name, getattr(config, name), low=1)
    checks.integer(where, "batch_size", config.batch_size, low=1)
    checks.integer(where, "seed", config.seed, low=0)
    if config.model == "lenet" and config.batch_norm:
        raise ValueError("batch_norm applies to model 'small-vgg' only")
    settings = check_optimizer_settings(config.optimizer, lr=config.lr, **config.optimizer_settings())
    explicit = {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.items()}  # lists: JSON-friendly
    config = RunConfig(**{**asdict(config), **explicit})
    if config.clip_grad_norm is not None:
        checks.number(where, "clip_grad_norm", config.clip_grad_norm, low=0, low_open=True)
    build_schedule(**config.schedule_settings(), steps_per_epoch=1)  # raises for a bad schedule setting
    if config.snapshots and config.schedule not in CYCLIC_SCHEDULES:
        checks.fail("", "snapshots", "used with a schedule with cycles (" + ", ".join(CYCLIC_SCHEDULES) + ")",
                    config.schedule)
    swa_settings(config)
    if config.schedule == "multistep" and config.milestones is None:
        config = RunConfig(**{**asdict(config), "milestones": default_milestones(config.epochs)})
    if config.swa_start is not None and config.swa_lr is None:
        config = RunConfig(**{**asdict(config), "swa_lr": swa_settings(config)[1]})
    return config


def swa_settings(config: RunConfig) -> tuple[int, float] | None:
    """(swa_start, swa_lr) of a run with stochastic weight averaging, else None; ValueError for bad ones.

    From epoch ``swa_start`` on, the rate leaves the schedule: over one epoch it
    anneals (cosine) to ``swa_lr`` (default lr / 5) and holds it
    (:func:`minisgd.optim.swa_utils.swa_schedule`). At the end of every later
    epoch (``swa_start`` + 1, …, ``epochs``) the weights are folded into the
    average (``AveragedModel.update_parameters``); at the end of the run
    ``update_bn`` recomputes the average's BatchNorm statistics and the average
    is scored beside the last iterate. ``swa_start`` must leave at least one
    epoch to average (``swa_start < epochs``).
    """
    where = ""
    if config.swa_start is None:
        if config.swa_lr is not None:
            raise ValueError(f"swa_lr needs swa_start (the epoch at which averaging starts); got swa_lr="
                             f"{config.swa_lr!r} without it")
        return None
    start = checks.integer(where, "swa_start", config.swa_start, low=1)
    if start >= config.epochs:
        raise ValueError(f"swa_start must be < epochs ({config.epochs}), so that at least one epoch is averaged; "
                         f"got {start}")
    if config.schedule == "reduce-on-plateau":
        raise ValueError("swa_start cannot be used with schedule reduce-on-plateau (its rate is not known in "
                         "advance, and SWA replaces the schedule from swa_start on); choose another schedule")
    if config.snapshots:
        raise ValueError("swa_start cannot be combined with snapshots: from swa_start on the rate is held "
                         "at swa_lr, so there are no cycles to take snapshots from; use one or the other")
    swa_lr = config.swa_lr if config.swa_lr is not None else config.lr / 5
    return start, checks.number(where, "swa_lr", swa_lr, low=0)


@dataclass
class Run:
    """A training run ready to train: its settings, folder, data, model, optimizer and progress so far.

    ``snapshots`` holds the snapshot ensemble's members taken so far (weights
    as NumPy arrays) and ``snapshot_steps`` the update counts at which the
    next ones are taken. ``swa_model`` is the running weight average
    (an ``AveragedModel``) of a run with ``swa_start``, else None. ``saved_epoch`` is the epoch of the newest checkpoint
    on disk (None before the first one).
    """

    config: RunConfig
    out: Path
    device: str
    train_set: Any
    test_set: Any
    train_loader: Any
    test_loader: Any
    model: Any
    schedule: Any
    optimizer: Any
    history: Any
    start_epoch: int = 0
    snapshots: list[dict[str, np.ndarray]] = field(default_factory=list)
    snapshot_steps: list[int] = field(default_factory=list)
    saved_epoch: int | None = None
    swa_model: Any = None

    @property
    def steps_per_epoch(self) -> int:
        return len(self.train_loader)


@dataclass
class RunResult:
    """How a run ended: ``history`` (with the final test_acc/test_loss), the snapshot
    ensemble's accuracy and size, the files written, and ``stopped`` (why a diverging
    run stopped, else None)."""

    history: Any
    snapshot_test_acc: float | None
    snapshot_count: int
    saved: list[Path]
    stopped: str | None
    saved_epoch: int | None
    seconds: float

    @property
    def test_acc(self) -> float | None:
        return self.history.last("test_acc")

    @property
    def test_loss(self) -> float | None:
        return self.history.last("test_loss")

    @property
    def swa_test_acc(self) -> float | None:
        """The SWA average's test accuracy (a run with ``swa_start``), else None."""
        return self.history.swa_test_acc

    @property
    def swa_test_loss(self) -> float | None:
        return self.history.swa_test_loss


def default_out(config: RunConfig, root: str | os.PathLike = "runs") -> Path:
    """``runs/<model>-<dataset>-<YYYYmmdd-HHMMSS>``, with a suffix if that folder already exists."""
    stem = Path(root) / f"{config.model}-{config.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    out, n = stem, 1
    while out.exists():
        n += 1
        out = stem.with_name(f"{stem.name}-{n}")
    return out


def check_out_folder(out: str | os.PathLike) -> Path:
    """``out`` as a Path, if a new run may write there: not a file, and holding no earlier run."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        checks.fail("", "out", "a folder for the run's files", f"{out} (an existing file)")
    existing = [name for name in RUN_FILES if (out / name).exists()]
    if existing:
        raise ValueError(
            f"out: {out} already holds a run ({', '.join(existing)}); choose another folder, "
            f"or continue that run by resuming {out}"
        )
    return out


def resolve_device(device: str | None = None) -> str:
    """``device``, or the default one ($MINISGD_DEVICE or cpu), checked to be usable (ValueError if not)."""
    from minisgd import backend

    device = device or backend.default_device()
    try:
        backend.array_module(device)
    except backend.DeviceError as error:
        raise ValueError(f"device {device}: {error}") from None
    return device


def _build(config: RunConfig, out: Path) -> Run:
    from minisgd import random
    from minisgd.train import History

    device = resolve_device(config.device)
    random.manual_seed(config.seed)
    train_set, test_set = load_datasets(config.dataset, data_dir=config.data_dir, download=config.download,
                                        train_size=config.train_size, test_size=config.test_size, seed=config.seed)
    train_loader, test_loader = build_loaders(train_set, test_set, batch_size=config.batch_size,
                                              augment=config.augment, seed=config.seed, device=device)
    model = build_model(config.model, batch_norm=config.batch_norm).to(device)
    steps_per_epoch = len(train_loader)
    schedule = build_schedule(**config.schedule_settings(), steps_per_epoch=steps_per_epoch)
    swa = swa_settings(config)
    if swa is not None:
        from minisgd.optim.swa_utils import swa_schedule

        schedule = swa_schedule(schedule, swa[0] * steps_per_epoch, swa_lr=swa[1], anneal_steps=steps_per_epoch)
    optimizer = build_optimizer(model, config.optimizer, lr=schedule, no_decay_bias_bn=config.no_decay_bias_bn,
                                **config.optimizer_settings())
    run = Run(config, out, device, train_set, test_set, train_loader, test_loader, model, schedule, optimizer,
              History())
    if swa is not None:
        from minisgd.optim.swa_utils import AveragedModel

        run.swa_model = AveragedModel(model)
    if config.snapshots:
        from minisgd.ensemble import cycle_ends

        run.snapshot_steps = cycle_ends(schedule, config.epochs * steps_per_epoch)
        if not run.snapshot_steps:
            raise ValueError(
                f"snapshots: no cycle of schedule {config.schedule} ends within {config.epochs} epochs; "
                "train longer or use shorter cycles"
            )
    return run


def start_run(config: RunConfig, out: str | os.PathLike | None = None) -> Run:
    """Check ``config`` and the folder ``out`` (default: :func:`default_out`), load the data, build everything.

    Nothing is written until the first epoch ends.
    """
    config = check_config(config)
    out = check_out_folder(out if out is not None else default_out(config))
    return _build(config, out)


def find_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint of a run: ``path`` itself, or ``path/checkpoint.npz`` for a run folder."""
    path = Path(path)
    if path.is_dir():
        return path / CHECKPOINT
    return path


def resume_run(path: str | os.PathLike, *, epochs: int | None = None) -> Run:
    """Rebuild a run from its folder (or its ``checkpoint.npz``) exactly as it stood after its last epoch.

    ``epochs`` (default: the saved number) may differ from the saved one only
    for a schedule without a horizon (see the module docstring); otherwise
    ValueError explains why. Temporary files left in the folder by a save that
    was killed are removed. Raises ValueError for a file that is not a minisgd
    checkpoint (it is never unpickled).
    """
    from minisgd import checkpoint
    from minisgd.atomic import remove_temporaries
    from minisgd.train import History

    path = find_checkpoint(path)
    try:
        saved = checkpoint.load_checkpoint(path)
    except checkpoint.CheckpointError as error:
        raise ValueError(str(error)) from None
    known = {f.name for f in fields(RunConfig)}
    settings = saved["meta"].get("config")
    if not isinstance(settings, dict) or not set(settings) <= known:
        raise ValueError(f"{path} is a checkpoint without a run's settings (not written by a minisgd run)")
    config = RunConfig(**settings)
    done = saved["epoch"]
    if epochs is not None and epochs != config.epochs:
        epochs = checks.integer("resume_run", "epochs", epochs, low=1)
        if epochs < done:
            raise ValueError(f"epochs must be >= {done}: the run has already trained {done} epochs; got {epochs}")
        if config.schedule in HORIZON_SCHEDULES:
            raise ValueError(
                f"epochs: this run's {config.schedule} schedule was built for {config.epochs} epochs and its "
                f"shape depends on that horizon; resuming continues the same schedule, so the run ends at epoch "
                f"{config.epochs} (start a new run to train for {epochs}); got {epochs}"
            )
        config = RunConfig(**{**asdict(config), "epochs": epochs})
    remove_temporaries(path.parent)
    run = _build(config, path.parent)
    try:
        checkpoint.restore(saved, model=run.model, optimizer=run.optimizer)
        plateau = plateau_of(run.schedule)
        if plateau is not None:
            plateau.load_state_dict(saved["sections"]["plateau"])
        if run.swa_model is not None:
            run.swa_model.load_state_dict(saved["sections"]["swa"])
    except (checkpoint.CheckpointError, KeyError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from None
    run.history = History.from_dict(saved["history"])
    run.start_epoch = run.saved_epoch = done
    run.train_loader.set_epoch(done)
    count = int(saved["meta"].get("snapshots", 0))
    run.snapshots = [saved["sections"][f"snapshot.{k}"] for k in range(count)]
    return run


def _save_checkpoint(run: Run, epoch: int) -> None:
    from minisgd import checkpoint

    sections = {f"snapshot.{k}": weights for k, weights in enumerate(run.snapshots)}
    plateau = plateau_of(run.schedule)
    if plateau is not None:
        sections["plateau"] = plateau.state_dict()
    if run.swa_model is not None:
        sections["swa"] = run.swa_model.state_dict()
    meta = {"config": asdict(run.config), "device": run.device, "snapshots": len(run.snapshots)}
    checkpoint.save_checkpoint(run.out / CHECKPOINT, model=run.model, optimizer=run.optimizer, epoch=epoch,
                               history=run.history.to_dict(), meta=meta, sections=sections)
    run.saved_epoch = epoch


def train_run(
    run: Run,
    *,
    progress: bool = True,
    log: Callable[[str], None] | None = print,
) -> RunResult:
    """Train ``run`` from where it stands to ``run.config.epochs``; save, score and plot it.

    After every epoch: fold the weights into the SWA average (epochs after
    ``swa_start``), step ReduceLROnPlateau with the test loss, then write
    ``checkpoint.npz`` atomically. At the end: the snapshot ensemble's test
    accuracy, the SWA average's (after ``update_bn``), ``history.json`` and ``curves.png``. A run whose loss diverges
    stops there (``result.stopped`` says where and why) and keeps the last good
    checkpoint; its history and curves are still written. ``progress`` shows
    progress bars; ``log`` receives one line per epoch (None: silent).
    NumPy's overflow warnings are silenced: a divergence is reported once, by
    the history.
    """
    from minisgd.backend import to_numpy
    from minisgd.plots import plot_history
    from minisgd.train import fit

    config, model = run.config, run.model
    snapshot_steps = set(run.snapshot_steps)
    run.out.mkdir(parents=True, exist_ok=True)

    def on_step_end(t: int) -> None:
        if t in snapshot_steps:  # a resumed run restarts at an epoch's start: each t comes once
            run.snapshots.append({k: np.array(to_numpy(v), copy=True) for k, v in model.state_dict().items()})

    def on_epoch_end(epoch: int, history: Any) -> None:
        if run.swa_model is not None and epoch > config.swa_start:
            run.swa_model.update_parameters(model)
        plateau = plateau_of(run.schedule)
        if plateau is not None:
            plateau.step(history.last("test_loss"))
        _save_checkpoint(run, epoch)

    started = time.perf_counter()
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if run.start_epoch < config.epochs:
            run.history = fit(model, run.train_loader, run.optimizer, epochs=config.epochs,
                              test_loader=run.test_loader, history=run.history, start_epoch=run.start_epoch,
                              on_epoch_end=on_epoch_end, on_step_end=on_step_end if snapshot_steps else None,
                              clip_grad_norm=config.clip_grad_norm, progress=progress, log=log)
        history = run.history
        snapshot_acc = None
        if run.snapshots and history.stopped is None:
            snapshot_acc = snapshot_accuracy(model, run.snapshots, run.test_loader)
            history.snapshot_test_acc = snapshot_acc
        if run.swa_model is not None and int(run.swa_model.n_averaged) > 0 and history.stopped is None:
            from minisgd.optim.swa_utils import update_bn
            from minisgd.train import evaluate

            update_bn(run.train_loader, run.swa_model)
            scores = evaluate(run.swa_model, run.test_loader)
            history.swa_test_acc, history.swa_test_loss = scores["acc"], scores["loss"]
    from minisgd.atomic import write_text

    write_text(run.out / HISTORY, json.dumps(history.to_dict(), indent=1))
    title = f"{config.model} on {config.dataset}: {config.optimizer}, {config.schedule} schedule"
    plot_history(history, run.out / CURVES, title=title)
    saved = [run.out / name for name in RUN_FILES if (run.out / name).exists()]
    return RunResult(history, snapshot_acc, len(run.snapshots), saved, history.stopped, run.saved_epoch,
                     time.perf_counter() - started)


def snapshot_accuracy(model: Any, snapshots: list[dict[str, np.ndarray]], test_loader: Any) -> float:
    """Test accuracy of the ensemble of ``snapshots`` (weights of ``model``), averaging softmax outputs."""
    from minisgd.ensemble import SnapshotEnsemble

    return SnapshotEnsemble(model, snapshots).accuracy(test_loader)
