"""Adaptive optimizers: a step size per weight, from running averages of the squared gradient.

SGD moves every weight by α times its gradient. These four divide by a running
root-mean-square of each weight's own past gradients, so a weight with large,
steady gradients takes smaller steps and a weight with rare, small ones larger
steps. In increasing order of machinery, each exactly as PyTorch computes it:

- :class:`Adagrad` (Duchi et al. 2011): divide by √(sum of all past g²);
- :class:`RMSprop` (Hinton's lecture 6e): by √(exponential average of g²);
- :class:`Adam` (Kingma & Ba 2015): RMSprop's denominator and a momentum-like
  average of g, both bias-corrected;
- :class:`AdamW` (Loshchilov & Hutter 2019): Adam with the weight decay taken
  out of the gradient and applied to W directly ("decoupled").

Notation (the code's names in brackets): g the gradient, W the weight, α the
rate ``lr`` at this update, λ ``weight_decay``, ε ``eps``, s ``sum``,
v ``square_avg``/``exp_avg_sq``, m ``grad_avg``/``exp_avg``, t the
parameter's own update count ``state["step"]`` (1 for its first update).
ε is added *outside* the square root in all four, as PyTorch does.
All state starts at zero (Adagrad's s at ``initial_accumulator_value``).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable

from minisgd import checks
from minisgd.backend import get_array_module
from minisgd.optim.optimizer import Optimizer, state_array, with_weight_decay


class Adagrad(Optimizer):
    """Adagrad, as ``torch.optim.Adagrad`` computes it.

    For each parameter W with gradient g, at its t-th update (t = 1, 2, …):

        g ← g + λ W                                   (coupled weight decay)
        clr = α / (1 + (t − 1) · lr_decay)
        s ← s + g²                                    (s starts at initial_accumulator_value)
        W ← W − clr · g / (√s + ε)

    ``state_dict`` stores s as ``"sum.{i}"`` and t as ``"step.{i}"``.
    """

    state_names = ("step", "sum")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | Callable[[int], float] = 0.01,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ) -> None:
        super().__init__(params, lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                         initial_accumulator_value=initial_accumulator_value, eps=eps)

    def check(self, where: str, group: dict[str, Any]) -> None:
        group["lr"] = checks.schedule_or_number(where, "lr", group["lr"])
        for name in ("lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            group[name] = checks.number(where, name, group[name], low=0)

    def update(
        self, param: Any, grad: Any, state: dict[str, Any], *,
        lr: float, lr_decay: float, weight_decay: float, initial_accumulator_value: float, eps: float,
    ) -> None:
        xp = get_array_module(param.data)
        grad = with_weight_decay(grad, param, weight_decay)
        state["step"] = t = state.get("step", 0) + 1
        clr = lr / (1 + (t - 1) * lr_decay)
        s = state_array(state, "sum", param, initial_accumulator_value)
        s += grad * grad
        param.data -= clr * grad / (xp.sqrt(s) + eps)


class RMSprop(Optimizer):
    """RMSprop, as ``torch.optim.RMSprop`` computes it.

    For each parameter W with gradient g, at every update (a = ``alpha``, μ = ``momentum``):

        g ← g + λ W                                   (coupled weight decay)
        v ← a v + (1 − a) g²
        centered:  m ← a m + (1 − a) g,  ṽ = v − m²   (the variance instead of the raw second moment)
        else:      ṽ = v
        μ > 0:     b ← μ b + g / (√ṽ + ε);  W ← W − α b
        μ = 0:     W ← W − α g / (√ṽ + ε)

    ``state_dict`` stores v, m and b as ``"square_avg.{i}"``, ``"grad_avg.{i}"``
    and ``"momentum_buffer.{i}"``.
    """

    state_names = ("square_avg", "grad_avg", "momentum_buffer")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | Callable[[int], float] = 0.01,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        super().__init__(params, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                         centered=centered)

    def check(self, where: str, group: dict[str, Any]) -> None:
        group["lr"] = checks.schedule_or_number(where, "lr", group["lr"])
        group["alpha"] = checks.number(where, "alpha", group["alpha"], low=0, high=1)
        for name in ("eps", "weight_decay", "momentum"):
            group[name] = checks.number(where, name, group[name], low=0)
        group["centered"] = bool(group["centered"])

    def update(
        self, param: Any, grad: Any, state: dict[str, Any], *,
        lr: float, alpha: float, eps: float, weight_decay: float, momentum: float, centered: bool,
    ) -> None:
        xp = get_array_module(param.data)
        grad = with_weight_decay(grad, param, weight_decay)
        v = state_array(state, "square_avg", param)
        v *= alpha
        v += (1 - alpha) * grad * grad
        if centered:
            m = state_array(state, "grad_avg", param)
            m *= alpha
            m += (1 - alpha) * grad
            denominator = xp.sqrt(v - m * m) + eps
        else:
            denominator = xp.sqrt(v) + eps
        if momentum > 0:
            b = state_array(state, "momentum_buffer", param)
            b *= momentum
            b += grad / denominator
            param.data -= lr * b
        else:
            param.data -= lr * grad / denominator


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` computes it.

    For each parameter W with gradient g, at its t-th update (t = 1, 2, …; β₁, β₂ = ``betas``):

        g ← g + λ W                                   (coupled weight decay; see AdamW for decoupled)
        m ← β₁ m + (1 − β₁) g                         (running mean of g)
        v ← β₂ v + (1 − β₂) g²                        (running mean of g²)
        amsgrad:   v_max ← max(v_max, v), and v_max replaces v below
        m̂ = m / (1 − β₁ᵗ),   v̂ = v / (1 − β₂ᵗ)        (bias corrections: m, v start at 0)
        W ← W − α m̂ / (√v̂ + ε)

    On the first update m̂ = g and v̂ = g², so W moves by α g / (|g| + ε):
    by −α · sign(g), up to ε, whatever the size of g.
    ``state_dict`` stores t, m, v and v_max as ``"step.{i}"``, ``"exp_avg.{i}"``,
    ``"exp_avg_sq.{i}"`` and ``"max_exp_avg_sq.{i}"``.
    """

    state_names = ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | Callable[[int], float] = 0.001,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)

    def check(self, where: str, group: dict[str, Any]) -> None:
        group["lr"] = checks.schedule_or_number(where, "lr", group["lr"])
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            checks.fail(where, "betas", "a pair (beta1, beta2), each in [0, 1)", betas)
        group["betas"] = tuple(checks.number(where, f"betas[{k}]", beta, low=0, high=1, high_open=True)
                               for k, beta in enumerate(betas))
        group["eps"] = checks.number(where, "eps", group["eps"], low=0)
        group["weight_decay"] = checks.number(where, "weight_decay", group["weight_decay"], low=0)
        group["amsgrad"] = bool(group["amsgrad"])

    def update(
        self, param: Any, grad: Any, state: dict[str, Any], *,
        lr: float, betas: tuple[float, float], eps: float, weight_decay: float, amsgrad: bool,
    ) -> None:
        beta1, beta2 = betas
        xp = get_array_module(param.data)
        grad = with_weight_decay(grad, param, weight_decay)
        state["step"] = t = state.get("step", 0) + 1
        m, v = state_array(state, "exp_avg", param), state_array(state, "exp_avg_sq", param)
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * grad * grad
        if amsgrad:
            v_max = state_array(state, "max_exp_avg_sq", param)
            xp.maximum(v_max, v, out=v_max)
            v = v_max
        step_size = lr / (1 - beta1**t)  # α / (1 − β₁ᵗ): m̂'s correction folded into the rate
        denominator = xp.sqrt(v) / math.sqrt(1 - beta2**t) + eps  # √v̂ + ε
        param.data -= step_size * m / denominator


class AdamW(Adam):
    """Adam with decoupled weight decay, as ``torch.optim.AdamW`` computes it.

    At each update, first shrink the weight, then take Adam's step with no λ in g:

        W ← W − α λ W                                 (decoupled: not part of g, so not rescaled by √v̂)
        W ← W − α m̂ / (√v̂ + ε)                       (Adam's update, with g the loss's gradient)

    With Adam's coupled decay, λW passes through the division by √v̂, so
    weights with large gradients are barely decayed; here every weight decays
    by the same factor 1 − αλ. The decay uses the current α, so a schedule scales it.
    The default weight_decay is 0.01, as in PyTorch.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | Callable[[int], float] = 0.001,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)

    def update(
        self, param: Any, grad: Any, state: dict[str, Any], *,
        lr: float, betas: tuple[float, float], eps: float, weight_decay: float, amsgrad: bool,
    ) -> None:
        param.data *= 1 - lr * weight_decay
        super().update(param, grad, state, lr=lr, betas=betas, eps=eps, weight_decay=0.0, amsgrad=amsgrad)
