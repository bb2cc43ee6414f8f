"""Exercise ``schedules``: step decay, cosine, linear, SGDR and warm-up + cosine as functions of t.

Answer key: :mod:`minisgd.schedules` (``step``, ``cosine``, ``linear``,
``sgdr``, ``warmup``), whose t counts the updates done (the first update uses
lr(0)). The boundaries come first in each case: t = 0, t = T, past T, and the
end and start of every SGDR cycle with T_mult = 1, 2 and 3 (up to t = 121,
where a floating-point logarithm misplaces a restart).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

from minisgd import schedules
from minisgd.exercises.grading import Fail, as_number, call, close, pair_text

LECTURES = ("04_lr_decay", "05_sgdr")

STUB = '''"""minisgd exercise: schedules (follows lectures 04_lr_decay and 05_sgdr).

Write each function below, then grade your file with

    python -m minisgd exercise check schedules

Each function returns the learning rate (a float) for update t, where t counts
the updates already done: the first update uses t = 0. Do not import minisgd
here: you write it yourself.
"""

import math


def step_decay(t, lr0, step_size, gamma):
    """Multiply the rate by gamma every step_size updates (PyTorch StepLR):

        lr(t) = lr0 · gamma^⌊t / step_size⌋
    """
    raise NotImplementedError


def cosine(t, lr0, T):
    """Cosine annealing from lr0 down to 0 over T updates, then hold 0:

        lr(t) = ½ · lr0 · (1 + cos(π t / T))   for 0 <= t <= T
        lr(t) = 0                              for t > T
    """
    raise NotImplementedError


def linear(t, lr0, T):
    """A straight line from lr0 down to 0 over T updates, then hold 0:

        lr(t) = lr0 · (1 − min(t, T) / T)
    """
    raise NotImplementedError


def sgdr(t, lr0, t0, t_mult):
    """Cosine annealing with warm restarts (SGDR; PyTorch CosineAnnealingWarmRestarts, eta_min 0).

    Cycle i = 0, 1, 2, … lasts T_i = t0 · t_mult^i updates and starts at
    t_i = t0 · (1 + t_mult + … + t_mult^(i−1)) (the sum of the earlier cycles' lengths).
    For t in cycle i, with T_cur = t − t_i:

        lr(t) = ½ · lr0 · (1 + cos(π T_cur / T_i))

    so lr = lr0 at every restart t_i. t0 and t_mult are whole numbers >= 1.
    """
    raise NotImplementedError


def warmup_cosine(t, lr0, warmup, T):
    """A linear warm-up over `warmup` updates, then cosine annealing over T more:

        lr(t) = lr0 · t / warmup          for t < warmup
        lr(t) = cosine(t − warmup, lr0, T) for t >= warmup

    (the cosine starts from its own t = 0 when the warm-up ends, and holds 0 after T).
    """
    raise NotImplementedError
'''


def check_curve(student: Callable, args: tuple, reference: Callable, times: Sequence[int], label: str,
                known: Sequence[tuple[str, Callable]] = (),
                features: Sequence[tuple[str, Callable[[dict], bool]]] = ()) -> None:
    """Compare ``student(t, *args)`` with ``reference(t)`` at every t in ``times`` (the boundaries first).

    On the first t that differs, fail with both values and the hint of the
    known mistake ``wrong(t, *args)`` that matches the student's whole curve,
    or else of the first ``feature(values)`` (``values`` maps t to the
    student's lr) that holds.
    """
    got = [as_number(call(student, t, *args), f"{label}: lr at t = {t}") for t in times]
    expected = [float(reference(t)) for t in times]
    for t, g, e in zip(times, got, expected):
        if close(g, e):
            continue
        got_text, expected_text = pair_text(g, e)
        message = f"{label}: lr at t = {t} is {got_text}, expected {expected_text}"
        for hint, wrong in known:
            try:
                if close(got, [wrong(time, *args) for time in times]):
                    raise Fail(f"{message}: {hint}")
            except (ArithmeticError, ValueError):
                continue
        values = dict(zip(times, got))
        for hint, feature in features:
            if feature(values):
                raise Fail(f"{message}: {hint}")
        raise Fail(message)


def _times(T: int, extra: Sequence[int] = ()) -> list[int]:
    """t = 0, T, past T and the given boundaries first, then every other t up to 2T."""
    first = [0, T, T + 1, 2 * T, *extra]
    return list(dict.fromkeys(first + list(range(2 * T + 1))))


# ------------------------------------------------------------------- checks
def check_step_decay(step_decay) -> None:
    for lr0, step_size, gamma in ((0.1, 10, 0.1), (0.5, 7, 0.5), (1.0, 1, 0.9)):
        times = list(dict.fromkeys([0, step_size - 1, step_size, 2 * step_size, *range(4 * step_size + 2)]))
        check_curve(step_decay, (lr0, step_size, gamma), schedules.step(lr0, step_size, gamma), times,
                    f"step_decay(lr0={lr0}, step_size={step_size}, gamma={gamma})", (
                        ("the rate drops in steps: gamma^⌊t / step_size⌋, not gamma^(t / step_size)",
                         lambda t, lr0, s, g: lr0 * g ** (t / s)),
                        ("the first drop comes at t = step_size: ⌊t / step_size⌋",
                         lambda t, lr0, s, g: lr0 * g ** ((t + 1) // s)),
                        ("the first drop comes at t = step_size: ⌊t / step_size⌋",
                         lambda t, lr0, s, g: lr0 * g ** max(0, (t - 1) // s)),
                    ))


def check_cosine(cosine) -> None:
    for lr0, T in ((0.1, 10), (0.05, 100), (1.0, 3)):
        check_curve(cosine, (lr0, T), schedules.cosine(lr0, T), _times(T, [T // 2]), f"cosine(lr0={lr0}, T={T})", (
            ("is the period T + 1?", lambda t, lr0, T: 0.5 * lr0 * (1 + math.cos(math.pi * min(t, T + 1) / (T + 1)))),
            ("is the period T − 1?", lambda t, lr0, T: 0.5 * lr0 * (1 + math.cos(math.pi * min(t, T - 1) / (T - 1)))),
            ("after T the rate stays at 0 (PyTorch's formula rises again past T)",
             lambda t, lr0, T: 0.5 * lr0 * (1 + math.cos(math.pi * t / T))),
            ("the cosine goes from 0 to π over T updates, not to 2π",
             lambda t, lr0, T: 0.5 * lr0 * (1 + math.cos(2 * math.pi * min(t, T) / T))),
            ("lr(t) = ½·lr0·(1 + cos(π t / T)): the ½ and the 1 + are needed",
             lambda t, lr0, T: lr0 * math.cos(math.pi * min(t, T) / T)),
        ))


def check_linear(linear) -> None:
    for lr0, T in ((0.1, 10), (0.3, 50), (1.0, 1)):
        check_curve(linear, (lr0, T), schedules.linear(lr0, T), _times(T), f"linear(lr0={lr0}, T={T})", (
            ("after T the rate stays at 0: use min(t, T)", lambda t, lr0, T: lr0 * (1 - t / T)),
            ("is the period T + 1?", lambda t, lr0, T: lr0 * (1 - min(t, T + 1) / (T + 1))),
            ("the first update uses lr(0) = lr0", lambda t, lr0, T: lr0 * max(0.0, 1 - (t + 1) / T)),
        ))


def _sgdr_with_a_logarithm(t, lr0, t0, t_mult):
    """The fragile SGDR: the cycle index from a floating-point logarithm (misplaces t = 121 for t0=1, t_mult=3)."""
    if t_mult == 1:
        i = t // t0
        return 0.5 * lr0 * (1 + math.cos(math.pi * (t - i * t0) / t0))
    i = math.floor(math.log(t / t0 * (t_mult - 1) + 1, t_mult))
    start = t0 * (t_mult**i - 1) / (t_mult - 1)
    return 0.5 * lr0 * (1 + math.cos(math.pi * (t - start) / (t0 * t_mult**i)))


def _sgdr_equal_cycles(t, lr0, t0, t_mult):
    return 0.5 * lr0 * (1 + math.cos(math.pi * (t % t0) / t0))


def _sgdr_restart_one_late(t, lr0, t0, t_mult):
    if t == 0:
        return lr0
    return float(schedules.sgdr(lr0, t0, t_mult)(t - 1))


def check_sgdr(sgdr) -> None:
    for lr0, t0, t_mult, end in ((0.1, 2, 3, 90), (0.1, 1, 2, 40), (0.2, 5, 1, 26), (1.0, 1, 3, 125)):
        starts, start, length = [], 0, t0
        while start <= end:
            starts.append(start)
            start, length = start + length, length * t_mult
        powers = [t0 * t_mult**i for i in range(1, 12) if t0 * t_mult**i <= end and t0 * t_mult**i not in starts]
        boundaries = [t for s in starts for t in (s - 1, s) if t >= 0]  # each cycle's last update and restart
        times = list(dict.fromkeys(boundaries + list(range(end + 1))))
        check_curve(sgdr, (lr0, t0, t_mult), schedules.sgdr(lr0, t0, t_mult), times,
                    f"sgdr(lr0={lr0}, t0={t0}, t_mult={t_mult}; restarts at {starts[1:]})", (
                        ("a floating-point logarithm put the restart at t = 121 at the end of the previous cycle: "
                         "find the cycle by adding whole cycle lengths", _sgdr_with_a_logarithm),
                        ("cycle i lasts t0·t_mult^i updates: the cycles grow", _sgdr_equal_cycles),
                        ("the restart is at t = t_i itself: lr(t_i) = lr0", _sgdr_restart_one_late),
                    ), features=(
                        ("a cycle restarts after the sum of the earlier cycles' lengths, "
                         "t0·(1 + t_mult + … + t_mult^(i−1)), not at t0·t_mult^i",
                         lambda values, powers=powers, lr0=lr0: bool(powers) and all(
                             close(values[p], lr0) for p in powers)),
                    ))


def check_warmup_cosine(warmup_cosine) -> None:
    for lr0, warmup, T in ((0.1, 5, 20), (0.4, 1, 10), (0.05, 10, 30)):
        reference = schedules.warmup(schedules.cosine(lr0, T), warmup)

        def early_peak(t, lr0, warmup, T):
            return lr0 * (t + 1) / warmup if t < warmup else float(schedules.cosine(lr0, T)(t - warmup))

        def cosine_over_whole_run(t, lr0, warmup, T):
            return lr0 * t / warmup if t < warmup else float(schedules.cosine(lr0, T)(t))

        times = list(dict.fromkeys([0, warmup - 1, warmup, warmup + T, warmup + T + 1, *range(warmup + T + 5)]))
        check_curve(warmup_cosine, (lr0, warmup, T), reference, times,
                    f"warmup_cosine(lr0={lr0}, warmup={warmup}, T={T})", (
                        ("after the warm-up the cosine starts from its own t = 0: cosine(t − warmup)",
                         cosine_over_whole_run),
                        ("the warm-up starts at 0 at t = 0 and reaches lr0 at t = warmup: lr0·t / warmup",
                         early_peak),
                    ))


TASKS = (
    ("step_decay", check_step_decay),
    ("cosine", check_cosine),
    ("linear", check_linear),
    ("sgdr", check_sgdr),
    ("warmup_cosine", check_warmup_cosine),
)
