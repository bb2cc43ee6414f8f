"""Exercise ``momentum``: the recitation's heavy ball, PyTorch's momentum, and PyTorch's Nesterov.

Answer key: ``optim.HeavyBallSGD`` and ``optim.SGD`` (``nesterov`` off and on),
followed update by update for 100 updates on a quadratic, at a constant rate
and with a schedule feeding lr: the two momentum forms give the same weights
while α is constant and differ once it changes.
"""

from __future__ import annotations

import numpy as np

from minisgd import optim, schedules
from minisgd.exercises.grading import check_trajectory

LECTURES = ("03_momentum",)

STUB = '''"""minisgd exercise: momentum (follows lecture 03_momentum).

Write each function below, then grade your file with

    python -m minisgd exercise check momentum

NumPy arrays in, NumPy arrays out (float64). Do not import minisgd here: you write it yourself.
Each function gets the state of the previous update (zeros before the first)
and returns the new weights and the new state.
"""

import numpy as np


def heavy_ball_step(w, v, grad, lr, beta):
    """One update of the recitation's momentum (Polyak's heavy ball), the rate inside the velocity:

        V = β V + α ∇
        W = W − V

    w, v, grad: arrays of one shape (v is the velocity, zeros before the first
    update); lr: α at this update; beta: β. Return (w_new, v_new).
    """
    raise NotImplementedError


def pytorch_momentum_step(w, buf, grad, lr, momentum):
    """One update of torch.optim.SGD with momentum μ (dampening 0, no weight decay):

        buf = μ · buf + g          (buf is zeros before the first update, so the first buf is g)
        w   = w − lr · buf

    Return (w_new, buf_new).
    """
    raise NotImplementedError


def nesterov_step(w, buf, grad, lr, momentum):
    """One update of torch.optim.SGD with nesterov=True (PyTorch's form of Nesterov momentum):

        buf = μ · buf + g
        w   = w − lr · (g + μ · buf)      (with the buf just updated)

    Return (w_new, buf_new).
    """
    raise NotImplementedError
'''

CASES = (  # (label, lr schedule, β): a constant rate first, then two schedules, where the momentum forms differ
    ("constant lr 0.05, beta 0.9", 0.05, 0.9),
    ("lr cosine(0.05, T=100), beta 0.9", schedules.cosine(0.05, 100), 0.9),
    ("lr step(0.08, step_size=25, gamma=0.5), beta 0.8", schedules.step(0.08, 25, 0.5), 0.8),
)


def _as_schedule(lr):
    return lr if callable(lr) else schedules.constant(lr)


# ------------------------------------------------------------------- checks
def check_heavy_ball_step(heavy_ball_step) -> None:
    rng = np.random.default_rng(3)
    known = (
        ("is α inside V? (V = βV + α∇, W = W − V)",
         lambda w, v, g, lr, beta: (w - lr * (beta * v + g), beta * v + g)),
        ("W = W − V: the step goes against the gradient",
         lambda w, v, g, lr, beta: (w + beta * v + lr * g, beta * v + lr * g)),
        ("there is no (1 − β) in V = βV + α∇",
         lambda w, v, g, lr, beta: (w - (beta * v + (1 - beta) * lr * g), beta * v + (1 - beta) * lr * g)),
        ("update V first, then move W by the new V",
         lambda w, v, g, lr, beta: (w - v, beta * v + lr * g)),
    )
    for label, lr, beta in CASES:
        check_trajectory(heavy_ball_step, lambda params, s, beta=beta: optim.HeavyBallSGD(params, s, momentum=beta),
                         ("buffer",), ("w", "v"), lambda t, lr, beta=beta: (lr, beta), _as_schedule(lr), rng,
                         label, known)


def check_pytorch_momentum_step(pytorch_momentum_step) -> None:
    rng = np.random.default_rng(4)
    known = (
        ("PyTorch keeps the rate out of the buffer: buf = μ·buf + g, w = w − lr·buf",
         lambda w, b, g, lr, mu: (w - (mu * b + lr * g), mu * b + lr * g)),
        ("PyTorch's dampening is 0: buf = μ·buf + g, with no (1 − μ)",
         lambda w, b, g, lr, mu: (w - lr * (mu * b + (1 - mu) * g), mu * b + (1 - mu) * g)),
        ("update buf first, then move w by lr times the new buf",
         lambda w, b, g, lr, mu: (w - lr * b, mu * b + g)),
    )
    for label, lr, mu in CASES:
        check_trajectory(pytorch_momentum_step, lambda params, s, mu=mu: optim.SGD(params, s, momentum=mu),
                         ("buffer",), ("w", "buf"), lambda t, lr, mu=mu: (lr, mu), _as_schedule(lr), rng,
                         label.replace("beta", "momentum"), known)


def check_nesterov_step(nesterov_step) -> None:
    rng = np.random.default_rng(5)
    known = (
        ("that is plain momentum (or g + μ·buf with the old buf): Nesterov moves w by lr·(g + μ·buf) "
         "with the buf just updated", lambda w, b, g, lr, mu: (w - lr * (mu * b + g), mu * b + g)),
        ("the step is lr·(g + μ·buf): the gradient term g is missing",
         lambda w, b, g, lr, mu: (w - lr * mu * (mu * b + g), mu * b + g)),
        ("PyTorch keeps the rate out of the buffer: buf = μ·buf + g",
         lambda w, b, g, lr, mu: (w - (mu * (mu * b + lr * g) + lr * g), mu * b + lr * g)),
    )
    for label, lr, mu in CASES:
        check_trajectory(nesterov_step, lambda params, s, mu=mu: optim.SGD(params, s, momentum=mu, nesterov=True),
                         ("buffer",), ("w", "buf"), lambda t, lr, mu=mu: (lr, mu), _as_schedule(lr), rng,
                         label.replace("beta", "momentum"), known)


TASKS = (
    ("heavy_ball_step", check_heavy_ball_step),
    ("pytorch_momentum_step", check_pytorch_momentum_step),
    ("nesterov_step", check_nesterov_step),
)
