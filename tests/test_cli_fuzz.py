"""Fuzzing ``python -m minisgd``: every flag of every subcommand gets extreme and malformed values and odd paths.

The flags are read from the argparse parsers (:func:`minisgd.cli.build_parser`), so a flag added later is
fuzzed without touching this file. Whatever the values, the outcome must be one of

- exit 0, and every file the output says it saved exists and is not empty;
- exit 1: a diverged run with its message (and the files it names), or one line saying a save failed;
- exit 2 with exactly one line on stderr, ``minisgd: error: …``, blaming (if it starts with a flag) a flag that
  was given;

never a traceback. The work is made small so that hundreds of cases run in a minute: a run trains at most
one epoch on 64 images (``load_datasets`` and ``fit`` are wrapped, after the real checks have seen the
real values), the LR range test sweeps 10 updates and the schedules plot draws 2 000 updates. Each value
still goes through every check and every error path of the real command.

Profiles (``MINISGD_FULL=1`` for the long one): the deterministic sweep runs every flag with each of
``EXTREMES`` (or ``ODD_PATHS``) once; the generative test draws random combinations of 1 to 4 flags,
40 per subcommand in CI and 400 with ``MINISGD_FULL=1``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import tempfile
import urllib.error
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minisgd import cli, recipe
from minisgd.data import cifar

FULL = os.environ.get("MINISGD_FULL") == "1"
SHARED_CIFAR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cifar10-subset"

# Numbers no flag should take quietly, and text that is not a number at all.
EXTREMES = ["9" * 400, str(2**1023), "2147483648", "2147483647", "1e308", "-1e308", "5e-324", "nan", "inf", "-inf",
            "-0", "0", "-1", "0.5", "", " ", " 12", "12 ", "١٢", "１２", "0x10", "1_000", "1e", "--", "e3"]
LONG_NAME = "n" * 300  # beyond the 255 bytes a file name may have


def odd_paths(tmp: Path) -> dict[str, str]:
    """Paths that no command can use as asked: inside a file, too long, read-only, folders for files…"""
    (tmp / "a_file").write_text("not a folder")
    (tmp / "a_folder.png").mkdir(exist_ok=True)
    (tmp / "a_folder").mkdir(exist_ok=True)
    return {
        "inside a file": str(tmp / "a_file" / "x"),
        "inside a file, png": str(tmp / "a_file" / "x.png"),
        "a name too long": str(tmp / LONG_NAME),
        "a name too long, png": str(tmp / (LONG_NAME + ".png")),
        "a path too long": str(tmp / "/".join(["d" * 250] * 20)),
        "an existing file": str(tmp / "a_file"),
        "an existing folder": str(tmp / "a_folder"),
        "a folder named like a png": str(tmp / "a_folder.png"),
        "a bad suffix": str(tmp / "plot.xyz"),
        "no suffix": str(tmp / "plot"),
        "under /proc": "/proc/minisgd-fuzz/x.png",
        "under /sys (read-only)": "/sys/minisgd-fuzz/x.png",
        "empty": "",
        "blank": " ",
        "a new folder": str(tmp / "new" / "deeper"),
    }


# ------------------------------------------------------------------ the flags, from the parsers
def subcommands() -> dict[str, argparse.ArgumentParser]:
    """Every (sub)command's parser, by the words that select it: ``"train"``, ``"exercise check"``, …"""
    found = {}

    def walk(words: str, parser: argparse.ArgumentParser) -> None:
        nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if words and not nested:
            found[words] = parser
        for action in nested:
            for name, child in action.choices.items():
                walk(f"{words} {name}".strip(), child)

    walk("", cli.build_parser())
    return found


def flags_of(command: str) -> list[argparse.Action]:
    return [a for a in subcommands()[command]._actions if a.option_strings and a.dest != "help"]


def kind(action: argparse.Action) -> str:
    if action.nargs == 0:
        return "switch"
    if action.choices is not None:
        return "choice"
    if action.type is cli._path:
        return "path"
    return "number"


def arity(action: argparse.Action) -> int:
    return action.nargs if isinstance(action.nargs, int) else 1


FLAGS = [(command, action.option_strings[-1]) for command in subcommands() for action in flags_of(command)]
VALUED = [(c, f) for c, f in FLAGS if kind(next(a for a in flags_of(c) if f in a.option_strings)) != "switch"]
PATH_FLAGS = [(c, f) for c, f in FLAGS if kind(next(a for a in flags_of(c) if f in a.option_strings)) == "path"]


def test_the_fuzzed_flags_are_all_the_flags():
    # Every subcommand is covered, and every flag that takes a value gets values.
    assert set(subcommands()) >= {"train", "lr-find", "schedules", "notebooks", "exercise list", "exercise start",
                                  "exercise check"}
    for flag in ("--epochs", "--lr", "--milestones", "--t0", "--step-size", "--out", "--resume", "--train-size"):
        assert ("train", flag) in VALUED
    for command in subcommands():
        if command != "exercise list":  # it takes no argument
            assert (command, "--file" if command.startswith("exercise") else "--out") in PATH_FLAGS


