"""Ctrl-C at any moment, then ``--resume``: the run ends exactly where an uninterrupted one ends.

A real ``python -m minisgd train`` runs in a subprocess and gets a real SIGINT
at different moments: before the first checkpoint, right after an epoch ends
(while the next checkpoint may be being written), and in the middle of an
epoch. The uninterrupted run it is compared with runs in another subprocess.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN = ["train", "--train-size", "512", "--test-size", "128", "--batch-size", "64", "--schedule", "sgdr",
       "--t0", "1", "--t-mult", "1", "--snapshots", "--epochs", "3"]


def minisgd(*argv):
    return subprocess.Popen([sys.executable, "-m", "minisgd", *argv], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def finish(process):
    out, err = process.communicate(timeout=600)
    return process.returncode, out, err


def interrupt(folder, moment):
    """Start the run into ``folder``, send SIGINT at ``moment``; return (exit code, stdout, stderr)."""
    process = minisgd(*RUN, "--out", str(folder))
    lines = []
    for line in process.stdout:
        lines.append(line)
        if moment == "before the first checkpoint" and line.startswith("training "):
            break
        if moment == "as an epoch ends" and line.startswith("epoch 2:"):
            break  # the checkpoint of epoch 2 is being written about now
        if moment == "mid-epoch" and line.startswith("epoch 2:"):
            time.sleep(0.3)  # into epoch 3
            break
    process.send_signal(signal.SIGINT)
    code, out, err = finish(process)
    return code, "".join(lines) + out, err


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("straight") / "run"
    code, out, err = finish(minisgd(*RUN, "--out", str(folder)))
    assert code == 0, err
    return out.strip().splitlines(), json.loads((folder / "history.json").read_text())


@pytest.mark.parametrize("moment", ["as an epoch ends", "mid-epoch"])
def test_ctrl_c_then_resume_ends_exactly_like_the_uninterrupted_run(tmp_path, uninterrupted, moment):
    folder = tmp_path / "run"
    code, out, err = interrupt(folder, moment)
    if code == 0:  # the run was quicker than the signal: nothing to resume, and nothing to check
        pytest.skip("the run finished before SIGINT arrived")
    assert code == 130 and "Traceback" not in err
    assert f"interrupted: {folder / 'checkpoint.npz'} holds epoch" in err and f"--resume {folder}" in err
    assert not list(folder.glob(".*.tmp.*"))  # a save cut short leaves no temporary file behind

    code, out, err = finish(minisgd("train", "--resume", str(folder)))
    assert code == 0, err
    expected_lines, expected = uninterrupted
    assert out.strip().splitlines()[-2:] == expected_lines[-2:]  # "snapshot ensemble of 3 models: …" and the result
    assert expected_lines[-2].startswith("snapshot ensemble of 3 models")
    resumed = json.loads((folder / "history.json").read_text())
    for key in ("step_loss", "step_lr", "snapshot_test_acc"):
        assert resumed[key] == expected[key], key
    assert [e["test_acc"] for e in resumed["epochs"]] == [e["test_acc"] for e in expected["epochs"]]


def test_ctrl_c_before_the_first_checkpoint_says_nothing_was_saved(tmp_path):
    folder = tmp_path / "run"
    code, _, err = interrupt(folder, "before the first checkpoint")
    assert code == 130 and "nothing was saved" in err and "Traceback" not in err
    assert not folder.exists() or not any(folder.iterdir())


def test_resume_removes_the_temporary_file_of_a_killed_save(tmp_path):
    from minisgd import cli

    folder = tmp_path / "run"
    assert cli.main([*RUN[:-1], "1", "--quiet", "--out", str(folder)]) == 0
    leftover = folder / ".checkpoint.npz.tmp.k1ll3d"  # what os.replace never got to rename
    leftover.write_bytes(b"half a zip")
    assert cli.main(["train", "--resume", str(folder)]) == 0
    assert not leftover.exists() and (folder / "checkpoint.npz").is_file()


@pytest.mark.parametrize("moment, trigger, delay", [
    ("while NumPy is imported", "numpy._core", 0.0),
    ("while minisgd.cli is imported", "| minisgd.cli", 0.0),
    ("while the data is drawn", "| minisgd.data\n", 0.3),
])
def test_ctrl_c_while_starting_prints_one_line(tmp_path, moment, trigger, delay):
    # -X importtime reports each import on stderr as it completes: the moment to send SIGINT.
    folder = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "minisgd", "train", "--train-size",
                                "50000", "--out", str(folder)], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    seen = []
    for line in process.stderr:
        seen.append(line)
        if trigger in line:
            time.sleep(delay)
            process.send_signal(signal.SIGINT)
            break
    out, rest = process.communicate(timeout=120)
    err = [line for line in ("".join(seen) + rest).splitlines() if not line.startswith("import time:")]
    assert process.returncode == 130 and "Traceback" not in rest, rest
    expected = ("interrupted before the first epoch ended: nothing was saved" if "data" in moment
                else "interrupted while starting: nothing was saved")
    assert err == [expected]
    assert not folder.exists()  # the folder claimed for the run is removed again (it was empty)
