"""Every learning-rate schedule against its closed form, written again here from the papers.

The reference formulas below are independent of ``minisgd/schedules.py``:
plain Python ``math`` on one integer or float t, the way the papers and
PyTorch's ``_get_closed_form_lr`` write them. Each schedule is checked at
t = 0, at b − 1, b and b + 1 for every boundary (milestone, restart, phase
end), mid-cycle, at the last step and past it, and on an array of all those
times at once. Where PyTorch is installed, the real ``torch.optim.lr_scheduler``
classes are stepped after every optimizer step and must give the same rates.
"""

import math
import warnings

import numpy as np
import pytest

from minisgd import schedules
from minisgd.plateau import ReduceLROnPlateau
from minisgd.plots import plot_schedules

REL = 1e-12  # closed forms agree to rounding


def around(*points):
    """b − 1, b and b + 1 for every boundary b (those >= 0), sorted, without repeats."""
    return sorted({t for b in points for t in (b - 1, b, b + 1) if t >= 0})


def check(schedule, reference, times):
    """schedule(t) == reference(t) at each time, one by one and as one array."""
    for t in times:
        assert schedule(t) == pytest.approx(reference(t), rel=REL, abs=1e-15), f"t={t}"
        assert isinstance(schedule(t), float)
    values = schedule(np.array(times, dtype=float))
    assert isinstance(values, np.ndarray) and values.shape == (len(times),)
    np.testing.assert_allclose(values, [reference(t) for t in times], rtol=REL, atol=1e-15)


# ------------------------------------------------------------ simple decays
def test_constant():
    check(schedules.constant(0.05), lambda t: 0.05, [0, 1, 7.5, 1000])
    grid = schedules.constant(0.05)(np.zeros((2, 3)))
    assert grid.shape == (2, 3) and np.all(grid == 0.05)


