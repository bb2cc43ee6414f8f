"""The learning-rate range test ("LR finder"): try rates from tiny to huge in one short run.

Train for n mini-batches while the rate grows exponentially,

    lr_i = start · (end / start)^(i / n),   i = 0, 1, …, n − 1

(``schedules.exponential(start, gamma=(end/start)^(1/n))``, as fastai does),
and record the loss of each batch. The loss first barely moves (rate too
small), then falls fast, then explodes (rate too large). A good rate sits
where it falls fastest.

Mini-batch losses are noisy, so they are smoothed with an exponential moving
average, corrected for its start at 0 (as Adam corrects its moments):

    avg_k = β · avg_{k−1} + (1 − β) · loss_k,   avg_0 = 0
    smoothed_k = avg_k / (1 − β^k)               (k = 1, 2, …; β = 0.98)

The run stops early once smoothed_k > 4 · min(smoothed_1 … smoothed_k) (the
loss has diverged), or the loss is not finite, or the loss has stopped
changing after undoing its descent (:func:`stopped_changing`): a network whose
units died at a too large rate predicts the same thing for every input, and
its loss sits flat, near or above where it started, never reaching 4 × the
minimum (on 4,068 real CIFAR-10 images LeNet's loss jumped to a flat 2.35 at
lr ≈ 0.34). That is a blow-up too, and the stop reason says so.

The start level is the mean of the first 10 batch losses, and the noise of the
smoothed loss there is σ = std(those losses) · √((1 − β)/(1 + β)) (the standard
deviation of an exponential average of independent values). Up to the
minimum, the loss is *on the initial plateau* while it has done less than a
quarter of its fall and is within noise of the start, that is while
smoothed ≥ start level − max(3σ, ¼ · (start level − minimum)): on the real
CIFAR-10 subset the plateau drifts down by an eighth of the fall before the
descent starts, so noise alone would let a "valley" land on it.

The suggested rate is the rate at the minimum of the smoothed loss divided
by 5 (``SUGGESTION_DIVISOR``); the first 10 points are left out of the search
for the minimum, since the average there rests on a few noisy losses. Why 5:
fastai's "minimum / 10" was measured too timid and minimum / √10 too bold
(3-epoch LeNet runs, cosine, against the default rate 0.05): on 4,068 real
CIFAR-10 images minimum / 10 = 0.0275 reached test accuracy 0.308 against
0.378, while on the built-in data minimum / √10 = 0.076 reached 0.811 against
0.868. Two alternatives are reported beside it: the steepest descent of the
smoothed loss against log(lr) before the minimum, and fastai's "valley", the
middle of the longest descent before the minimum (:func:`valley_lr`), searched
only after the loss has left the initial plateau (no valley is marked when it
never did). Both
sit closer to the edge: with momentum, and with an average that lags the
losses, the loss answers a rate only some updates after it was used, so the
curve's features appear at rates higher than the ones that train well. (The
steepest descent over the whole sweep, the old rule, landed in the blow-up.)

Afterwards the model's weights, its train/eval mode, the optimizer's state
and schedule, and minisgd's random generator are exactly as they were, so
training can start from the same point.

Smith's original test ramps linearly over a few epochs instead; fastai's
defaults (start 1e-7, end 10, n = 100) are used here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

import minisgd
from minisgd import checks, schedules
from minisgd.backend import to_numpy

SUGGESTION_DIVISOR = 5.0  # suggested rate = rate at the smoothed loss's minimum / SUGGESTION_DIVISOR
START_POINTS = 10  # the first batch losses: the start level, its noise, and left out of the search for the minimum
PLATEAU_FRACTION = 0.25  # up to the minimum, the initial plateau ends once the loss has done a quarter of its fall
FLAT_TOLERANCE = 0.02  # "stopped changing": the smoothed loss moved by at most 2 % over the window


@dataclass
class LRRangeTestResult:
    """What the range test saw, one entry per update it ran.

    ``lrs[i]`` is the rate update i used, ``losses[i]`` the loss of the batch
    that update was computed on (before the update), ``smoothed[i]`` the
    bias-corrected moving average. ``min_loss_lr`` is the rate at the minimum
    of ``smoothed`` (after its first 10 points) and ``suggested_lr`` that rate
    divided by ``SUGGESTION_DIVISOR``; the
    alternatives are ``steepest_lr``, the steepest descent of ``smoothed``
    against log(lr) before the minimum (:func:`steepest_descent_lr`), and
    ``valley_lr``, the middle of the longest descent before the minimum
    (:func:`valley_lr`). ``drop`` is how far the smoothed loss fell, as a
    fraction of its starting value (a sweep too short to leave a plateau
    shows a drop near 0). ``stopped`` says why the run ended before
    ``steps`` updates (``None`` when it ran them all).
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    min_loss_lr: float
    suggested_lr: float
    steepest_lr: float
    valley_lr: float
    drop: float
    stopped: str | None = None

    def plot(self, path: str | Path | None = None, ax: Any = None) -> Any:
        """Draw loss against lr (log scale) with the suggestions marked.

        With ``path``, draw on a new figure, save it there (atomically) and
        return the path; otherwise draw on ``ax`` (or a new figure) and return the axes.
        """
        from minisgd.plots import pyplot, save_figure

        figure = None
        if ax is None:
            figure, ax = pyplot().subplots(figsize=(7, 4.5), layout="constrained")
        ax.plot(self.lrs, self.losses, color="0.75", lw=1, label="batch loss")
        ax.plot(self.lrs, self.smoothed, color="C0", lw=2, label="smoothed loss (β = 0.98, bias-corrected)")
        if math.isfinite(self.suggested_lr):
            at = np.interp(np.log(self.suggested_lr), np.log(self.lrs), self.smoothed)
            ax.plot([self.suggested_lr], [at], "o", color="C3", ms=9, zorder=3,
                    label=f"suggested (minimum / {SUGGESTION_DIVISOR:g}): {self.suggested_lr:.3g}")
        if math.isfinite(self.steepest_lr):
            ax.axvline(self.steepest_lr, color="C1", ls="--", label=f"steepest descent: {self.steepest_lr:.3g}")
        if math.isfinite(self.valley_lr):
            ax.axvline(self.valley_lr, color="C2", ls=":", label=f"valley: {self.valley_lr:.3g}")
        ax.set_xscale("log")
        if len(self.lrs):  # the whole swept range; heights up to a quarter above the start, so the dip shows
            if self.lrs[-1] > self.lrs[0]:  # a sweep that stopped after its first update has no range
                ax.set_xlim(self.lrs[0], self.lrs[-1])
            low = min(self.smoothed.min(), self.losses.min())
            high = min(self.smoothed.max(), 1.25 * self.smoothed[0])  # the blow-up leaves through the top
            if self.stopped is not None and self.stopped.startswith("the loss stopped changing"):
                high = max(high, float(np.median(self.losses[-10:])))  # show the flat level it stopped at
            margin = 0.05 * (high - low) or 0.1
            ax.set_ylim(low - margin, high + margin)
        ax.set_xlabel("learning rate (log scale)")
        ax.set_ylabel("training loss")
        flat = self.stopped is not None and self.stopped.startswith("the loss stopped changing")
        ax.set_title("LR range test" + (" (stopped: the loss stopped changing, a blow-up)" if flat else ""))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
        if path is None:
            return ax
        return save_figure(ax.figure, path, close=figure is not None)  # close only a figure made here


