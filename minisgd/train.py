"""The training loop: epochs of mini-batch SGD, evaluation, history and checkpoints.

One update of stochastic gradient descent, as every framework writes it::

    logits = model(x)                 # forward pass on a mini-batch
    loss = loss_fn(logits, y)         # L(W) on that batch
    optimizer.zero_grad()             # gradients accumulate: clear them
    loss.backward()                   # ∇L by back-propagation
    optimizer.step()                  # W ← W − α ∇L (with momentum, a schedule …)

Full-batch gradient descent, pure SGD and mini-batch SGD are this same loop
fed batches of the whole data set, of one sample, or of B samples: the
difference is only the loader's ``batch_size``.

:func:`fit` repeats it over epochs and records a :class:`History`; a NaN or
infinite loss stops the run with a message naming the step, the learning rate
and the last finite loss (a diverging learning rate is a lesson, not a crash).
"""

from __future__ import annotations

import importlib.util
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

from minisgd.backend import synchronize
from minisgd.nn.utils import clip_grad_norm_
from minisgd.tensor import Tensor, no_grad


def progress_bar_class() -> Any:
    """tqdm's bar: the notebook widget when ipywidgets is installed, else the text bar (in a notebook too).

    ``tqdm.auto`` picks the widget in every notebook and, without ipywidgets,
    prints "TqdmWarning: IProgress not found" under the cell; the text bar
    works everywhere.
    """
    if importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm
    else:
        from tqdm.std import tqdm
    return tqdm


@dataclass
class History:
    """What happened during training.

    ``step_loss[t]`` and ``step_lr[t]`` are the mini-batch loss of update ``t``
    and the learning rate that update used; ``epochs`` holds one dict per
    epoch (train/test loss and accuracy, seconds, images per second).
    ``stopped`` explains an early stop (a diverging loss), else None.
    ``snapshot_test_acc`` and ``swa_test_acc``/``swa_test_loss`` score the snapshot
    ensemble and the SWA average when the run keeps them.
    """

    step_loss: list[float] = field(default_factory=list)
    step_lr: list[float] = field(default_factory=list)
    epochs: list[dict[str, float]] = field(default_factory=list)
    stopped: str | None = None
    snapshot_test_acc: float | None = None
    swa_test_acc: float | None = None
    swa_test_loss: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        return cls(**data)

    def last(self, key: str) -> float | None:
        """The latest epoch's value of ``key`` (e.g. ``"test_acc"``), or None."""
        return self.epochs[-1].get(key) if self.epochs else None


def _loss_and_correct(model: Any, loss_fn: Callable, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, int]:
    """Forward pass: (logits, loss, number of correct predictions for class targets)."""
    logits = model(x)
    loss = loss_fn(logits, y)
    correct = 0
    if logits.ndim == 2 and y.ndim == 1 and y.dtype.kind in "iu":
        correct = int((logits.data.argmax(axis=1) == y.data).sum())
    return logits, loss, correct


def evaluate(model: Any, loader: Iterable, loss_fn: Callable | None = None) -> dict[str, float]:
    """Mean loss and accuracy of ``model`` over ``loader``, in eval mode and without a graph."""
    loss_fn = loss_fn or _default_loss()
    was_training = getattr(model, "training", False)
    model.eval()
    total_loss = total_correct = total = 0
    with no_grad():
        for x, y in loader:
            _, loss, correct = _loss_and_correct(model, loss_fn, x, y)
            total_loss += loss.item() * len(x)
            total_correct += correct
            total += len(x)
    if was_training:
        model.train()
    return {"loss": total_loss / max(total, 1), "acc": total_correct / max(total, 1)}


def _default_loss() -> Callable:
    from minisgd.nn import functional as F

    return F.cross_entropy


