"""Exercise ``adaptive``: one Adam update and one RMSprop update, as PyTorch computes them.

Answer key: ``optim.Adam`` and ``optim.RMSprop``, followed update by update for
100 updates on a quadratic, with a schedule feeding lr, and one case with a
large ε (where its place, inside or outside the square root, shows).
"""

from __future__ import annotations

import numpy as np

from minisgd import optim, schedules
from minisgd.exercises.grading import check_trajectory

LECTURES = ("06_choosing_hyperparameters", "09_flat_sharp_measured")

STUB = '''"""minisgd exercise: adaptive (follows lectures 06_choosing_hyperparameters and 09_flat_sharp_measured).

Write each function below, then grade your file with

    python -m minisgd exercise check adaptive

NumPy arrays in, NumPy arrays out (float64). Do not import minisgd here: you write it yourself.
Each function gets the state of the previous update (zeros before the first)
and returns the new weights and the new state.
"""

import numpy as np


def adam_step(w, m, v, grad, t, lr, beta1, beta2, eps):
    """One Adam update, as torch.optim.Adam computes it (no weight decay).

        m = β₁ m + (1 − β₁) g
        v = β₂ v + (1 − β₂) g²
        m̂ = m / (1 − β₁ᵗ),   v̂ = v / (1 − β₂ᵗ)
        w = w − lr · m̂ / (√v̂ + ε)        (ε outside the square root)

    t counts the updates from 1 (t = 1 for the first). Return (w_new, m_new, v_new).
    """
    raise NotImplementedError


def rmsprop_step(w, sq, grad, lr, alpha, eps):
    """One RMSprop update, as torch.optim.RMSprop computes it (no momentum, not centered):

        sq = α · sq + (1 − α) · g²
        w  = w − lr · g / (√sq + ε)       (ε outside the square root)

    Return (w_new, sq_new).
    """
    raise NotImplementedError
'''


def _adam(w, m, v, g, t, lr, b1, b2, eps, correct=True, eps_inside=False):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    m_hat, v_hat = (m / (1 - b1**t), v / (1 - b2**t)) if correct else (m, v)
    denominator = np.sqrt(v_hat + eps) if eps_inside else np.sqrt(v_hat) + eps
    return w - lr * m_hat / denominator, m, v


ADAM_CASES = (  # label, lr schedule, beta1, beta2, eps (a large ε first: its place shows at once)
    ("constant lr 0.01, betas (0.8, 0.99), eps 0.1", schedules.constant(0.01), 0.8, 0.99, 0.1),
    ("lr cosine(0.05, T=100), betas (0.9, 0.999), eps 1e-8", schedules.cosine(0.05, 100), 0.9, 0.999, 1e-8),
    ("lr step(0.1, step_size=30, gamma=0.3), betas (0.5, 0.9), eps 1e-6", schedules.step(0.1, 30, 0.3), 0.5, 0.9,
     1e-6),
)


# ------------------------------------------------------------------- checks
def check_adam_step(adam_step) -> None:
    rng = np.random.default_rng(13)
    known = (
        ("is m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ) missing? (the bias correction)",
         lambda w, m, v, g, t, lr, b1, b2, eps: _adam(w, m, v, g, t, lr, b1, b2, eps, correct=False)),
        ("the bias correction uses this update's t (is t held at 1?)",
         lambda w, m, v, g, t, lr, b1, b2, eps: _adam(w, m, v, g, 1, lr, b1, b2, eps)),
        ("t counts from 1: the first update has t = 1",
         lambda w, m, v, g, t, lr, b1, b2, eps: _adam(w, m, v, g, t + 1, lr, b1, b2, eps)),
        ("PyTorch adds ε outside the square root: √v̂ + ε",
         lambda w, m, v, g, t, lr, b1, b2, eps: _adam(w, m, v, g, t, lr, b1, b2, eps, eps_inside=True)),
        ("m and v average g and g² with weights β and (1 − β): m = β₁m + (1 − β₁)g",
         lambda w, m, v, g, t, lr, b1, b2, eps: _adam(w, m, v, g, t, lr, 1 - b1, 1 - b2, eps)),
    )
    for label, lr, beta1, beta2, eps in ADAM_CASES:
        check_trajectory(adam_step, lambda params, s, b=(beta1, beta2), eps=eps: optim.Adam(params, s, b, eps),
                         ("exp_avg", "exp_avg_sq"), ("w", "m", "v"),
                         lambda t, lr, b1=beta1, b2=beta2, eps=eps: (t + 1, lr, b1, b2, eps), lr, rng, label, known)


def _rmsprop(w, sq, g, lr, alpha, eps, eps_inside=False, one_minus=True):
    sq = alpha * sq + ((1 - alpha) if one_minus else 1.0) * g * g
    denominator = np.sqrt(sq + eps) if eps_inside else np.sqrt(sq) + eps
    return w - lr * g / denominator, sq


def check_rmsprop_step(rmsprop_step) -> None:
    rng = np.random.default_rng(14)
    known = (
        ("PyTorch adds ε outside the square root: √sq + ε",
         lambda w, sq, g, lr, a, eps: _rmsprop(w, sq, g, lr, a, eps, eps_inside=True)),
        ("sq = α·sq + (1 − α)·g²: the (1 − α) is missing",
         lambda w, sq, g, lr, a, eps: _rmsprop(w, sq, g, lr, a, eps, one_minus=False)),
        ("α weighs the old average: sq = α·sq + (1 − α)·g²",
         lambda w, sq, g, lr, a, eps: _rmsprop(w, sq, g, lr, 1 - a, eps)),
        ("divide by √sq + ε, not by sq + ε",
         lambda w, sq, g, lr, a, eps: (w - lr * g / (a * sq + (1 - a) * g * g + eps), a * sq + (1 - a) * g * g)),
    )
    for label, lr, alpha, eps in (("constant lr 0.005, alpha 0.9, eps 0.1", schedules.constant(0.005), 0.9, 0.1),
                                  ("lr cosine(0.01, T=100), alpha 0.99, eps 1e-8", schedules.cosine(0.01, 100),
                                   0.99, 1e-8)):
        check_trajectory(rmsprop_step, lambda params, s, a=alpha, eps=eps: optim.RMSprop(params, s, a, eps),
                         ("square_avg",), ("w", "sq"), lambda t, lr, a=alpha, eps=eps: (lr, a, eps), lr, rng,
                         label, known)


TASKS = (("adam_step", check_adam_step), ("rmsprop_step", check_rmsprop_step))
