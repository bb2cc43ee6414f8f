"""Stochastic gradient descent: the update rules that ``optimizer.step()`` applies.

g is the gradient of the loss on the mini-batch just seen. Plain gradient
descent, pure SGD and mini-batch SGD are the *same optimizer*; only the batch
that produced g differs:

- full-batch gradient descent: g from the whole training set at every step;
- pure (stochastic) SGD: g from one example (batch size 1);
- mini-batch SGD: g from B examples (what a ``DataLoader`` with ``batch_size=B`` feeds).

Two classes, one per way of writing momentum:

- :class:`SGD` is exactly ``torch.optim.SGD`` (momentum buffer b, dampening,
  Nesterov, coupled weight decay), with W ← W − α b.
- :class:`HeavyBallSGD` is the recitation's form, with the rate inside the
  velocity: V ← βV + α g; W ← W − V (also Keras's SGD and Polyak's heavy ball).

While α is constant the two give the same iterates (V = α b). Once a schedule
changes α they differ: the heavy-ball velocity remembers the old rates it was
built with, while PyTorch multiplies the whole buffer by today's α.

The learning rate is a number or a schedule (``minisgd.schedules``, or any
callable ``t -> lr``); the optimizer counts its updates t and uses ``lr(t)``
for update t, so the first update uses ``lr(0)``.

Example::

    >>> import numpy as np, minisgd
    >>> from minisgd import optim
    >>> w = minisgd.Tensor(np.array([1.0]), requires_grad=True)
    >>> opt = optim.SGD([w], lr=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     opt.zero_grad()
    ...     (w * w / 2).sum().backward()      # loss w²/2, so g = w
    ...     opt.step()
    ...     print(round(float(w.data[0]), 10))
    0.9
    0.72
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Iterable

import numpy as np

from minisgd.backend import get_array_module, to_numpy
from minisgd.schedules import constant


class SGD:
    """Stochastic gradient descent with momentum, exactly as ``torch.optim.SGD`` computes it.

    For each parameter W with gradient g, at update t (t = 0 for the first):

        g ← g + λ W                                   (weight_decay λ, coupled: part of g)
        b ← g                        on the first update,
        b ← μ b + (1 − dampening) g  after that        (momentum μ; no buffer when μ = 0)
        d = g + μ b  if nesterov, else  d = b          (d = g when μ = 0)
        W ← W − α_t d                                  (α_t = lr(t))

    Arguments:
        params: the tensors to train (``model.parameters()``); each needs
            ``.data`` and, after ``backward()``, ``.grad`` (a tensor whose
            ``.grad`` is None is skipped, as in PyTorch).
        lr: α, a number >= 0, or a schedule t -> α (``minisgd.schedules`` or any callable).
        momentum: μ >= 0, or a schedule t -> μ: ``momentum=s.momentum`` for a
            ``cyclic`` or ``one_cycle`` schedule s cycles the momentum opposite to
            the rate (PyTorch's ``cycle_momentum``).
        dampening: in [0, 1]; scales the new gradient in the buffer update.
        nesterov: look-ahead momentum; needs μ > 0 and dampening = 0.
        weight_decay: λ >= 0 (L2 penalty ½λ‖W‖² added to the loss).

    ``t`` is the number of updates done; ``lr`` and ``momentum`` read the values
    the *next* update will use.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | Callable[[int], float],
        momentum: float | Callable[[int], float] = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        name = type(self).__name__
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{name}: params is empty; give it the tensors to train")
        self.lr_schedule = lr if callable(lr) else constant(_check_number(name, "lr", lr))
        self.momentum_schedule = (
            momentum if callable(momentum) else constant(_check_number(name, "momentum", momentum))
        )
        if not isinstance(dampening, numbers.Real) or not 0.0 <= dampening <= 1.0:
            raise ValueError(f"{name}: dampening must be in [0, 1]; got {dampening!r}")
        self.dampening = float(dampening)
        self.nesterov = bool(nesterov)
        self.weight_decay = _check_number(name, "weight_decay", weight_decay)
        if self.nesterov and (self.momentum_schedule(0) <= 0 or self.dampening != 0):
            raise ValueError(
                f"{name}: nesterov=True needs momentum > 0 and dampening = 0; got "
                f"momentum={momentum!r}, dampening={dampening!r}"
            )
        self.t = 0  # updates done so far: the next update uses lr(t)
        self.buffers: list[Any] = [None] * len(self.params)  # momentum buffer per parameter

    # ------------------------------------------------------------- the update
    @property
    def lr(self) -> float:
        """α for the next update: lr(t), checked to be a finite number >= 0."""
        return self._value_at(self.lr_schedule, "learning rate", "lr")

    @property
    def momentum(self) -> float:
        """μ for the next update: momentum(t), checked to be a finite number >= 0."""
        return self._value_at(self.momentum_schedule, "momentum", "momentum")

    def step(self) -> None:
        """Apply update t to every parameter that has a gradient, then count it (t ← t + 1)."""
        lr, momentum = self.lr, self.momentum
        if self.nesterov and momentum <= 0:
            raise ValueError(
                f"{type(self).__name__}: nesterov=True needs momentum > 0, but the momentum "
                f"schedule returned {momentum!r} at step t={self.t}"
            )
        for i, param in enumerate(self.params):
            if param.grad is None:
                continue
            grad = param.grad
            if self.weight_decay != 0:
                grad = grad + self.weight_decay * param.data  # a new array: .grad stays as it was
            self._update(i, param, grad, lr, momentum)
        self.t += 1

    def _update(self, i: int, param: Any, grad: Any, lr: float, momentum: float) -> None:
        """PyTorch's rule for one parameter: b ← μ b + (1 − dampening) g; W ← W − α (g + μ b or b)."""
        direction = grad
        if momentum != 0:
            buffer = self.buffers[i]
            if buffer is None:  # first update: the buffer starts as the gradient itself
                buffer = self.buffers[i] = grad.copy()
            else:
                buffer *= momentum
                buffer += (1.0 - self.dampening) * grad
            direction = grad + momentum * buffer if self.nesterov else buffer
        param.data -= lr * direction  # in place: every module holding W sees the change

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (``.grad = None``, PyTorch's default)."""
        for param in self.params:
            param.grad = None

    # ------------------------------------------------------- saving and loading
    def state_dict(self) -> dict[str, np.ndarray]:
        """The optimizer's changing state as NumPy arrays, ready for an ``.npz`` file.

        ``"t"`` is the number of updates done; ``"buffer.{i}"`` is the momentum
        buffer (or velocity) of the i-th parameter, for those that have one.
        The rate and momentum schedules are pure functions of t, so t restores them.
        """
        state = {"t": np.array(self.t, dtype=np.int64)}
        for i, buffer in enumerate(self.buffers):
            if buffer is not None:
                state[f"buffer.{i}"] = np.array(to_numpy(buffer), copy=True)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned, so training continues exactly where it stopped."""
        name = type(self).__name__
        expected = {"t"} | {f"buffer.{i}" for i in range(len(self.params))}
        unknown = sorted(set(state) - expected)
        if "t" not in state or unknown:
            raise ValueError(
                f"{name}.load_state_dict: expected keys 't' and 'buffer.0' … "
                f"'buffer.{len(self.params) - 1}'; got {sorted(state)}"
            )
        buffers: list[Any] = [None] * len(self.params)
        for i, param in enumerate(self.params):
            if f"buffer.{i}" not in state:
                continue
            saved = np.asarray(to_numpy(state[f"buffer.{i}"]))
            if tuple(saved.shape) != tuple(param.data.shape):
                raise ValueError(
                    f"{name}.load_state_dict: buffer.{i} has shape {tuple(saved.shape)} but "
                    f"parameter {i} has shape {tuple(param.data.shape)}"
                )
            xp = get_array_module(param.data)
            buffers[i] = xp.array(saved, dtype=param.data.dtype)  # a copy on the parameter's device
        self.t = int(state["t"])
        self.buffers = buffers

    def _value_at(self, schedule: Callable[[int], float], what: str, name: str) -> float:
        returned = schedule(self.t)
        try:
            value = float(returned)
        except (TypeError, ValueError):
            value = math.nan
        if not math.isfinite(value) or value < 0:
            raise ValueError(
                f"{type(self).__name__}: the {what} schedule returned {returned!r} at step "
                f"t={self.t}; {name} must be a finite number >= 0"
            )
        return value

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({len(self.params)} parameters, lr={self.lr_schedule!r}, "
            f"momentum={self.momentum_schedule!r}, dampening={self.dampening!r}, "
            f"nesterov={self.nesterov!r}, weight_decay={self.weight_decay!r}, t={self.t})"
        )


class HeavyBallSGD(SGD):
    """The recitation's momentum, with the rate inside the velocity (Polyak's heavy ball; Keras's SGD).

    For each parameter W with gradient g, at update t:

        g ← g + λ W                           (weight_decay λ, coupled, as in :class:`SGD`)
        V ← β V + α_t g                       (V starts at 0; β = ``momentum``)
        W ← W − V                             (nesterov: W ← W − (β V + α_t g))

    Keras writes v ← μv − α g; W ← W + v: the same iterates with v = −V. At a
    constant α this matches :class:`SGD` with dampening 0 step for step
    (V = α b). When α changes it does not: here V keeps the rates it was built
    with, while :class:`SGD` applies today's α to the whole buffer.
    ``state_dict`` stores V as ``"buffer.{i}"``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | Callable[[int], float],
        momentum: float | Callable[[int], float] = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)

    def _update(self, i: int, param: Any, grad: Any, lr: float, momentum: float) -> None:
        """V ← β V + α g; W ← W − V (or W ← W − (β V + α g) with Nesterov)."""
        if momentum == 0:
            param.data -= lr * grad
            return
        velocity = self.buffers[i]
        if velocity is None:  # V starts at 0, so the first V is α g
            velocity = self.buffers[i] = lr * grad
        else:
            velocity *= momentum
            velocity += lr * grad
        param.data -= momentum * velocity + lr * grad if self.nesterov else velocity


def _check_number(where: str, name: str, value: Any) -> float:
    """``value`` as a float, or a ValueError unless it is a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{where}: {name} must be a finite number >= 0 (or a schedule); got {value!r}")
    return float(value)
