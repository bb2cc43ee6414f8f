"""A run (minisgd.runs): its folder and lock, its checkpoints, a failed save, a resume from the right file.

Two runs that want the same folder at once are real processes here; a full
disk is a write that raises ENOSPC (monkeypatched), and, where this machine
lets the test mount one, a real tmpfs of 900 kB.
"""

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minisgd import checkpoint, cli, recipe, runs
from minisgd.atomic import LOCK_NAME, FolderLock

ROOT = Path(__file__).resolve().parents[1]
SMALL = recipe.RunConfig(train_size=128, test_size=64, batch_size=32, epochs=2, schedule="step")
TINY = ["--train-size", "128", "--test-size", "64", "--batch-size", "32", "--schedule", "step", "--quiet"]


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_run_from_the_recipe_trains_saves_and_resumes(tmp_path):
    config = recipe.RunConfig(train_size=128, test_size=64, batch_size=32, epochs=2, schedule="snapshot",
                              snapshots=True)
    run = runs.start_run(config, tmp_path / "run")
    assert run.steps_per_epoch == 4 and run.snapshot_steps == [4, 8]
    result = runs.train_run(run, progress=False, log=None)
    assert result.stopped is None and result.snapshot_count == 2 and 0 <= result.snapshot_test_acc <= 1
    assert sorted(p.name for p in result.saved) == sorted(runs.RUN_FILES)

    again = runs.resume_run(tmp_path / "run")
    assert again.start_epoch == again.saved_epoch == 2 and len(again.snapshots) == 2
    for saved, reloaded in zip(run.snapshots, again.snapshots):
        for name in saved:
            np.testing.assert_array_equal(saved[name], reloaded[name])
    with pytest.raises(ValueError, match="snapshot schedule was built for 2 epochs"):
        runs.resume_run(tmp_path / "run", epochs=3)
    with pytest.raises(ValueError, match="already holds a run"):
        runs.start_run(config, tmp_path / "run")


# ------------------------------------------------------------------ the folder's lock
def test_a_run_holds_its_folder_until_it_ends(tmp_path):
    run = runs.start_run(SMALL, tmp_path / "run")
    lock = tmp_path / "run" / LOCK_NAME
    assert lock.read_text().strip() == str(os.getpid())
    with pytest.raises(ValueError, match=f"out: .* is in use by another minisgd run \\(process {os.getpid()}"):
        runs.start_run(SMALL, tmp_path / "run")
    runs.train_run(run, progress=False, log=None)
    assert not lock.exists()  # released: the folder now holds a finished run, refused for that reason
    with pytest.raises(ValueError, match="already holds a run"):
        runs.start_run(SMALL, tmp_path / "run")


def dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_stale_lock_is_taken_over_with_a_note(tmp_path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    pid = dead_pid()
    (folder / LOCK_NAME).write_text(f"{pid}\n")  # left by a run that was killed before its first epoch ended
    code, out, err = run_cli(capsys, "train", *TINY, "--epochs", "1", "--out", str(folder))
    assert code == 0
    assert f"note: took over the lock {folder / LOCK_NAME} left by process {pid}, which is no longer running" in err
    assert not (folder / LOCK_NAME).exists() and (folder / "checkpoint.npz").is_file()


def test_two_runs_started_at_once_with_the_same_out_one_is_refused(tmp_path):
    folder = tmp_path / "run"
    argv = [sys.executable, "-m", "minisgd", "train", *TINY, "--epochs", "2", "--out", str(folder)]
    first, second = (subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for _ in range(2))
    results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in (first, second)]
    assert sorted(code for code, _, _ in results) == [0, 2], results
    won_out = next(out for code, out, _ in results if code == 0)
    line = one_line(next(err for code, _, err in results if code == 2))
    assert "is in use by another minisgd run" in line or "already holds a run" in line, line
    # The folder holds the winner's run, whole: its last line is what its checkpoint's history says.
    saved = checkpoint.load_checkpoint(folder / "checkpoint.npz")
    assert saved["epoch"] == 2 and f"test_acc={saved['history']['epochs'][-1]['test_acc']:.4f}" in won_out
    assert json.loads((folder / "history.json").read_text())["epochs"] == saved["history"]["epochs"]
    assert not (folder / LOCK_NAME).exists()


def test_the_lock_is_released_when_the_start_fails_and_an_empty_folder_removed(tmp_path):
    config = recipe.RunConfig(dataset="cifar10", data_dir=str(tmp_path / "nothing"), epochs=1)
    with pytest.raises(ValueError, match="CIFAR-10 not found"):
        runs.start_run(config, tmp_path / "new" / "run")
    assert not (tmp_path / "new").exists()
    lock = FolderLock(tmp_path)  # nothing holds tmp_path either
    lock.release()


