"""A training run: its folder, its checkpoint after every epoch, and a resume that continues bit for bit.

The recipe (:mod:`minisgd.recipe`) says what to train; this module runs it::

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

One run at a time per folder: a run holds the folder's lock file
(``.minisgd.lock``, :class:`minisgd.atomic.FolderLock`) from the moment it is
started or resumed until it ends, so a second run started at once with the
same folder is refused. A save that fails (a full disk) raises
:class:`SaveError`, which says which epoch's checkpoint is still on disk.
A run resumes only from its own ``checkpoint.npz``: resuming a copy beside it
(``RUN/backup.npz``) is refused, since it would overwrite the newer
``RUN/checkpoint.npz``.
"""

from __future__ import annotations

import errno
import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np

from minisgd import checks
from minisgd.recipe import (
    HORIZON_SCHEDULES,
    RunConfig,
    build_loaders,
    build_model,
    build_optimizer,
    build_schedule,
    check_config,
    hold_out_validation,
    load_datasets,
    plateau_of,
    resolve_device,
    swa_settings,
)

CHECKPOINT, HISTORY, CURVES = "checkpoint.npz", "history.json", "curves.png"
RUN_FILES = (CHECKPOINT, HISTORY, CURVES)


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
    val_set: Any = None  # the validation split (config.val_size), scored every epoch; else None
    val_loader: Any = None
    workers: Any = None  # a minisgd.distributed.Workers for a data-parallel run, else None
    saved_workers: int = 1  # a resumed run: how many workers trained it so far
    lock: Any = None
    notes: list[str] = field(default_factory=list)

    @property
    def steps_per_epoch(self) -> int:
        return len(self.train_loader)

    def release(self) -> None:
        """Let go of the run folder's lock (done by :func:`train_run` when it ends; idempotent)."""
        if self.lock is not None:
            self.lock.release()


class SaveError(Exception):
    """A file of the run could not be written (a full disk, a folder removed, no permission).

    The message says which file, why, and which epoch's checkpoint is still on disk.
    """


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
    try:
        if out.exists() and not out.is_dir():
            checks.fail("", "out", "a folder for the run's files", f"{out} (an existing file)")
        existing = [name for name in RUN_FILES if (out / name).exists()]
    except OSError as error:  # a name too long, a parent that is a file, no permission
        raise ValueError(f"out: cannot use {_short(out)} as the run's folder: {_reason(error)}") from None
    if existing:
        raise ValueError(
            f"out: {out} already holds a run ({', '.join(existing)}); choose another folder, "
            f"or continue that run by resuming {out}"
        )
    return out


class _NoLock:
    """What a data-parallel worker of rank > 0 holds: nothing (rank 0, the one that writes, holds the lock)."""

    note = None

    def release(self) -> None:
        pass


def claim_folder(folder: Path, config: RunConfig | None = None) -> tuple[Any, Path | None]:
    """Create ``folder`` (and its parents) and take its lock: (the FolderLock, the first folder created or None).

    Raises ValueError with one line when the folder cannot be made (a parent
    that is a file, a name too long, a read-only place) or another run holds it.
    Under ``mpiexec`` with ``data_parallel``, only rank 0 writes the folder, so
    only rank 0 claims it; the other ranks get a lock that holds nothing.
    """
    from minisgd.atomic import FolderLock
    from minisgd.distributed import launched_rank

    if config is not None and config.data_parallel is not None and launched_rank() > 0:
        return _NoLock(), None
    first_new = next((p for p in reversed([folder, *folder.parents]) if not _exists(p)), None)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return FolderLock(folder), first_new
    except OSError as error:
        _remove_empty(folder, first_new)
        raise ValueError(f"cannot use {_short(folder)} as the run's folder: {_reason(error)}") from None


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:
        return False


def _remove_empty(folder: Path, first_new: Path | None) -> None:
    """Remove the folders a failed start created (``folder`` up to ``first_new``), if they are still empty."""
    if first_new is None:
        return
    for path in [folder, *folder.parents]:
        try:
            path.rmdir()
        except OSError:
            return
        if path == first_new:
            return


def _short(path: Path) -> str:
    text = str(path)
    return text if len(text) <= 120 else f"{text[:60]}…({len(text)} characters)"


