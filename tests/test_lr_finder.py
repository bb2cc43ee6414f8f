"""The LR range test: its ramp, its smoothing, its stop on divergence, and that it leaves no trace.

Expected values are computed here: the geometric ramp and the bias-corrected
moving average from their formulas, the first loss by a NumPy forward pass of
the initial weights, and the divergence threshold of gradient descent on least
squares (lr > 2 / λ_max of the Hessian) from the data.
"""

import math

import numpy as np
import pytest

import minisgd
from minisgd import nn, optim, schedules
from minisgd.lr_finder import lr_range_test, steepest_descent_lr, stopped_changing, valley_lr


def blobs(rng, n=96):
    """Three Gaussian blobs in 2-D, as float32 features and int labels."""
    labels = np.arange(n) % 3
    centers = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    features = (centers[labels] + rng.normal(0, 0.6, (n, 2))).astype(np.float32)
    return features, labels


def batches_of(features, labels, size=16):
    return [(minisgd.Tensor(features[i : i + size]), labels[i : i + size]) for i in range(0, len(labels), size)]


def small_net():
    minisgd.random.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))


def numpy_cross_entropy(weights, x, y):
    """Mean cross-entropy of the 2-16-3 ReLU net with ``weights`` (PyTorch's state_dict names)."""
    hidden = np.maximum(x @ weights["0.weight"].T + weights["0.bias"], 0)
    logits = (hidden @ weights["2.weight"].T + weights["2.bias"]).astype(np.float64)
    top = logits.max(axis=1, keepdims=True)
    log_z = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    return float(np.mean(log_z - logits[np.arange(len(y)), y]))


def test_ramp_and_smoothing_follow_their_formulas(rng):
    features, labels = blobs(rng)
    batches = batches_of(features, labels)  # 6 batches: the 30 updates go through them 5 times
    model = small_net()
    initial = {k: np.array(v) for k, v in model.state_dict().items()}
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    result = lr_range_test(model, optimizer, batches, start_lr=1e-4, end_lr=1.0, steps=30)

    assert result.stopped is None and len(result.lrs) == 30
    ramp = [1e-4 * (1.0 / 1e-4) ** (i / 30) for i in range(30)]
    np.testing.assert_allclose(result.lrs, ramp, rtol=1e-12)
    # Bias-corrected exponential moving average with β = 0.98.
    average, expected = 0.0, []
    for k, loss in enumerate(result.losses, start=1):
        average = 0.98 * average + 0.02 * loss
        expected.append(average / (1 - 0.98**k))
    np.testing.assert_allclose(result.smoothed, expected, rtol=1e-12)
    assert result.smoothed[0] == pytest.approx(result.losses[0], rel=1e-12)  # the correction removes the start at 0
    # The first loss is that of the untouched model on the first batch.
    assert result.losses[0] == pytest.approx(numpy_cross_entropy(initial, features[:16], labels[:16]), rel=1e-5)
    # The suggestion: the rate at the smoothed minimum, searched after the first 10 points, divided by 5.
    best = 10 + int(np.argmin(result.smoothed[10:]))
    assert result.min_loss_lr == result.lrs[best]
    assert result.suggested_lr == pytest.approx(result.lrs[best] / 5, rel=1e-12)
    assert result.drop == pytest.approx(1 - result.smoothed[best] / result.smoothed[0], rel=1e-12)


def test_leaves_model_optimizer_and_random_state_as_they_were(rng):
    features, labels = blobs(rng)
    batches = batches_of(features, labels)
    model = small_net()
    schedule = schedules.cosine(0.05, 100)
    optimizer = optim.SGD(model.parameters(), lr=schedule, momentum=0.9, weight_decay=1e-4)
    for x, y in batches[:3]:  # some training first: t = 3, momentum buffers filled
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    model.eval()
    weights = {k: np.array(v) for k, v in model.state_dict().items()}
    state = optimizer.state_dict()
    random_state = minisgd.random.get_state()

    result = lr_range_test(model, optimizer, batches, start_lr=1e-5, end_lr=10.0, steps=40)
    assert len(result.lrs) > 3

    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, weights[name])
    assert model.training is False
    assert optimizer.lr_schedule is schedule and optimizer.t == 3
    after = optimizer.state_dict()
    assert sorted(after) == sorted(state)
    for key in state:
        np.testing.assert_array_equal(after[key], state[key])
    np.testing.assert_array_equal(minisgd.random.get_state(), random_state)


def test_stops_once_the_smoothed_loss_diverges(rng):
    features, labels = blobs(rng)
    model = small_net()
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    result = lr_range_test(model, optimizer, batches_of(features, labels), start_lr=1e-3, end_lr=1e5, steps=100)
    assert result.stopped is not None and len(result.lrs) < 100
    s = result.smoothed
    if "exceeded" in result.stopped:
        assert s[-1] > 4 * s.min()
        assert all(s[k] <= 4 * s[: k + 1].min() for k in range(len(s) - 1))  # not a step earlier
    else:
        assert "the loss became" in result.stopped  # it overflowed before the smoothed loss caught up


