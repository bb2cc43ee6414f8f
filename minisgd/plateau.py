"""``ReduceLROnPlateau``: the one learning-rate schedule that keeps state (PyTorch ``ReduceLROnPlateau``).

Every schedule in :mod:`minisgd.schedules` is a pure function of the update
count t, so the optimizer's t is all a checkpoint needs to restore it. This one
is not: it cuts the rate when a metric (say the validation loss) stops
improving, so it remembers the best metric seen, how many evaluations have gone
by without improvement and how long its cooldown still runs. That state goes
into checkpoints through :meth:`ReduceLROnPlateau.state_dict` and comes back
with :meth:`ReduceLROnPlateau.load_state_dict`, so a resumed run cuts the rate
exactly when the uninterrupted one would.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from minisgd import checks


class ReduceLROnPlateau:
    """Cut the rate by ``factor`` when a metric stops improving (PyTorch ``ReduceLROnPlateau``).

    Call :meth:`step` with the metric after each evaluation; the optimizer
    calls the object as a schedule (``lr = plateau(t)``) and gets the current rate.

    After each metric:

    - it is an improvement when, in mode ``"min"``, metric < best · (1 − threshold)
      (``threshold_mode="rel"``) or metric < best − threshold (``"abs"``);
      mode ``"max"`` mirrors this;
    - ``bad_evaluations`` counts the evaluations since the last improvement (it
      is reset to 0 during the ``cooldown`` evaluations that follow a cut);
    - once bad_evaluations > ``patience``:  lr ← max(lr · factor, min_lr), and a
      cooldown begins; a cut that would change lr by ``eps`` or less is skipped
      (PyTorch's 1e-8).
    """

    def __init__(
        self,
        lr: float,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
        threshold_mode: str = "rel",
        eps: float = 1e-8,
    ) -> None:
        where = "ReduceLROnPlateau"
        self.lr = checks.number(where, "lr", lr, low=0)
        self.mode = checks.choice(where, "mode", mode, ("min", "max"))
        self.factor = checks.number(where, "factor", factor, low=0, high=1, low_open=True, high_open=True)
        self.patience = checks.integer(where, "patience", patience, low=0, whole_float=True)
        self.threshold = checks.number(where, "threshold", threshold, low=0)
        self.cooldown = checks.integer(where, "cooldown", cooldown, low=0, whole_float=True)
        self.min_lr = checks.number(where, "min_lr", min_lr, low=0)
        self.threshold_mode = checks.choice(where, "threshold_mode", threshold_mode, ("rel", "abs"))
        self.eps = checks.number(where, "eps", eps, low=0)
        self.best = math.inf if mode == "min" else -math.inf
        self.bad_evaluations = 0
        self.cooldown_left = 0

    def __call__(self, t: Any) -> Any:
        """The current rate, whatever t is (an array of t gets an array of that rate)."""
        times = np.asarray(t, dtype=np.float64)
        return self.lr if times.ndim == 0 else np.full(times.shape, self.lr)

    def is_improvement(self, metric: float) -> bool:
        """True when ``metric`` beats the best so far by more than the threshold."""
        if self.mode == "min":
            bar = self.best * (1 - self.threshold) if self.threshold_mode == "rel" else self.best - self.threshold
            return metric < bar
        bar = self.best * (1 + self.threshold) if self.threshold_mode == "rel" else self.best + self.threshold
        return metric > bar

    def step(self, metric: float) -> float:
        """Record one evaluation of the metric; return the rate to use from now on."""
        metric = float(metric)
        if self.is_improvement(metric):
            self.best = metric
            self.bad_evaluations = 0
        else:
            self.bad_evaluations += 1
        if self.cooldown_left > 0:  # resting after a cut: bad evaluations do not count
            self.cooldown_left -= 1
            self.bad_evaluations = 0
        if self.bad_evaluations > self.patience:
            reduced = max(self.lr * self.factor, self.min_lr)
            if self.lr - reduced > self.eps:
                self.lr = reduced
            self.cooldown_left = self.cooldown
            self.bad_evaluations = 0
        return self.lr

    def state_dict(self) -> dict[str, np.ndarray]:
        """The changing state as arrays (for ``.npz`` checkpoints): lr, best, bad_evaluations, cooldown_left."""
        return {
            "lr": np.array(self.lr),
            "best": np.array(self.best),
            "bad_evaluations": np.array(self.bad_evaluations),
            "cooldown_left": np.array(self.cooldown_left),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        expected = {"lr", "best", "bad_evaluations", "cooldown_left"}
        if set(state) != expected:
            raise ValueError(
                f"ReduceLROnPlateau.load_state_dict: expected keys {sorted(expected)}; got {sorted(state)}"
            )
        self.lr = float(state["lr"])
        self.best = float(state["best"])
        self.bad_evaluations = int(state["bad_evaluations"])
        self.cooldown_left = int(state["cooldown_left"])

    def __repr__(self) -> str:
        return (
            f"ReduceLROnPlateau(lr={self.lr!r}, mode={self.mode!r}, factor={self.factor!r}, "
            f"patience={self.patience}, threshold={self.threshold!r}, cooldown={self.cooldown}, "
            f"min_lr={self.min_lr!r})"
        )
