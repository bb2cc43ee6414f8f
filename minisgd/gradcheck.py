"""Gradient checking: the analytic gradient against central finite differences.

For a function f of inputs x₁ … xₖ with any output shape, draw a random
upstream gradient u of the output's shape and look at the scalar

    L(x) = Σ u ⊙ f(x).

Back-propagation gives ∂L/∂x analytically (``f(x).backward(u)``). The central
difference approximates each element independently:

    ∂L/∂xᵢ ≈ (L(x + ε eᵢ) − L(x − ε eᵢ)) / (2ε),

with an error of order ε² for smooth f. The two must agree element by element
within ``atol + rtol · |numeric|``. The upstream gradient is random (not all
ones) so that a backward that ignores the gradient it receives cannot pass.

Checks run in float64: in float32 the rounding error of L, about 1e-7 · |L|,
divided by 2ε swamps the difference.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from minisgd.backend import get_array_module, to_numpy
from minisgd.tensor import Tensor, no_grad


def gradcheck(
    fn: Callable[..., Tensor],
    *inputs: Tensor,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    seed: int = 0,
) -> bool:
    """Check ``fn``'s backward against central finite differences; return True or raise.

    ``inputs`` are float64 tensors; those with ``requires_grad=True`` are
    checked. Raises AssertionError naming the input, the worst element, the
    analytic and numeric values and their relative error.

    >>> import numpy as np, minisgd
    >>> x = minisgd.Tensor(np.array([0.5, -1.5, 2.0]), requires_grad=True)
    >>> minisgd.gradcheck(lambda v: v.tanh() * v, x)
    True
    """
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad; pass tensors with requires_grad=True")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise ValueError(
                f"gradcheck: input {i} has dtype {inputs[i].dtype}; finite differences need "
                "float64 inputs (rounding in float32 is larger than the differences)"
            )

    for i in checked:
        inputs[i].grad = None
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor; got {type(out).__name__}")
    xp = get_array_module(out.data)
    upstream = xp.asarray(np.random.default_rng(seed).standard_normal(out.shape))
    out.backward(upstream)

    def scalar_loss() -> float:
        with no_grad():
            return float((fn(*inputs).data * upstream).sum())

    for i in checked:
        x = inputs[i]
        analytic = np.zeros(x.shape) if x.grad is None else to_numpy(x.grad).astype(np.float64)
        numeric = np.zeros(x.shape)
        flat = x.data.reshape(-1)  # a view: perturbing it perturbs x.data
        for k in range(flat.size):
            original = float(flat[k])
            flat[k] = original + eps
            loss_plus = scalar_loss()
            flat[k] = original - eps
            loss_minus = scalar_loss()
            flat[k] = original
            numeric.flat[k] = (loss_plus - loss_minus) / (2 * eps)

        error = np.abs(analytic - numeric)
        allowed = atol + rtol * np.abs(numeric)
        if (error > allowed).any():
            worst = np.unravel_index(np.argmax(error - allowed), x.shape)
            relative = error[worst] / max(np.abs(numeric[worst]), 1e-12)
            raise AssertionError(
                f"gradcheck: input {i} (shape {x.shape}) gradient mismatch at index "
                f"{tuple(int(j) for j in worst)}: analytic {analytic[worst]:.10g}, numeric "
                f"{numeric[worst]:.10g}, relative error {relative:.3g} "
                f"(atol={atol}, rtol={rtol}); {int((error > allowed).sum())} of {x.size} elements differ"
            )
    return True
