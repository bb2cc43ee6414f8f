"""Learning-rate schedules: ``lr = schedule(t)``, with ``t`` the number of updates done so far.

The convention (the same as PyTorch stepping its scheduler after every
``optimizer.step()``, and as Keras/optax's step counter): ``t`` counts
*completed* optimizer updates, so the first update uses ``schedule(0)``, the
second ``schedule(1)``, and so on. ``t`` may be

- an int (the optimizer's update counter),
- a float (fractional epochs: SGDR moves ``T_cur`` every mini-batch), or
- a NumPy array of times, for plotting: an array in gives an array out.

Every function below returns a :class:`Schedule`, a small object that holds one
formula ``f(t)`` and prints itself readably::

    >>> from minisgd import schedules
    >>> s = schedules.multistep(0.1, milestones=[30, 60, 90])   # x0.1 at 30, 60, 90
    >>> s
    multistep(lr=0.1, milestones=[30, 60, 90], gamma=0.1)
    >>> s(29), s(30), round(s(60), 12)
    (0.1, 0.010000000000000002, 0.001)

Any plain Python callable ``t -> lr`` is a schedule too (``optim.SGD`` takes
one, and so do :func:`warmup`, :func:`join` and :func:`per_epoch`).

The schedules, their formulas (in each function's docstring) and the library
schedule each one reproduces:

========================  ==============================================
``constant``              η₀
``step``                  PyTorch ``StepLR``
``multistep``             PyTorch ``MultiStepLR``
``exponential``           PyTorch ``ExponentialLR``
``linear``                PyTorch ``LinearLR`` (start_factor 1)
``polynomial``            PyTorch ``PolynomialLR``, Keras ``PolynomialDecay``
``inverse_time``          Keras ``InverseTimeDecay``
``inverse_sqrt``          the Transformer ("Noam") schedule, fairseq ``inverse_sqrt``
``cosine``                PyTorch ``CosineAnnealingLR`` on [0, T], then holds η_min
``sgdr``                  PyTorch ``CosineAnnealingWarmRestarts``, Keras ``CosineDecayRestarts``
``snapshot``              Huang et al.'s cyclic cosine (snapshot ensembles)
``cyclic``                PyTorch ``CyclicLR`` (Smith's CLR)
``one_cycle``             PyTorch ``OneCycleLR``
``warmup``, ``join``      linear warm-up; optax ``join_schedules``, PyTorch ``SequentialLR``
``per_epoch``             an epoch-defined schedule driven per mini-batch
========================  ==============================================

The stateful ``ReduceLROnPlateau`` (it reads a metric) lives in
:mod:`minisgd.plateau`; drawing schedules is ``minisgd.plots.plot_schedules``.

Schedules are host-side bookkeeping (one number per update), so this module
uses NumPy directly; it never touches tensor data.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from minisgd import checks

# Anything callable as lr = f(t): a Schedule, a ReduceLROnPlateau, or a plain function.
ScheduleLike = Callable[[Any], Any]


class Schedule:
    """A learning-rate schedule: ``lr = schedule(t)`` for an int, a float or an array ``t``.

    ``formula`` receives ``t`` as a float64 NumPy array (0-d for one number),
    already checked to be finite and >= 0, and returns ``f(t)`` with NumPy
    functions, so one formula serves one time and a whole array of times.

    ``momentum`` is ``None``, except for :func:`cyclic` and :func:`one_cycle`,
    where it is a second :class:`Schedule` that moves the momentum opposite to
    the learning rate (PyTorch's ``cycle_momentum``): pass it to the optimizer
    as ``SGD(params, lr=s, momentum=s.momentum)``.
    """

    def __init__(
        self,
        formula: Callable[[np.ndarray], Any],
        description: str,
        momentum: Schedule | None = None,
    ) -> None:
        self.formula = formula
        self.description = description
        self.momentum = momentum

    def __call__(self, t: Any) -> Any:
        times = _as_times(t)
        values = np.asarray(self.formula(times), dtype=np.float64)
        if times.ndim == 0:
            return float(values)
        return np.broadcast_to(values, times.shape).copy()

    def __repr__(self) -> str:
        return self.description


def evaluate(schedule: ScheduleLike, t: Any) -> Any:
    """``schedule(t)`` for a :class:`Schedule` or for any plain callable ``t -> lr``.

    A plain callable is called once per time (it need not understand arrays),
    with whole numbers passed as ``int``; one time gives a float, an array of
    times an array.
    """
    if isinstance(schedule, Schedule):
        return schedule(t)
    times = _as_times(t)
    values = [float(schedule(_plain_number(x))) for x in times.ravel()]
    if times.ndim == 0:
        return values[0]
    return np.array(values, dtype=np.float64).reshape(times.shape)


# --------------------------------------------------------------------- schedules
def constant(lr: float) -> Schedule:
    """The same rate at every update: f(t) = η₀ (``lr``)."""
    checks.number("constant", "lr", lr, low=0)
    return Schedule(lambda t: np.full_like(t, lr), f"constant(lr={lr!r})")


def step(lr: float, step_size: int, gamma: float = 0.1) -> Schedule:
    """Multiply the rate by γ every ``step_size`` updates (PyTorch ``StepLR``).

    f(t) = η₀ · γ^⌊t / s⌋, with η₀ = ``lr``, s = ``step_size``, γ = ``gamma``.
    """
    checks.number("step", "lr", lr, low=0)
    step_size = checks.integer("step", "step_size", step_size, low=1, whole_float=True)
    checks.number("step", "gamma", gamma, low=0, low_open=True)

    def formula(t):
        return lr * gamma ** np.floor_divide(t, step_size)

    return Schedule(formula, f"step(lr={lr!r}, step_size={step_size}, gamma={gamma!r})")


def multistep(lr: float, milestones: Sequence[float], gamma: float = 0.1) -> Schedule:
    """Multiply the rate by γ at each milestone (PyTorch ``MultiStepLR``).

    f(t) = η₀ · γ^k(t), where k(t) is the number of milestones m with m <= t.
    "×0.1 after epochs 30, 60 and 90" is ``milestones=[30, 60, 90]``: f(29) = η₀,
    f(30) = 0.1·η₀.
    """
    checks.number("multistep", "lr", lr, low=0)
    checks.number("multistep", "gamma", gamma, low=0, low_open=True)
    milestones = checks.increasing("multistep", "milestones", milestones)
    boundaries = np.array(milestones, dtype=np.float64)

    def formula(t):
        passed = np.searchsorted(boundaries, t, side="right")  # milestones m <= t
        return lr * gamma**passed

    return Schedule(formula, f"multistep(lr={lr!r}, milestones={milestones}, gamma={gamma!r})")


def exponential(lr: float, gamma: float) -> Schedule:
    """Multiply the rate by γ after every update (PyTorch ``ExponentialLR``).

    f(t) = η₀ · γ^t. (Keras and optax write η₀ · r^(t/T); that is γ = r^(1/T).)
    γ > 1 gives a growing rate, as the LR range test uses.
    """
    checks.number("exponential", "lr", lr, low=0)
    checks.number("exponential", "gamma", gamma, low=0, low_open=True)
    return Schedule(lambda t: lr * gamma**t, f"exponential(lr={lr!r}, gamma={gamma!r})")


def linear(lr: float, total_steps: int, end_lr: float = 0.0) -> Schedule:
    """Move the rate in a straight line from η₀ to η_end over T updates, then hold η_end.

    f(t) = η₀ + (η_end − η₀) · min(t, T) / T; with η_end = 0 this is the
    recitation's η₀ (1 − t/T). PyTorch ``LinearLR`` is the same line written
    as factors: start_factor = 1, end_factor = η_end / η₀, total_iters = T.
    """
    checks.number("linear", "lr", lr, low=0)
    total_steps = checks.integer("linear", "total_steps", total_steps, low=1, whole_float=True)
    checks.number("linear", "end_lr", end_lr, low=0)

    def formula(t):
        return lr + (end_lr - lr) * np.minimum(t, total_steps) / total_steps

    return Schedule(formula, f"linear(lr={lr!r}, total_steps={total_steps}, end_lr={end_lr!r})")


def polynomial(lr: float, total_steps: int, power: float = 1.0, end_lr: float = 0.0) -> Schedule:
    """Polynomial decay from η₀ to η_end over T updates, then hold η_end.

    f(t) = (η₀ − η_end) · (1 − min(t, T) / T)^p + η_end, with p = ``power``.
    PyTorch ``PolynomialLR`` (which has η_end = 0) and Keras ``PolynomialDecay``
    (without its ``cycle`` option).
    """
    checks.number("polynomial", "lr", lr, low=0)
    total_steps = checks.integer("polynomial", "total_steps", total_steps, low=1, whole_float=True)
    checks.number("polynomial", "power", power, low=0, low_open=True)
    checks.number("polynomial", "end_lr", end_lr, low=0)

    def formula(t):
        remaining = 1.0 - np.minimum(t, total_steps) / total_steps
        return (lr - end_lr) * remaining**power + end_lr

    return Schedule(
        formula,
        f"polynomial(lr={lr!r}, total_steps={total_steps}, power={power!r}, end_lr={end_lr!r})",
    )


def inverse_time(lr: float, decay_rate: float, decay_steps: int = 1, staircase: bool = False) -> Schedule:
    """Inverse-time decay (Keras ``InverseTimeDecay``).

    f(t) = η₀ / (1 + r · t / T), with r = ``decay_rate`` and T = ``decay_steps``;
    with ``staircase=True`` the quotient t / T is floored, so the rate changes
    only every T updates.
    """
    checks.number("inverse_time", "lr", lr, low=0)
    checks.number("inverse_time", "decay_rate", decay_rate, low=0)
    decay_steps = checks.integer("inverse_time", "decay_steps", decay_steps, low=1, whole_float=True)

    def formula(t):
        progress = np.floor_divide(t, decay_steps) if staircase else t / decay_steps
        return lr / (1.0 + decay_rate * progress)

    return Schedule(
        formula,
        f"inverse_time(lr={lr!r}, decay_rate={decay_rate!r}, decay_steps={decay_steps}, "
        f"staircase={staircase!r})",
    )


def inverse_sqrt(lr: float, warmup_steps: int) -> Schedule:
    """Linear warm-up over W updates, then decay as 1/√t (the Transformer's "Noam" schedule).

    f(t) = η₀ · t / W for t < W, and η₀ · √(W / t) for t >= W, so the peak
    f(W) = η₀. This is η₀ · min(t/W, √(W/t)): Noam's
    d_model^−½ · min(t^−½, t · W^−1.5) rescaled so that its peak is η₀, and
    fairseq's ``inverse_sqrt`` with its warm-up starting from 0. Like both, the
    first update (t = 0) uses lr 0; use ``lambda t: s(t + 1)`` to skip it.
    """
    checks.number("inverse_sqrt", "lr", lr, low=0)
    warmup_steps = checks.integer("inverse_sqrt", "warmup_steps", warmup_steps, low=1, whole_float=True)

    def formula(t):
        warming = lr * t / warmup_steps
        decaying = lr * np.sqrt(warmup_steps / np.maximum(t, warmup_steps))
        return np.where(t < warmup_steps, warming, decaying)

    return Schedule(formula, f"inverse_sqrt(lr={lr!r}, warmup_steps={warmup_steps})")


def cosine(lr: float, total_steps: int, min_lr: float = 0.0) -> Schedule:
    """Cosine annealing from η₀ down to η_min over T updates (PyTorch ``CosineAnnealingLR``).

    f(t) = η_min + ½ (η₀ − η_min) (1 + cos(π t / T))   for 0 <= t <= T,
    f(t) = η_min                                       for t > T.

    On [0, T] this is PyTorch's closed form. Past T, PyTorch's curve rises back
    towards η₀ (its formula has period 2T); minisgd holds η_min, as Keras
    ``CosineDecay`` and optax ``cosine_decay_schedule`` do. For restarts, use
    :func:`sgdr`.
    """
    checks.number("cosine", "lr", lr, low=0)
    total_steps = checks.integer("cosine", "total_steps", total_steps, low=1, whole_float=True)
    checks.number("cosine", "min_lr", min_lr, low=0, high=lr)

    def formula(t):
        t = np.minimum(t, total_steps)
        return min_lr + 0.5 * (lr - min_lr) * (1.0 + np.cos(np.pi * t / total_steps))

    return Schedule(formula, f"cosine(lr={lr!r}, total_steps={total_steps}, min_lr={min_lr!r})")


def sgdr(lr: float, t0: int, t_mult: int = 1, min_lr: float = 0.0, decay: float = 1.0) -> Schedule:
    """Cosine annealing with warm restarts, SGDR (Loshchilov & Hutter 2017).

    Cycle i (i = 0, 1, 2, …) lasts T_i = T₀ · T_mult^i updates and starts at
    t_i = T₀ (1 + T_mult + … + T_mult^(i−1)). Inside it, T_cur = t − t_i and

        f(t) = η_min + decay^i · ½ (η₀ − η_min) (1 + cos(π T_cur / T_i)).

    With ``decay = 1`` this is PyTorch ``CosineAnnealingWarmRestarts(T_0=t0,
    T_mult=t_mult, eta_min=min_lr)``. ``decay`` is Keras's ``m_mul``: it scales
    the height of cycle i above the floor by decay^i and leaves the floor η_min
    where it is, as Keras ``CosineDecayRestarts(lr, t0, t_mul=t_mult,
    m_mul=decay, alpha=min_lr/lr)`` does: Keras computes
    η₀ · ((1 − α) · ½ decay^i (1 + cos(π T_cur / T_i)) + α), which is f(t)
    with α = η_min / η₀ (for lr = 0 the floor is 0, as min_lr <= lr).

    The cycle i holding t is found with a loop over whole-number cycle starts,
    never with a floating logarithm: log-based code puts t = 121 (T₀ = 1,
    T_mult = 3, where cycle 5 begins) at the end of cycle 4 and returns η_min
    instead of η₀. ``t`` may be fractional (epochs, moved every mini-batch).
    """
    checks.number("sgdr", "lr", lr, low=0)
    t0 = checks.integer("sgdr", "t0", t0, low=1, whole_float=True)
    t_mult = checks.integer("sgdr", "t_mult", t_mult, low=1, whole_float=True)
    checks.number("sgdr", "min_lr", min_lr, low=0, high=lr)
    checks.number("sgdr", "decay", decay, low=0, low_open=True)

    def formula(t):
        cycle, t_cur, cycle_length = _restart_cycle(t, t0, t_mult)
        return min_lr + decay**cycle * 0.5 * (lr - min_lr) * (1.0 + np.cos(np.pi * t_cur / cycle_length))

    return Schedule(
        formula,
        f"sgdr(lr={lr!r}, t0={t0}, t_mult={t_mult}, min_lr={min_lr!r}, decay={decay!r})",
    )


def _replace_where(value: np.ndarray, mask: np.ndarray, schedule_of: Callable, t: np.ndarray) -> np.ndarray:
    """``value`` with ``schedule_of(t)`` put where ``mask`` holds, evaluated only at those times.

    (A wrapped schedule is never asked for a time outside its own stretch, so a
    plain function such as ``lambda t: rates[t]`` works inside ``join``.)
    """
    value = np.array(value, dtype=np.float64)  # a copy, 0-d for one time
    if np.any(mask):
        value[mask] = schedule_of(t[mask])
    return value


def _restart_cycle(t: np.ndarray, t0: int, t_mult: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each time t: the SGDR cycle index i, T_cur = t − t_i, and T_i = T₀ · T_mult^i.

    The cycle starts t_i and lengths T_i are whole numbers (exact in float64
    up to 2⁵³), so comparing ``t >= t_i + T_i`` is exact at every restart.
    """
    if t_mult == 1:  # equal cycles: i = ⌊t / T₀⌋
        cycle = np.floor_divide(t, t0)
        return cycle, t - cycle * t0, np.full_like(t, t0)
    cycle = np.zeros_like(t)
    start = np.zeros_like(t)
    length = np.full_like(t, t0)
    while True:  # one pass per cycle: about log_{T_mult}(t / T₀) passes
        past_this_cycle = t >= start + length
        if not np.any(past_this_cycle):
            return cycle, t - start, length
        cycle = np.where(past_this_cycle, cycle + 1, cycle)
        start = np.where(past_this_cycle, start + length, start)
        length = np.where(past_this_cycle, length * t_mult, length)


def snapshot(lr: float, total_steps: int, cycles: int) -> Schedule:
    """Huang et al.'s cyclic cosine for snapshot ensembles: M equal cosine cycles over T updates.

    The paper numbers iterations from 1: α(i) = (α₀/2) (cos(π · mod(i − 1, ⌈T/M⌉) / ⌈T/M⌉) + 1).
    minisgd's t counts updates from 0, so i = t + 1 and, with L = ⌈T/M⌉,

        f(t) = (η₀/2) (cos(π · mod(t, L) / L) + 1),

    which is ``sgdr(lr, t0=L)``; the schedule's ``.cycle_length`` holds L. A snapshot
    of the weights is taken at the end of each cycle, after updates t = L, 2L, …
    (see ``minisgd.ensemble``).
    """
    checks.number("snapshot", "lr", lr, low=0)
    total_steps = checks.integer("snapshot", "total_steps", total_steps, low=1, whole_float=True)
    cycles = checks.integer("snapshot", "cycles", cycles, low=1, whole_float=True)
    if cycles > total_steps:
        raise ValueError(
            f"snapshot: cycles must be in [1, total_steps={total_steps}]; got {cycles}"
        )
    cycle_length = -(-total_steps // cycles)  # ⌈T / M⌉ in integers

    def formula(t):
        return lr / 2 * (np.cos(np.pi * np.mod(t, cycle_length) / cycle_length) + 1.0)

    schedule = Schedule(formula, f"snapshot(lr={lr!r}, total_steps={total_steps}, cycles={cycles})")
    schedule.cycle_length = cycle_length
    return schedule


CYCLIC_MODES = ("triangular", "triangular2", "exp_range")


def cyclic(
    base_lr: float,
    max_lr: float,
    step_size: int,
    mode: str = "triangular",
    gamma: float = 1.0,
    base_momentum: float = 0.8,
    max_momentum: float = 0.9,
) -> Schedule:
    """Cyclical learning rates, CLR (Smith 2017; PyTorch ``CyclicLR`` with step_size_up = s).

    The rate climbs from η_b to η_M over s updates, falls back over s more, and repeats:

        c = ⌊1 + t / (2s)⌋                       (cycle number, from 1)
        x = |t / s − 2c + 1|                     (1 at the cycle's ends, 0 at its peak)
        f(t) = η_b + (η_M − η_b) · max(0, 1 − x) · scale

    with scale = 1 (``"triangular"``), 1 / 2^(c−1) (``"triangular2"``, the
    height halves every cycle) or γ^t (``"exp_range"``). The paper advises s of
    2–10 epochs' worth of updates.

    The returned schedule's ``.momentum`` moves the momentum the other way,
    μ(t) = μ_max − (μ_max − μ_base) · max(0, 1 − x) · scale (PyTorch's
    ``cycle_momentum``, defaults 0.8 and 0.9): ``SGD(params, lr=s, momentum=s.momentum)``.
    """
    checks.number("cyclic", "base_lr", base_lr, low=0)
    checks.number("cyclic", "max_lr", max_lr, low=0)
    if max_lr < base_lr:
        raise ValueError(f"cyclic: max_lr must be >= base_lr={base_lr!r}; got {max_lr!r}")
    step_size = checks.integer("cyclic", "step_size", step_size, low=1, whole_float=True)
    checks.choice("cyclic", "mode", mode, CYCLIC_MODES)
    checks.number("cyclic", "gamma", gamma, low=0, low_open=True)
    _check_momentum_range("cyclic", base_momentum, max_momentum)

    def height(t):
        """max(0, 1 − x) · scale: how far up the triangle the cycle is at t, in [0, 1]."""
        cycle = np.floor(1.0 + t / (2 * step_size))
        x = np.abs(t / step_size - 2.0 * cycle + 1.0)
        if mode == "triangular":
            scale = 1.0
        elif mode == "triangular2":
            scale = 1.0 / 2.0 ** (cycle - 1.0)
        else:  # "exp_range"
            with np.errstate(over="ignore"):
                scale = gamma**t  # may overflow to inf for gamma > 1; a height of 0 still gives 0, not NaN
        height = np.maximum(0.0, 1.0 - x)
        return np.where(height > 0, height * scale, 0.0)

    described = f"base_lr={base_lr!r}, max_lr={max_lr!r}, step_size={step_size}, mode={mode!r}" + (
        f", gamma={gamma!r}" if mode == "exp_range" else ""
    )
    momentum = Schedule(
        lambda t: max_momentum - (max_momentum - base_momentum) * height(t),
        f"cyclic({described}).momentum (from {max_momentum!r} down to {base_momentum!r})",
    )
    return Schedule(
        lambda t: base_lr + (max_lr - base_lr) * height(t), f"cyclic({described})", momentum
    )


ONE_CYCLE_ANNEALS = ("cos", "linear")


def one_cycle(
    max_lr: float,
    total_steps: int,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    anneal: str = "cos",
    three_phase: bool = False,
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
) -> Schedule:
    """The one-cycle policy (Smith; PyTorch ``OneCycleLR``): up to η_max, then far below the start.

    With N = ``total_steps``, p = ``pct_start``, η_start = η_max / div_factor and
    η_end = η_start / final_div_factor, the rate moves through phases, each from
    its start value to its end value as the fraction pct of the phase goes 0 → 1:

        two phases:    η_start → η_max over t in [0, pN − 1],  η_max → η_end up to t = N − 1
        three phases:  η_start → η_max up to pN − 1,  η_max → η_start up to 2pN − 2,
                       η_start → η_end up to N − 1

    A phase from a to b ending at e and starting where the previous one ended (s) gives
    pct = (t − s) / (e − s) and

        cos:     f = b + (a − b)/2 · (1 + cos(π · pct))
        linear:  f = a + (b − a) · pct

    Update N − 1 is the last; PyTorch raises if stepped further, minisgd holds
    η_end for t > N − 1. The schedule's ``.momentum`` moves μ_max → μ_base while
    the rate rises and back while it falls (the third phase holds μ_max):
    ``SGD(params, lr=s, momentum=s.momentum)`` is PyTorch's ``cycle_momentum``.
    """
    checks.number("one_cycle", "max_lr", max_lr, low=0)
    total_steps = checks.integer("one_cycle", "total_steps", total_steps, low=2, whole_float=True)
    pct_start = checks.number("one_cycle", "pct_start", pct_start, low=0, high=1, low_open=True, high_open=True)
    checks.number("one_cycle", "div_factor", div_factor, low=0, low_open=True)
    checks.number("one_cycle", "final_div_factor", final_div_factor, low=0, low_open=True)
    checks.choice("one_cycle", "anneal", anneal, ONE_CYCLE_ANNEALS)
    _check_momentum_range("one_cycle", base_momentum, max_momentum)

    start_lr = max_lr / div_factor
    end_lr = start_lr / final_div_factor
    rise_end = float(pct_start * total_steps) - 1  # the same float PyTorch computes
    if rise_end <= 0:
        raise ValueError(
            "one_cycle: pct_start * total_steps must be > 1, so that the warm-up lasts at "
            f"least one update; got pct_start={pct_start!r}, total_steps={total_steps}"
        )
    last = float(total_steps - 1)
    # Each phase: the last update it covers, and the (from, to) values of lr and momentum.
    if three_phase:
        fall_end = float(2 * pct_start * total_steps) - 2
        if fall_end >= last:
            raise ValueError(
                "one_cycle: with three_phase=True, pct_start must leave room for the third "
                f"phase (2 * pct_start * total_steps - 2 < total_steps - 1); got "
                f"pct_start={pct_start!r}, total_steps={total_steps}"
            )
        phases = [
            {"end": rise_end, "lr": (start_lr, max_lr), "momentum": (max_momentum, base_momentum)},
            {"end": fall_end, "lr": (max_lr, start_lr), "momentum": (base_momentum, max_momentum)},
            {"end": last, "lr": (start_lr, end_lr), "momentum": (max_momentum, max_momentum)},
        ]
    else:
        phases = [
            {"end": rise_end, "lr": (start_lr, max_lr), "momentum": (max_momentum, base_momentum)},
            {"end": last, "lr": (max_lr, end_lr), "momentum": (base_momentum, max_momentum)},
        ]

    def anneal_between(a, b, pct):
        if anneal == "cos":
            return b + (a - b) / 2.0 * (np.cos(np.pi * pct) + 1.0)
        return (b - a) * pct + a

    def piecewise(t, quantity):
        """``quantity`` ("lr" or "momentum") at t, from the phase that holds t."""
        t = np.minimum(t, last)  # hold the final value past the end
        phase_start = 0.0
        value = None
        for i, phase in enumerate(phases):
            a, b = phase[quantity]
            pct = (t - phase_start) / (phase["end"] - phase_start)
            here = anneal_between(a, b, pct)
            # A phase covers the updates after the previous phase's end, up to its own end.
            value = here if i == 0 else np.where(t > phase_start, here, value)
            phase_start = phase["end"]
        return value

    described = (
        f"one_cycle(max_lr={max_lr!r}, total_steps={total_steps}, pct_start={pct_start!r}, "
        f"div_factor={div_factor!r}, final_div_factor={final_div_factor!r}, anneal={anneal!r}"
        + (", three_phase=True)" if three_phase else ")")
    )
    momentum = Schedule(
        lambda t: piecewise(t, "momentum"),
        f"{described}.momentum (between {base_momentum!r} and {max_momentum!r})",
    )
    return Schedule(lambda t: piecewise(t, "lr"), described, momentum)


# ------------------------------------------------------------ combining schedules
def warmup(schedule: ScheduleLike, warmup_steps: int, start_lr: float = 0.0) -> Schedule:
    """Linear warm-up for W updates, then ``schedule`` shifted by W.

    f(t) = η_start + (g(0) − η_start) · t / W   for t < W,
    f(t) = g(t − W)                            for t >= W,

    where g is the wrapped schedule. ``warmup(cosine(...), W)`` and
    ``warmup(sgdr(...), W)`` are the usual pairings (PyTorch has no built-in
    warm-up followed by restarts).
    """
    warmup_steps = checks.integer("warmup", "warmup_steps", warmup_steps, low=0, whole_float=True)
    checks.number("warmup", "start_lr", start_lr, low=0)
    checks.schedule("warmup", "schedule", schedule)
    first_lr = evaluate(schedule, 0)

    def formula(t):
        value = start_lr + (first_lr - start_lr) * t / warmup_steps if warmup_steps else np.zeros_like(t)
        return _replace_where(value, t >= warmup_steps, lambda times: evaluate(schedule, times - warmup_steps), t)

    return Schedule(
        formula,
        f"warmup({_name(schedule)}, warmup_steps={warmup_steps}, start_lr={start_lr!r})",
    )


def join(schedules: Sequence[ScheduleLike], boundaries: Sequence[float]) -> Schedule:
    """Run schedules one after another, each restarted from its own t = 0 (optax ``join_schedules``).

    With boundaries b₁ < b₂ < … (in updates, counted from the start of the whole run):

        f(t) = g₀(t)          for t < b₁,
        f(t) = g_k(t − b_k)   for b_k <= t < b_{k+1}.

    PyTorch ``SequentialLR`` does the same with its ``milestones``.
    """
    schedules = list(schedules)
    if not schedules:
        raise ValueError("join: schedules must hold at least one schedule; got none")
    for schedule in schedules:
        checks.schedule("join", "schedules", schedule)
    boundaries = checks.increasing("join", "boundaries", boundaries)
    if len(boundaries) != len(schedules) - 1:
        raise ValueError(
            f"join: boundaries must hold len(schedules) - 1 = {len(schedules) - 1} numbers; "
            f"got {len(boundaries)}"
        )
    if boundaries and boundaries[0] <= 0:
        raise ValueError(f"join: boundaries must be > 0; got {boundaries}")

    def formula(t):
        value = np.zeros_like(t)
        starts, ends = [0] + boundaries, boundaries + [math.inf]
        for schedule, start, end in zip(schedules, starts, ends):
            in_charge = (t >= start) & (t < end)
            value = _replace_where(value, in_charge, lambda times: evaluate(schedule, times - start), t)
        return value

    names = ", ".join(_name(s) for s in schedules)
    return Schedule(formula, f"join([{names}], boundaries={boundaries})")


def per_epoch(schedule: ScheduleLike, steps_per_epoch: int, fractional: bool = False) -> Schedule:
    """Drive an epoch-defined schedule from the optimizer's per-update counter t.

    f(t) = g(⌊t / B⌋) by default: the rate changes once per epoch of B updates,
    as when PyTorch's scheduler is stepped once per epoch (``StepLR`` with
    step_size in epochs, ``MultiStepLR`` with milestones [30, 60, 90] in epochs).

    f(t) = g(t / B) with ``fractional=True``: the epoch count moves a little
    every mini-batch, as SGDR's T_cur does in the paper.
    """
    checks.schedule("per_epoch", "schedule", schedule)
    steps_per_epoch = checks.integer("per_epoch", "steps_per_epoch", steps_per_epoch, low=1, whole_float=True)

    def formula(t):
        epochs = t / steps_per_epoch if fractional else np.floor_divide(t, steps_per_epoch)
        return evaluate(schedule, epochs)

    return Schedule(
        formula,
        f"per_epoch({_name(schedule)}, steps_per_epoch={steps_per_epoch}, fractional={fractional!r})",
    )


# ------------------------------------------------------------------ checking
def _as_times(t: Any) -> np.ndarray:
    """``t`` as a float64 array (0-d for one number), checked to be finite and >= 0."""
    try:
        times = np.asarray(t, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"schedule: t must be a number or an array of numbers; got {t!r}") from None
    if not np.all(np.isfinite(times)) or np.any(times < 0):
        raise ValueError(f"schedule: t must be finite and >= 0 (updates done so far); got {t!r}")
    return times


def _plain_number(x: float) -> int | float:
    """A whole number as int, anything else as float (for plain Python schedules)."""
    x = float(x)
    return int(x) if x.is_integer() else x


def _name(schedule: ScheduleLike) -> str:
    """The repr of a schedule, or the name of a plain function."""
    if isinstance(schedule, Schedule) or hasattr(schedule, "state_dict"):  # a Schedule or a ReduceLROnPlateau
        return repr(schedule)
    return getattr(schedule, "__name__", repr(schedule))


def _check_momentum_range(where: str, base_momentum: Any, max_momentum: Any) -> None:
    """0 <= base_momentum <= max_momentum < 1 (the range cyclic and one_cycle move the momentum through)."""
    for name, value in (("base_momentum", base_momentum), ("max_momentum", max_momentum)):
        checks.number(where, name, value, low=0, high=1, high_open=True)
    if base_momentum > max_momentum:
        checks.fail(where, "base_momentum", f"<= max_momentum={max_momentum!r}", base_momentum)