def test_suggestion_is_below_where_gradient_descent_diverges(rng):
    # Least squares with F.mse_loss = mean((Xw + b − y)²): Hessian H = (2/n) [X 1]ᵀ[X 1];
    # gradient descent diverges for lr > 2 / λ_max(H), so a useful suggestion sits below it.
    n = 64
    X = rng.normal(size=(n, 3)).astype(np.float32) * np.array([1.0, 2.0, 0.5], dtype=np.float32)
    y = (X @ np.array([1.0, -1.0, 2.0], dtype=np.float32) + 0.3).reshape(-1, 1)
    augmented = np.column_stack([X, np.ones(n)]).astype(np.float64)
    limit = 2 / np.linalg.eigvalsh(2 / n * augmented.T @ augmented).max()
    minisgd.random.manual_seed(0)
    model = nn.Linear(3, 1)
    optimizer = optim.SGD(model.parameters(), lr=0.01)
    batch = [(minisgd.Tensor(X), minisgd.Tensor(y))]  # full batch, repeated
    result = lr_range_test(
        model, optimizer, batch, start_lr=1e-4, end_lr=100.0, steps=200, loss_fn=nn.functional.mse_loss
    )
    assert result.stopped is not None  # it did diverge past the limit
    assert result.lrs[-1] > limit
    assert limit / 100 < result.suggested_lr < limit


def test_steepest_descent_lr_on_a_known_curve():
    # loss = −tanh(log10(lr) + 2): falls fastest at log10(lr) = −2.
    lrs = np.logspace(-5, 1, 61)
    assert steepest_descent_lr(lrs, -np.tanh(np.log10(lrs) + 2)) == pytest.approx(1e-2, rel=1e-9)
    assert math.isnan(steepest_descent_lr(lrs[:1], np.ones(1)))


def test_valley_is_the_middle_of_the_longest_descent_before_the_minimum():
    lrs = np.logspace(-5, 1, 100)
    flat = np.full(20, 2.0)  # a plateau: no descent there
    fall = np.linspace(1.99, 0.5, 41)  # points 20 … 60 fall steadily
    blow_up = 0.5 + np.linspace(0.01, 3, 39) ** 2  # points 61 … 99 rise
    smoothed = np.concatenate([flat, fall, blow_up])
    # The longest strictly descending chain holds one plateau point, then 20 … 60; of the equally long
    # chains the one starting at the latest plateau point, 19, is taken.
    assert valley_lr(lrs, smoothed) == lrs[(19 + 60) // 2]
    # A later, longer fall after the minimum is never chosen: the search ends at the minimum.
    later = np.concatenate([smoothed[:61], np.linspace(0.9, 0.6, 39)])
    assert valley_lr(lrs, later) == lrs[(19 + 60) // 2]
    assert math.isnan(valley_lr(lrs[:1], np.ones(1)))


def test_suggestion_never_lies_in_the_blow_up(rng):
    features, labels = blobs(rng)
    model = small_net()
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    result = lr_range_test(model, optimizer, batches_of(features, labels), start_lr=1e-4, end_lr=1e3, steps=80)
    best = result.lrs[10 + np.argmin(result.smoothed[10:])]
    assert result.suggested_lr == pytest.approx(best / 5)
    assert result.steepest_lr <= best and result.valley_lr <= best


def test_a_one_shot_iterator_that_runs_out(rng):
    features, labels = blobs(rng)
    model = small_net()
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    result = lr_range_test(model, optimizer, iter(batches_of(features, labels)), start_lr=1e-4, end_lr=1.0, steps=20)
    assert len(result.lrs) == 6 and result.stopped == "the batches ran out after 6 updates"


def test_plot(rng, tmp_path):
    features, labels = blobs(rng)
    model = small_net()
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    result = lr_range_test(model, optimizer, batches_of(features, labels), start_lr=1e-4, end_lr=100.0, steps=60)
    path = result.plot(tmp_path / "lr_find.png")
    assert path == tmp_path / "lr_find.png" and path.stat().st_size > 0
    ax = result.plot()
    assert ax.get_xscale() == "log"
    labels_drawn = [line.get_label() for line in ax.get_lines()]
    assert labels_drawn[:2] == ["batch loss", "smoothed loss (β = 0.98, bias-corrected)"]
    assert any(label.startswith("suggested (minimum / 5): ") for label in labels_drawn)
    assert ax.get_xlim() == pytest.approx((result.lrs[0], result.lrs[-1]))  # the whole sweep, not a stub


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(start_lr=0.0), "start_lr must be > 0; got 0.0"),
        (dict(start_lr=1.0, end_lr=0.5), "end_lr must be > start_lr=1.0; got 0.5"),
        (dict(steps=1), "steps must be an integer >= 2; got 1"),
        (dict(smoothing=1.0), "smoothing must be in \\[0, 1\\); got 1.0"),
    ],
)
def test_bad_arguments(kwargs, message):
    model = nn.Linear(2, 3)
    with pytest.raises(ValueError, match=message):
        lr_range_test(model, optim.SGD(model.parameters(), lr=0.1), [], **kwargs)


