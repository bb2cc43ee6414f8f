"""``python -m minisgd``: arguments, errors, outputs, resumption.

Most tests call ``cli.main`` in-process on a few hundred synthetic images; a
few run the real ``python -m minisgd`` in a subprocess (piped output, as in CI).
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minisgd import cli

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--train-size", "256", "--test-size", "128", "--batch-size", "64", "--quiet"]
LAST_LINE = re.compile(r"^test_acc=(\d\.\d{4}) test_loss=(\d+\.\d{4})$")


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def python_m_minisgd(*argv, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "minisgd", *argv], capture_output=True, text=True, timeout=300,
                          cwd=cwd)


def test_the_command_trains_and_ends_with_a_machine_readable_line(tmp_path):
    out = tmp_path / "run"
    result = python_m_minisgd("train", "--train-size", "256", "--test-size", "128", "--epochs", "1",
                              "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert LAST_LINE.match(result.stdout.strip().splitlines()[-1])
    for name in ("history.json", "checkpoint.npz", "curves.png"):
        assert (out / name).stat().st_size > 0
    history = json.loads((out / "history.json").read_text())
    assert len(history["step_loss"]) == 4 and history["epochs"][0]["epoch"] == 1
    # Output that is not a terminal gets no progress bars (without --quiet), but still the epoch lines.
    assert "batch/s" not in result.stderr and "\r" not in result.stderr and len(result.stderr) < 200
    assert re.search(r"^epoch 1: train_loss=", result.stdout, re.M)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--batch-size", "0"], "argument --batch-size: must be an integer in [1, 2147483647]; got 0"),
        (["train", "--epochs", "0"], "argument --epochs: must be an integer in [1, 2147483647]; got 0"),
        (
            ["train", "--model", "resnet"],
            "argument --model: invalid choice: 'resnet' (choose from 'lenet', 'small-vgg')",
        ),
        (["train", "--dataset", "mnist"], "argument --dataset: invalid choice: 'mnist'"),
        (["train", "--schedule", "warm"], "argument --schedule: invalid choice: 'warm'"),
        (["train", "--lr", "-1"], "argument --lr: must be a finite number >= 0; got -1"),
        (["train", "--lr", "nan"], "argument --lr: must be a finite number >= 0; got nan"),
        (["train", "--seed", "-3"], "argument --seed: must be an integer in [0, 2147483647]; got -3"),
        (["train", "--warmup-steps", "-1"], "argument --warmup-steps: must be an integer in [0, 2147483647]; got -1"),
        (["train", "--gamma", "0", "--schedule", "step"], "--gamma must be > 0; got 0.0"),
        (["train", "--gamma", "inf"], "argument --gamma: must be a finite number; got inf"),
        (["train", "--momentum", "1.5"], "--momentum must be in [0, 1); got 1.5"),
        (["train", "--momentum", "1"], "--momentum must be in [0, 1); got 1.0"),
        (["train", "--nesterov", "--momentum", "0"], "--momentum must be > 0 with nesterov; got 0.0"),
        (["train", "--schedule", "multistep", "--milestones", "3", "1"],
         "--milestones must be strictly increasing; got [3, 1]"),
        (["train", "--schedule", "snapshot", "--cycles", "9", "--epochs", "2"],
         "--cycles must be an integer in [1, 2]; got 9"),
        (["train", "--schedule", "reduce-on-plateau", "--factor", "1.5"], "--factor must be in (0, 1); got 1.5"),
        (["train", "--schedule", "polynomial", "--power", "0"], "--power must be > 0; got 0.0"),
        (["train", "--schedule", "cosine", "--min-lr", "0.5"], "--min-lr must be <= lr (0.05); got 0.5"),
        (["train", "--schedule", "cosine", "--snapshots"], "--snapshots must be used with a schedule with cycles"),
        (["train", "--model", "lenet", "--batch-norm"], "--batch-norm applies to model 'small-vgg' only"),
        (["train", "--ep", "3"], "unrecognized arguments: --ep 3"),
        (["train", "--optimizer", "lion"], "argument --optimizer: invalid choice: 'lion'"),
        (["train", "--optimizer", "adam", "--nesterov"], "--nesterov applies to optimizer sgd, heavy-ball only"),
        (["train", "--optimizer", "adam", "--momentum", "0.9"], "--momentum applies to optimizer sgd, heavy-ball, "
                                                                  "rmsprop only; got optimizer 'adam'"),
        (["train", "--betas", "0.9", "0.99"], "--betas applies to optimizer adam, adamw only; got optimizer 'sgd'"),
        (["train", "--optimizer", "adam", "--betas", "0.9", "1"], "--betas must be in [0, 1); got 1.0"),
        (["train", "--optimizer", "adam", "--centered"], "--centered applies to optimizer rmsprop only"),
        (["train", "--optimizer", "rmsprop", "--alpha", "2"], "--alpha must be in [0, 1]; got 2.0"),
        (["train", "--amsgrad"], "--amsgrad applies to optimizer adam, adamw only"),
        (["train", "--optimizer", "adamw", "--lr-decay", "0.1"], "--lr-decay applies to optimizer adagrad only"),
        (["train", "--eps", "1e-8"], "--eps applies to optimizer adagrad, rmsprop, adam, adamw only"),
        (["train", "--clip-grad-norm", "0"], "--clip-grad-norm must be > 0; got 0.0"),
        (["train", "--swa-lr", "0.01"], "--swa-lr needs swa_start"),
        (["train", "--swa-start", "4", "--epochs", "4"], "--swa-start must be < epochs (4)"),
        (["train", "--swa-start", "0"], "argument --swa-start: must be an integer in [1, 2147483647]; got 0"),
        (["train", "--swa-start", "1", "--schedule", "sgdr", "--snapshots"],
         "--swa-start cannot be combined with snapshots"),
        (["lr-find", "--start-lr", "1", "--end-lr", "0.1"], "--start-lr must be > 0 and below --end-lr"),
        (["lr-find", "--steps", "1"], "argument --steps: must be an integer in [10, 2147483647]; got 1"),
        (["lr-find", "--momentum", "1.5"], "--momentum must be in [0, 1); got 1.5"),
        (["schedules", "--schedule", "step", "--gamma", "-1"], "--gamma must be > 0; got -1.0"),
    ],
)
def test_bad_arguments_get_one_line_and_exit_code_2(capsys, tmp_path, argv, message):
    out = ["--out", str(tmp_path / "x" / ("x.png" if argv[0] != "train" else ""))]
    code, stdout, err = run(capsys, *argv, *out)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("minisgd: error: ") and message in lines[0], err
    assert "Traceback" not in err and stdout == ""  # refused before anything was loaded or trained
    assert not (tmp_path / "x").exists()


def test_out_pointing_to_a_file_is_refused_before_training(capsys, tmp_path):
    existing = tmp_path / "notes.txt"
    existing.write_text("keep me")
    code, out, err = run(capsys, "train", *TINY, "--out", str(existing))
    assert code == 2 and "--out must be a folder for the run's files" in err and str(existing) in err
    assert out == "" and existing.read_text() == "keep me"


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
    assert code == 2 and "already holds a run" in err and "resuming" in err
    assert {name: (out / name).read_bytes() for name in before} == before


def test_the_default_run_folder_is_under_runs(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "train", *TINY, "--epochs", "1")
    assert code == 0
    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name.startswith("lenet-synthetic-") and (folder / "curves.png").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]  # nothing in the current folder itself
    code, out, _ = run(capsys, "lr-find", "--train-size", "128", "--batch-size", "32", "--steps", "10")
    assert code == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["runs"]
    assert len(list((tmp_path / "runs").glob("lr-find-lenet-synthetic-*.png"))) == 1


SNAPSHOTS = ["--schedule", "sgdr", "--t0", "1", "--t-mult", "1", "--snapshots"]
SWA = ["--schedule", "constant", "--swa-start", "1", "--swa-lr", "0.01"]  # SWA after epoch 1 of 3


@pytest.mark.parametrize("kind", ["snapshots", "swa"])
def test_resume_accepts_the_run_folder_and_continues_exactly_with_its_snapshots(capsys, tmp_path, kind):
    straight, split = tmp_path / "straight", tmp_path / "split"
    common = [*TINY, *(SNAPSHOTS if kind == "snapshots" else SWA)]
    code, expected_out, _ = run(capsys, "train", *common, "--epochs", "3", "--out", str(straight))
    assert code == 0
    assert run(capsys, "train", *common, "--epochs", "2", "--out", str(split))[0] == 0
    with np.load(split / "checkpoint.npz") as saved:
        after_epoch_2 = {k: saved[k] for k in saved.files if k.startswith("model/")}
    # sgdr and constant have no horizon: the same run may go on for more epochs, on the same schedule.
    code, out, _ = run(capsys, "train", "--resume", str(split), "--epochs", "3")
    assert code == 0 and "resuming after epoch 2 of 3" in out

    assert out.strip().splitlines()[-2:] == expected_out.strip().splitlines()[-2:]  # ensemble/SWA and final line
    expected = json.loads((straight / "history.json").read_text())
    resumed = json.loads((split / "history.json").read_text())
    assert resumed["step_loss"] == expected["step_loss"] and resumed["step_lr"] == expected["step_lr"]
    if kind == "snapshots":
        assert re.search(r"snapshot ensemble of 3 models: test_acc=\d\.\d{4} \(single model \d\.\d{4}\)", out)
        assert resumed["snapshot_test_acc"] == expected["snapshot_test_acc"] is not None
    else:
        assert re.search(r"^SWA average of 2 models \(epochs 2–3, swa_lr 0.01\): test_acc=\d\.\d{4} "
                         r"test_loss=\d\.\d{4} \(last iterate \d\.\d{4}\)$", out, re.M)
        assert re.fullmatch(r"test_acc=\d\.\d{4} test_loss=\d+\.\d{4} swa_test_acc=\d\.\d{4}",
                            out.strip().splitlines()[-1])
        assert resumed["swa_test_acc"] == expected["swa_test_acc"] is not None
        # The rate, written out: 0.05 for epoch 1 (4 updates), then a cosine anneal to 0.01 over one epoch
        # (τ = 0 … 3), then 0.01 held.
        anneal = [0.01 + (0.05 - 0.01) * 0.5 * (1 + np.cos(np.pi * tau / 4)) for tau in range(4)]
        np.testing.assert_allclose(expected["step_lr"], [0.05] * 4 + anneal + [0.01] * 4, rtol=1e-12)
        # The average of the weights at the end of epochs 2 and 3 (epoch 1 ends before SWA starts).
        with np.load(split / "checkpoint.npz") as final:
            assert int(final["swa/n_averaged"]) == 2
            for key, w2 in after_epoch_2.items():
                name = key[len("model/"):]
                np.testing.assert_allclose(final[f"swa/module.{name}"], (w2 + final[key]) / 2, rtol=1e-6,
                                           atol=1e-7, err_msg=name)
            averaged = {k[len("swa/module."):]: final[k] for k in final.files if k.startswith("swa/module.")}
        # The SWA accuracy printed is the accuracy of those averaged weights (lenet: no BatchNorm to update).
        from minisgd import runs
        from minisgd.train import evaluate

        finished = runs.resume_run(split)
        finished.model.load_state_dict(averaged)
        assert evaluate(finished.model, finished.test_loader)["acc"] == resumed["swa_test_acc"]
    with np.load(straight / "checkpoint.npz") as a, np.load(split / "checkpoint.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        assert ("snapshot.2/0.weight" if kind == "snapshots" else "swa/module.0.weight") in a.files
        for name in a.files:
            if name not in ("history", "meta"):  # they hold seconds and images per second
                np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_resume_keeps_reduce_on_plateau_state(capsys, tmp_path):
    # A rate so small that the test loss improves by less than the 1e-4 relative threshold:
    # with patience 0 every epoch after the first cuts the rate by --factor.
    straight, split = tmp_path / "straight", tmp_path / "split"
    common = [*TINY, "--schedule", "reduce-on-plateau", "--lr", "1e-6", "--patience", "0", "--factor", "0.5",
              "--warmup-steps", "2"]
    assert run(capsys, "train", *common, "--epochs", "4", "--out", str(straight))[0] == 0
    assert run(capsys, "train", *common, "--epochs", "3", "--out", str(split))[0] == 0
    assert run(capsys, "train", "--resume", str(split / "checkpoint.npz"), "--epochs", "4", "--quiet")[0] == 0
    expected = json.loads((straight / "history.json").read_text())["step_lr"]
    resumed = json.loads((split / "history.json").read_text())["step_lr"]
    # Written out: warm-up over 2 updates from 0; the loss first fails to improve after epoch 2, so from
    # epoch 3 on the rate is 1e-6 · 0.5^(epoch − 2), 4 updates an epoch.
    by_hand = [0.0, 0.5e-6, 1e-6, 1e-6] + [1e-6 * 0.5**k for k in (0, 1, 2) for _ in range(4)]
    np.testing.assert_allclose(expected, by_hand, rtol=1e-12)
    assert resumed == expected


def test_resume_refuses_to_stretch_a_schedule_with_a_horizon(capsys, tmp_path):
    out = tmp_path / "run"
    assert run(capsys, "train", *TINY, "--epochs", "2", "--out", str(out))[0] == 0
    before = (out / "checkpoint.npz").read_bytes()
    code, _, err = run(capsys, "train", "--resume", str(out), "--epochs", "4")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--epochs: this run's cosine schedule was built for 2 epochs" in err and "start a new run" in err
    assert (out / "checkpoint.npz").read_bytes() == before
    # Resuming a finished run without --epochs scores and prints it again, identically.
    code, out_text, _ = run(capsys, "train", "--resume", str(out))
    assert code == 0 and LAST_LINE.match(out_text.strip().splitlines()[-1])


def test_resume_refuses_other_settings_and_foreign_files(capsys, tmp_path):
    out = tmp_path / "run"
    assert run(capsys, "train", *TINY, "--epochs", "1", "--out", str(out))[0] == 0
    code, _, err = run(capsys, "train", "--resume", str(out), "--lr", "0.1", "--epochs", "2")
    assert code == 2 and "--lr cannot be given with --resume" in err
    code, _, err = run(capsys, "train", "--resume", str(out), "--optimizer", "adam", "--epochs", "2")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--optimizer cannot be given with --resume" in err and "start a new run" in err
    code, _, err = run(capsys, "train", "--resume", str(tmp_path / "nowhere"))
    assert code == 2 and "does not exist" in err

    pickled = tmp_path / "objects.npz"
    np.savez(pickled, a=np.array([{"x": 1}], dtype=object))
    bad = tmp_path / "zeros.npz"
    bad.write_bytes(b"\x00" * 100)
    for path in (pickled, bad):
        code, _, err = run(capsys, "train", "--resume", str(path))
        assert code == 2 and "is not a minisgd checkpoint" in err and "allow_pickle" not in err
        assert len(err.strip().splitlines()) == 1
    assert bad.read_bytes() == b"\x00" * 100


@pytest.mark.filterwarnings("error")  # NumPy's overflow warnings must not reach the user
def test_a_diverging_run_tells_the_truth(capsys, tmp_path):
    # From the first step: no epoch ends, so no checkpoint exists, and none may be named.
    code, _, err = run(capsys, "train", *TINY, "--epochs", "2", "--lr", "1000", "--out", str(tmp_path / "early"))
    assert code == 1
    assert re.search(r"training stopped at step \d+ \(epoch 1\): the loss is (nan|inf) with lr=", err)
    assert "learning rate is too large" in err and "smaller --lr (now 1000)" in err
    assert "no checkpoint was written" in err and "--resume" not in err and "checkpoint.npz" not in err
    assert sorted(p.name for p in (tmp_path / "early").iterdir()) == ["curves.png", "history.json"]

    # In the second epoch (step schedule: 0.01, then ×1e5): the first epoch's checkpoint is the last good one.
    later = tmp_path / "later"
    code, _, err = run(capsys, "train", *TINY, "--epochs", "2", "--lr", "0.01", "--schedule", "step",
                       "--gamma", "1e5", "--out", str(later))
    assert code == 1 and "(epoch 2)" in err and "lr=1000" in err
    assert f"{later / 'checkpoint.npz'} holds epoch 1, the last good weights" in err
    assert "would repeat the same updates and diverge again" in err
    assert sorted(p.name for p in later.iterdir()) == ["checkpoint.npz", "curves.png", "history.json"]


def test_snapshot_ensemble_of_one_model_says_model(capsys, tmp_path):
    code, out, _ = run(capsys, "train", *TINY, "--epochs", "2", "--schedule", "sgdr", "--t0", "1", "--t-mult", "2",
                       "--snapshots", "--out", str(tmp_path / "run"))
    assert code == 0 and "snapshot ensemble of 1 model: " in out


def test_lr_find_prints_its_suggestion_alternatives_and_why_it_stopped(capsys, tmp_path):
    code, out, _ = run(capsys, "lr-find", "--train-size", "256", "--steps", "12", "--model", "small-vgg",
                       "--batch-norm", "--out", str(tmp_path / "lr.png"))
    assert code == 0 and (tmp_path / "lr.png").stat().st_size > 0
    assert re.search(r"swept \d+ updates from lr=1e-05; (stopped early: .+|ran all of them, up to lr=10)", out)
    assert re.search(r"suggested lr [\d.e+-]+ \(the smoothed loss's minimum, at lr=[\d.e+-]+, divided by 5\); "
                     r"alternatives: steepest descent before the minimum [\d.e+-]+, valley [\d.e+-]+", out)
    assert re.search(r"^suggested_lr=\d", out.strip().splitlines()[-1])


def test_schedules_draws_every_schedule_of_the_library(capsys, tmp_path):
    from minisgd import recipe

    code, out, _ = run(capsys, "schedules", "--schedule", *recipe.SCHEDULES, "--warmup-steps", "5",
                       "--out", str(tmp_path / "s.png"))
    assert code == 0 and (tmp_path / "s.png").stat().st_size > 0


def test_cuda_without_cupy_is_a_clear_error(capsys, tmp_path, monkeypatch):
    from minisgd import backend

    monkeypatch.setattr(backend, "_cupy_or_none", lambda: None)
    code, _, err = run(capsys, "train", *TINY, "--device", "cuda", "--out", str(tmp_path / "run"))
    assert code == 2 and "pip install cupy-cuda12x" in err


@pytest.mark.parametrize("optimizer, flags, lr, state", [
    ("sgd", [], 0.05, "buffer.0"),
    ("heavy-ball", ["--nesterov"], 0.05, "buffer.0"),
    ("adagrad", ["--lr-decay", "0.01", "--eps", "1e-9"], 0.01, "sum.0"),
    ("rmsprop", ["--alpha", "0.9", "--centered", "--momentum", "0.5"], 1e-3, "grad_avg.0"),
    ("adam", ["--betas", "0.8", "0.99", "--amsgrad"], 1e-3, "max_exp_avg_sq.0"),
    ("adamw", ["--lr", "0.002", "--weight-decay", "0.05", "--no-decay-bias-bn"], 0.002, "exp_avg.0"),
])
def test_each_optimizer_trains_from_the_command_line_with_its_own_defaults(capsys, tmp_path, optimizer, flags, lr,
                                                                           state):
    out = tmp_path / "run"
    code, stdout, err = run(capsys, "train", *TINY, "--epochs", "1", "--optimizer", optimizer, *flags,
                            "--out", str(out))
    assert code == 0, err
    assert f"optimizer: {optimizer} (lr={lr}" in stdout and LAST_LINE.match(stdout.strip().splitlines()[-1])
    history = json.loads((out / "history.json").read_text())
    assert history["step_lr"][0] == lr  # cosine starts at the optimizer's rate
    with np.load(out / "checkpoint.npz") as saved:
        assert f"optimizer/{state}" in saved.files  # the optimizer's own state is what gets saved
        config = json.loads(str(saved["meta"]))["config"]
    assert config["optimizer"] == optimizer and config["lr"] == lr


def test_clip_grad_norm_changes_the_updates_but_not_the_first_loss(capsys, tmp_path):
    losses = {}
    for name, flags in (("plain", []), ("clipped", ["--clip-grad-norm", "0.01"])):
        assert run(capsys, "train", *TINY, "--epochs", "1", *flags, "--out", str(tmp_path / name))[0] == 0
        losses[name] = json.loads((tmp_path / name / "history.json").read_text())["step_loss"]
    assert losses["plain"][0] == losses["clipped"][0]  # computed before the first (clipped) update
    assert losses["plain"][1:] != losses["clipped"][1:]


def test_every_default_the_help_names_is_the_one_the_command_uses():
    """`--help`'s "(default: X)" for a single number agrees with the parser (schedules draws step 10, t0 2)."""
    import argparse
    import re

    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    checked = 0
    for name, command in commands.items():
        for action in command._actions:
            match = re.search(r"\(default: ([-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?)\)$", action.help or "")
            if match and isinstance(action.default, (int, float)) and not isinstance(action.default, bool):
                assert float(match.group(1)) == action.default, f"{name} {action.option_strings}"
                checked += 1
    assert checked >= 20
    assert commands["schedules"].parse_args([]).step_size == 10 and commands["schedules"].parse_args([]).t0 == 2
    assert "(default: 10)" in commands["schedules"].format_help().replace("\n", " ").split("--step-size", 1)[1]


