"""The training loop, checkpoints and exact resumption.

Small models on small data, so each test takes well under a second.
"""

import math
import os

import numpy as np
import pytest

import minisgd
from minisgd import checkpoint, nn, optim, schedules
from minisgd.data import ArrayDataset, DataLoader
from minisgd.train import History, evaluate, fit


def blobs(n=120, seed=0):
    """Three well-separated Gaussian blobs in 4-D: a linear model learns them."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(3, 4))
    labels = rng.integers(0, 3, size=n)
    return ArrayDataset((centres[labels] + rng.normal(size=(n, 4))).astype(np.float32), labels)


def mlp(seed=0, dropout=0.0):
    minisgd.random.manual_seed(seed)
    layers = [nn.Linear(4, 16), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers, nn.Linear(16, 3))


def test_fit_learns_and_records_the_history():
    data = blobs()
    model = mlp()
    loader = DataLoader(data, batch_size=16, shuffle=True, seed=0)
    schedule = schedules.step(0.1, step_size=8, gamma=0.5)
    optimizer = optim.SGD(model.parameters(), lr=schedule, momentum=0.9)
    history = fit(model, loader, optimizer, epochs=3, test_loader=DataLoader(data, batch_size=50), progress=False)

    steps = 3 * math.ceil(120 / 16)
    assert len(history.step_loss) == len(history.step_lr) == steps
    # Update t used lr(t): 0.1 · 0.5^⌊t/8⌋, written out independently of the schedule object.
    np.testing.assert_allclose(history.step_lr, [0.1 * 0.5 ** (t // 8) for t in range(steps)])
    assert [e["epoch"] for e in history.epochs] == [1, 2, 3]
    assert history.epochs[-1]["test_acc"] > 0.9 and history.epochs[-1]["train_loss"] < history.epochs[0]["train_loss"]
    assert history.epochs[0]["images_per_second"] > 0 and history.stopped is None


def test_evaluate_matches_a_hand_computed_loss_and_accuracy():
    data = blobs(n=40)
    model = mlp()
    scores = evaluate(model, DataLoader(data, batch_size=7))
    with minisgd.no_grad():
        logits = model(minisgd.Tensor(data.data)).numpy().astype(np.float64)
    log_probs = logits - logits.max(1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(1, keepdims=True))
    assert scores["loss"] == pytest.approx(-log_probs[np.arange(40), data.targets].mean(), rel=1e-5)
    assert scores["acc"] == pytest.approx((logits.argmax(1) == data.targets).mean())


@pytest.mark.filterwarnings("ignore:overflow")
def test_a_diverging_learning_rate_stops_with_a_message_not_a_crash():
    model = mlp()
    optimizer = optim.SGD(model.parameters(), lr=1e6)
    history = fit(model, DataLoader(blobs(), batch_size=16), optimizer, epochs=5, progress=False)
    assert history.stopped is not None
    step = len(history.step_loss)
    assert f"step {step}" in history.stopped and "lr=1e+06" in history.stopped
    last_finite = [v for v in history.step_loss if math.isfinite(v)][-1]
    assert f"{last_finite:.4g}" in history.stopped
    assert len(history.epochs) < 5


def test_fit_rejects_zero_epochs():
    model = mlp()
    with pytest.raises(ValueError, match="epochs must be >= 1; got 0"):
        fit(model, DataLoader(blobs(), batch_size=16), optim.SGD(model.parameters(), lr=0.1), epochs=0)


# ----------------------------------------------------------------- checkpoints
def make_run(seed=0):
    """Model with dropout, momentum, a schedule, shuffling and a random transform: every source of state."""
    model = mlp(seed, dropout=0.3)
    flip_noise = lambda x, rng: x + rng.normal(scale=0.1, size=x.shape).astype(x.dtype)  # noqa: E731
    loader = DataLoader(blobs(), batch_size=16, shuffle=True, seed=7, transform=flip_noise)
    optimizer = optim.SGD(model.parameters(), lr=schedules.cosine(0.1, total_steps=40), momentum=0.9, weight_decay=1e-3)
    return model, loader, optimizer


def test_resuming_from_a_checkpoint_continues_bit_for_bit(tmp_path):
    model, loader, optimizer = make_run()
    minisgd.random.manual_seed(123)
    uninterrupted = fit(model, loader, optimizer, epochs=4, progress=False)
    expected = {k: v.copy() for k, v in model.state_dict().items()}

    path = tmp_path / "checkpoint.npz"
    model, loader, optimizer = make_run()
    minisgd.random.manual_seed(123)
    first_half = fit(
        model,
        loader,
        optimizer,
        epochs=2,
        progress=False,
        on_epoch_end=lambda epoch, h: checkpoint.save_checkpoint(
            path, model=model, optimizer=optimizer, epoch=epoch, history=h.to_dict()
        ),
    )
    minisgd.random.manual_seed(999)  # anything drawn now must not matter after the restore

    model, loader, optimizer = make_run(seed=5)  # a different initialisation, overwritten by the checkpoint
    saved = checkpoint.load_checkpoint(path)
    checkpoint.restore(saved, model=model, optimizer=optimizer)
    loader.set_epoch(saved["epoch"])
    resumed = fit(model, loader, optimizer, epochs=4, start_epoch=saved["epoch"],
                  history=History.from_dict(saved["history"]), progress=False)

    assert saved["epoch"] == 2 and len(first_half.step_loss) < len(resumed.step_loss)
    assert resumed.step_loss == uninterrupted.step_loss
    assert resumed.step_lr == uninterrupted.step_lr
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, expected[name], err_msg=name)


def test_checkpoint_holds_only_plain_arrays(tmp_path):
    model, _, optimizer = make_run()
    path = checkpoint.save_checkpoint(
        tmp_path / "c.npz", model=model, optimizer=optimizer, epoch=1, meta={"model": "mlp"}
    )
    with np.load(path, allow_pickle=False) as archive:  # would raise on any pickled object
        assert {"model/0.weight", "epoch", "random_state", "optimizer/t"} <= set(archive.files)
    assert checkpoint.load_checkpoint(path)["meta"] == {"model": "mlp"}


def test_a_crash_while_saving_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    model, _, optimizer = make_run()
    path = checkpoint.save_checkpoint(tmp_path / "c.npz", model=model, optimizer=optimizer, epoch=1)
    before = path.read_bytes()

    def crash(file, **arrays):
        file.write(b"half a zip file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save_checkpoint(path, model=model, optimizer=optimizer, epoch=2)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["c.npz"]  # no temporary file left behind


def test_corrupt_and_truncated_checkpoints_get_clear_errors(tmp_path):
    model, _, optimizer = make_run()
    good = checkpoint.save_checkpoint(tmp_path / "good.npz", model=model, optimizer=optimizer, epoch=1)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a checkpoint at all")
    for bad in (truncated, garbage):
        with pytest.raises(checkpoint.CheckpointError, match="is not a minisgd checkpoint"):
            checkpoint.load_checkpoint(bad)
    with pytest.raises(checkpoint.CheckpointError, match="does not exist"):
        checkpoint.load_checkpoint(tmp_path / "missing.npz")


def test_a_checkpoint_of_another_model_names_the_mismatching_keys(tmp_path):
    model, _, optimizer = make_run()
    path = checkpoint.save_checkpoint(tmp_path / "c.npz", model=model, optimizer=optimizer, epoch=1)
    other = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    with pytest.raises(checkpoint.CheckpointError, match=r"does not fit this model: .*0\.weight"):
        checkpoint.restore(
            checkpoint.load_checkpoint(path), model=other, optimizer=optim.SGD(other.parameters(), lr=0.1)
        )


def test_history_round_trips_through_a_dict():
    history = History(step_loss=[1.0, 0.5], step_lr=[0.1, 0.1], epochs=[{"epoch": 1, "train_loss": 0.7}])
    assert History.from_dict(history.to_dict()) == history
    assert history.last("train_loss") == 0.7 and History().last("test_acc") is None
