"""The plumbing every lecture shares, so that each lecture's cells are about its topic.

A lecture imports it as ``from minisgd import lecture``; an installed minisgd is
all a lecture needs, wherever its file is (a checkout's ``lectures/``, a
downloaded notebook, Colab).

- Importing it picks the figure backend: inside Jupyter, VS Code or Colab (an
  IPython kernel) figures show inline; run as a script, they go to files only
  (matplotlib's Agg backend, unless ``MPLBACKEND`` says otherwise).
- ``args = start("what the lecture shows")`` parses ``--smoke``, ``--full``,
  ``--out`` (and ``--data-dir`` with ``data_dir=True``). A notebook has no
  command line: there the options come from the environment variable
  ``MINISGD_LECTURE_ARGS`` (for example ``"--smoke"``), empty by default.
  ``--out`` defaults to ``out/`` beside the running script, or in the
  kernel's working folder (the notebook's folder) in a notebook.
- ``sizes(args, smoke=…, default=…, full=…)`` picks the problem size of the run.
- ``save(figure, "NN_name.png")`` writes the figure to ``--out`` as a PNG; in a
  notebook the figure is also shown under the cell.
- ``show_file(path)`` does the same for a PNG a library function saved.
- ``images(args, n_train, n_test)`` gives CIFAR-10 from ``--data-dir`` (the
  official Python batches) or ``$MINISGD_DATA``, or without them the built-in
  ``SyntheticShapes``, both through ``minisgd.recipe.load_datasets``.
  ``find_data_dir(path)`` is how a relative ``--data-dir`` is found: in the
  working folder, then in the repository's root.
- ``finish()`` prints where the figures went and how long the lecture took.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import matplotlib

IN_NOTEBOOK = "ipykernel" in sys.modules  # Jupyter, VS Code and Colab all run an IPython kernel
ARGS_VARIABLE = "MINISGD_LECTURE_ARGS"
DATA_VARIABLE = "MINISGD_DATA"

if IN_NOTEBOOK:
    from IPython import get_ipython

    get_ipython().run_line_magic("matplotlib", "inline")  # figures under the cell that draws them
elif not os.environ.get("MPLBACKEND"):
    matplotlib.use("Agg")  # a script saves its figures to files and opens no window


def lecture_folder() -> Path:
    """The folder of the running lecture: the script's (``python lectures/01_….py``), or the kernel's working one."""
    script = getattr(sys.modules.get("__main__"), "__file__", None)
    if IN_NOTEBOOK or not script:
        return Path.cwd()
    return Path(script).resolve().parent


def default_out() -> Path:
    """``out/`` beside the running script, or in the notebook's (the kernel's working) folder."""
    return lecture_folder() / "out"


_run: dict[str, Any] = {"out": None, "saved": [], "started": time.perf_counter()}


def parser(description: str, data_dir: bool = False) -> argparse.ArgumentParser:
    """The options every lecture takes; add a lecture's own before calling :func:`start`."""
    options = argparse.ArgumentParser(description=description)
    options.add_argument("--full", action="store_true", help="the longer version (more data, more epochs)")
    options.add_argument("--smoke", action="store_true", help="a few-second version (what the tests run)")
    options.add_argument("--out", type=Path, default=default_out(),
                         help="folder for the figures (default: %(default)s)")
    if data_dir:
        options.add_argument("--data-dir", type=Path, default=None,
                             help="a folder holding CIFAR-10's Python batches (cifar-10-batches-py/), relative to "
                                  "the working folder or the repository's root; default $MINISGD_DATA; without "
                                  "either the lecture trains on the built-in SyntheticShapes")
    return options


def start(description: str | argparse.ArgumentParser, data_dir: bool = False) -> argparse.Namespace:
    """Parse the options (the command line, or ``$MINISGD_LECTURE_ARGS`` in a notebook); prepare ``--out``."""
    options = description if isinstance(description, argparse.ArgumentParser) else parser(description, data_dir)
    argv = shlex.split(os.environ.get(ARGS_VARIABLE, "")) if IN_NOTEBOOK else None
    args = options.parse_args(argv)
    if args.smoke and args.full:
        options.error("--smoke and --full exclude each other; choose one")
    args.out.mkdir(parents=True, exist_ok=True)
    _run.update(out=args.out, saved=[], started=time.perf_counter())
    matplotlib.rcParams.update({"font.size": 12, "axes.titlesize": 13, "legend.fontsize": 11})
    return args


def sizes(args: argparse.Namespace, *, smoke: Any, default: Any, full: Any) -> Any:
    """``smoke``, ``default`` or ``full``, whichever version of the lecture runs."""
    return smoke if args.smoke else full if args.full else default


def _out() -> Path:
    return _run["out"] if _run["out"] is not None else default_out()


def save(figure: Any, name: str) -> Path:
    """Save ``figure`` as ``<--out>/<name>`` (PNG); a notebook shows it under the cell, a script closes it."""
    from minisgd.plots import save_figure

    path = save_figure(figure, _out() / name, close=not IN_NOTEBOOK)
    _run["saved"].append(name)
    return path


