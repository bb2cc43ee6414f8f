"""Figures: a training run's loss, accuracy and learning rate in one PNG; learning-rate schedules.

matplotlib is imported inside the functions, with the non-interactive Agg
backend when no display is set, so importing minisgd never opens a window.
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from minisgd.atomic import atomic_path


def pyplot() -> Any:
    """matplotlib.pyplot, on the file-only Agg backend when there is no display."""
    import matplotlib

    if not os.environ.get("DISPLAY") and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure: Any, path: str | os.PathLike, close: bool = True) -> Path:
    """Save ``figure`` as ``path`` atomically (format from the suffix, PNG by default); close it."""
    path = Path(path)
    with atomic_path(path, suffix=path.suffix) as temporary:
        figure.savefig(temporary, format=path.suffix.lstrip(".") or "png", dpi=120, bbox_inches="tight")
    if close:
        pyplot().close(figure)
    return path


def moving_average(values: list[float] | np.ndarray, window: int) -> np.ndarray:
    """Mean of each run of ``window`` consecutive values (a smoothed per-step curve)."""
    values = np.asarray(values, dtype=np.float64)
    window = max(1, min(window, len(values)))
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


TRAIN_EPOCH_LABEL = "train: mean over the epoch's mini-batches\n(taken while the weights were still changing)"


def _per_epoch(history: Any, key: str) -> tuple[list[int], list[float]]:
    """(epochs, values) of the epochs whose record holds ``key``."""
    rows = [(e["epoch"], e[key]) for e in history.epochs if key in e]
    return [r[0] for r in rows], [r[1] for r in rows]


def _held_out(ax: Any, history: Any, metric: str, x_of: Callable[[list[int]], Any]) -> None:
    """Validation (every epoch) and test curves of ``metric`` (``loss``/``acc``); a test scored once is one marker."""
    epochs, values = _per_epoch(history, f"val_{metric}")
    values = drawable(values)
    if epochs:
        ax.plot(x_of(epochs), values, "D-", color="C5", label="validation")
    epochs, values = _per_epoch(history, f"test_{metric}")
    values = drawable(values)
    if len(epochs) == 1 and len(history.epochs) > 1:  # a run with a validation split: the test set, once
        ax.plot(x_of(epochs), values, "s", color="C2", ms=9, label="test (scored once, at the end)")
    elif epochs:
        ax.plot(x_of(epochs), values, "s-", color="C2", label="test")
    swa = getattr(history, f"swa_test_{metric}", None)
    if swa is not None and history.epochs:
        last = x_of([history.epochs[-1]["epoch"]])
        ax.axhline(swa, color="C3", ls=":", lw=1.2)
        ax.plot(last, [swa], "*", color="C3", ms=16, alpha=0.8, label=f"SWA average (test): {swa:.4g}")
DRAWABLE = 1e300  # matplotlib's axis margins overflow near float64's largest value (1.8e308)


def drawable(values: Any) -> np.ndarray:
    """``values`` as float64 with NaN where they cannot be drawn: inf, NaN, or beyond ±1e300 (a diverged run)."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(np.abs(values) <= DRAWABLE, values, np.nan)