def fit(
    model: Any,
    train_loader: Any,
    optimizer: Any,
    *,
    epochs: int,
    loss_fn: Callable | None = None,
    test_loader: Any = None,
    val_loader: Any = None,
    history: History | None = None,
    start_epoch: int = 0,
    on_epoch_end: Callable[[int, History], None] | None = None,
    on_step_end: Callable[[int], None] | None = None,
    clip_grad_norm: float | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    workers: Any = None,
) -> History:
    """Train ``model`` for epochs ``start_epoch + 1 … epochs`` and return the history.

    ``optimizer.lr`` may be a schedule; the optimizer evaluates it at its own
    update count. ``on_epoch_end(epoch, history)`` runs after each epoch (the
    command line saves checkpoints there); ``on_step_end(t)`` after each update
    with the number of updates done so far (snapshot ensembles use it).
    After each epoch the model is scored on ``val_loader`` (``val_loss``,
    ``val_acc`` in the epoch's record) and ``test_loader`` (``test_loss``,
    ``test_acc``), each when given.
    ``clip_grad_norm``: rescale the gradients between ``backward()`` and
    ``step()`` so that their total 2-norm is at most this
    (:func:`minisgd.nn.utils.clip_grad_norm_`).
    ``progress=False`` hides the progress bars. ``log`` receives a one-line
    summary of each epoch and the divergence message (default: written under
    the progress bars when they are shown, else nothing).
    ``workers`` (a :class:`minisgd.distributed.Workers`) trains on K processes:
    its ``backward`` replaces ``loss.backward()`` and combines the workers'
    gradients and losses, ``after_step`` runs after each update (local SGD
    averages the weights there) and ``evaluate`` gives rank 0's test scores.
    """
    if epochs < 1:
        raise ValueError(f"fit: epochs must be >= 1; got {epochs}")
    loss_fn = loss_fn or _default_loss()
    history = history if history is not None else History()
    tqdm = progress_bar_class()
    if log is None and progress:
        log = tqdm.write
    for epoch in range(start_epoch + 1, epochs + 1):
        model.train()
        started = time.perf_counter()
        loss_sum = correct_sum = seen = 0
        bar = tqdm(train_loader, desc=f"epoch {epoch}/{epochs}", leave=False, disable=not progress, unit="batch")
        for x, y in bar:
            lr = optimizer.lr  # the rate this update will use
            _, loss, correct = _loss_and_correct(model, loss_fn, x, y)
            count = len(x)
            if workers is None:
                loss_value = loss.item()
            else:  # back-propagate this worker's slice; the global batch's loss, gradient and size
                loss_value, correct, count = workers.backward(optimizer, loss, correct, count)
            if not math.isfinite(loss_value):
                last = next((v for v in reversed(history.step_loss) if math.isfinite(v)), None)
                history.stopped = (
                    f"training stopped at step {len(history.step_loss)} (epoch {epoch}): the loss is "
                    f"{loss_value} with lr={lr:.4g}; the last finite loss was "
                    f"{'none' if last is None else f'{last:.4g}'}. {_likely_cause(optimizer)}"
                )
                bar.close()
                if log is not None:
                    log(history.stopped)
                return history
            if workers is None:
                optimizer.zero_grad()
                loss.backward()
            if clip_grad_norm is not None:
                clip_grad_norm_(model.parameters(), clip_grad_norm)
            optimizer.step()
            history.step_loss.append(loss_value)
            history.step_lr.append(float(lr))
            if workers is not None:
                workers.after_step(model, len(history.step_loss))
            loss_sum += loss_value * count
            correct_sum += correct
            seen += count
            if on_step_end is not None:
                on_step_end(len(history.step_loss))
            bar.set_postfix(
                loss=f"{loss_sum / seen:.4f}", lr=f"{lr:.3g}", img_s=f"{seen / (time.perf_counter() - started):.0f}"
            )
        _synchronize(model)
        seconds = time.perf_counter() - started
        record = {
            "epoch": epoch,
            "train_loss": loss_sum / max(seen, 1),
            "train_acc": correct_sum / max(seen, 1),
            "seconds": seconds,
            "images_per_second": seen / seconds if seconds > 0 else float("nan"),
        }
        for split, loader in (("val", val_loader), ("test", test_loader)):
            if loader is not None:
                scores = (evaluate(model, loader, loss_fn) if workers is None
                          else workers.evaluate(model, loader, loss_fn))
                record.update({f"{split}_loss": scores["loss"], f"{split}_acc": scores["acc"]})
        history.epochs.append(record)
        if log is not None:
            log(
                "epoch {epoch}: train_loss={train_loss:.4f} train_acc={train_acc:.4f}".format(**record)
                + "".join(f" {split}_loss={record[f'{split}_loss']:.4f} {split}_acc={record[f'{split}_acc']:.4f}"
                          for split in ("val", "test") if f"{split}_loss" in record)
                + f" ({seconds:.1f}s, {record['images_per_second']:.0f} img/s)"
            )
        if on_epoch_end is not None:
            on_epoch_end(epoch, history)
    return history


def _likely_cause(optimizer: Any) -> str:
    """Why a loss most likely diverged: momentum >= 1 (steps never shrink), else a too large learning rate."""
    momentum = getattr(optimizer, "momentum", 0.0)
    if isinstance(momentum, (int, float)) and momentum >= 1:
        return f"Likely cause: momentum={momentum:g} >= 1, so old gradients never fade and the steps grow."
    return "Likely cause: the learning rate is too large for this model (a smaller one, or a warm-up, helps)."


def _synchronize(model: Any) -> None:
    """Wait for queued GPU work so epoch times are real (a no-op on the CPU)."""
    parameter = next(iter(model.parameters()), None)
    if parameter is not None:
        synchronize(parameter.device)
