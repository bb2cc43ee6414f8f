"""Stochastic weight averaging (SWA; Izmailov et al. 2018), as ``torch.optim.swa_utils`` does it.

SGD with a high constant or cyclic rate bounces around a wide, flat region of
the loss surface without settling at its centre. SWA averages the weights it
visits (once per epoch, or every few updates) and uses the average:

    W_swa ← (n W_swa + W) / (n + 1)          (n = models averaged so far)

The average lies nearer the centre of the flat region, which tends to
generalise better than any single iterate. Three pieces:

- :class:`AveragedModel` holds a copy of the network whose weights are the
  running average (or an exponential moving average, EMA, with
  :func:`get_ema_avg_fn`);
- :func:`update_bn` recomputes the copy's BatchNorm statistics with one pass
  over the training data: the running statistics of the iterates do not belong
  to their average;
- :func:`swa_schedule` is the rate: the usual schedule until SWA starts, then
  an anneal to ``swa_lr`` that is held (PyTorch's ``SWALR``), written with
  :func:`minisgd.schedules.join`.

Typical loop (SWA over the last quarter, one average per epoch)::

    swa_start = int(0.75 * epochs) * len(loader)                # in updates
    schedule = swa_schedule(schedules.cosine(0.1, epochs * len(loader)), swa_start, swa_lr=0.05,
                            anneal_steps=len(loader))
    optimizer = optim.SGD(model.parameters(), lr=schedule, momentum=0.9)
    swa_model = AveragedModel(model)
    for epoch in range(epochs):
        ...                                                     # one epoch of training
        if optimizer.t > swa_start:
            swa_model.update_parameters(model)
    update_bn(loader, swa_model)
    evaluate(swa_model, test_loader)
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Iterable

import numpy as np

from minisgd import checks, schedules
from minisgd.backend import get_array_module
from minisgd.nn.module import Module
from minisgd.tensor import Tensor, mark_modified, no_grad

AvgFn = Callable[[Any, Any, int], Any]


def get_ema_avg_fn(decay: float = 0.999) -> AvgFn:
    """The exponential moving average, for ``AveragedModel(model, avg_fn=get_ema_avg_fn(decay))``.

        W_ema ← decay · W_ema + (1 − decay) · W

    (PyTorch's ``get_ema_avg_fn``; the first update copies W, as for SWA.)
    """
    decay = checks.number("get_ema_avg_fn", "decay", decay, low=0, high=1)

    def ema(averaged: Any, current: Any, num_averaged: int) -> Any:
        return decay * averaged + (1 - decay) * current

    return ema


def swa_average(averaged: Any, current: Any, num_averaged: int) -> Any:
    """The equal running average of n = ``num_averaged`` models and one more, written as PyTorch does:

        W_swa + (W − W_swa) / (n + 1)    ( = (n W_swa + W) / (n + 1) )
    """
    return averaged + (current - averaged) / (num_averaged + 1)


class AveragedModel(Module):
    """A copy of ``model`` whose parameters are the average of the models given to :meth:`update_parameters`.

    ``swa_model = AveragedModel(model)`` deep-copies the network, so it has the
    same layers; ``swa_model(x)`` runs the copy (``swa_model.module``).
    ``avg_fn(averaged, current, n)`` returns the new average from the old one
    and the current weights, with n the number of models averaged so far; the
    default is the equal average :func:`swa_average`, and
    :func:`get_ema_avg_fn` gives an EMA. The first :meth:`update_parameters`
    copies the weights.

    Only parameters are averaged. Buffers (BatchNorm's running statistics) stay
    as copied; call :func:`update_bn` after the last update.

    ``state_dict`` holds ``"module.<name>"`` for the averaged weights and
    ``"n_averaged"``, PyTorch's layout, so a resumed run continues the same average.
    """

    def __init__(self, model: Module, avg_fn: AvgFn | None = None) -> None:
        super().__init__()
        if not isinstance(model, Module):
            checks.fail("AveragedModel", "model", "a minisgd.nn.Module", type(model).__name__)
        self.module = copy.deepcopy(model)
        for param in self.module.parameters():
            param.grad = None
        first = next(iter(model.parameters()), None)
        xp = get_array_module(first.data) if first is not None else np
        self.register_buffer("n_averaged", xp.zeros((), dtype=np.int64))
        self.avg_fn = avg_fn if avg_fn is not None else swa_average

    def forward(self, *args: Any) -> Any:
        return self.module(*args)

    def update_parameters(self, model: Module) -> None:
        """Fold ``model``'s current weights into the average: W_avg ← avg_fn(W_avg, W, n); n ← n + 1."""
        averaged = list(self.module.parameters())
        current = list(model.parameters())
        if [p.shape for p in averaged] != [p.shape for p in current]:
            raise ValueError("AveragedModel.update_parameters: model does not have the averaged model's parameters")
        n = int(self.n_averaged)
        for average, param in zip(averaged, current):
            if n == 0:
                average.data[...] = param.data
            else:
                average.data[...] = self.avg_fn(average.data, param.data, n)
            mark_modified(average, "AveragedModel.update_parameters", None)  # written in place
        self.n_averaged += 1  # a 0-d array, updated in place

    def extra_repr(self) -> str:
        return f"n_averaged={int(self.n_averaged)}"


def update_bn(loader: Iterable[Any], model: Module) -> None:
    """Recompute every BatchNorm layer's running statistics with one pass over ``loader``.

    The running mean and variance are reset, then set to the plain average
    over the batches (PyTorch's ``momentum=None``, the cumulative average):
    before the k-th batch (k = 1, 2, …) each layer's momentum is set to 1/k, so

        running ← (1 − 1/k) · running + (1/k) · batch statistic

    is the mean of the first k batches' statistics (each batch counts once;
    the variance is each batch's unbiased variance, as in training). Momentum
    and train/eval mode are restored afterwards. ``loader`` yields ``(x, y)``
    pairs (``y`` is ignored) or bare inputs ``x``. A model without BatchNorm
    is left as it is.
    """
    layers = [m for m in model.modules() if "running_mean" in m._buffers and "running_var" in m._buffers]
    if not layers:
        return
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.running_mean[...] = 0
        layer.running_var[...] = 1
        if "num_batches_tracked" in layer._buffers:
            layer.num_batches_tracked[...] = 0
    was_training = model.training
    model.train()
    try:
        with no_grad():
            for k, batch in enumerate(loader, start=1):
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                for layer in layers:
                    layer.momentum = 1.0 / k
                model(x if isinstance(x, Tensor) else Tensor(x))
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        model.train(was_training)


def swa_schedule(
    schedule: schedules.ScheduleLike,
    swa_start: int,
    swa_lr: float,
    anneal_steps: int = 1,
    anneal: str = "cos",
) -> schedules.Schedule:
    """``schedule`` until update ``swa_start``, then anneal to ``swa_lr`` over ``anneal_steps`` and hold it.

    With η_s = schedule(swa_start), τ = t − swa_start and A = ``anneal_steps``,
    the rate from SWA's start on is PyTorch's ``SWALR``:

        f(τ) = swa_lr + (η_s − swa_lr) · u(min(τ, A))
        u(τ) = ½ (1 + cos(π τ / A))   (anneal="cos")    or    1 − τ / A   (anneal="linear")

    so it moves from η_s to swa_lr (down or up) and then holds swa_lr. Nothing
    stateful: u is ``cosine(1, A)`` or ``linear(1, A)``, and the two parts are
    joined at swa_start by ``join([schedule, f], [swa_start])``.
    """
    where = "swa_schedule"
    swa_start = checks.integer(where, "swa_start", swa_start, low=1)
    swa_lr = checks.number(where, "swa_lr", swa_lr, low=0)
    anneal_steps = checks.integer(where, "anneal_steps", anneal_steps, low=1)
    checks.choice(where, "anneal", anneal, ("cos", "linear"))
    start_lr = float(schedules.evaluate(schedule, swa_start))
    unit = schedules.cosine(1.0, anneal_steps) if anneal == "cos" else schedules.linear(1.0, anneal_steps)
    tail = schedules.Schedule(
        lambda tau: swa_lr + (start_lr - swa_lr) * unit(tau),
        f"anneal(from={start_lr!r}, to swa_lr={swa_lr!r}, {unit!r})",
    )
    return schedules.join([schedule, tail], [swa_start])
