"""``--val-size`` / ``RunConfig(val_size=…)``: a validation split held out of the training images.

Checked against computations written here: the validation accuracy recomputed
by hand from the final weights (normalised with NumPy from the kept training
images), the plateau cuts replayed by hand from the validation losses with
PyTorch's rule, the split's sizes and disjointness, and a resumed run against
an uninterrupted one.
"""

import numpy as np
import pytest

from minisgd import cli, recipe, runs
from minisgd.tensor import Tensor, no_grad

SMALL = dict(train_size=300, test_size=100, batch_size=50)


def straight_run(tmp_path, **settings):
    run = runs.start_run(recipe.RunConfig(**{**SMALL, **settings}), tmp_path / "run")
    return run, runs.train_run(run, progress=False, log=None)


def test_validation_split_is_scored_every_epoch_and_the_test_set_once(tmp_path):
    run, result = straight_run(tmp_path, val_size=60, epochs=3)
    assert (len(run.train_set), len(run.val_set), len(run.test_set)) == (240, 60, 100)
    rows = {image.tobytes() for image in run.train_set.data}
    assert not any(image.tobytes() in rows for image in run.val_set.data)  # disjoint (the images are distinct)
    epochs = result.history.epochs
    assert all("val_loss" in e and "val_acc" in e for e in epochs)
    assert ["test_acc" in e for e in epochs] == [False, False, True]  # the test set: once, at the end
    assert result.test_acc == epochs[-1]["test_acc"]

    # validation accuracy by hand: normalise with the kept training images' channel statistics, forward, argmax
    train_pixels = run.train_set.data.astype(np.float64) / 255.0
    mean, std = train_pixels.mean(axis=(0, 1, 2)), train_pixels.std(axis=(0, 1, 2))
    images = ((run.val_set.data.astype(np.float64) / 255.0 - mean) / std).transpose(0, 3, 1, 2)
    run.model.eval()
    with no_grad():
        logits = run.model(Tensor(images.astype(np.float32))).numpy()
    by_hand = float(np.mean(logits.argmax(axis=1) == np.asarray(run.val_set.targets)))
    assert epochs[-1]["val_acc"] == pytest.approx(by_hand, abs=1e-12)


def test_reduce_on_plateau_steps_on_the_validation_loss(tmp_path):
    _, result = straight_run(tmp_path, val_size=60, epochs=6, schedule="reduce-on-plateau", lr=0.05,
                             patience=0, factor=0.5)
    val_losses = [e["val_loss"] for e in result.history.epochs]
    steps_per_epoch = len(result.history.step_lr) // len(val_losses)
    first_lr_of_epoch = [result.history.step_lr[e * steps_per_epoch] for e in range(len(val_losses))]
    expected, best, lr = [0.05], float("inf"), 0.05  # PyTorch's rule, patience 0: cut after every non-improvement
    for loss in val_losses[:-1]:
        if loss < best * (1 - 1e-4):
            best = loss
        else:
            lr *= 0.5
        expected.append(lr)
    assert first_lr_of_epoch == pytest.approx(expected, rel=1e-12)


def test_a_resumed_run_keeps_its_validation_split(tmp_path):
    settings = dict(val_size=60, epochs=3, schedule="reduce-on-plateau", patience=0)
    _, straight = straight_run(tmp_path / "a", **settings)
    run = runs.start_run(recipe.RunConfig(**{**SMALL, **settings, "epochs": 1}), tmp_path / "b")
    runs.train_run(run, progress=False, log=None)
    resumed = runs.resume_run(tmp_path / "b", epochs=3)
    assert resumed.config.val_size == 60 and len(resumed.val_set) == 60
    assert np.array_equal(resumed.val_set.data, straight_run(tmp_path / "c", **settings)[0].val_set.data)
    result = runs.train_run(resumed, progress=False, log=None)
    assert result.history.epochs[-1]["val_loss"] == straight.history.epochs[-1]["val_loss"]
    assert (result.test_acc, result.test_loss) == (straight.test_acc, straight.test_loss)


def test_cli_val_size_prints_the_split_and_the_per_epoch_validation(tmp_path, capsys):
    code = cli.main(["train", "--train-size", "300", "--test-size", "100", "--val-size", "50", "--epochs", "2",
                     "--quiet", "--out", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert code == 0
    assert "validation: 50 of the 300 training images held out at random (seed 0)" in out
    assert "(250 train / 100 test images" in out
    epoch_lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert len(epoch_lines) == 2 and all("val_acc=" in line and "test_acc" not in line for line in epoch_lines)
    assert out.strip().splitlines()[-1].startswith("test_acc=")


@pytest.mark.parametrize("argv, message", [
    (["--val-size", "0"], "--val-size: must be an integer >= 1; got 0"),
    (["--train-size", "100", "--val-size", "100"], "--val-size must be below train_size (100)"),
    (["--train-size", "100", "--val-size", "x"], "--val-size: must be an integer >= 1; got 'x'"),
])
def test_cli_bad_val_size_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    code = cli.main(["train", *argv, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "run").exists()


def test_val_size_larger_than_the_data_names_the_flag(tmp_path, capsys):
    code = cli.main(["train", "--test-size", "50", "--val-size", "20000", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("minisgd: error: --val-size must be") and "20000" in err
