"""Snapshot ensembles: where cycles end, what a snapshot holds, and how the snapshots vote.

The ensemble's probabilities are checked against a NumPy softmax of each
snapshot's logistic-regression outputs, x Wᵀ + b, averaged in the test.
"""

import numpy as np
import pytest

import minisgd
from minisgd import nn, optim, schedules
from minisgd.ensemble import SnapshotEnsemble, cycle_ends


# ------------------------------------------------------------ cycle ends
def test_cycle_ends_of_cyclic_schedules():
    assert cycle_ends(schedules.snapshot(0.1, total_steps=100, cycles=4), 100) == [25, 50, 75, 100]
    assert cycle_ends(schedules.snapshot(0.1, total_steps=100, cycles=3), 100) == [34, 68, 100]  # L = 34
    assert cycle_ends(schedules.sgdr(0.1, t0=5, t_mult=2), 75) == [5, 15, 35, 75]
    assert cycle_ends(schedules.sgdr(0.1, t0=1, t_mult=3, min_lr=0.0), 130) == [4, 13, 40, 121]
    assert cycle_ends(schedules.warmup(schedules.sgdr(0.1, t0=10), 5), 40) == [15, 25, 35]
    # CyclicLR with step size 5: troughs (base_lr exactly) at updates 10, 20, 30.
    assert cycle_ends(schedules.cyclic(0.01, 0.1, step_size=5), 40) == [11, 21, 31]
    assert cycle_ends(lambda t: 0.1 * (1 - (t % 7) / 7), 30) == [7, 14, 21, 28]  # plain callables too
    assert cycle_ends(schedules.cosine(0.1, 50), 60) == []
    assert cycle_ends(schedules.multistep(0.1, [10, 20]), 30) == []


# ------------------------------------------------------ a trained ensemble
def blobs(rng, n=120):
    labels = np.arange(n) % 3
    centers = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    return (centers[labels] + rng.normal(0, 0.8, (n, 2))).astype(np.float32), labels


def numpy_softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture
def trained(rng):
    """Logistic regression trained with 4 cosine cycles of 15 updates; a snapshot at each cycle's end."""
    features, labels = blobs(rng)
    batches = [(minisgd.Tensor(features[i : i + 24]), labels[i : i + 24]) for i in range(0, 120, 24)]
    minisgd.random.manual_seed(0)
    model = nn.Linear(2, 3)
    schedule = schedules.snapshot(0.5, total_steps=60, cycles=4)
    optimizer = optim.SGD(model.parameters(), lr=schedule, momentum=0.9)
    ends = set(cycle_ends(schedule, 60))
    ensemble = SnapshotEnsemble()
    while optimizer.t < 60:
        for x, y in batches:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
            if optimizer.t in ends:
                ensemble.add(model)
            if optimizer.t == 60:
                break
    return model, ensemble, features, labels, batches


def test_snapshot_schedule_gives_m_ends_when_m_does_not_divide_t():
    # L = ⌈378/4⌉ = 95: cycles end after 95, 190 and 285 updates, and the fourth, 93 updates long, at the end.
    assert cycle_ends(schedules.snapshot(0.1, 378, 4), 378) == [95, 190, 285, 378]
    assert cycle_ends(schedules.snapshot(0.1, 380, 4), 380) == [95, 190, 285, 380]
    # SGDR stopped before its next restart has not ended its third cycle (restarts at 10 and 30).
    assert cycle_ends(schedules.sgdr(0.1, t0=10, t_mult=2), 40) == [10, 30]


def test_one_snapshot_per_cycle_each_a_copy(trained):
    model, ensemble, *_ = trained
    assert len(ensemble) == 4
    final = {k: np.array(v) for k, v in model.state_dict().items()}
    np.testing.assert_array_equal(ensemble.snapshots[-1]["weight"], final["weight"])  # taken after the last update
    for a, b in zip(ensemble.snapshots, ensemble.snapshots[1:]):
        assert not np.array_equal(a["weight"], b["weight"])  # the cycles moved the weights
    kept = ensemble.snapshots[-1]["weight"].copy()
    for parameter in model.parameters():
        parameter.data += 1.0  # training on would change the model, not the snapshots
    np.testing.assert_array_equal(ensemble.snapshots[-1]["weight"], kept)


def test_predictions_average_the_snapshots_softmax(trained):
    model, ensemble, features, labels, batches = trained
    x = features[:30]
    per_snapshot = [numpy_softmax(x.astype(np.float64) @ s["weight"].T + s["bias"]) for s in ensemble.snapshots]

    weights_before = {k: np.array(v) for k, v in model.state_dict().items()}
    model.train()
    probabilities = ensemble.predict_proba(minisgd.Tensor(x))
    np.testing.assert_allclose(probabilities, np.mean(per_snapshot, axis=0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(
        ensemble.predict_proba(x, last=2), np.mean(per_snapshot[-2:], axis=0), rtol=1e-5, atol=1e-7
    )
    np.testing.assert_array_equal(ensemble.predict(x), np.argmax(np.mean(per_snapshot, axis=0), axis=1))
    # The model is left as it was: its own weights, still in training mode.
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, weights_before[name])
    assert model.training is True

    every = [numpy_softmax(features.astype(np.float64) @ s["weight"].T + s["bias"]) for s in ensemble.snapshots]
    expected_accuracy = np.mean(np.argmax(np.mean(every, axis=0), axis=1) == labels)
    assert ensemble.accuracy(batches) == pytest.approx(expected_accuracy, abs=1e-12)
    assert expected_accuracy > 0.8  # the blobs are easy: the ensemble learned them


def test_errors():
    ensemble = SnapshotEnsemble()
    with pytest.raises(ValueError, match="no snapshots yet"):
        ensemble.predict_proba(np.zeros((1, 2), dtype=np.float32))
    model = nn.Linear(2, 3)
    ensemble.add(model)
    with pytest.raises(ValueError, match="last must be an integer in \\[1, 1\\]; got 2"):
        ensemble.predict(np.zeros((1, 2), dtype=np.float32), last=2)
    with pytest.raises(ValueError, match="same model"):
        ensemble.add(nn.Linear(2, 3))
    with pytest.raises(ValueError, match="total_steps must be an integer >= 1; got 0"):
        cycle_ends(schedules.sgdr(0.1, 5), 0)