def _reason(error: OSError) -> str:
    """``"the disk is full (No space left on device)"``, ``"File name too long"``: why a file operation failed."""
    text = error.strerror or str(error)
    if error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return f"the disk is full ({text})"
    return text


def _build(config: RunConfig, out: Path) -> Run:
    from minisgd import random
    from minisgd.train import History

    device = resolve_device(config.device)
    random.manual_seed(config.seed)
    train_set, test_set = load_datasets(config.dataset, data_dir=config.data_dir, download=config.download,
                                        train_size=config.train_size, test_size=config.test_size, seed=config.seed)
    val_set = val_loader = None
    if config.val_size is not None:  # the same split on resume: drawn from the seed
        train_set, val_set = hold_out_validation(train_set, config.val_size, seed=config.seed)
    train_loader, test_loader = build_loaders(train_set, test_set, batch_size=config.batch_size,
                                              augment=config.augment, seed=config.seed, device=device)
    if val_set is not None:  # normalised like the test set, with the kept training images' statistics
        _, val_loader = build_loaders(train_set, val_set, batch_size=config.batch_size, seed=config.seed,
                                      device=device)
    workers = _workers(config, len(train_set))
    if workers is not None:
        train_loader = workers.shard(train_loader)
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
              History(), val_set=val_set, val_loader=val_loader, workers=workers)
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


def _workers(config: RunConfig, n_train: int) -> Any:
    """The K workers of a data-parallel run (K = 1 outside mpiexec), else None; ValueError for a batch they
    cannot share, or for several processes without ``data_parallel``."""
    from minisgd import distributed

    if config.data_parallel is None:
        if distributed.launched_size() > 1:
            raise ValueError(f"data_parallel: mpiexec started {distributed.launched_size()} processes, but this "
                             "run trains in one; give --data-parallel sync (or ring, local-sgd, async), or run "
                             "without mpiexec")
        return None
    workers = distributed.Workers(config.data_parallel, sync_every=config.sync_every)
    if config.data_parallel != "async" and workers.size > 1:  # async workers take whole batches
        distributed.check_batch(config.batch_size, n_train, workers.size)
    return workers


def start_run(config: RunConfig, out: str | os.PathLike | None = None) -> Run:
    """Check ``config`` and the folder ``out`` (default: :func:`default_out`), load the data, build everything.

    Nothing but the folder and its lock file is written until the first epoch ends.
    Claims the folder first (its lock file, see :class:`minisgd.atomic.FolderLock`):
    a folder that another run holds, or that cannot be created, raises ValueError.
    """
    config = check_config(config)
    out = check_out_folder(out if out is not None else default_out(config))
    try:
        lock, first_new = claim_folder(out, config)
    except ValueError as error:
        raise ValueError(f"out: {error}") from None
    try:
        try:
            check_out_folder(out)  # again, under the lock: a run that ended just now has written its files
        except ValueError:
            first_new = None  # it holds a run: keep the folder
            raise
        run = _build(config, out)
    except BaseException:
        lock.release()
        _remove_empty(out, first_new)
        raise
    run.lock = lock
    run.notes += [lock.note] if lock.note else []
    return run


