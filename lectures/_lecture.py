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
  official Python batches) or, without it, the built-in ``SyntheticShapes``.
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
import numpy as np

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

    ``--data-dir`` is a folder holding ``cifar-10-batches-py/`` (or that folder
    itself). Every ``data_batch_*`` file present is used for training, so a
    subset with fewer than CIFAR-10's five training batches works too;
    ``test_batch`` and ``batches.meta`` must be there. ``n_train``/``n_test``
    images are drawn at random (seeded) from the real sets, all of them when
    ``None`` or more than there are. A ``--data-dir`` without CIFAR-10 in it
    stops the lecture with one line saying so: a lecture never trains on other
    data than the one asked for.
    """
    from minisgd.data import ArrayDataset, CorruptDatasetError, SyntheticShapes
    from minisgd.data.cifar import load_batch, load_class_names

    if getattr(args, "data_dir", None) is None:
        train = SyntheticShapes(train=True, n_samples=n_train or 10_000, seed=seed)
        test = SyntheticShapes(train=False, n_samples=n_test or 2_000, seed=seed)
        return train, test, f"SyntheticShapes (built-in), {len(train)} training and {len(test)} test images"
    root = Path(args.data_dir).expanduser()
    folder = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
    train_files = sorted(folder.glob("data_batch_*"))
    missing = [name for name in ("test_batch", "batches.meta") if not (folder / name).is_file()]
    if not train_files or missing:
        sys.exit(f"--data-dir {args.data_dir}: no CIFAR-10 Python batches in {folder} (it needs data_batch_1 … "
                 f"data_batch_5 or some of them, test_batch and batches.meta; missing: "
                 f"{', '.join(missing) or 'data_batch_*'})")
    try:
        train_parts = [load_batch(path) for path in train_files]
        test_images, test_labels = load_batch(folder / "test_batch")
        classes = load_class_names(folder / "batches.meta")
    except CorruptDatasetError as error:
        sys.exit(f"--data-dir {args.data_dir}: {error}")
    train_images = np.concatenate([images for images, _ in train_parts])
    train_labels = np.concatenate([labels for _, labels in train_parts])
    rng = np.random.default_rng(seed)
    chosen = []
    for images, labels, n in ((train_images, train_labels, n_train), (test_images, test_labels, n_test)):
        keep = np.sort(rng.permutation(len(images))[: n or len(images)])
        chosen.append(ArrayDataset(images[keep], labels[keep], classes=classes))
    train, test = chosen
    return train, test, f"CIFAR-10 from {args.data_dir}, {len(train)} training and {len(test)} test images"


def finish() -> None:
    """Print where the figures are and how long the lecture ran."""
    if _run["saved"]:
        print(f"\nfigures saved in {_run['out']}/: {', '.join(_run['saved'])}")
    print(f"done in {time.perf_counter() - _run['started']:.1f} s")
