"""Every ``python -m minisgd`` command in README.md runs as written, in a short form.

The commands are read from the README itself, so a command added there is
tested here. The short form adds options that shrink the work (a few hundred
images, at most 3 epochs, 10 range-test steps) and sends the outputs into a
temporary folder; everything else is the README's. A ``train`` command must end
with the machine-readable line (its digits depend on the machine and are not
checked here: the lead measures the headline), ``lr-find`` with ``suggested_lr=``.
"""

import re
import shlex
from pathlib import Path

import pytest

from minisgd import cli

ROOT = Path(__file__).resolve().parents[1]
CIFAR_SUBSET = ROOT.parent / "shared" / "data" / "cifar10-subset"
LAST_LINE = re.compile(r"^test_acc=\d\.\d{4} test_loss=\d+\.\d{4}( swa_test_acc=\d\.\d{4})?$")


def readme_commands() -> list[str]:
    """Each ``python -m minisgd …`` in the README's code blocks (after ``&&`` too), without its comment."""
    text = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split("#", 1)[0]
            for part in line.split("&&"):
                part = part.strip()
                if part.startswith("python -m minisgd"):
                    commands.append(part)
    return list(dict.fromkeys(commands))


COMMANDS = readme_commands()


def test_the_readme_has_the_commands_this_file_expects():
    subcommands = [shlex.split(c)[3] if len(shlex.split(c)) > 3 else "" for c in COMMANDS]
    assert "python -m minisgd train" in COMMANDS  # the headline
    assert {"train", "lr-find", "schedules", "notebooks"} <= set(subcommands)
    assert any("--resume" in c for c in COMMANDS) and any("sgdr" in c for c in COMMANDS)


def short_form(argv: list[str], tmp_path: Path, resumable: Path) -> list[str]:
    """The README's arguments, shrunk to a quick run writing under ``tmp_path``."""
    argv = [str(resumable) if a == "runs/<run>" else a for a in argv]
    if "--help" in argv:
        return argv
    if argv[0] == "train" and "--resume" not in argv:
        if "--epochs" in argv:
            i = argv.index("--epochs") + 1
            argv[i] = str(min(int(argv[i]), 3))
        if "--data-dir" in argv:
            argv[argv.index("--data-dir") + 1] = str(CIFAR_SUBSET)
        if "--val-size" in argv:
            argv[argv.index("--val-size") + 1] = "64"  # of the 256 training images below
        return [*argv, "--train-size", "256", "--test-size", "128", "--out", str(tmp_path / "run")]
    if argv[0] == "lr-find":
        return [*argv, "--train-size", "256", "--steps", "10"]
    return argv


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_runs(command, tmp_path, monkeypatch, capsys):
    argv = shlex.split(command)[3:]  # after "python -m minisgd"
    if "--data-dir" in argv and not (CIFAR_SUBSET / "cifar-10-batches-py" / "test_batch").is_file():
        pytest.skip(f"needs CIFAR-10 in the official layout (the shared subset will do) at {CIFAR_SUBSET}")
    monkeypatch.chdir(tmp_path)  # default outputs go under runs/ here, never into the project
    resumable = tmp_path / "earlier"
    if "--resume" in argv:  # a run to continue: 2 epochs, Ctrl-C as the second one ends
        straight = _last_line_of_uninterrupted_run(tmp_path / "straight", capsys)
        _interrupted_run(resumable)

    if "--help" in argv:
        with pytest.raises(SystemExit) as exit_:
            cli.main(argv)
        assert exit_.value.code == 0 and "--schedule" in capsys.readouterr().out
        return
    if argv[0] == "exercise":
        _exercise_command_runs(argv, capsys)
        return
    code = cli.main(short_form(argv, tmp_path, resumable))
    out, err = capsys.readouterr()
    assert code == 0, err
    last = out.strip().splitlines()[-1]
    if argv[0] == "train":
        assert LAST_LINE.match(last), out
    if "--resume" in argv:
        assert "resuming after epoch 1 of 2" in out and last == straight  # bit for bit
    if "--snapshots" in argv:
        assert re.search(r"snapshot ensemble of \d+ models?: test_acc=", out)
    if "--swa-start" in argv:
        assert re.search(r"^SWA average of \d+ models? .*test_acc=", out, re.M) and "swa_test_acc=" in last
    if argv[0] == "lr-find":
        assert last.startswith("suggested_lr=") and list((tmp_path / "runs").glob("lr-find-*.png"))
    if argv[0] == "schedules":
        assert list((tmp_path / "runs").glob("schedules-*.png"))
    if "--val-size" in argv:
        assert re.search(r"^epoch 1: .* val_loss=\d+\.\d{4} val_acc=\d\.\d{4} \(", out, re.M)
    if argv[0] == "notebooks":
        out_dir = tmp_path / argv[argv.index("--out") + 1]
        assert len(list(out_dir.glob("[0-9][0-9]_*.ipynb"))) == len(list((ROOT / "lectures").glob("[0-9][0-9]_*.py")))


SETTINGS = dict(train_size=256, test_size=128, epochs=2)


def _last_line_of_uninterrupted_run(folder: Path, capsys) -> str:
    assert cli.main(["train", "--train-size", "256", "--test-size", "128", "--epochs", "2", "--quiet",
                     "--out", str(folder)]) == 0
    return capsys.readouterr().out.strip().splitlines()[-1]


def _interrupted_run(folder: Path) -> None:
    """The same run, stopped by Ctrl-C (KeyboardInterrupt) as its second epoch ends: the checkpoint holds epoch 1."""
    from minisgd import recipe, runs

    def ctrl_c_at_epoch_2(line: str) -> None:
        if line.startswith("epoch 2:"):
            raise KeyboardInterrupt

    run = runs.start_run(recipe.RunConfig(**SETTINGS), folder)
    with pytest.raises(KeyboardInterrupt):
        runs.train_run(run, progress=False, log=ctrl_c_at_epoch_2)
    assert run.saved_epoch == 1


def _exercise_command_runs(argv: list[str], capsys) -> None:
    """``exercise list`` and ``start`` exit 0; ``check`` (after ``start``) grades the fresh stub: "not started"."""
    if argv[1] == "check":
        assert cli.main(["exercise", "start", *argv[2:]]) == 0
        capsys.readouterr()
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert err == "" and code == (1 if argv[1] == "check" else 0), out + err
    if argv[1] == "check":
        assert "not started" in out and out.strip().splitlines()[-1].startswith("0 of ")