# ------------------------------------------------------------------ running a case cheaply
class Accepted(Exception):
    """Raised in place of the work itself (training, sweeping, drawing) when a case only checks validation.

    ``LAST_WORK`` keeps what the work was given (the model and optimizer of a run), for tests to inspect.
    """


LAST_WORK: dict = {}


@contextlib.contextmanager
def small_work(tmp: Path, work: bool = True):
    """Everything a command does, but on 64 images for one epoch, 10 sweep updates, 2 000 drawn updates.

    ``work=False``: everything up to the work itself (every check, the data, the model, the run folder and
    its lock), then :class:`Accepted`.
    """
    import minisgd.lr_finder
    import minisgd.plots
    import minisgd.train

    real_load, real_fit = recipe.load_datasets, minisgd.train.fit
    real_sweep, real_draw = minisgd.lr_finder.lr_range_test, minisgd.plots.plot_schedules

    def load_datasets(dataset="synthetic", *, train_size=None, test_size=None, **kwargs):
        if dataset == "synthetic":  # the real checks see the real sizes (memory included) first
            for name, size in (("train_size", train_size), ("test_size", test_size)):
                if size is not None:
                    recipe.checks.integer("load_datasets", name, size, low=1)
                    recipe._check_fits_in_memory("load_datasets", name, size)
        return real_load(dataset, train_size=min(train_size or 64, 64), test_size=min(test_size or 32, 32),
                         **kwargs)

    def fit(*args, epochs, start_epoch=0, **kwargs):
        if not work:
            LAST_WORK.update(model=args[0], optimizer=args[2], start_epoch=start_epoch, history=kwargs["history"])
            raise Accepted
        return real_fit(*args, epochs=min(epochs, start_epoch + 1), start_epoch=start_epoch, **kwargs)

    def sweep(*args, steps, **kwargs):
        if not work:
            raise Accepted
        return real_sweep(*args, steps=min(steps, 10), **kwargs)

    def draw(*args, steps=100, **kwargs):
        if not work:
            raise Accepted
        return real_draw(*args, steps=min(steps, 2000) if isinstance(steps, int) else steps, **kwargs)

    def no_network(url, destination):
        raise urllib.error.URLError("the fuzz has no network")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(recipe, "load_datasets", load_datasets)
        import minisgd.runs

        patch.setattr(minisgd.runs, "load_datasets", load_datasets)
        patch.setattr(minisgd.train, "fit", fit)
        patch.setattr(minisgd.lr_finder, "lr_range_test", sweep)
        patch.setattr(minisgd.plots, "plot_schedules", draw)
        patch.setattr(cifar, "_fetch", no_network)
        data = tmp / "data"
        data.mkdir(exist_ok=True)
        patch.setenv("MINISGD_DATA", str(SHARED_CIFAR if SHARED_CIFAR.is_dir() else data))
        patch.chdir(tmp)  # runs/ (the default output) goes here
        yield


def run_case(argv: list[str], tmp: Path, work: bool = True) -> tuple[int, str, str]:
    """``python -m minisgd *argv``, in-process: (exit code, stdout, stderr); exit 0 when only validated."""
    out, err = io.StringIO(), io.StringIO()
    with small_work(tmp, work), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exit_:  # argparse's --help; anything else is a finding
            code = exit_.code
        except Accepted:
            code = 0
    return code, out.getvalue(), err.getvalue()


SAVED_IN = re.compile(r"^saved in (.+?): ([\w., ]+?)(?: \(\d+s\)|\. .*)?$", re.M)
SAVED = re.compile(r"^saved (?!in )(.+)$", re.M)
SUBJECT = re.compile(r"minisgd: error: (?:argument )?(--[a-z][a-z0-9-]*)")


def check_outcome(argv: list[str], code: int, out: str, err: str) -> None:
    """The contract of every command, whatever it was given."""
    case = f"argv={argv!r}\nexit={code}\nstdout={out[-600:]}\nstderr={err[-1500:]}"
    assert "Traceback" not in err and "Traceback" not in out, case
    assert code in (0, 1, 2), case
    lines = err.strip().splitlines()
    if code == 2:
        assert len(lines) == 1 and lines[0].startswith("minisgd: error: "), case
        subject = SUBJECT.match(lines[0])  # the flag the error is about (a suggestion later in it may be any)
        given = {token.split("=", 1)[0] for token in argv if token.startswith("--")}
        assert subject is None or subject.group(1) in given, f"the message blames a flag never given\n{case}"
    if code == 1:
        diverged = any(line.startswith("training stopped") for line in lines) and "saved in" in err
        save_failed = len(lines) == 1 and lines[0].startswith("minisgd: error: could not save ")
        graded = argv[:2] == ["exercise", "check"] and not err and out.startswith("grading ")  # a file that fails
        assert diverged or save_failed or graded, case
    for folder, names in SAVED_IN.findall(out + err):  # never a false claim about a saved file
        for name in names.split(", "):
            assert (Path(folder) / name).stat().st_size > 0, case
    for path in SAVED.findall(out):
        assert Path(path).stat().st_size > 0, case


