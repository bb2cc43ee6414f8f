"""``python -m minisgd``: arguments, errors, outputs, resumption.

Most tests call ``cli.main`` in-process on a few hundred synthetic images; one
runs the real ``python -m minisgd`` in a subprocess.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minisgd import cli

TINY = ["--train-size", "256", "--test-size", "128", "--batch-size", "64", "--quiet"]
LAST_LINE = re.compile(r"^test_acc=(\d\.\d{4}) test_loss=(\d+\.\d{4})$")


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_command_trains_and_ends_with_a_machine_readable_line(tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "minisgd", "train", *TINY, "--epochs", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[1],
    )
    assert result.returncode == 0, result.stderr
    assert LAST_LINE.match(result.stdout.strip().splitlines()[-1])
    for name in ("history.json", "checkpoint.npz", "curves.png"):
        assert (out / name).stat().st_size > 0
    history = json.loads((out / "history.json").read_text())
    assert len(history["step_loss"]) == 4 and history["epochs"][0]["epoch"] == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--batch-size", "0"], "argument --batch-size: must be an integer >= 1; got 0"),
        (["train", "--epochs", "0"], "argument --epochs: must be an integer >= 1; got 0"),
        (
            ["train", "--model", "resnet"],
            "argument --model: invalid choice: 'resnet' (choose from 'lenet', 'small-vgg')",
        ),
        (["train", "--dataset", "mnist"], "argument --dataset: invalid choice: 'mnist'"),
        (["train", "--schedule", "warm"], "argument --schedule: invalid choice: 'warm'"),
        (["train", "--lr", "-1"], "argument --lr: must be a finite number >= 0; got -1"),
        (["train", "--lr", "nan"], "argument --lr: must be a finite number >= 0; got nan"),
        (["train", "--seed", "-3"], "argument --seed: must be an integer >= 0; got -3"),
        (["train", "--warmup-steps", "-1"], "argument --warmup-steps: must be an integer >= 0; got -1"),
        (["train", "--schedule", "cosine", "--snapshots", *TINY], "--snapshots needs a schedule with cycles"),
        (["train", "--model", "lenet", "--batch-norm", *TINY], "--batch-norm applies to --model small-vgg only"),
        (["train", "--schedule", "multistep", "--milestones", "3", "2", *TINY], "milestones"),
        (["lr-find", "--start-lr", "1", "--end-lr", "0.1"], "--start-lr must be > 0 and below --end-lr"),
    ],
)
def test_bad_arguments_get_one_line_and_exit_code_2(capsys, tmp_path, argv, message):
    code, out, err = run(capsys, *argv, *(["--out", str(tmp_path / "x")] if argv[0] == "train" else []))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("minisgd: error: ") and message in lines[0], err
    assert not (tmp_path / "x").exists()


def test_cifar10_without_files_says_where_to_put_them(capsys, tmp_path):
    code, _, err = run(
        capsys, "train", "--dataset", "cifar10", "--data-dir", str(tmp_path), "--out", str(tmp_path / "run")
    )
    assert code == 2
    assert "cifar-10-batches-py" in err and str(tmp_path) in err and "--download" in err
    assert len(err.strip().splitlines()) == 1


def test_a_new_run_never_overwrites_an_earlier_one(capsys, tmp_path):
    out = tmp_path / "run"
    assert run(capsys, "train", *TINY, "--epochs", "1", "--out", str(out))[0] == 0
    before = {name: (out / name).read_bytes() for name in ("history.json", "checkpoint.npz", "curves.png")}
    code, _, err = run(capsys, "train", *TINY, "--epochs", "1", "--lr", "0.2", "--out", str(out))
    assert code == 2 and "already holds a run" in err and "--resume" in err
    assert {name: (out / name).read_bytes() for name in before} == before


def test_resume_continues_exactly_like_an_uninterrupted_run(capsys, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    common = [*TINY, "--schedule", "sgdr", "--t0", "1", "--t-mult", "2"]
    assert run(capsys, "train", *common, "--epochs", "3", "--out", str(straight))[0] == 0
    assert run(capsys, "train", *common, "--epochs", "2", "--out", str(split))[0] == 0
    code, out, _ = run(capsys, "train", "--resume", str(split / "checkpoint.npz"), "--epochs", "3", "--quiet")
    assert code == 0 and LAST_LINE.match(out.strip().splitlines()[-1])

    expected = json.loads((straight / "history.json").read_text())
    resumed = json.loads((split / "history.json").read_text())
    assert resumed["step_loss"] == expected["step_loss"] and resumed["step_lr"] == expected["step_lr"]
    with np.load(straight / "checkpoint.npz") as a, np.load(split / "checkpoint.npz") as b:
        for name in a.files:
            if name.startswith(("model/", "optimizer/")):
                np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_resume_with_another_model_names_the_keys(capsys, tmp_path):
    out = tmp_path / "run"
    assert run(capsys, "train", *TINY, "--epochs", "1", "--out", str(out))[0] == 0
    code, _, err = run(
        capsys, "train", "--resume", str(out / "checkpoint.npz"), "--model", "small-vgg", "--epochs", "2"
    )
    assert code == 2 and "does not fit this model" in err and "weight" in err
    assert len(err.strip().splitlines()) == 1


def test_resume_from_a_corrupt_checkpoint(capsys, tmp_path):
    bad = tmp_path / "checkpoint.npz"
    bad.write_bytes(b"\x00" * 100)
    code, _, err = run(capsys, "train", "--resume", str(bad), "--epochs", "2")
    assert code == 2 and "corrupt" in err and bad.read_bytes() == b"\x00" * 100


def test_snapshot_ensemble_is_reported(capsys, tmp_path):
    code, out, _ = run(capsys, "train", *TINY, "--epochs", "3", "--schedule", "sgdr", "--t0", "1", "--t-mult", "2",
                       "--snapshots", "--out", str(tmp_path / "run"))
    assert code == 0
    assert re.search(r"snapshot ensemble of 2 models: test_acc=\d\.\d{4} \(single model \d\.\d{4}\)", out)
    assert json.loads((tmp_path / "run" / "history.json").read_text())["snapshot_test_acc"] is not None


def test_lr_find_and_schedules_save_their_plots(capsys, tmp_path):
    code, out, _ = run(capsys, "lr-find", "--train-size", "256", "--steps", "12", "--out", str(tmp_path / "lr.png"))
    assert code == 0 and re.search(r"suggested_lr=\d", out) and (tmp_path / "lr.png").stat().st_size > 0
    code, out, _ = run(capsys, "schedules", "--schedule", "step", "sgdr", "one-cycle", "--out", str(tmp_path / "s.png"))
    assert code == 0 and (tmp_path / "s.png").stat().st_size > 0


def test_cuda_without_cupy_is_a_clear_error(capsys, tmp_path, monkeypatch):
    from minisgd import backend

    monkeypatch.setattr(backend, "_cupy_or_none", lambda: None)
    code, _, err = run(capsys, "train", *TINY, "--device", "cuda", "--out", str(tmp_path / "run"))
    assert code == 2 and "pip install cupy-cuda12x" in err
