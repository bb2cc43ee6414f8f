"""Gradient clipping, as ``torch.nn.utils`` does it: call between ``loss.backward()`` and ``optimizer.step()``.

- :func:`clip_grad_norm_` rescales all gradients together when their joint
  norm is too large (the direction of the update is kept, its length capped);
- :func:`clip_grad_value_` clips every gradient entry to [−c, c].

Both change ``param.grad`` in place (hence the trailing underscore) and skip
parameters whose ``.grad`` is None.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from minisgd import checks
from minisgd.backend import get_array_module
from minisgd.tensor import Tensor


def _grads(parameters: Tensor | Iterable[Tensor]) -> list[Any]:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    return [p.grad for p in params if p.grad is not None]


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    """Scale all gradients by one factor so that their total p-norm is at most ``max_norm``; return the norm.

        total = (Σ over every entry g of every gradient |g|^p)^(1/p)    (p = norm_type)
        total = max |g|                                                 (p = inf)
        c = min(1, max_norm / (total + 1e-6));    g ← c · g

    The norm is of all gradients together, as if they were one long vector.
    ``total`` is returned before clipping (log it to see how often clipping acts).
    The 1e-6 keeps c finite for a zero gradient; as in PyTorch, it also makes
    c slightly below 1 when total is within 1e-6 of ``max_norm``. A NaN or
    infinite total raises with ``error_if_nonfinite=True``; otherwise, as in
    PyTorch, it spreads to every gradient.
    """
    where = "clip_grad_norm_"
    max_norm = checks.number(where, "max_norm", max_norm, low=0)
    if not (isinstance(norm_type, (int, float)) and norm_type == math.inf):
        norm_type = checks.number(where, "norm_type", norm_type, low=0, low_open=True)
    grads = _grads(parameters)
    if not grads:
        return 0.0
    xp = get_array_module(grads[0])
    if norm_type == math.inf:
        total = max(float(xp.abs(g).max()) for g in grads)
    else:
        total = sum(float((xp.abs(g) ** norm_type).sum()) for g in grads) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is {total}; "
            "pass error_if_nonfinite=False to clip anyway"
        )
    coefficient = max_norm / (total + 1e-6)
    if not coefficient >= 1.0:  # NaN included, as in PyTorch
        for g in grads:
            g *= coefficient
    return total


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clip every gradient entry to [−c, c]:  g ← min(max(g, −c), c)  (c = ``clip_value``)."""
    clip_value = checks.number("clip_grad_value_", "clip_value", clip_value, low=0)
    for g in _grads(parameters):
        xp = get_array_module(g)
        xp.clip(g, -clip_value, clip_value, out=g)