def base(command: str, tmp: Path) -> list[str]:
    """The command's words, and what makes a case cheap and keeps it inside tmp (the fuzzed flags come after)."""
    words = command.split()
    if command == "train":
        return [*words, "--train-size", "64", "--test-size", "32", "--batch-size", "32", "--epochs", "1", "--quiet"]
    if command == "lr-find":
        return [*words, "--train-size", "64", "--test-size", "32", "--batch-size", "32", "--steps", "10"]
    if command == "schedules":
        return [*words, "--epochs", "4", "--steps-per-epoch", "5"]
    if command in ("exercise start", "exercise check"):
        return [*words, "sgd"]  # the topic
    return words


def out_for(command: str, tmp: Path, n: int) -> list[str]:
    """Where the case writes, inside tmp."""
    if command == "exercise list":
        return []
    if command.startswith("exercise"):
        return ["--file", str(tmp / f"out{n}" / "sgd.py")]
    name = {"train": "run", "notebooks": "notebooks"}.get(command, "plot.png")
    return ["--out", str(tmp / f"out{n}" / name)]


# ------------------------------------------------------------------ the deterministic sweep
CASES = {"extremes": 0, "paths": 0, "generative": 0}


@pytest.mark.parametrize("command, flag", VALUED)
def test_every_flag_with_every_extreme_value(command, flag, tmp_path):
    action = next(a for a in flags_of(command) if flag in a.option_strings)
    values = list(action.choices) + EXTREMES if kind(action) == "choice" else EXTREMES
    for n, value in enumerate(values):
        argv = [*base(command, tmp_path), *out_for(command, tmp_path, n), flag, *[value] * arity(action)]
        if flag == "--resume":
            argv = [command, flag, value, "--quiet"]
        check_outcome(argv, *run_case(argv, tmp_path, work=False))
        CASES["extremes"] += 1


@pytest.mark.parametrize("command, flag", PATH_FLAGS)
def test_every_path_flag_with_every_odd_path(command, flag, tmp_path):
    for n, (what, path) in enumerate(odd_paths(tmp_path).items()):
        if flag == "--resume":
            argv = [command, flag, path, "--quiet"]
        elif flag in ("--out", "--file"):
            argv = [*base(command, tmp_path), flag, path]
        else:
            argv = [*base(command, tmp_path), *out_for(command, tmp_path, n), flag, path]
            if flag == "--data-dir":
                argv += ["--dataset", "cifar10"]
        code, out, err = run_case(argv, tmp_path)
        check_outcome(argv, code, out, err)
        CASES["paths"] += 1
        if what in ("empty", "blank", "inside a file", "a name too long", "a path too long", "under /proc",
                    "under /sys (read-only)", "an existing file" if flag != "--resume" else "empty"):
            assert code != 0, f"{flag} {what!r} was accepted: {out}{err}"


# ------------------------------------------------------------------ the generative test
PATH_KINDS = list(odd_paths(Path(tempfile.mkdtemp(prefix="minisgd-fuzz-"))))


def values_for(action: argparse.Action) -> st.SearchStrategy[list[str]]:
    number = st.one_of(
        st.sampled_from(EXTREMES),
        st.integers(min_value=-(10**30), max_value=10**30).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.text(max_size=6),
    )
    if kind(action) == "switch":
        return st.just([])
    if kind(action) == "choice":
        one = st.one_of(st.sampled_from([str(c) for c in action.choices]), number)
    elif kind(action) == "path":
        one = st.sampled_from(["PATH:" + key for key in PATH_KINDS])
    else:
        one = number
    if action.nargs == "+":
        return st.lists(one, min_size=1, max_size=3)
    return st.lists(one, min_size=arity(action), max_size=arity(action))


@st.composite
def invocations(draw, command: str) -> list[str]:
    actions = draw(st.lists(st.sampled_from(flags_of(command)), min_size=1, max_size=4,
                            unique_by=lambda a: a.dest))
    argv = []
    for action in actions:
        argv += [action.option_strings[-1], *draw(values_for(action))]
    return argv


@pytest.mark.parametrize("command", sorted(command for command in subcommands() if flags_of(command)))
def test_random_combinations_of_flags(command):
    @settings(max_examples=400 if FULL else 40, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(invocations(command))
    def one(fuzzed):
        with tempfile.TemporaryDirectory() as folder:
            tmp = Path(folder)
            paths = odd_paths(tmp)
            fuzzed = [paths[token[5:]] if token.startswith("PATH:") else token for token in fuzzed]
            argv = [*base(command, tmp), *out_for(command, tmp, 0), *fuzzed]
            if "--resume" in fuzzed:
                argv = [command, *fuzzed]
            check_outcome(argv, *run_case(argv, tmp))
            CASES["generative"] += 1

    one()