# ------------------------------------------------------------------ a full disk
def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_during_a_save_says_which_epoch_is_kept(tmp_path, capsys, monkeypatch):
    real_savez, calls = np.savez, []

    def savez_then_full(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            no_space()
        return real_savez(*args, **kwargs)

    monkeypatch.setattr(checkpoint.np, "savez", savez_then_full)
    folder = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", *TINY, "--epochs", "3", "--out", str(folder))
    assert code == 1
    line = one_line(err)
    assert line == (f"minisgd: error: could not save {folder / 'checkpoint.npz'} after epoch 2: the disk is full "
                    f"(No space left on device); {folder / 'checkpoint.npz'} still holds epoch 1; free some space, "
                    f"then continue with: python -m minisgd train --resume {folder}")
    assert checkpoint.load_checkpoint(folder / "checkpoint.npz")["epoch"] == 1
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint.npz"]  # no temporary file, no lock
    assert "saved in" not in out  # no claim about files that were not written


def test_a_full_disk_at_the_end_keeps_the_whole_run_and_says_how_to_rewrite(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(runs, "plot_history", no_space, raising=False)
    import minisgd.plots

    monkeypatch.setattr(minisgd.plots, "plot_history", no_space)
    folder = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", *TINY, "--epochs", "1", "--out", str(folder))
    assert code == 1
    assert one_line(err).startswith(f"minisgd: error: could not save {folder / 'curves.png'} at the end of the "
                                    f"run: the disk is full (No space left on device); {folder / 'checkpoint.npz'} "
                                    "still holds epoch 1")
    monkeypatch.undo()
    code, out, err = run_cli(capsys, "train", "--resume", str(folder), "--quiet")  # rewrites them, trains nothing
    assert code == 0 and (folder / "curves.png").is_file(), err


@pytest.fixture
def small_disk(tmp_path):
    """A real 900 kB tmpfs (root only; skipped where mounting is not allowed)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=900k", "tmpfs",
                                                        str(mount)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_real_full_disk(small_disk):
    # LeNet's checkpoint is about 510 kB: the first fits, the second (its temporary beside the first) does not.
    folder = small_disk / "run"
    result = subprocess.run([sys.executable, "-m", "minisgd", "train", *TINY, "--epochs", "3", "--out", str(folder)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    line = one_line(result.stderr)
    assert f"{folder / 'checkpoint.npz'} after epoch 2: the disk is full" in line
    assert "still holds epoch 1" in line
    assert checkpoint.load_checkpoint(folder / "checkpoint.npz")["epoch"] == 1


# ------------------------------------------------------------------ resuming the right file
def test_resuming_a_copy_beside_the_checkpoint_is_refused(tmp_path, capsys):
    folder = tmp_path / "run"
    assert run_cli(capsys, "train", *TINY, "--epochs", "1", "--out", str(folder))[0] == 0
    shutil.copy(folder / "checkpoint.npz", folder / "backup.npz")
    assert run_cli(capsys, "train", "--resume", str(folder), "--epochs", "2", "--quiet")[0] == 0  # now epoch 2
    before = (folder / "checkpoint.npz").read_bytes()
    code, out, err = run_cli(capsys, "train", "--resume", str(folder / "backup.npz"), "--epochs", "3")
    assert code == 2 and out == ""
    assert one_line(err) == (
        f"minisgd: error: --resume: {folder / 'backup.npz'} is not its folder's checkpoint.npz, and a resumed run "
        f"writes {folder / 'checkpoint.npz'} (epoch 2), which is there already: resuming would overwrite it. To "
        f"continue from backup.npz, copy it into a new folder as checkpoint.npz and resume that folder")
    assert (folder / "checkpoint.npz").read_bytes() == before
    # Done as it says, it continues from the backup's epoch 1.
    (tmp_path / "again").mkdir()
    shutil.copy(folder / "backup.npz", tmp_path / "again" / "checkpoint.npz")
    code, out, err = run_cli(capsys, "train", "--resume", str(tmp_path / "again"), "--epochs", "2", "--quiet")
    assert code == 0 and "resuming after epoch 1 of 2" in out, err


def test_resume_of_an_empty_name_is_refused(capsys):
    code, out, err = run_cli(capsys, "train", "--resume", "")
    assert code == 2 and one_line(err).startswith("minisgd: error: argument --resume: must be a file or folder "
                                                  "name; got ''")