def lr_range_test(
    model: Any,
    optimizer: Any,
    batches: Iterable[tuple[Any, Any]],
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    steps: int = 100,
    loss_fn: Callable[[Any, Any], Any] | None = None,
    smoothing: float = 0.98,
    diverge_factor: float = 4.0,
) -> LRRangeTestResult:
    """Run the LR range test on ``model`` with ``optimizer`` and return what it saw.

    ``batches`` is any iterable of ``(x, y)`` mini-batches (a ``DataLoader``, a
    list); it is iterated again when it runs out before ``steps`` updates.
    ``loss_fn(model(x), y)`` defaults to cross-entropy. The optimizer keeps its
    momentum and weight decay but its rate is replaced by the ramp
    lr_i = start_lr · (end_lr / start_lr)^(i / steps) for the test, from a fresh
    state (t = 0, no momentum buffers). Model, optimizer and random state are
    restored afterwards, even if the loss function raises.
    """
    where = "lr_range_test"
    start_lr = checks.number(where, "start_lr", start_lr, low=0, low_open=True)
    end_lr = checks.number(where, "end_lr", end_lr)
    if end_lr <= start_lr:
        checks.fail(where, "end_lr", f"> start_lr={start_lr!r}", end_lr)
    steps = checks.integer(where, "steps", steps, low=2)
    smoothing = checks.number(where, "smoothing", smoothing, low=0, high=1, high_open=True)
    diverge_factor = checks.number(where, "diverge_factor", diverge_factor, low=1, low_open=True)
    if loss_fn is None:
        from minisgd.nn import functional as F

        loss_fn = F.cross_entropy

    ramp = schedules.exponential(start_lr, gamma=(end_lr / start_lr) ** (1.0 / steps))
    saved_weights = {name: np.array(to_numpy(value), copy=True) for name, value in model.state_dict().items()}
    saved_optimizer = optimizer.state_dict()
    saved_schedule = optimizer.lr_schedule
    saved_random = minisgd.random.get_state()
    was_training = getattr(model, "training", True)

    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    stopped = None
    try:
        optimizer.load_state_dict({"t": np.array(0)})  # fresh: t = 0 and no momentum buffers
        optimizer.lr_schedule = ramp
        model.train()
        average, best = 0.0, math.inf
        start_level = noise = math.nan
        window = max(10, steps // 10)  # updates the loss must stay flat to count as stopped
        for k, (x, y) in enumerate(_cycle(batches, steps), start=1):
            lr = optimizer.lr
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            value = float(loss.item())
            if not math.isfinite(value):
                stopped = f"the loss became {value} at update {k - 1} (lr={lr:.3g})"
                break
            loss.backward()
            optimizer.step()
            average = smoothing * average + (1 - smoothing) * value
            corrected = average / (1 - smoothing**k)
            lrs.append(lr)
            losses.append(value)
            smoothed.append(corrected)
            best = min(best, corrected)
            if k == START_POINTS:
                start_level, noise = start_noise(losses, smoothing)
            if corrected > diverge_factor * best:
                stopped = (
                    f"the smoothed loss {corrected:.4g} exceeded {diverge_factor:g} x its minimum "
                    f"{best:.4g} at update {k - 1} (lr={lr:.3g})"
                )
                break
            if k > START_POINTS and stopped_changing(np.array(losses), np.array(smoothed), start_level, noise,
                                                     window):
                best_k = START_POINTS + int(np.argmin(smoothed[START_POINTS:]))
                stopped = (
                    f"the loss stopped changing (a blow-up): for the last {window} updates, up to update {k - 1} "
                    f"(lr={lr:.3g}), the batch losses stayed flat (within {100 * FLAT_TOLERANCE:g}%) at "
                    f"{np.mean(losses[-window:]):.4g}, back at or above where they started ({start_level:.4g}), "
                    f"after the smoothed loss fell to {smoothed[best_k]:.4g} at lr={lrs[best_k]:.3g}: the network "
                    f"stopped learning at these rates"
                )
                break
        else:
            if len(lrs) < steps:
                stopped = f"the batches ran out after {len(lrs)} updates"
    finally:
        model.load_state_dict(saved_weights)
        if was_training:
            model.train()
        else:
            model.eval()
        optimizer.lr_schedule = saved_schedule
        optimizer.load_state_dict(saved_optimizer)
        minisgd.random.set_state(saved_random)

    lrs_array, smoothed_array = np.array(lrs), np.array(smoothed)
    skip = START_POINTS if len(lrs) > 2 * START_POINTS else 0  # the average's first points rest on a few losses
    best = skip + int(np.argmin(smoothed_array[skip:])) if len(lrs) else 0
    if len(lrs) >= START_POINTS:
        start_level, noise = start_noise(losses, smoothing)
    left = plateau_end(smoothed_array[: best + 1], start_level, noise) if len(lrs) >= START_POINTS else 0
    return LRRangeTestResult(
        lrs=lrs_array,
        losses=np.array(losses),
        smoothed=smoothed_array,
        min_loss_lr=float(lrs_array[best]) if len(lrs) else math.nan,
        suggested_lr=float(lrs_array[best] / SUGGESTION_DIVISOR) if len(lrs) else math.nan,
        steepest_lr=steepest_descent_lr(lrs_array[: best + 1], smoothed_array[: best + 1]),
        valley_lr=(valley_lr(lrs_array[left : best + 1], smoothed_array[left : best + 1])
                   if left is not None else math.nan),
        drop=float(1 - smoothed_array[best] / smoothed_array[0]) if len(lrs) else math.nan,
        stopped=stopped,
    )


def start_noise(losses: list[float] | np.ndarray, smoothing: float = 0.98) -> tuple[float, float]:
    """(start level, σ): the mean of the first ``START_POINTS`` batch losses, and the smoothed loss's noise there.

    σ = std(losses) · √((1 − β)/(1 + β)), the standard deviation of an
    exponential moving average (weight 1 − β) of independent values.
    """
    first = np.asarray(losses[:START_POINTS], dtype=np.float64)
    return float(first.mean()), float(first.std() * math.sqrt((1 - smoothing) / (1 + smoothing)))


def plateau_end(smoothed: np.ndarray, start_level: float, noise: float) -> int | None:
    """The last index on the initial plateau, from where the descent (and its valley) is searched.

    ``smoothed`` runs up to the minimum; a point is on the plateau when
    smoothed ≥ start level − max(3σ, ¼ · (start level − min(smoothed))).
    None when no point is below: the loss never left the plateau, so there is
    no descent and no valley.
    """
    smoothed = np.asarray(smoothed, dtype=np.float64)
    on_plateau = smoothed >= start_level - max(3 * noise, PLATEAU_FRACTION * (start_level - smoothed.min()))
    if on_plateau.all():
        return None
    return int(np.flatnonzero(on_plateau)[-1]) if on_plateau.any() else 0


def stopped_changing(losses: np.ndarray, smoothed: np.ndarray, start_level: float, noise: float, window: int,
                     flat_tolerance: float = FLAT_TOLERANCE) -> bool:
    """Whether the loss has undone its descent and sits flat: a blow-up that leaves no NaN.

    All of, for the batch losses and smoothed losses so far (the last ones are
    the current), with the minimum of the smoothed loss searched after the
    first ``START_POINTS``, as for the suggestion:

    - there was a descent: the minimum < start level − max(3σ, 1 % of the start level);
    - the minimum is at least ``window`` updates old (no progress since, while the rate kept growing);
    - the last ``window`` batch losses are back on the plateau or above: their mean ≥ start level − 3σ;
    - and flat: the means of the window's two halves differ by at most ``flat_tolerance`` of their mean.

    The batch losses, not the smoothed ones, are tested for the return and
    the flatness: the moving average lags them by about 1/(1 − β) = 50 updates.
    """
    losses, smoothed = np.asarray(losses, dtype=np.float64), np.asarray(smoothed, dtype=np.float64)
    if not (math.isfinite(start_level) and len(smoothed) > START_POINTS + window):
        return False
    best_index = START_POINTS + int(np.argmin(smoothed[START_POINTS:]))
    fell = smoothed[best_index] < start_level - max(3 * noise, 0.01 * abs(start_level))
    stale = len(smoothed) - 1 - best_index >= window
    recent = losses[-window:]
    level = recent.mean()
    back = level >= start_level - 3 * noise
    half = window // 2
    flat = abs(recent[half:].mean() - recent[:half].mean()) <= flat_tolerance * abs(level)
    return bool(fell and stale and back and flat)


def valley_lr(lrs: np.ndarray, smoothed: np.ndarray) -> float:
    """fastai's "valley": the middle of the longest descent of the smoothed loss, up to its minimum.

    Among the points i <= argmin(smoothed), find the longest chain
    i_1 < i_2 < … < i_m with smoothed[i_1] > smoothed[i_2] > … > smoothed[i_m]
    (a longest decreasing subsequence: ``length[i] = 1 + max(length[j])`` over
    the j < i with smoothed[j] > smoothed[i]). The suggestion is the rate
    halfway between the chain's first and last points (in index, that is in
    log(lr), since the ramp is geometric): far enough from the start that the
    loss is really falling, far enough from the end that it is not about to
    blow up. NaN for fewer than two points.
    """
    if len(lrs) < 2:
        return math.nan
    values = np.asarray(smoothed, dtype=np.float64)[: int(np.argmin(smoothed)) + 1]
    length = np.ones(len(values), dtype=np.int64)
    first = np.arange(len(values))  # where the longest chain ending at i starts
    for i in range(1, len(values)):
        higher = np.flatnonzero(values[:i] > values[i])
        if len(higher):
            longest = higher[length[higher] == length[higher].max()]
            j = longest[-1]  # of the longest chains, the one whose last point is nearest: the descent itself
            length[i], first[i] = length[j] + 1, first[j]
    end = int(np.argmax(length))
    return float(lrs[(first[end] + end) // 2])


def steepest_descent_lr(lrs: np.ndarray, smoothed: np.ndarray, skip_start: int = 10, skip_end: int = 5) -> float:
    """The rate where the smoothed loss falls fastest: argmin of d(loss) / d(log lr).

    The slope at each point is the centred difference (one-sided at the ends),
    NumPy's ``gradient``. The first ``skip_start`` points (where the average
    still rests on a few noisy losses) and the last ``skip_end`` (the blow-up)
    are left out, as fastai does, when at least two points remain; NaN when
    fewer than two points were recorded at all.
    """
    if len(lrs) < 2:
        return math.nan
    if len(lrs) - skip_start - skip_end >= 2:
        lrs, smoothed = lrs[skip_start : len(lrs) - skip_end], smoothed[skip_start : len(lrs) - skip_end]
    slope = np.gradient(smoothed, np.log(lrs))
    return float(lrs[np.argmin(slope)])


def _cycle(batches: Iterable[Any], steps: int) -> Iterator[Any]:
    """The first ``steps`` batches of ``batches`` repeated; stops if a pass yields nothing."""
    given = 0
    while given < steps:
        before = given
        for batch in batches:
            yield batch
            given += 1
            if given == steps:
                return
        if given == before:  # an exhausted iterator: nothing more to give
            return