# ---------------------------------------------------------------- issue 19: each traceback, now one line
@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--epochs", "9" * 400], "argument --epochs: must be an integer in [1, 2147483647]; got 99999"),
        (["train", "--batch-size", str(2**1023)], "argument --batch-size: must be an integer in [1, 2147483647]"),
        (["train", "--seed", "١٢"], "argument --seed: must be an integer in [0, 2147483647] (plain ASCII digits"),
        (["train", "--schedule", "step", "--step-size", "9" * 30], "argument --step-size: must be an integer in"),
        (["train", "--schedule", "sgdr", "--t0", "9" * 30], "argument --t0: must be an integer in [1, 2147483647]"),
        (["train", "--schedule", "multistep", "--milestones", "1", "9" * 30], "argument --milestones: must be an"),
        (["train", "--train-size", "2147483647"], "--train-size must be at most "),
        (["train", "--schedule", "exponential", "--gamma", "1e300"],
         "--gamma: with schedule exponential, a gamma > 1 makes the rate grow until it overflows"),
        (["train", "--schedule", "cyclic", "--cyclic-mode", "exp_range", "--gamma", "1e300"],
         "--gamma: with schedule cyclic, a gamma > 1 makes the rate grow until it overflows"),
        (["schedules", "--schedule", "exponential", "--gamma", "1e300"], "--gamma: with schedule exponential"),
        (["schedules", "--epochs", "9" * 12], "argument --epochs: must be an integer in [1, 2147483647]"),
        (["schedules", "--epochs", "2000", "--steps-per-epoch", "1000"],
         "--epochs × --steps-per-epoch must be <= 1,000,000"),
        (["lr-find", "--start-lr", "5e-324", "--end-lr", "1e308"],
         "--start-lr: --end-lr / --start-lr must be <= 1e+30"),
        (["lr-find", "--end-lr", "1e-6"], "--end-lr must be above --start-lr (1e-05); got 1e-06"),
        (["train", "--resume", ""], "argument --resume: must be a file or folder name; got ''"),
        (["train", "--data-dir", " "], "argument --data-dir: must be a file or folder name; got ' '"),
    ],
)
def test_extreme_values_get_one_line(capsys, tmp_path, argv, message):
    out = ["--out", str(tmp_path / "x" / ("x.png" if argv[0] != "train" else ""))]
    code, stdout, err = run(capsys, *argv, *out)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and message in lines[0] and "Traceback" not in err, err


