"""Stochastic gradient descent: SGD (PyTorch's rule) and the recitation's heavy-ball form.

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

from typing import Any, Callable, Iterable

from minisgd import checks
from minisgd.optim.optimizer import Optimizer, with_weight_decay


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, exactly as ``torch.optim.SGD`` computes it.

    For each parameter W with gradient g, at update t (t = 0 for the first):

        g ← g + λ W                                   (weight_decay λ, coupled: part of g)
        b ← g                        on the first update,
        b ← μ b + (1 − dampening) g  after that        (momentum μ; no buffer when μ = 0)
        d = g + μ b  if nesterov, else  d = b          (d = g when μ = 0)
        W ← W − α_t d                                  (α_t = lr(t))

    Arguments:
        params: the tensors to train (``model.parameters()``), or a list of
            parameter groups (dicts with ``"params"`` and options that override
            the arguments below; see ``minisgd.optim.optimizer``). A tensor
            whose ``.grad`` is None is skipped, as in PyTorch.
        lr: α, a number >= 0, or a schedule t -> α (``minisgd.schedules`` or any callable).
        momentum: μ >= 0, or a schedule t -> μ: ``momentum=s.momentum`` for a
            ``cyclic`` or ``one_cycle`` schedule s cycles the momentum opposite to
            the rate (PyTorch's ``cycle_momentum``).
        dampening: in [0, 1]; scales the new gradient in the buffer update.
        nesterov: look-ahead momentum; needs μ > 0 and dampening = 0.
        weight_decay: λ >= 0 (L2 penalty ½λ‖W‖² added to the loss).

    ``t`` is the number of updates done; ``lr`` and ``momentum`` read the values
    the *next* update will use (of the first group). ``state_dict`` stores b as
    ``"buffer.{i}"``.
    """

    scheduled = ("lr", "momentum")
    state_names = ("buffer",)

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | Callable[[int], float],
        momentum: float | Callable[[int], float] = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                         weight_decay=weight_decay)

    def check(self, where: str, group: dict[str, Any]) -> None:
        group["lr"] = checks.schedule_or_number(where, "lr", group["lr"])
        group["momentum"] = checks.schedule_or_number(where, "momentum", group["momentum"])
        group["dampening"] = checks.number(where, "dampening", group["dampening"], low=0, high=1)
        group["nesterov"] = bool(group["nesterov"])
        group["weight_decay"] = checks.number(where, "weight_decay", group["weight_decay"], low=0)
        momentum = group["momentum"](0) if callable(group["momentum"]) else group["momentum"]
        if group["nesterov"] and (momentum <= 0 or group["dampening"] != 0):
            raise ValueError(
                f"{where}: nesterov=True needs momentum > 0 and dampening = 0; got "
                f"momentum={group['momentum']!r}, dampening={group['dampening']!r}"
            )

    def options_at_t(self, group: dict[str, Any]) -> dict[str, Any]:
        options = super().options_at_t(group)
        if options["nesterov"] and options["momentum"] <= 0:
            raise ValueError(
                f"{type(self).__name__}: nesterov=True needs momentum > 0, but the momentum "
                f"schedule returned {options['momentum']!r} at step t={self.t}"
            )
        return options

    @property
    def buffers(self) -> list[Any]:
        """The momentum buffer b (or velocity V) of each parameter; None before its first update."""
        return [state.get("buffer") for state in self.state]

    @property
    def momentum(self) -> float:
        """μ for the next update, momentum(t), of the first group."""
        return self.options_at_t(self.param_groups[0])["momentum"]

    def update(
        self, param: Any, grad: Any, state: dict[str, Any], *,
        lr: float, momentum: float, dampening: float, nesterov: bool, weight_decay: float,
    ) -> None:
        """PyTorch's rule for one parameter: b ← μ b + (1 − dampening) g; W ← W − α (g + μ b or b)."""
        grad = with_weight_decay(grad, param, weight_decay)
        direction = grad
        if momentum != 0:
            if "buffer" not in state:  # first update: the buffer starts as the gradient itself
                state["buffer"] = grad.copy()
            else:
                state["buffer"] *= momentum
                state["buffer"] += (1.0 - dampening) * grad
            direction = grad + momentum * state["buffer"] if nesterov else state["buffer"]
        param.data -= lr * direction  # in place: every module holding W sees the change


class HeavyBallSGD(SGD):
    """The recitation's momentum, with the rate inside the velocity (Polyak's heavy ball; Keras's SGD).

    For each parameter W with gradient g, at update t:

        g ← g + λ W                           (weight_decay λ, coupled, as in :class:`SGD`)
        V ← β V + α_t g                       (V starts at 0; β = ``momentum``)
        W ← W − V                             (nesterov: W ← W − (β V + α_t g))

    Keras writes v ← μv − α g; W ← W + v: the same iterates with v = −V
    (Nesterov: W ← W + μv − α g), for weight_decay 0; Keras's own weight decay
    is decoupled (W ← W − α λ W after the step), not this coupled L2. At a
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

    def check(self, where: str, group: dict[str, Any]) -> None:
        super().check(where, group)
        if group["dampening"] != 0:
            checks.fail(where, "dampening", "0 (the heavy-ball form has no dampening)", group["dampening"])

    def update(
        self, param: Any, grad: Any, state: dict[str, Any], *,
        lr: float, momentum: float, dampening: float, nesterov: bool, weight_decay: float,
    ) -> None:
        """V ← β V + α g; W ← W − V (or W ← W − (β V + α g) with Nesterov)."""
        grad = with_weight_decay(grad, param, weight_decay)
        if momentum == 0:
            param.data -= lr * grad
            return
        if "buffer" not in state:  # V starts at 0, so the first V is α g
            state["buffer"] = lr * grad
        else:
            state["buffer"] *= momentum
            state["buffer"] += lr * grad
        param.data -= momentum * state["buffer"] + lr * grad if nesterov else state["buffer"]