def test_step():
    # lr · γ^⌊t/s⌋ with s = 30: boundaries 30, 60, 90.
    s = schedules.step(0.1, step_size=30, gamma=0.5)
    check(s, lambda t: 0.1 * 0.5 ** (t // 30), [0, 15] + around(30, 60, 90) + [500])
    assert s(29) == 0.1 and s(30) == 0.05 and s(59.5) == 0.05


def test_multistep_recitation_example():
    # "×0.1 after epochs 30, 60 and 90".
    s = schedules.multistep(0.1, milestones=[30, 60, 90])
    expected = {0: 0.1, 29: 0.1, 30: 0.01, 31: 0.01, 59: 0.01, 60: 0.001, 89: 0.001, 90: 1e-4, 200: 1e-4}
    for t, lr in expected.items():
        assert s(t) == pytest.approx(lr, rel=REL), f"t={t}"

    def reference(t):
        passed = sum(1 for m in (30, 60, 90) if m <= t)
        return 0.1 * 0.1**passed

    check(s, reference, around(30, 60, 90) + [45, 1000])


def test_multistep_uneven_milestones_and_fractional_time():
    s = schedules.multistep(2.0, milestones=[1, 5, 6], gamma=0.5)
    check(s, lambda t: 2.0 * 0.5 ** sum(m <= t for m in (1, 5, 6)), around(1, 5, 6) + [0.5, 5.99, 6.0])


def test_exponential():
    s = schedules.exponential(0.3, gamma=0.9)
    check(s, lambda t: 0.3 * 0.9**t, [0, 1, 2, 10, 55, 2.5])
    assert schedules.exponential(1e-3, gamma=10.0)(3) == pytest.approx(1.0, rel=REL)  # growth


def test_linear_recitation_example():
    # The slide's η₀ (1 − t/T), then 0 past T.
    s = schedules.linear(0.4, total_steps=100)
    check(s, lambda t: 0.4 * (1 - min(t, 100) / 100), [0, 1, 25, 50] + around(100) + [150])
    assert s(50) == pytest.approx(0.2, rel=REL) and s(100) == 0.0 and s(1e6) == 0.0


def test_linear_to_an_end_value_and_upwards():
    s = schedules.linear(0.1, total_steps=8, end_lr=0.02)
    check(s, lambda t: 0.1 + (0.02 - 0.1) * min(t, 8) / 8, [0, 4] + around(8) + [3.5])
    up = schedules.linear(0.0, total_steps=4, end_lr=1.0)
    assert [up(t) for t in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]


def test_polynomial():
    for power in (1.0, 2.0, 0.5):
        s = schedules.polynomial(0.2, total_steps=50, power=power, end_lr=0.01)
        check(
            s,
            lambda t: (0.2 - 0.01) * (1 - min(t, 50) / 50) ** power + 0.01,
            [0, 25, 12.5] + around(50) + [99],
        )
    assert schedules.polynomial(1.0, 10, power=2.0)(5) == pytest.approx(0.25, rel=REL)


def test_inverse_time():
    s = schedules.inverse_time(1.0, decay_rate=0.5, decay_steps=10)
    check(s, lambda t: 1.0 / (1 + 0.5 * t / 10), [0, 5, 9, 10, 11, 20, 1000, 2.5])
    assert s(20) == pytest.approx(0.5, rel=REL)
    stairs = schedules.inverse_time(1.0, decay_rate=0.5, decay_steps=10, staircase=True)
    check(stairs, lambda t: 1.0 / (1 + 0.5 * (t // 10)), around(10, 20) + [0, 5.5])
    assert stairs(19) == pytest.approx(1 / 1.5, rel=REL) and stairs(20) == pytest.approx(0.5, rel=REL)


def test_inverse_sqrt_is_noam_rescaled():
    # Noam: d^-½ · min(t^-½, t · W^-1.5); rescaled by √W·d^½ so that the peak at t = W is η₀.
    lr, w = 0.01, 16

    def noam(t):
        return 0.0 if t == 0 else lr * math.sqrt(w) * min(t**-0.5, t * w**-1.5)

    s = schedules.inverse_sqrt(lr, warmup_steps=w)
    check(s, noam, [0, 1, 8] + around(w) + [64, 400, 7.5])
    assert s(0) == 0.0 and s(w) == pytest.approx(lr, rel=REL) and s(4 * w) == pytest.approx(lr / 2, rel=REL)


def test_cosine_recitation_example_and_past_the_end():
    lr, low, T = 0.1, 0.001, 100
    s = schedules.cosine(lr, total_steps=T, min_lr=low)

    def reference(t):
        return low + 0.5 * (lr - low) * (1 + math.cos(math.pi * min(t, T) / T))

    check(s, reference, [0, 1, 25, 50, 33.3] + around(T) + [150, 250])
    assert s(0) == pytest.approx(lr, rel=REL)
    assert s(50) == pytest.approx((lr + low) / 2, rel=REL)
    assert s(T) == pytest.approx(low, rel=REL)
    assert s(150) == s(2 * T) == pytest.approx(low, rel=REL)  # holds η_min (Keras/optax), no rise


# ------------------------------------------------------------------- SGDR
def sgdr_reference(t, lr, t0, t_mult, low=0.0, decay=1.0):
    """Loshchilov & Hutter: walk the cycles by their whole-number lengths T₀·T_mult^i."""
    start, length, cycle = 0, t0, 0
    while t >= start + length:
        start, length, cycle = start + length, length * t_mult, cycle + 1
    t_cur = t - start
    return low + decay**cycle * 0.5 * (lr - low) * (1 + math.cos(math.pi * t_cur / length))


def restart_points(t0, t_mult, count):
    """0, T₀, T₀ + T₀·T_mult, …: where each cycle begins."""
    points, start, length = [0], 0, t0
    for _ in range(count):
        start, length = start + length, length * t_mult
        points.append(start)
    return points


@pytest.mark.parametrize(
    "t0, t_mult, restarts",
    [(10, 1, [0, 10, 20, 30, 40, 50]), (10, 2, [0, 10, 30, 70, 150, 310]), (3, 3, [0, 3, 12, 39, 120, 363])],
)
def test_sgdr_across_several_restarts(t0, t_mult, restarts):
    assert restart_points(t0, t_mult, 5) == restarts
    lr, low = 0.05, 0.0005
    s = schedules.sgdr(lr, t0=t0, t_mult=t_mult, min_lr=low)
    mids = [a + (b - a) // 2 for a, b in zip(restarts, restarts[1:])]
    check(s, lambda t: sgdr_reference(t, lr, t0, t_mult, low), around(*restarts) + mids)
    for start in restarts:  # every restart is back at the peak, exactly
        assert s(start) == lr
    for a, b in zip(restarts, restarts[1:]):  # and every cycle's midpoint is halfway
        if (b - a) % 2 == 0:
            assert s(a + (b - a) // 2) == pytest.approx((lr + low) / 2, rel=REL)


def test_sgdr_exact_at_restarts_where_a_floating_log_fails():
    # T₀ = 1, T_mult = 3: cycles start at 0, 1, 4, 13, 40, 121, 364, 1093.
    # log₃(121·2 + 1) = log₃ 243 = 4.999… in floating point: log-based code lands
    # t = 121 at the end of cycle 4 (η_min) instead of the start of cycle 5 (η₀).
    assert math.floor(math.log(121 / 1 * (3 - 1) + 1, 3)) == 4  # the trap is real
    s = schedules.sgdr(1.0, t0=1, t_mult=3)
    for start in restart_points(1, 3, 7):
        assert s(start) == 1.0, f"t={start}"
    assert s(121) == 1.0 and s(120) == pytest.approx(sgdr_reference(120, 1.0, 1, 3), rel=REL)
    restarts = restart_points(1, 3, 7)
    np.testing.assert_array_equal(s(np.array(restarts, dtype=float)), np.ones(len(restarts)))
    for t_mult in (2, 4, 5):  # the same for other integer multipliers, far out
        s = schedules.sgdr(0.3, t0=1, t_mult=t_mult)
        for start in restart_points(1, t_mult, 12):
            assert s(start) == 0.3, f"t_mult={t_mult}, t={start}"


def test_sgdr_fractional_epochs():
    s = schedules.sgdr(0.1, t0=10, t_mult=2, min_lr=0.0)
    # t = 12.5 is 2.5 epochs into the second cycle (length 20).
    assert s(12.5) == pytest.approx(0.05 * (1 + math.cos(math.pi * 2.5 / 20)), rel=REL)
    check(s, lambda t: sgdr_reference(t, 0.1, 10, 2), [0.25, 9.99, 10.0, 10.01, 29.5, 30.0, 69.9, 70.5])


def keras_cosine_decay_restarts(step, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0):
    """Keras ``CosineDecayRestarts.__call__``, written out in float64 from its source (floating logarithm and all)."""
    completed_fraction = step / first_decay_steps
    if t_mul == 1.0:
        i_restart = math.floor(completed_fraction)
        completed_fraction -= i_restart
    else:
        i_restart = math.floor(math.log(1.0 - completed_fraction * (1.0 - t_mul)) / math.log(t_mul))
        sum_r = (1.0 - t_mul**i_restart) / (1.0 - t_mul)
        completed_fraction = (completed_fraction - sum_r) / t_mul**i_restart
    m_fac = m_mul**i_restart
    cosine_decayed = 0.5 * m_fac * (1.0 + math.cos(math.pi * completed_fraction))
    decayed = (1 - alpha) * cosine_decayed + alpha
    return initial_learning_rate * decayed


@pytest.mark.parametrize("lr, low, decay, t0, t_mult", [(0.1, 0.01, 0.5, 5, 2), (1.0, 0.1, 0.9, 1000, 2),
                                                         (0.3, 0.05, 0.7, 4, 1), (0.2, 0.0, 0.8, 3, 3)])
def test_sgdr_with_decay_and_min_lr_is_keras_cosine_decay_restarts(lr, low, decay, t0, t_mult):
    s = schedules.sgdr(lr, t0=t0, t_mult=t_mult, min_lr=low, decay=decay)

    def keras(t):
        return keras_cosine_decay_restarts(t, lr, t0, t_mul=float(t_mult), m_mul=decay, alpha=low / lr)

    starts = restart_points(t0, t_mult, 4)
    times = [start + offset for start in starts for offset in (1, 2)] + [s_ - 1 for s_ in starts[1:]]
    check(s, keras, times + [0])


def test_sgdr_at_step_7000_is_kerass_0_7561_not_0_729():
    # The external check's example: lr 1, first cycle 1000 updates, t_mul 2, m_mul 0.9, alpha 0.1. Update
    # 7000 starts cycle 3 (cycles begin at 0, 1000, 3000, 7000), so Keras gives 0.9³ · (1 − 0.1) + 0.1 = 0.7561;
    # scaling the floor too would give 0.9³ · 1 = 0.729.
    keras = keras_cosine_decay_restarts(7000, 1.0, 1000, t_mul=2.0, m_mul=0.9, alpha=0.1)
    assert keras == pytest.approx(0.7561, rel=1e-12)
    assert schedules.sgdr(1.0, t0=1000, t_mult=2, min_lr=0.1, decay=0.9)(7000) == pytest.approx(keras, rel=1e-12)


# --------------------------------------------------------------- snapshot
@pytest.mark.parametrize("total, cycles", [(100, 4), (100, 3), (7, 7), (10, 1)])
def test_snapshot_matches_huang_et_al(total, cycles):
    # Huang et al. 2017, iterations numbered from 1: α(i) = α₀/2 (cos(π·mod(i−1, ⌈T/M⌉)/⌈T/M⌉) + 1).
    # minisgd's update t is the paper's iteration i = t + 1.
    lr = 0.2
    period = math.ceil(total / cycles)

    def huang(t):
        i = t + 1
        return lr / 2 * (math.cos(math.pi * ((i - 1) % period) / period) + 1)

    s = schedules.snapshot(lr, total_steps=total, cycles=cycles)
    ends = [k * period for k in range(1, cycles + 1)]
    check(s, huang, sorted(set([0, period // 2, total - 1] + around(*ends))))
    assert s.cycle_length == period
    for end in ends:  # peak right after each cycle ends
        assert s(end) == lr
    same = schedules.sgdr(lr, t0=period)
    times = np.arange(0, 2 * total, dtype=float)
    np.testing.assert_allclose(s(times), same(times), rtol=REL)


# ----------------------------------------------------------------- cyclic
def clr_reference(t, base, top, size, mode, gamma=1.0):
    """PyTorch CyclicLR's closed form (a different but equal way to write Smith's triangle)."""
    total = 2 * size
    cycle = math.floor(1 + t / total)
    x = 1.0 + t / total - cycle
    factor = x / 0.5 if x <= 0.5 else (x - 1) / (0.5 - 1)
    scale = {"triangular": 1.0, "triangular2": 1 / 2.0 ** (cycle - 1), "exp_range": gamma**t}[mode]
    return base + (top - base) * factor * scale, factor * scale


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_cyclic_triangles(mode):
    base, top, size, gamma = 0.01, 0.1, 5, 0.97
    s = schedules.cyclic(base, top, step_size=size, mode=mode, gamma=gamma)
    corners = [0, 5, 10, 15, 20, 25, 30]
    check(s, lambda t: clr_reference(t, base, top, size, mode, gamma)[0], around(*corners) + [2.5, 12.25])
    check(
        s.momentum,
        lambda t: 0.9 - (0.9 - 0.8) * clr_reference(t, base, top, size, mode, gamma)[1],
        around(*corners) + [2.5],
    )
    assert s(0) == base and s.momentum(0) == 0.9
    if mode == "triangular":
        assert s(5) == pytest.approx(top, rel=REL) and s(10) == base and s(15) == pytest.approx(top, rel=REL)
        assert s.momentum(5) == pytest.approx(0.8, rel=REL)
    if mode == "triangular2":
        assert s(15) == pytest.approx(base + (top - base) / 2, rel=REL)  # the second peak is half as tall
        assert s(25) == pytest.approx(base + (top - base) / 4, rel=REL)


# -------------------------------------------------------------- one cycle
def one_cycle_reference(t, top, total, pct=0.3, div=25.0, final_div=1e4, anneal="cos", three=False):
    """PyTorch OneCycleLR's phases (start, end lr per phase; a phase starts where the last ended)."""
    start_lr, end_lr = top / div, top / div / final_div
    if three:
        phases = [(pct * total - 1, start_lr, top), (2 * pct * total - 2, top, start_lr), (total - 1, start_lr, end_lr)]
    else:
        phases = [(pct * total - 1, start_lr, top), (total - 1, top, end_lr)]
    begin = 0.0
    for k, (end, a, b) in enumerate(phases):
        if t <= end or k == len(phases) - 1:
            frac = (t - begin) / (end - begin)
            if anneal == "cos":
                return b + (a - b) / 2 * (math.cos(math.pi * frac) + 1)
            return a + (b - a) * frac
        begin = end


@pytest.mark.parametrize("anneal", ["cos", "linear"])
@pytest.mark.parametrize("three_phase", [False, True])
def test_one_cycle_against_pytorch_closed_form(anneal, three_phase):
    top, total = 0.5, 200
    s = schedules.one_cycle(top, total_steps=total, pct_start=0.25, anneal=anneal, three_phase=three_phase)
    ends = [49, 98, 199] if three_phase else [49, 199]
    times = sorted(set([0, 20, 120, 150.5] + [t for t in around(*ends) if t <= total - 1]))
    check(s, lambda t: one_cycle_reference(t, top, total, 0.25, anneal=anneal, three=three_phase), times)
    assert s(0) == pytest.approx(top / 25, rel=REL)
    assert s(49) == pytest.approx(top, rel=REL)
    assert s(total - 1) == pytest.approx(top / 25 / 1e4, rel=REL)
    assert s(total) == s(total + 100) == s(total - 1)  # held past the end
    if three_phase:
        assert s(98) == pytest.approx(top / 25, rel=REL)


def test_one_cycle_momentum_moves_opposite():
    s = schedules.one_cycle(1.0, total_steps=100, pct_start=0.3)
    # Momentum: 0.95 → 0.85 while lr rises (to t = 29), then 0.85 → 0.95.
    assert s.momentum(0) == pytest.approx(0.95, rel=REL)
    assert s.momentum(29) == pytest.approx(0.85, rel=REL)
    assert s.momentum(99) == pytest.approx(0.95, rel=REL)
    mid = 0.85 + (0.95 - 0.85) / 2 * (math.cos(math.pi * 14.5 / 29) + 1)
    assert s.momentum(14.5) == pytest.approx(mid, rel=REL)
    times = np.arange(100.0)
    lr, mom = s(times), s.momentum(times)
    assert np.all(np.sign(np.diff(lr)) == -np.sign(np.diff(mom)))


# ------------------------------------------------------ combining schedules
def test_warmup_then_cosine():
    w, lr, T = 10, 0.1, 90
    s = schedules.warmup(schedules.cosine(lr, total_steps=T), warmup_steps=w, start_lr=0.001)

    def reference(t):
        if t < w:
            return 0.001 + (lr - 0.001) * t / w
        return 0.5 * lr * (1 + math.cos(math.pi * min(t - w, T) / T))

    check(s, reference, [0, 5, 4.5] + around(w, w + T) + [55, 500])
    assert s(w) == pytest.approx(lr, rel=REL)


def test_warmup_then_sgdr_and_plain_callables():
    s = schedules.warmup(schedules.sgdr(0.2, t0=4, t_mult=2), warmup_steps=3)
    check(s, lambda t: 0.2 * t / 3 if t < 3 else sgdr_reference(t - 3, 0.2, 4, 2), around(3, 7, 15, 31))
    plain = schedules.warmup(lambda t: 0.5 * 0.9**t, warmup_steps=4)
    check(plain, lambda t: 0.5 * t / 4 if t < 4 else 0.5 * 0.9 ** (t - 4), around(4) + [0, 10])
    assert schedules.warmup(schedules.constant(0.3), warmup_steps=0)(0) == 0.3


def test_join_restarts_each_schedule_at_its_boundary():
    parts = [schedules.linear(0.0, 5, end_lr=0.1), schedules.constant(0.1), schedules.exponential(0.1, 0.5)]
    s = schedules.join(parts, boundaries=[5, 12])

    def reference(t):
        if t < 5:
            return 0.1 * t / 5
        if t < 12:
            return 0.1
        return 0.1 * 0.5 ** (t - 12)

    check(s, reference, around(5, 12) + [0, 2.5, 20])
    list_lookup = [0.3, 0.2, 0.1]  # a plain callable that needs an int t
    indexed = schedules.join([lambda t: list_lookup[t], schedules.constant(0.05)], boundaries=[3])
    assert [indexed(t) for t in range(5)] == [0.3, 0.2, 0.1, 0.05, 0.05]
    np.testing.assert_allclose(indexed(np.arange(5.0)), [0.3, 0.2, 0.1, 0.05, 0.05])


def test_per_epoch_floor_and_fractional():
    by_epoch = schedules.multistep(0.1, milestones=[2, 4])  # milestones in epochs
    per_step = schedules.per_epoch(by_epoch, steps_per_epoch=10)
    check(per_step, lambda t: 0.1 * 0.1 ** sum(m * 10 <= t for m in (2, 4)), around(20, 40) + [0, 5])
    smooth = schedules.per_epoch(schedules.sgdr(0.1, t0=2), steps_per_epoch=4, fractional=True)
    check(smooth, lambda t: sgdr_reference(t / 4, 0.1, 2, 1), [0, 1, 3, 7, 8, 9, 13])
    floored = schedules.per_epoch(schedules.sgdr(0.1, t0=2), steps_per_epoch=4)
    assert floored(7) == floored(4) != floored(3)


# --------------------------------------------------------- plain callables
def test_evaluate_plain_callables_on_arrays():
    def halving(t):
        return 1.0 / 2 ** (t // 3)

    values = schedules.evaluate(halving, np.arange(7.0))
    np.testing.assert_array_equal(values, [1, 1, 1, 0.5, 0.5, 0.5, 0.25])
    assert schedules.evaluate(halving, 6) == 0.25


# -------------------------------------------------------- reduce on plateau
def test_reduce_on_plateau_by_hand():
    s = ReduceLROnPlateau(1.0, patience=2, factor=0.5, cooldown=1, min_lr=0.2)
    metrics = [5, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4]
    # best 4 after the 2nd value; bad count 1, 2, 3 (> patience) → cut at the 5th value;
    # one cooldown evaluation, then bad 1, 2, 3 → cut at the 9th; next cut would go below 0.2.
    lrs = [s.step(m) for m in metrics]
    assert lrs == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25]
    assert s(123) == 0.25 and np.all(s(np.arange(3.0)) == 0.25)
    for m in [4, 4, 4, 4]:
        s.step(m)
    assert s.lr == 0.2  # floored at min_lr
    assert s.step(1.0) == 0.2 and s.best == 1.0


def test_reduce_on_plateau_threshold_and_max_mode():
    s = ReduceLROnPlateau(1.0, patience=0, threshold=0.1)
    s.step(10.0)
    assert s.step(9.5) == 0.1  # 9.5 is not below 10·(1 − 0.1) = 9: not an improvement
    up = ReduceLROnPlateau(1.0, mode="max", patience=0, threshold=0.5, threshold_mode="abs")
    up.step(1.0)
    assert up.step(1.6) == 1.0 and up.step(2.0) == 0.1  # 2.0 < 1.6 + 0.5


def test_reduce_on_plateau_state_round_trip():
    a = ReduceLROnPlateau(0.1, patience=1, cooldown=2)
    for m in [3, 2, 2, 2]:
        a.step(m)
    b = ReduceLROnPlateau(0.1, patience=1, cooldown=2)
    b.load_state_dict(a.state_dict())
    for m in [2, 2, 2, 2, 1, 1, 1]:
        assert a.step(m) == b.step(m)


# ------------------------------------------------------------ readability
def test_reprs_name_the_function_and_its_arguments():
    assert repr(schedules.step(0.1, 30)) == "step(lr=0.1, step_size=30, gamma=0.1)"
    assert repr(schedules.sgdr(0.1, 10, 2)) == "sgdr(lr=0.1, t0=10, t_mult=2, min_lr=0.0, decay=1.0)"
    assert "cosine(lr=0.1, total_steps=50" in repr(schedules.warmup(schedules.cosine(0.1, 50), 5))
    assert repr(schedules.cyclic(0.1, 1.0, 4)).startswith("cyclic(base_lr=0.1, max_lr=1.0, step_size=4")


def test_plot_draws_every_schedule(tmp_path):
    ax = plot_schedules(
        schedules.cosine(0.1, 100), schedules.sgdr(0.1, t0=10, t_mult=2), lambda t: 0.05, steps=100
    )
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["cosine(lr=0.1, total_steps=100, min_lr=0.0)",
                                                    "sgdr(lr=0.1, t0=10, t_mult=2, min_lr=0.0, decay=1.0)",
                                                    "<lambda>"]
    np.testing.assert_allclose(lines[0].get_ydata(), [0.05 * (1 + math.cos(math.pi * t / 100)) for t in range(100)])
    assert ax.get_xlabel().startswith("t") and ax.get_ylabel() == "learning rate"
    ax.figure.savefig(tmp_path / "schedules.png")
    assert (tmp_path / "schedules.png").stat().st_size > 0


# -------------------------------------------------------------- bad input
BAD = [
    (schedules.constant, dict(lr=-0.1), "constant: lr must be >= 0; got -0.1"),
    (schedules.constant, dict(lr=float("nan")), "lr must be a finite number >= 0; got nan"),
    (schedules.constant, dict(lr=float("inf")), "lr must be a finite number >= 0; got inf"),
    (schedules.step, dict(lr=0.1, step_size=10, gamma=-0.5), "step: gamma must be > 0; got -0.5"),
    (schedules.step, dict(lr=0.1, step_size=10, gamma=0), "gamma must be > 0; got 0"),
    (schedules.step, dict(lr=0.1, step_size=0), "step_size must be an integer >= 1; got 0"),
    (
        schedules.multistep,
        dict(lr=0.1, milestones=[30, 20]),
        "milestones must be strictly increasing; got \\[30, 20\\]",
    ),
    (schedules.multistep, dict(lr=0.1, milestones=[30, 30]), "milestones must be strictly increasing"),
    (schedules.exponential, dict(lr=0.1, gamma=0.0), "exponential: gamma must be > 0; got 0.0"),
    (schedules.linear, dict(lr=0.1, total_steps=0), "total_steps must be an integer >= 1; got 0"),
    (schedules.polynomial, dict(lr=0.1, total_steps=10, power=-1.0), "power must be > 0; got -1.0"),
    (schedules.inverse_time, dict(lr=0.1, decay_rate=-1.0), "decay_rate must be >= 0; got -1.0"),
    (schedules.inverse_sqrt, dict(lr=0.1, warmup_steps=0), "warmup_steps must be an integer >= 1; got 0"),
    (schedules.cosine, dict(lr=0.1, total_steps=10, min_lr=0.5), r"cosine: min_lr must be in \[0, 0.1\]; got 0.5"),
    (schedules.sgdr, dict(lr=0.1, t0=0), "sgdr: t0 must be an integer >= 1; got 0"),
    (schedules.sgdr, dict(lr=0.1, t0=10, t_mult=1.5), "sgdr: t_mult must be an integer >= 1; got 1.5"),
    (schedules.sgdr, dict(lr=0.1, t0=10, t_mult=0), "t_mult must be an integer >= 1; got 0"),
    (schedules.sgdr, dict(lr=0.1, t0=10, decay=0.0), "decay must be > 0; got 0.0"),
    (schedules.snapshot, dict(lr=0.1, total_steps=10, cycles=11), r"cycles must be in \[1, total_steps=10\]; got 11"),
    (
        schedules.cyclic,
        dict(base_lr=0.1, max_lr=1.0, step_size=5, mode="triangle"),
        "mode must be one of 'triangular', 'triangular2', 'exp_range'; got 'triangle'",
    ),
    (schedules.cyclic, dict(base_lr=1.0, max_lr=0.1, step_size=5), "max_lr must be >= base_lr=1.0; got 0.1"),
    (
        schedules.cyclic,
        dict(base_lr=0.1, max_lr=1.0, step_size=5, base_momentum=0.95),
        "base_momentum must be <= max_momentum=0.9; got 0.95",
    ),
    (schedules.one_cycle, dict(max_lr=0.1, total_steps=100, pct_start=1.0), r"pct_start must be in \(0, 1\); got 1.0"),
    (schedules.one_cycle, dict(max_lr=0.1, total_steps=100, pct_start=0.0), r"pct_start must be in \(0, 1\); got 0.0"),
    (
        schedules.one_cycle,
        dict(max_lr=0.1, total_steps=100, anneal="cosine"),
        "anneal must be one of 'cos', 'linear'; got 'cosine'",
    ),
    (schedules.one_cycle, dict(max_lr=0.1, total_steps=10, pct_start=0.1), "pct_start \\* total_steps must be > 1"),
    (
        schedules.one_cycle,
        dict(max_lr=0.1, total_steps=100, pct_start=0.6, three_phase=True),
        "room for the third phase",
    ),
    (schedules.warmup, dict(schedule=0.1, warmup_steps=5), "warmup: schedule must be a schedule"),
    (
        schedules.join,
        dict(schedules=[schedules.constant(0.1)] * 2, boundaries=[]),
        "boundaries must hold len\\(schedules\\) - 1 = 1 numbers; got 0",
    ),
    (
        schedules.per_epoch,
        dict(schedule=schedules.constant(0.1), steps_per_epoch=0),
        "steps_per_epoch must be an integer >= 1; got 0",
    ),
    (ReduceLROnPlateau, dict(lr=0.1, factor=1.5), r"factor must be in \(0, 1\); got 1.5"),
    (ReduceLROnPlateau, dict(lr=0.1, mode="lowest"), "mode must be one of 'min', 'max'; got 'lowest'"),
]


@pytest.mark.parametrize("make, kwargs, message", BAD, ids=[f"{m.__name__}-{i}" for i, (m, _, _) in enumerate(BAD)])
def test_bad_arguments_raise_clear_errors(make, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make(**kwargs)


def test_bad_times_raise():
    s = schedules.cosine(0.1, 10)
    for t in (-1, float("nan"), np.array([0.0, -2.0])):
        with pytest.raises(ValueError, match="t must be finite and >= 0"):
            s(t)


# --------------------------------------------- the real PyTorch schedulers
def pytorch_rates(torch, make_scheduler, steps, lr=0.1, momentum=0.9):
    """Step a real PyTorch scheduler after each optimizer step; the lr (and momentum) each update used."""
    param = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    optimizer = torch.optim.SGD([param], lr=lr, momentum=momentum)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheduler = make_scheduler(optimizer, torch.optim.lr_scheduler)
        rates, momenta = [], []
        for _ in range(steps):
            rates.append(optimizer.param_groups[0]["lr"])
            momenta.append(optimizer.param_groups[0]["momentum"])
            optimizer.step()
            scheduler.step()
    return np.array(rates), np.array(momenta)


PYTORCH_CASES = {
    "StepLR": (lambda: schedules.step(0.1, 7, 0.5), lambda o, L: L.StepLR(o, 7, 0.5), 50),
    "MultiStepLR": (lambda: schedules.multistep(0.1, [30, 60, 90]), lambda o, L: L.MultiStepLR(o, [30, 60, 90]), 120),
    "ExponentialLR": (lambda: schedules.exponential(0.1, 0.95), lambda o, L: L.ExponentialLR(o, 0.95), 100),
    "LinearLR": (lambda: schedules.linear(0.1, 20, end_lr=0.02), lambda o, L: L.LinearLR(o, 1.0, 0.2, 20), 40),
    "PolynomialLR": (lambda: schedules.polynomial(0.1, 20, power=2.0), lambda o, L: L.PolynomialLR(o, 20, 2.0), 40),
    "CosineAnnealingLR": (lambda: schedules.cosine(0.1, 50, 0.001), lambda o, L: L.CosineAnnealingLR(o, 50, 0.001), 51),
    "WarmRestarts-1": (
        lambda: schedules.sgdr(0.1, 7, 1, 0.001),
        lambda o, L: L.CosineAnnealingWarmRestarts(o, 7, 1, 0.001),
        200,
    ),
    "WarmRestarts-2": (lambda: schedules.sgdr(0.1, 3, 2), lambda o, L: L.CosineAnnealingWarmRestarts(o, 3, 2), 400),
    "WarmRestarts-3": (lambda: schedules.sgdr(0.1, 1, 3), lambda o, L: L.CosineAnnealingWarmRestarts(o, 1, 3), 400),
    "SequentialLR": (
        lambda: schedules.warmup(schedules.cosine(0.1, 30), 5, start_lr=0.01),
        lambda o, L: L.SequentialLR(o, [L.LinearLR(o, 0.1, 1.0, 5), L.CosineAnnealingLR(o, 30)], [5]),
        36,
    ),
    "per-epoch StepLR": (
        lambda: schedules.per_epoch(schedules.step(0.1, 2, 0.5), steps_per_epoch=1),
        lambda o, L: L.StepLR(o, 2, 0.5),
        12,
    ),
}


@pytest.mark.parametrize("name", list(PYTORCH_CASES))
def test_matches_stepped_pytorch_scheduler(name):
    torch = pytest.importorskip("torch")
    make_ours, make_theirs, steps = PYTORCH_CASES[name]
    expected, _ = pytorch_rates(torch, make_theirs, steps)
    np.testing.assert_allclose(make_ours()(np.arange(steps, dtype=float)), expected, rtol=1e-12, atol=1e-16)


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_cyclic_matches_pytorch_cycliclr_with_momentum(mode):
    torch = pytest.importorskip("torch")
    s = schedules.cyclic(0.01, 0.1, step_size=5, mode=mode, gamma=0.99)
    rates, momenta = pytorch_rates(
        torch, lambda o, L: L.CyclicLR(o, 0.01, 0.1, step_size_up=5, mode=mode, gamma=0.99), 60
    )
    times = np.arange(60.0)
    np.testing.assert_allclose(s(times), rates, rtol=1e-12)
    np.testing.assert_allclose(s.momentum(times), momenta, rtol=1e-12)


@pytest.mark.parametrize("anneal", ["cos", "linear"])
@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("total", [100, 37])
def test_one_cycle_matches_pytorch_onecyclelr_with_momentum(anneal, three_phase, total):
    torch = pytest.importorskip("torch")
    s = schedules.one_cycle(0.1, total, pct_start=0.25, anneal=anneal, three_phase=three_phase)
    rates, momenta = pytorch_rates(
        torch,
        lambda o, L: L.OneCycleLR(o, 0.1, total, pct_start=0.25, anneal_strategy=anneal, three_phase=three_phase),
        total,
    )
    times = np.arange(float(total))
    np.testing.assert_allclose(s(times), rates, rtol=1e-12)
    np.testing.assert_allclose(s.momentum(times), momenta, rtol=1e-12)


def test_sgdr_fractional_epochs_match_pytorch():
    torch = pytest.importorskip("torch")
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=0.1)
    theirs = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=10, T_mult=2, eta_min=0.001)
    ours = schedules.sgdr(0.1, t0=10, t_mult=2, min_lr=0.001)
    for epoch in [0.5, 3.25, 9.9, 10.1, 12.5, 29.75, 31.0, 100.2]:  # not at restarts: its log path is safe there
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs.step(epoch)
        assert ours(epoch) == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-12), f"epoch={epoch}"


def test_reduce_on_plateau_matches_pytorch(rng):
    torch = pytest.importorskip("torch")
    settings = [
        dict(mode="min", factor=0.5, patience=3, threshold=1e-2, cooldown=2, min_lr=1e-3),
        dict(mode="max", factor=0.3, patience=0, threshold=0.05, cooldown=0, min_lr=0.0),
        dict(mode="min", factor=0.1, patience=2, threshold=0.2, cooldown=1, min_lr=0.0, threshold_mode="abs"),
    ]
    for setting in settings:
        # A noisy, slowly improving metric, so both improvements and plateaus happen.
        metrics = 10 - 0.05 * np.arange(80) + rng.normal(0, 0.4, 80)
        if setting["mode"] == "max":
            metrics = -metrics
        param = torch.nn.Parameter(torch.zeros(1))
        optimizer = torch.optim.SGD([param], lr=1.0)
        theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **setting)
        ours = ReduceLROnPlateau(1.0, **setting)
        for metric in metrics:
            theirs.step(float(metric))
            assert ours.step(metric) == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-12)
