"""The training recipe: data, model, schedule and optimizer from plain settings, and the settings of a run.

``python -m minisgd train``, the lectures and the exercises all use these
builders; each takes plain arguments and raises ``ValueError`` naming the
argument for a bad value. A run built from them, with its folder, checkpoints
and exact resume, is in :mod:`minisgd.runs`.

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

:class:`RunConfig` holds every setting of a training run as plain values (what
a checkpoint stores), and :func:`check_config` checks them all before any data
is loaded.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

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
        for name, count in (("train_size", train_size or 10_000), ("test_size", test_size or 2_000)):
            _check_fits_in_memory(where, name, count)
        train = data.SyntheticShapes(train=True, n_samples=train_size or 10_000, seed=seed)
        test = data.SyntheticShapes(train=False, n_samples=test_size or 2_000, seed=seed)
        return train, test
    try:
        train = data.CIFAR10(data_dir, train=True, download=download)
        test = data.CIFAR10(data_dir, train=False)
    except (data.DatasetNotFoundError, data.CorruptDatasetError) as error:
        raise ValueError(" ".join(str(error).split())) from None  # one line, whatever the message's layout
    except OSError as error:  # a folder name too long, a parent that is a file, a read-only place
        raise ValueError(f"data_dir: cannot use {str(data_dir)[:120]} for CIFAR-10: "
                         f"{error.strerror or error}") from None
    return _first(train, train_size), _first(test, test_size)


# Peak memory while drawing a synthetic image and normalising it: 35 kB measured (20 000 images), rounded up.
SYNTHETIC_BYTES_PER_IMAGE = 40_000


def _check_fits_in_memory(where: str, name: str, count: int) -> None:
    """ValueError before allocating, if drawing ``count`` synthetic images needs more memory than is free."""
    available = available_memory()
    needed = count * SYNTHETIC_BYTES_PER_IMAGE
    if available is not None and needed > available:
        checks.fail(where, name, f"at most {available // SYNTHETIC_BYTES_PER_IMAGE:,} here (each synthetic image "
                                 f"needs about {SYNTHETIC_BYTES_PER_IMAGE // 1000} kB while it is drawn, and "
                                 f"{available / 1e9:.1f} GB of memory is free)", count)


def available_memory() -> int | None:
    """Bytes of memory free for a new allocation (Linux: MemAvailable; else free physical pages), or None."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _first(dataset: Any, count: int | None) -> Any:
    from minisgd.data import ArrayDataset

    if count is None:
        return dataset
    first = ArrayDataset(dataset.data[:count], np.asarray(dataset.targets)[:count], getattr(dataset, "classes", None))
    for name in ("folder", "files", "missing", "md5_differs"):  # where a CIFAR-10 cut came from
        if hasattr(dataset, name):
            setattr(first, name, getattr(dataset, name))
    first.total = len(dataset)
    return first


def hold_out_validation(train_set: Any, val_size: int, *, seed: int = 0) -> tuple[Any, Any]:
    """(train, validation): ``val_size`` training images set aside at random, the rest kept for training.

    Choices made on held-out data (the best epoch, the rate, "train longer?")
    must never look at the test set, or its number stops measuring
    generalisation: select on the validation split, report on the test split.
    The validation images are a random sample drawn with ``seed`` (the same
    for the same seed and data); the training images keep their order.
    ``val_size`` must leave at least one training image.
    """
    from minisgd.data import ArrayDataset

    where = "hold_out_validation"
    checks.integer(where, "val_size", val_size, low=1, high=len(train_set) - 1)
    checks.integer(where, "seed", seed, low=0)
    chosen = np.random.default_rng(seed).permutation(len(train_set))[:val_size]
    is_val = np.zeros(len(train_set), dtype=bool)
    is_val[chosen] = True
    targets = np.asarray(train_set.targets)
    classes = getattr(train_set, "classes", None)
    kept = ArrayDataset(train_set.data[~is_val], targets[~is_val], classes)
    val = ArrayDataset(train_set.data[is_val], targets[is_val], classes)
    for part in (kept, val):
        for name in ("folder", "files", "missing", "md5_differs"):  # where a CIFAR-10 split came from
            if hasattr(train_set, name):
                setattr(part, name, getattr(train_set, name))
    return kept, val


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
    - ``reduce-on-plateau``: ×``factor`` when the held-out loss has not improved
      for more than ``patience`` epochs; the returned object is a
      :class:`~minisgd.plateau.ReduceLROnPlateau` (reachable as ``schedule.plateau``
      when a warm-up wraps it) whose ``step(loss)`` is called after each epoch
      (a run steps it with the validation loss when it has ``val_size``, else
      with the test loss).

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
    if total > 2**53:  # every update count t must be exact in float64
        checks.fail(where, "epochs", f"at most {2**53 // steps:,} with {steps} updates per epoch (update counts "
                                     "beyond 2**53 are not exact in float64)", epochs)

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
    if name in ("exponential", "cyclic") and gamma is not None and gamma > 1:
        _check_rates_stay_finite(name, schedule, total)
    if warmup_steps > 0:
        plateau = schedule if isinstance(schedule, ReduceLROnPlateau) else None
        schedule = schedules.warmup(schedule, warmup_steps=warmup_steps)
        if plateau is not None:
            schedule.plateau = plateau
    return schedule