# ------------------------------------------------ scripted loss curves: a flat blow-up, and plateaus
def scripted_sweep(values, **options):
    """lr_range_test over 1e-5 … 10 whose batch losses are ``values``, in order (the model ignores its data)."""
    model = nn.Linear(1, 1)
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    curve = iter(values)

    def loss_fn(output, _):
        return output.sum() * 0.0 + float(next(curve))

    batches = [(minisgd.Tensor(np.zeros((1, 1), dtype=np.float32)), np.zeros(1, dtype=np.int64))]
    return lr_range_test(model, optimizer, batches, start_lr=1e-5, end_lr=10.0, steps=len(values),
                         loss_fn=loss_fn, **options)


def noisy(level, n, rng, spread=0.01):
    return np.asarray(level, dtype=np.float64) + rng.uniform(-spread, spread, n)


def real_subset_shape(rng):
    """The shape LeNet's sweep had on the CIFAR-10 subset: a plateau at ln 10 drifting down a little, a fall to
    2.0, then a jump to a flat 2.35 that never reaches 4 x the minimum."""
    plateau = noisy(np.linspace(2.31, 2.30, 100), 100, rng)
    fall = noisy(np.linspace(2.29, 2.0, 40), 40, rng)
    flat = noisy(np.full(60, 2.35), 60, rng)
    return np.concatenate([plateau, fall, flat])


def test_a_loss_that_jumps_to_a_flat_level_and_stays_stops_the_sweep_as_a_blow_up(rng):
    values = real_subset_shape(rng)
    result = scripted_sweep(values)
    assert result.stopped is not None and result.stopped.startswith("the loss stopped changing (a blow-up)")
    stop = len(result.lrs) - 1
    assert 140 < stop < len(values) - 1  # after the jump (update 140), before the sweep's end
    assert result.smoothed.max() < 4 * result.smoothed[10:].min()  # the 4 x rule could never have stopped it
    np.testing.assert_allclose(result.losses, values[: stop + 1], rtol=1e-6)  # float32 losses


def test_the_valley_is_never_marked_on_the_initial_plateau(rng):
    result = scripted_sweep(real_subset_shape(rng))
    best = 10 + int(np.argmin(result.smoothed[10:]))
    start_level = np.mean(result.losses[:10])
    fall = start_level - result.smoothed[best]
    at_valley = result.smoothed[np.flatnonzero(result.lrs == result.valley_lr)[0]]
    assert at_valley < start_level - fall / 4  # it has done more than a quarter of its fall: off the plateau
    assert result.lrs[100] <= result.valley_lr <= result.min_loss_lr  # in the fall (updates 100 … 139)


def test_a_loss_that_never_leaves_its_plateau_runs_to_the_end_without_a_valley(rng):
    result = scripted_sweep(noisy(np.full(120, 2.30), 120, rng))
    assert result.stopped is None and len(result.lrs) == 120
    assert math.isnan(result.valley_lr)


def test_a_loss_that_converged_and_stays_low_is_not_a_blow_up(rng):
    values = np.concatenate([noisy(np.full(30, 2.3), 30, rng), np.linspace(2.3, 0.5, 40), noisy(np.full(60, 0.5),
                                                                                                 60, rng)])
    result = scripted_sweep(values)
    assert result.stopped is None and len(result.lrs) == len(values)


def test_a_loss_that_explodes_is_still_stopped_by_the_4x_rule(rng):
    values = np.concatenate([noisy(np.full(30, 2.3), 30, rng), np.linspace(2.3, 0.5, 40), 0.5 * 1.3 ** np.arange(60)])
    result = scripted_sweep(values)
    assert result.stopped.startswith("the smoothed loss") and "exceeded 4 x its minimum" in result.stopped


def test_stopped_changing_needs_a_descent_an_old_minimum_a_return_and_a_flat_window():
    start, window = 2.3, 20

    def check(tail, head=np.linspace(2.3, 2.0, 30)):
        losses = np.concatenate([np.full(10, start), head, tail])
        return stopped_changing(losses, losses, start, 0.0, window)  # noise-free: the smoothed loss is the loss

    assert check(np.full(window + 5, 2.35))  # fell, jumped back above the start, flat
    assert not check(np.full(window + 5, 2.3), head=np.full(30, 2.3))  # no descent: flat at the start all along
    assert not check(np.full(window + 5, 2.0))  # flat, but low: converged, not blown up
    assert not check(np.linspace(2.31, 2.8, window + 5))  # back, but rising by more than 2 %: the 4 x rule's job
    assert not check(np.full(window - 2, 2.35))  # back and flat, but the minimum is younger than the window
