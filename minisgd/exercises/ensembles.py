"""Exercise ``ensembles``: when snapshots are taken, how an ensemble predicts, and the LR range test's suggestion.

Answer key: ``ensemble.cycle_ends`` of ``schedules.snapshot``; the mean of the
snapshots' softmax probabilities (``SnapshotEnsemble.predict_proba``), then
argmax; and the suggestion rule of :mod:`minisgd.lr_finder` (bias-corrected
smoothing with β = 0.98, the first 10 points left out when there are more
than 20, the minimum's rate divided by ``SUGGESTION_DIVISOR``), which the
tests check against ``lr_range_test`` itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minisgd import ensemble, lr_finder, schedules
from minisgd.exercises.grading import Fail, as_array, as_number, call, close, number_text, pair_text

LECTURES = ("06_choosing_hyperparameters", "10_snapshot_ensembles_swa")

STUB = '''"""minisgd exercise: ensembles (follows lectures 06_choosing_hyperparameters and 10_snapshot_ensembles_swa).

Write each function below, then grade your file with

    python -m minisgd exercise check ensembles

NumPy arrays in, NumPy arrays out. Do not import minisgd here: you write it yourself.
"""

import numpy as np


def snapshot_times(epochs, cycles, steps_per_epoch):
    """The update counts t after which a snapshot ensemble saves the weights (Huang et al.'s cyclic cosine).

    The run has T = epochs · steps_per_epoch updates split into `cycles` cosine
    cycles of L = ⌈T / cycles⌉ updates each; a cycle ends after updates
    t = L, 2L, …, and when T is not a multiple of L the last cycle is cut short
    by the end of the run, so it ends at t = T. Return the list of these t
    (ints, increasing), one per cycle.
    """
    raise NotImplementedError


def ensemble_predict(prob_list):
    """The ensemble's predicted classes: the mean of the models' softmax probabilities, then argmax.

    prob_list: a list of M arrays of shape (N, C), each row a probability
    vector (model k's softmax output for example n). Return the N class
    indices, an integer array of shape (N,).
    """
    raise NotImplementedError


def lr_range_suggestion(lrs, losses):
    """The learning rate minisgd's LR range test suggests from a sweep (see minisgd/lr_finder.py).

    lrs[i] is the rate update i used, losses[i] its mini-batch loss. Smooth the
    losses with a bias-corrected exponential moving average (β = 0.98):

        avg_k = β · avg_{k−1} + (1 − β) · loss_k,  avg_0 = 0,   smoothed_k = avg_k / (1 − β^k)   (k = 1, 2, …)

    find the minimum of smoothed, leaving out its first 10 points when there
    are more than 20 points, and return the rate there divided by 5.
    """
    raise NotImplementedError
'''


# ------------------------------------------------------------------- checks
def _int_list(value: Any, what: str) -> list[int]:
    """The student's ``value`` as a list of ints (a list, tuple or 1-D integer array), or a :class:`Fail`."""
    if isinstance(value, np.ndarray):
        if value.ndim != 1:
            raise Fail(f"{what} is an array of shape {value.shape}, expected a list of ints")
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise Fail(f"{what} is {type(value).__name__ if value is not None else 'None'}, expected a list of ints")
    numbers = []
    for item in value:
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, float, np.integer, np.floating)) \
                or not float(item).is_integer():
            raise Fail(f"{what} holds {item!r}, expected whole numbers of updates")
        numbers.append(int(item))
    return numbers