def show_file(path: Path) -> None:
    """A figure already saved by a library function (``plots.plot_history``): shown in a notebook, listed."""
    if IN_NOTEBOOK:
        from IPython.display import Image, display

        display(Image(filename=str(path)))
    _run["saved"].append(Path(path).name)


def repository_roots() -> list[Path]:
    """The checkout(s) a relative ``--data-dir`` may be written from: above the lecture's folder, above the package.

    A folder counts when it holds ``minisgd/lecture.py`` (the lecture's folder's
    parent: a notebook in ``lectures/``) or ``pyproject.toml`` beside the
    package (minisgd imported from a checkout).
    """
    candidates = [lecture_folder().parent, Path(__file__).resolve().parents[1]]
    roots = []
    for folder in candidates:
        is_checkout = (folder / "minisgd" / "lecture.py").is_file() and (folder / "pyproject.toml").is_file()
        if is_checkout and folder not in roots:
            roots.append(folder)
    return roots


def data_dir_places(path: str | os.PathLike) -> list[Path]:
    """Where a ``--data-dir`` may be: as given if absolute (``~`` expanded); else the working folder, then the root."""
    given = Path(path).expanduser()
    if given.is_absolute():
        return [given]
    return list(dict.fromkeys([Path.cwd() / given, *(root / given for root in repository_roots())]))


def find_data_dir(path: str | os.PathLike, flag: str = "--data-dir") -> Path:
    """The first of :func:`data_dir_places` that is a folder.

    The kernel of a notebook in ``lectures/`` runs there, so a path written
    from the repository's root (``../shared/data/cifar10-subset``) is found in
    the second place. A folder found nowhere stops the lecture with one line
    naming ``flag`` and every place looked in.
    """
    places = data_dir_places(path)
    for place in places:
        if place.is_dir():
            return place.resolve()
    sys.exit(f"{flag} {path}: no such folder (looked in {', '.join(str(place) for place in places)})")


def images(args: argparse.Namespace, n_train: int | None, n_test: int | None, seed: int = 0) -> tuple[Any, Any, str]:
    """(train set, test set, description): CIFAR-10 from ``--data-dir`` or ``$MINISGD_DATA``, else ``SyntheticShapes``.

    Both come from the recipe's ``load_datasets`` (what ``python -m minisgd
    train`` uses). ``--data-dir`` is a folder holding ``cifar-10-batches-py/``
    (or that folder itself), found by :func:`find_data_dir`; ``data.CIFAR10``
    reads every ``data_batch_*`` present, so a subset with fewer than
    CIFAR-10's five training batches works too (the description says which
    files were read). The first ``n_train``/``n_test`` images are used
    (CIFAR-10's files are in random order), all of them when ``None``. A
    ``--data-dir`` without CIFAR-10 in it stops the lecture with one line
    saying so: a lecture never trains on other data than the one asked for.
    Without ``--data-dir``, ``$MINISGD_DATA`` is used when it holds CIFAR-10;
    when it does not, the lecture says so and uses the built-in set.
    """
    from minisgd import recipe
    from minisgd.data.cifar import describe_files

    data_dir, flag = getattr(args, "data_dir", None), "--data-dir"
    if data_dir is None and os.environ.get(DATA_VARIABLE):
        data_dir, flag = os.environ[DATA_VARIABLE], f"${DATA_VARIABLE}"
    if data_dir is not None:
        root = _cifar_root(data_dir, flag, required=flag == "--data-dir")
        if root is not None:
            try:
                train, test = recipe.load_datasets("cifar10", data_dir=root, train_size=n_train, test_size=n_test)
            except ValueError as error:
                if flag == "--data-dir":
                    sys.exit(f"--data-dir {data_dir}: {error}")
                print(f"{flag}={data_dir} holds no CIFAR-10 ({error}); using the built-in data set")
            else:
                return train, test, (f"CIFAR-10 from {root} ({describe_files(train.files)}), "
                                     f"{len(train)} training and {len(test)} test images")
    train, test = recipe.load_datasets("synthetic", train_size=n_train, test_size=n_test, seed=seed)
    return train, test, f"SyntheticShapes (built-in), {len(train)} training and {len(test)} test images"


def _cifar_root(data_dir: str | os.PathLike, flag: str, required: bool) -> Path | None:
    """The folder for ``recipe.load_datasets``; ``None`` (after a line saying why) when an optional one is missing."""
    places = data_dir_places(data_dir)
    if not required and not any(place.is_dir() for place in places):
        print(f"{flag}={data_dir}: no such folder (looked in {', '.join(map(str, places))}); "
              "using the built-in data set")
        return None
    root = find_data_dir(data_dir, flag)
    if root.name == "cifar-10-batches-py" and not (root / "cifar-10-batches-py").is_dir():
        root = root.parent  # the batches folder itself
    return root


def finish() -> None:
    """Print where the figures are and how long the lecture ran."""
    if _run["saved"]:
        print(f"\nfigures saved in {_out()}/: {', '.join(_run['saved'])}")
    print(f"done in {time.perf_counter() - _run['started']:.1f} s")
