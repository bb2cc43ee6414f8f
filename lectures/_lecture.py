"""The plumbing every lecture shares, so that each lecture's first cell is about its topic.

- ``import _lecture`` makes ``import minisgd`` work from a checkout (it puts the
  repository on ``sys.path`` when the package is not installed) and picks the
  figure backend: inside Jupyter, VS Code or Colab (an IPython kernel) figures
  show inline; run as a script, they go to files only (matplotlib's Agg
  backend, unless ``MPLBACKEND`` says otherwise).
- ``args = start("what the lecture shows")`` parses ``--smoke``, ``--full``,
  ``--out`` (and ``--data-dir`` with ``data_dir=True``). A notebook has no
  command line: there the options come from the environment variable
  ``MINISGD_LECTURE_ARGS`` (for example ``"--smoke"``), empty by default.
- ``sizes(args, smoke=…, default=…, full=…)`` picks the problem size of the run.
- ``save(figure, "NN_name.png")`` writes the figure to ``--out`` as a PNG; in a
  notebook the figure is also shown under the cell.
- ``show_file(path)`` does the same for a PNG a library function saved.
- ``images(args, n_train, n_test)`` gives CIFAR-10 from ``--data-dir`` (the
  official Python batches) or, without it, the built-in ``SyntheticShapes``,
  both through ``minisgd.recipe.load_datasets``.
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

HERE = Path(__file__).resolve().parent
IN_NOTEBOOK = "ipykernel" in sys.modules  # Jupyter, VS Code and Colab all run an IPython kernel
ARGS_VARIABLE = "MINISGD_LECTURE_ARGS"

try:
    import minisgd  # noqa: F401  (installed with `pip install -e .`)
except ImportError:  # a checkout without installing: use the repository's copy
    sys.path.insert(0, str(HERE.parent))

if IN_NOTEBOOK:
    from IPython import get_ipython

    get_ipython().run_line_magic("matplotlib", "inline")  # figures under the cell that draws them
elif not os.environ.get("MPLBACKEND"):
    matplotlib.use("Agg")  # a script saves its figures to files and opens no window

_run: dict[str, Any] = {"out": HERE / "out", "saved": [], "started": time.perf_counter()}


def parser(description: str, data_dir: bool = False) -> argparse.ArgumentParser:
    """The options every lecture takes; add a lecture's own before calling :func:`start`."""
    options = argparse.ArgumentParser(description=description)
    options.add_argument("--full", action="store_true", help="the longer version (more data, more epochs)")
    options.add_argument("--smoke", action="store_true", help="a few-second version (what the tests run)")
    options.add_argument("--out", type=Path, default=HERE / "out", help="folder for the figures (default: %(default)s)")
    if data_dir:
        options.add_argument("--data-dir", type=Path, default=None,
                             help="a folder holding CIFAR-10's Python batches (cifar-10-batches-py/); "
                                  "without it the lecture trains on the built-in SyntheticShapes")
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


def save(figure: Any, name: str) -> Path:
    """Save ``figure`` as ``<--out>/<name>`` (PNG); a notebook shows it under the cell, a script closes it."""
    from minisgd.plots import save_figure

    path = save_figure(figure, _run["out"] / name, close=not IN_NOTEBOOK)
    _run["saved"].append(name)
    return path


def show_file(path: Path) -> None:
    """A figure already saved by a library function (``plots.plot_history``): shown in a notebook, listed."""
    if IN_NOTEBOOK:
        from IPython.display import Image, display

        display(Image(filename=str(path)))
    _run["saved"].append(Path(path).name)


def images(args: argparse.Namespace, n_train: int | None, n_test: int | None, seed: int = 0) -> tuple[Any, Any, str]:
    """(train set, test set, description): CIFAR-10 from ``--data-dir`` if given, else ``SyntheticShapes``.

    Both come from the recipe's ``load_datasets`` (what ``python -m minisgd
    train`` uses). ``--data-dir`` is a folder holding ``cifar-10-batches-py/``
    (or that folder itself); ``data.CIFAR10`` reads every ``data_batch_*``
    present, so a subset with fewer than CIFAR-10's five training batches works
    too (the description says which files were read). The first
    ``n_train``/``n_test`` images are used (CIFAR-10's files are in random
    order), all of them when ``None``. A ``--data-dir`` without CIFAR-10 in it
    stops the lecture with one line saying so: a lecture never trains on other
    data than the one asked for.
    """
    from minisgd import recipe
    from minisgd.data.cifar import describe_files

    data_dir = getattr(args, "data_dir", None)
    if data_dir is None:
        train, test = recipe.load_datasets("synthetic", train_size=n_train, test_size=n_test, seed=seed)
        return train, test, f"SyntheticShapes (built-in), {len(train)} training and {len(test)} test images"
    root = Path(data_dir).expanduser()
    if root.name == "cifar-10-batches-py" and not (root / "cifar-10-batches-py").is_dir():
        root = root.parent  # the batches folder itself
    try:
        train, test = recipe.load_datasets("cifar10", data_dir=root, train_size=n_train, test_size=n_test)
    except ValueError as error:
        sys.exit(f"--data-dir {data_dir}: {error}")
    return train, test, (f"CIFAR-10 from {data_dir} ({describe_files(train.files)}), "
                         f"{len(train)} training and {len(test)} test images")


def finish() -> None:
    """Print where the figures are and how long the lecture ran."""
    if _run["saved"]:
        print(f"\nfigures saved in {_run['out']}/: {', '.join(_run['saved'])}")
    print(f"done in {time.perf_counter() - _run['started']:.1f} s")