def check_snapshot_times(snapshot_times) -> None:
    for epochs, cycles, steps in ((10, 5, 4), (6, 3, 10), (10, 3, 1), (5, 5, 20), (7, 2, 3), (4, 1, 5)):
        total = epochs * steps
        expected = ensemble.cycle_ends(schedules.snapshot(0.1, total, cycles), total)
        label = f"epochs {epochs}, cycles {cycles}, steps_per_epoch {steps} (T = {total})"
        got = _int_list(call(snapshot_times, epochs, cycles, steps), f"the times for {label}")
        if got == expected:
            continue
        length = -(-total // cycles)
        hints = (
            ("times count updates, not epochs: multiply by steps_per_epoch",
             [round(k * epochs / cycles) for k in range(1, cycles + 1)]),
            ("a snapshot is taken after update t = L (when the optimizer's t equals L), not t = L − 1",
             [t - 1 for t in expected]),
            ("the cycle length is L = ⌈T / cycles⌉ (rounded up)",
             list(range(total // cycles, total + 1, total // cycles))),
            ("when T is not a multiple of L the last cycle is cut short: it ends at t = T",
             list(range(length, total + 1, length))),
        )
        hint = next((text for text, wrong in hints if got == wrong), "")
        message = f"for {label}: got {got}, expected {expected}"
        raise Fail(f"{message}: {hint}" if hint else message)


def _designed_disagreement() -> list[np.ndarray]:
    """Three models whose mean disagrees with their vote (row 0), their geometric mean (row 1), their max (row 2)."""
    rows = (
        ([0.4, 0.35, 0.25], [0.4, 0.35, 0.25], [0.05, 0.9, 0.05]),
        ([0.85, 0.14, 0.01], [0.85, 0.14, 0.01], [0.0001, 0.9989, 0.001]),
        ([0.7, 0.2, 0.1], [0.7, 0.2, 0.1], [0.2, 0.79, 0.01]),
    )
    return [np.array([row[k] for row in rows]) for k in range(3)]


def check_ensemble_predict(ensemble_predict) -> None:
    rng = np.random.default_rng(15)
    cases = [("3 models, 3 examples where the mean disagrees with a vote, a geometric mean and a max",
              _designed_disagreement())]
    for M, N, C in ((5, 20, 10), (1, 4, 3), (4, 1, 6)):
        cases.append((f"{M} models, {N} examples, {C} classes", list(rng.dirichlet(np.ones(C) * 0.7, (M, N)))))
    for label, probs in cases:
        N = probs[0].shape[0]
        got = as_array(call(ensemble_predict, probs), f"the predictions for {label}", (N,))
        expected = np.argmax(np.mean(probs, axis=0), axis=1)  # SnapshotEnsemble: p = (1/m) Σ_k softmax_k
        if np.array_equal(got, expected):
            continue
        stacked = np.stack(probs)
        votes = np.argmax(stacked, axis=2)
        hints = (
            ("average the probabilities, then take the argmax: not a vote of each model's argmax",
             np.array([np.bincount(votes[:, n], minlength=stacked.shape[2]).argmax() for n in range(N)])),
            ("average the probabilities themselves, not their logarithms",
             np.argmax(np.mean(np.log(stacked), axis=0), axis=1)),
            ("average the probabilities, not the most confident model's", np.argmax(stacked.max(axis=0), axis=1)),
        )
        n = int(np.flatnonzero(got != expected)[0])
        hint = next((text for text, wrong in hints if np.array_equal(got, wrong)), "")
        message = f"for {label}: example {n} predicted {number_text(got[n])}, expected {expected[n]}"
        raise Fail(f"{message}: {hint}" if hint else message)


def smoothed_losses(losses: np.ndarray, beta: float = 0.98, correct: bool = True) -> np.ndarray:
    """lr_finder's smoothing: avg_k = β avg_{k−1} + (1 − β) loss_k, divided by (1 − β^k) (k from 1)."""
    average, smoothed = 0.0, []
    for k, loss in enumerate(losses, start=1):
        average = beta * average + (1 - beta) * loss
        smoothed.append(average / (1 - beta**k) if correct else average)
    return np.array(smoothed)


def suggestion(lrs: np.ndarray, losses: np.ndarray, correct: bool = True, smooth: bool = True, skip: bool = True,
               divisor: float = lr_finder.SUGGESTION_DIVISOR) -> float:
    """lr_finder's suggested rate: the rate at the smoothed loss's minimum (after 10 points) / SUGGESTION_DIVISOR."""
    smoothed = smoothed_losses(losses, correct=correct) if smooth else np.asarray(losses, dtype=np.float64)
    first = 10 if skip and len(lrs) > 20 else 0
    best = first + int(np.argmin(smoothed[first:]))
    return float(lrs[best] / divisor)


def _sweep(rng: np.random.Generator, n: int, noise: float, early_dip: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A range test's curve: a plateau, a fall, a blow-up, with noise (and a low start with ``early_dip``)."""
    lrs = 1e-5 * (10 / 1e-5) ** (np.arange(n) / n)
    x = np.log10(lrs)
    losses = 2.3 - 1.6 / (1 + np.exp(-3 * (x + 2))) + np.exp(2.5 * (x + 0.3)) + noise * rng.standard_normal(n)
    if early_dip:
        losses[:3] = 0.05
    return lrs, losses


def check_lr_range_suggestion(lr_range_suggestion) -> None:
    rng = np.random.default_rng(16)
    cases = (("a 100-point sweep", *_sweep(rng, 100, 0.05)), ("a 60-point noisy sweep", *_sweep(rng, 60, 0.3)),
             ("a 15-point sweep (no points left out)", *_sweep(rng, 15, 0.02)),
             ("a 100-point sweep that starts with 3 low losses", *_sweep(rng, 100, 0.05, early_dip=True)))
    for label, lrs, losses in cases:
        got = as_number(call(lr_range_suggestion, lrs, losses), f"the suggestion for {label}")
        expected = suggestion(lrs, losses)
        if close(got, expected, rtol=1e-9):
            continue
        smoothed = smoothed_losses(losses)
        first = 10 if len(lrs) > 20 else 0
        hints = (
            ("correct the average for its start at 0: smoothed_k = avg_k / (1 − β^k)",
             suggestion(lrs, losses, correct=False)),
            ("take the minimum of the smoothed losses, not of the raw ones", suggestion(lrs, losses, smooth=False)),
            (f"minisgd divides the rate at the minimum by {lr_finder.SUGGESTION_DIVISOR:g}",
             suggestion(lrs, losses, divisor=10.0)),
            (f"minisgd divides the rate at the minimum by {lr_finder.SUGGESTION_DIVISOR:g}",
             suggestion(lrs, losses, divisor=1.0)),
            ("leave the first 10 smoothed points out of the search for the minimum (when there are more than 20)",
             suggestion(lrs, losses, skip=False)),
            ("the suggestion is the minimum's rate / 5, not the steepest descent",
             lr_finder.steepest_descent_lr(lrs[: first + np.argmin(smoothed[first:]) + 1],
                                           smoothed[: first + np.argmin(smoothed[first:]) + 1])),
        )
        hint = next((text for text, wrong in hints if close(got, wrong, rtol=1e-9)), "")
        got_text, expected_text = pair_text(got, expected)
        message = f"for {label}: got {got_text}, expected {expected_text}"
        raise Fail(f"{message}: {hint}" if hint else message)


TASKS = (
    ("snapshot_times", check_snapshot_times),
    ("ensemble_predict", check_ensemble_predict),
    ("lr_range_suggestion", check_lr_range_suggestion),
)