def find_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint of a run: ``path`` itself, or ``path/checkpoint.npz`` for a run folder."""
    path = Path(path)
    try:
        is_dir = path.is_dir()
    except OSError as error:  # a name too long
        raise ValueError(f"cannot read {_short(path)}: {_reason(error)}") from None
    return path / CHECKPOINT if is_dir else path


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
    _refuse_a_copy_beside_the_checkpoint(path)
    try:
        saved = checkpoint.load_checkpoint(path)
    except checkpoint.CheckpointError as error:
        raise ValueError(str(error)) from None
    known = {f.name for f in fields(RunConfig)}
    settings = saved["meta"].get("config")
    if not isinstance(settings, dict) or not set(settings) <= known:
        raise ValueError(f"{path} is a checkpoint without a run's settings (not written by a minisgd run)")
    try:
        config = check_config(RunConfig(**settings))
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path} holds settings that are not a valid run's ({error})") from None
    done = saved["epoch"]
    if done > config.epochs:
        raise ValueError(f"{path} says {done} epochs are done, more than the run's {config.epochs}; "
                         "it was not written by this run")
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
    folder = path.parent
    lock, _ = claim_folder(folder, config)
    try:
        remove_temporaries(folder)
        try:
            run = _build(config, folder)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
        try:
            checkpoint.restore(saved, model=run.model, optimizer=run.optimizer)
            plateau = plateau_of(run.schedule)
            if plateau is not None:
                plateau.load_state_dict(saved["sections"]["plateau"])
            if run.swa_model is not None:
                run.swa_model.load_state_dict(saved["sections"]["swa"])
            run.history = History.from_dict(saved["history"])
            recorded = [entry.get("epoch") for entry in run.history.epochs]
            if recorded != list(range(1, done + 1)):
                raise ValueError(f"its history records epochs {recorded[:10]} where {done} epochs are done")
            count = checks.integer("", "the number of snapshots", saved["meta"].get("snapshots", 0), low=0)
            run.snapshots = [saved["sections"][f"snapshot.{k}"] for k in range(count)]
        except (checkpoint.CheckpointError, KeyError, ValueError, TypeError, IndexError, AttributeError) as error:
            raise ValueError(f"{path} does not hold a complete run: {error!s}"[:400]) from None
    except BaseException:
        lock.release()
        raise
    run.start_epoch = run.saved_epoch = done
    run.saved_workers = int(saved["meta"].get("workers", 1))
    run.train_loader.set_epoch(done)
    run.lock = lock
    run.notes += [lock.note] if lock.note else []
    return run


def _refuse_a_copy_beside_the_checkpoint(path: Path) -> None:
    """ValueError for ``RUN/backup.npz`` when ``RUN/checkpoint.npz`` exists: resuming would overwrite it."""
    beside = path.parent / CHECKPOINT
    if path.name == CHECKPOINT or not _exists(beside):
        return
    from minisgd import checkpoint

    try:
        held = f" (epoch {checkpoint.load_checkpoint(beside)['epoch']})"
    except checkpoint.CheckpointError:
        held = ""
    raise ValueError(
        f"{path} is not its folder's {CHECKPOINT}, and a resumed run writes {beside}{held}, which is there "
        f"already: resuming would overwrite it. To continue from {path.name}, copy it into a new folder as "
        f"{CHECKPOINT} and resume that folder"
    )


def _save_checkpoint(run: Run, epoch: int) -> None:
    from minisgd import checkpoint

    sections = {f"snapshot.{k}": weights for k, weights in enumerate(run.snapshots)}
    plateau = plateau_of(run.schedule)
    if plateau is not None:
        sections["plateau"] = plateau.state_dict()
    if run.swa_model is not None:
        sections["swa"] = run.swa_model.state_dict()
    meta = {"config": asdict(run.config), "device": run.device, "snapshots": len(run.snapshots),
            "workers": 1 if run.workers is None else run.workers.size}
    path = run.out / CHECKPOINT
    try:
        checkpoint.save_checkpoint(path, model=run.model, optimizer=run.optimizer, epoch=epoch,
                                   history=run.history.to_dict(), meta=meta, sections=sections)
    except OSError as error:
        raise _save_error(run, path, error, f"after epoch {epoch}") from None
    run.saved_epoch = epoch


def _save_error(run: Run, path: Path, error: OSError, when: str) -> SaveError:
    """The one line for a failed save: the file, why, and which checkpoint is still on disk."""
    if run.saved_epoch is not None:
        kept = (f"{run.out / CHECKPOINT} still holds epoch {run.saved_epoch}; free some space, then continue "
                f"with: python -m minisgd train --resume {run.out}")
    else:
        kept = "no checkpoint of this run was written"
    return SaveError(f"could not save {path} {when}: {_reason(error)}; {kept}")


def train_run(
    run: Run,
    *,
    progress: bool = True,
    log: Callable[[str], None] | None = print,
) -> RunResult:
    """Train ``run`` from where it stands to ``run.config.epochs``; save, score and plot it.

    After every epoch: score the model on the validation split (``val_size``)
    or else on the test set, fold the weights into the SWA average (epochs
    after ``swa_start``), step ReduceLROnPlateau with the validation loss (the
    test loss without a validation split), then write ``checkpoint.npz``
    atomically. With a validation split the test set is scored once, after the
    last epoch (its numbers go into that epoch's record). At the end: the snapshot ensemble's test
    accuracy, the SWA average's (after ``update_bn``), ``history.json`` and ``curves.png``. A run whose loss diverges
    stops there (``result.stopped`` says where and why) and keeps the last good
    checkpoint; its history and curves are still written. ``progress`` shows
    progress bars; ``log`` receives one line per epoch (None: silent).
    NumPy's overflow warnings are silenced: a divergence is reported once, by
    the history. A file that cannot be written raises :class:`SaveError`. The
    folder's lock is released when it returns or raises.
    """
    try:
        return _train(run, progress, log)
    finally:
        run.release()


def _train(run: Run, progress: bool, log: Callable[[str], None] | None) -> RunResult:
    from minisgd.backend import to_numpy
    from minisgd.plots import plot_history
    from minisgd.train import fit

    config, model = run.config, run.model
    snapshot_steps = set(run.snapshot_steps)
    writer = run.workers is None or run.workers.is_writer  # data parallel: rank 0 alone prints and writes
    if not writer:
        progress, log = False, None
    else:
        run.out.mkdir(parents=True, exist_ok=True)

    def on_step_end(t: int) -> None:
        if t in snapshot_steps:  # a resumed run restarts at an epoch's start: each t comes once
            run.snapshots.append({k: np.array(to_numpy(v), copy=True) for k, v in model.state_dict().items()})

    def on_epoch_end(epoch: int, history: Any) -> None:
        if run.swa_model is not None and epoch > config.swa_start:
            run.swa_model.update_parameters(model)
        plateau = plateau_of(run.schedule)
        if plateau is not None:  # on the validation loss when there is a validation split
            plateau.step(history.last("val_loss" if run.val_loader is not None else "test_loss"))
        if writer:
            _save_checkpoint(run, epoch)
        else:
            run.saved_epoch = epoch

    started = time.perf_counter()
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if run.start_epoch < config.epochs:
            train = fit if run.workers is None else run.workers.fit
            run.history = train(model, run.train_loader, run.optimizer, epochs=config.epochs,
                                test_loader=None if run.val_loader is not None else run.test_loader,
                                val_loader=run.val_loader, history=run.history, start_epoch=run.start_epoch,
                                on_epoch_end=on_epoch_end, on_step_end=on_step_end if snapshot_steps else None,
                                clip_grad_norm=config.clip_grad_norm, progress=progress, log=log)
        history = run.history
        if run.val_loader is not None and history.stopped is None and history.epochs:
            from minisgd.train import evaluate

            scores = evaluate(model, run.test_loader)  # the test set, once: the final number
            history.epochs[-1].update(test_loss=scores["loss"], test_acc=scores["acc"])
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

    if writer:
        title = f"{config.model} on {config.dataset}: {config.optimizer}, {config.schedule} schedule"
        if config.swa_start is not None:  # the schedule's rate until swa_start, then SWA's
            title += (f" to epoch {config.swa_start}, then SWA at swa_lr {config.swa_lr:g} (weights averaged over "
                      f"epochs {config.swa_start + 1}–{config.epochs})")
        for name, write in ((HISTORY, lambda path: write_text(path, json.dumps(history.to_dict(), indent=1))),
                            (CURVES, lambda path: plot_history(history, path, title=title))):
            try:
                write(run.out / name)
            except OSError as error:
                raise _save_error(run, run.out / name, error, "at the end of the run") from None
    saved = [run.out / name for name in RUN_FILES if (run.out / name).exists()]
    return RunResult(history, snapshot_acc, len(run.snapshots), saved, history.stopped, run.saved_epoch,
                     time.perf_counter() - started)


def snapshot_accuracy(model: Any, snapshots: list[dict[str, np.ndarray]], test_loader: Any) -> float:
    """Test accuracy of the ensemble of ``snapshots`` (weights of ``model``), averaging softmax outputs."""
    from minisgd.ensemble import SnapshotEnsemble

    return SnapshotEnsemble(model, snapshots).accuracy(test_loader)