def _check_rates_stay_finite(name: str, schedule: Any, total: int) -> None:
    """ValueError naming gamma if a growing schedule (gamma > 1) overflows within the run's ``total`` updates.

    Its rate grows with t, so the times checked are every update of a run of up to a million, else a
    million evenly spaced ones and the last.
    """
    times = np.arange(total, dtype=np.float64) if total <= 10**6 else np.linspace(0, total - 1, 10**6)
    with np.errstate(over="ignore", invalid="ignore"):
        rates = np.asarray(schedule(times), dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(rates))
    if bad.size:
        raise ValueError(f"gamma: with schedule {name}, a gamma > 1 makes the rate grow until it overflows "
                         f"(lr(t) = {rates[bad[0]]} at update {int(times[bad[0]])} of {total}); choose a "
                         f"gamma <= 1 or a shorter run")


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


# ---------------------------------------------------------------- device
def resolve_device(device: str | None = None) -> str:
    """``device``, or the default one ($MINISGD_DEVICE or cpu), checked to be usable (ValueError if not)."""
    from minisgd import backend

    device = device or backend.default_device()
    try:
        backend.array_module(device)
    except backend.DeviceError as error:
        raise ValueError(f"device {device}: {error}") from None
    return device


# --------------------------------------------------------------- settings
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
    weight averaging: see :func:`swa_settings`. ``val_size`` holds that many of
    the (first ``train_size``) training images out for validation
    (:func:`hold_out_validation`, drawn with ``seed``): the run is scored on
    them after every epoch, ``reduce-on-plateau`` steps on their loss, and the
    test set is scored once, at the end. ``data_parallel`` trains on the
    K processes ``mpiexec`` started (``sync``, ``ring``, ``local-sgd`` every
    ``sync_every`` updates, ``async``; :mod:`minisgd.distributed`), with
    ``batch_size`` the global batch.
    """

    dataset: str = "synthetic"
    data_dir: str | None = None
    download: bool = False
    train_size: int | None = None
    test_size: int | None = None
    val_size: int | None = None  # training images held out for validation (hold_out_validation), None: none
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
    data_parallel: str | None = None  # None: one process; else a mode of minisgd.distributed.MODES
    sync_every: int = 1  # local-sgd: average the weights every H updates

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
    for name in ("train_size", "test_size", "val_size"):
        if getattr(config, name) is not None:
            checks.integer(where, name, getattr(config, name), low=1)
    if config.val_size is not None and config.train_size is not None and config.val_size >= config.train_size:
        raise ValueError(f"val_size must be below train_size ({config.train_size}), to leave images to train on; "
                         f"got {config.val_size}")
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
    if config.data_parallel is not None:
        from minisgd.distributed import MODES

        checks.choice(where, "data_parallel", config.data_parallel, MODES)
        if config.data_parallel == "async" and (config.snapshots or config.swa_start is not None
                                                or config.val_size is not None):
            raise ValueError("data_parallel async cannot be combined with snapshots, swa_start or val_size (the "
                             "parameter server applies the updates and scores the test set); use sync, ring or "
                             "local-sgd")
    checks.integer(where, "sync_every", config.sync_every, low=1)
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
