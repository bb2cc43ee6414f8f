"""Snapshot ensembles: M models for the price of one training run (Huang et al. 2017).

Train with a cyclic schedule — SGDR restarts, or ``schedules.snapshot`` (M
equal cosine cycles). At the end of each cycle the rate is near zero and the
weights sit in a minimum; the restart then kicks them out towards another
one. Save a copy of the weights at each cycle's end, and predict with all of
them, averaging their softmax outputs:

    p(y | x) = (1/m) Σ_{k = M−m+1..M} softmax(f(x; W_k))

(the last m snapshots; all of them by default).

Typical loop::

    schedule = schedules.snapshot(0.1, total_steps=epochs * len(loader), cycles=5)
    optimizer = optim.SGD(model.parameters(), lr=schedule, momentum=0.9)
    ends = set(cycle_ends(schedule, epochs * len(loader)))
    ensemble = SnapshotEnsemble()
    for epoch in range(epochs):
        for x, y in loader:
            ...  # zero_grad, loss, backward
            optimizer.step()
            if optimizer.t in ends:
                ensemble.add(model)
    probabilities = ensemble.predict_proba(x_test)
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np

import minisgd
from minisgd import checks
from minisgd.backend import to_numpy
from minisgd.schedules import evaluate


def cycle_ends(schedule: Callable[[Any], float], total_steps: int) -> list[int]:
    """The update counts t (1 … total_steps) after which a cycle of ``schedule`` has ended.

    A cycle ends where the rate turns back up after falling: the update just
    done, t − 1, used a rate no higher than the one before it and lower than
    the next one,

        lr(t − 2) >= lr(t − 1) < lr(t),

    so a snapshot is taken once ``optimizer.t == t``. For ``sgdr`` these are
    the restarts (T₀, T₀ + T₀·T_mult, …), for ``snapshot`` the multiples of
    its cycle length, for ``cyclic`` one update past each trough; a
    schedule that never rises again (``cosine``, ``step``) has none.

    ``snapshot(lr, T, M)`` has cycles of L = ⌈T/M⌉ updates, so when T is not
    a multiple of M its M-th cycle is cut short by the end of the run: that
    cycle ends at t = T, and the schedule always gives M ends. (Other
    schedules stopped inside a cycle, such as ``sgdr`` with a run shorter
    than its next restart, have not ended that cycle.)
    """
    total_steps = checks.integer("cycle_ends", "total_steps", total_steps, low=1)
    lrs = evaluate(schedule, np.arange(total_steps + 1, dtype=np.float64))
    ends = [t for t in range(2, total_steps + 1) if lrs[t - 2] >= lrs[t - 1] < lrs[t]]
    cycle_length = getattr(schedule, "cycle_length", None)  # set by schedules.snapshot
    last_cycle_cut_short = cycle_length is not None and ends and ends[-1] < total_steps
    return ends + [total_steps] if last_cycle_cut_short else ends


class SnapshotEnsemble:
    """Copies of one model's weights, taken during training, that predict together.

    :meth:`add` stores a copy of ``model.state_dict()`` (host memory). To
    predict, each snapshot is loaded into the model in turn (in eval mode, with
    no graph recorded), and the softmax outputs are averaged; the model's own
    weights and mode are restored afterwards.
    """

    def __init__(self, model: Any = None, snapshots: Iterable[dict[str, Any]] = ()) -> None:
        """An ensemble of ``model`` with the given ``snapshots`` (weights saved earlier, e.g. in a checkpoint)."""
        self.model: Any = model
        self.snapshots: list[dict[str, np.ndarray]] = [
            {name: np.array(to_numpy(value), copy=True) for name, value in weights.items()} for weights in snapshots
        ]

    def add(self, model: Any) -> None:
        """Store a copy of ``model``'s current weights as the next snapshot."""
        if self.model is not None and model is not self.model:
            raise ValueError("SnapshotEnsemble.add: every snapshot must come from the same model object")
        self.model = model
        self.snapshots.append(
            {name: np.array(to_numpy(value), copy=True) for name, value in model.state_dict().items()}
        )

    def __len__(self) -> int:
        return len(self.snapshots)

    def predict_proba(self, x: Any, last: int | None = None) -> np.ndarray:
        """The mean of the snapshots' softmax outputs for the batch ``x`` (a NumPy array).

        p = (1/m) Σ_k softmax(model(x; W_k)) over the last ``last`` snapshots
        (all when ``last`` is None).
        """
        chosen = self._chosen(last)
        from minisgd.nn import functional as F

        model = self.model
        if not isinstance(x, minisgd.Tensor):
            x = minisgd.Tensor(x, device=next(iter(model.parameters())).device)
        current = {name: np.array(to_numpy(value), copy=True) for name, value in model.state_dict().items()}
        was_training = getattr(model, "training", True)
        total = None
        try:
            model.eval()
            with minisgd.no_grad():
                for weights in chosen:
                    model.load_state_dict(weights)
                    probabilities = to_numpy(F.softmax(model(x), axis=-1).data)
                    total = probabilities.astype(np.float64) if total is None else total + probabilities
        finally:
            model.load_state_dict(current)
            if was_training:
                model.train()
        return total / len(chosen)

    def predict(self, x: Any, last: int | None = None) -> np.ndarray:
        """The class with the highest averaged probability, for each example of ``x``."""
        return np.argmax(self.predict_proba(x, last), axis=-1)

    def accuracy(self, batches: Iterable[tuple[Any, Any]], last: int | None = None) -> float:
        """The fraction of examples in ``batches`` (``(x, y)`` pairs) the ensemble gets right."""
        correct = seen = 0
        for x, y in batches:
            labels = to_numpy(y.data if isinstance(y, minisgd.Tensor) else y)
            correct += int(np.sum(self.predict(x, last) == labels))
            seen += len(labels)
        if seen == 0:
            raise ValueError("SnapshotEnsemble.accuracy: batches held no examples")
        return correct / seen

    def _chosen(self, last: int | None) -> list[dict[str, np.ndarray]]:
        if not self.snapshots:
            raise ValueError("SnapshotEnsemble: no snapshots yet; call add(model) at the end of each cycle")
        if last is None:
            return self.snapshots
        last = checks.integer("SnapshotEnsemble", "last", last, low=1, high=len(self.snapshots))
        return self.snapshots[-last:]