def plot_history(history: Any, path: str | os.PathLike, title: str = "training run") -> Path:
    """Draw loss (per step and per epoch), accuracy (per epoch) and lr (per step); save as PNG.

    The per-epoch training numbers are the means over the epoch's mini-batches,
    each taken with the weights of that moment (they changed during the epoch),
    unlike the validation and test numbers, scored with the epoch's final
    weights. A validation split (``val_loss``) is drawn every epoch; a test set
    scored only at the end is one marker; an SWA average and a snapshot
    ensemble are drawn beside the last epoch. Values that cannot be drawn (a
    diverged run's inf or NaN loss, a rate beyond 1e300) are left out of the
    lines (:func:`drawable`).
    """
    plt = pyplot()
    figure, (loss_ax, acc_ax, lr_ax) = plt.subplots(1, 3, figsize=(15, 4.8), layout="constrained")
    figure.suptitle(title)

    steps = np.arange(len(history.step_loss))
    epochs = [e["epoch"] for e in history.epochs]
    steps_per_epoch = len(history.step_loss) / max(len(epochs), 1) if epochs else 1

    def end_step(epoch_numbers: list[int]) -> list[float]:
        return [e * steps_per_epoch for e in epoch_numbers]

    step_loss = drawable(history.step_loss)
    few = {"marker": "o", "ms": 3} if len(steps) < 3 else {}  # a line through one point is invisible
    loss_ax.plot(steps, step_loss, color="0.8", lw=0.8, label="mini-batch loss", **few)
    window = max(1, len(steps) // 50)
    if window > 1:
        smooth = moving_average(step_loss, window)
        loss_ax.plot(steps[window - 1 :], smooth, color="C0", lw=1.2, label=f"mean of {window} steps")
    if epochs:
        loss_ax.plot(end_step(epochs), drawable([e["train_loss"] for e in history.epochs]), "o-", color="C1",
                     label=TRAIN_EPOCH_LABEL)
        _held_out(loss_ax, history, "loss", end_step)
    loss_ax.set(xlabel="update t", ylabel="cross-entropy loss", title="loss")
    loss_ax.legend(fontsize="small")

    if epochs:
        acc_ax.plot(epochs, [e["train_acc"] for e in history.epochs], "o-", color="C1", label=TRAIN_EPOCH_LABEL)
        _held_out(acc_ax, history, "acc", lambda numbers: numbers)
        if history.snapshot_test_acc is not None:
            acc_ax.axhline(history.snapshot_test_acc, color="C3", ls="--", label="snapshot ensemble (test)")
        acc_ax.legend(fontsize="small")
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1))
    acc_ax.xaxis.get_major_locator().set_params(integer=True)  # epochs are whole numbers

    step_lr = drawable(history.step_lr)
    lr_ax.plot(steps, step_lr, color="C4", **few)
    for ax, drawn in ((loss_ax, step_loss), (lr_ax, step_lr)):
        left_out = int(np.count_nonzero(np.isnan(drawn)))
        if left_out:
            ax.text(0.02, 0.02, f"not drawn: {left_out} value{'s' if left_out > 1 else ''} beyond ±1e300 or not "
                    "finite", transform=ax.transAxes, fontsize="small", color="C3")
    lr_ax.set(xlabel="update t", ylabel="learning rate α(t)", title="learning rate")
    for ax in (loss_ax, acc_ax, lr_ax):
        ax.grid(alpha=0.3)
    return save_figure(figure, path)


def plot_schedules(
    *schedules: Callable[[Any], Any], steps: Any = 100, ax: Any = None, labels: Sequence[str] | None = None
) -> Any:
    """Draw learning-rate schedules against t; return the axes.

    ``steps`` is the number of updates to draw (t = 0 … steps − 1) or an array
    of times. Each rate is drawn as a staircase, since lr(t) holds from update t
    to update t + 1. Each line is labelled with the schedule's repr (a plain
    function: its name) unless ``labels`` are given; the legend sits under the
    axes. Draws on ``ax`` when given, else on a new figure. Rates beyond
    ±1e300 are left out (:func:`drawable`).
    """
    from minisgd.schedules import evaluate

    if not schedules:
        raise ValueError("plot_schedules: give at least one schedule")
    if labels is not None and len(labels) != len(schedules):
        raise ValueError(f"plot_schedules: labels must hold {len(schedules)} names; got {len(labels)}")
    if isinstance(steps, numbers.Integral):
        if steps < 1:
            raise ValueError(f"plot_schedules: steps must be >= 1; got {steps}")
        times = np.arange(steps, dtype=np.float64)
    else:
        times = np.asarray(steps, dtype=np.float64).ravel()
    if ax is None:
        _, ax = pyplot().subplots(figsize=(8, 4.5), layout="constrained")
    for i, schedule in enumerate(schedules):
        label = labels[i] if labels is not None else getattr(schedule, "__name__", repr(schedule))
        ax.plot(times, drawable(evaluate(schedule, times)), drawstyle="steps-post", label=label)
    ax.set_xlabel("t (optimizer updates done)")
    ax.set_ylabel("learning rate")
    ax.grid(True, alpha=0.3)
    # Below the axes: the labels (each schedule's repr) are long and would hide the curves.
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(0.0, -0.15), frameon=False)
    return ax