@pytest.mark.parametrize("command", ["lr-find", "schedules"])
def test_figure_out_must_be_a_writable_figure_file(capsys, tmp_path, command):
    (tmp_path / "a_file").write_text("keep me")
    (tmp_path / "folder.png").mkdir()
    cases = {
        str(tmp_path): "--out must be a file name ending in .png, .pdf, .svg",
        str(tmp_path / "folder.png"): "(a folder)",
        str(tmp_path / "plot.xyz"): "--out must be a file name ending in .png, .pdf, .svg; got",
        str(tmp_path / "a_file" / "x.png"): f"--out: cannot write {tmp_path / 'a_file' / 'x.png'}: "
                                            f"{tmp_path / 'a_file'} is a file, not a folder",
        str(tmp_path / ("n" * 300 + ".png")): "File name too long",
        "/sys/minisgd-test/x.png": "--out: could not save /sys/minisgd-test/x.png",
    }
    extra = ["--train-size", "64", "--steps", "10"] if command == "lr-find" else []
    for path, message in cases.items():
        code, out, err = run(capsys, command, *extra, "--out", path)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and message in lines[0], (path, err)
    assert (tmp_path / "a_file").read_text() == "keep me"


@pytest.mark.parametrize("out, message", [
    ("{tmp}/a_file/run", "--out: cannot use {tmp}/a_file/run as the run's folder: Not a directory"),
    ("{tmp}/" + "n" * 300, "File name too long"),
    ("/sys/minisgd-test/run", "--out: cannot use /sys/minisgd-test/run as the run's folder: Operation not permitted"),
])
def test_train_out_that_cannot_be_a_folder_gets_one_line(capsys, tmp_path, out, message):
    (tmp_path / "a_file").write_text("keep me")
    code, stdout, err = run(capsys, "train", *TINY, "--out", out.format(tmp=tmp_path))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and message.format(tmp=tmp_path) in lines[0], err


def test_a_huge_lr_diverges_with_its_message_and_a_figure(capsys, tmp_path):
    # The plot of a rate of 1e308 used to crash matplotlib and hide the divergence message.
    code, out, err = run(capsys, "train", *TINY, "--lr", "1e308", "--epochs", "1", "--out", str(tmp_path / "run"))
    assert code == 1 and "Traceback" not in err
    assert "training stopped at step 1 (epoch 1): the loss is nan" in err
    assert "saved in" in err and (tmp_path / "run" / "curves.png").stat().st_size > 0


def test_a_default_folder_that_cannot_be_made_does_not_blame_out(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").write_text("a file where the runs/ folder would go")
    code, out, err = run(capsys, "train", *TINY)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith("minisgd: error: the default run folder cannot be used: cannot use runs/lenet-")
    assert lines[0].endswith("as the run's folder: Not a directory; name another with --out")
