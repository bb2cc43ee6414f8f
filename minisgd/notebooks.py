"""The lectures as Jupyter notebooks: ``.ipynb`` files written from the Jupytext ``.py`` sources.

``python -m minisgd notebooks --out DIR`` writes one ``NN_name.ipynb`` per
``lectures/NN_name.py`` (read with jupytext, percent format), ready for
Jupyter, VS Code or an upload to Colab. The ``.py`` files stay the sources;
the notebooks are not committed (``.gitignore`` covers ``lectures/*.ipynb`` and
``notebooks/``) and can be written again at any time.

Each notebook carries ``metadata["minisgd"]``: the source's name and a hash of
the cells as written. A file is replaced only when it is one of these
notebooks and its cells are still as written (its outputs may differ: they
are recomputed when it runs); anything else in the way, a file of the user's,
or a notebook whose cells they edited, is refused with one line, unless
``force=True``. Every file is written atomically.

``source=`` puts a ``pip install`` target (a git URL, a folder, a wheel) into
the set-up cell as the default of ``MINISGD_SOURCE``, so that a notebook
uploaded to Colab installs minisgd from there without being edited.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from minisgd.atomic import atomic_path

SOURCE_PLACEHOLDER = "git+https://github.com/<owner>/minisgd.git"  # the set-up cell's default MINISGD_SOURCE
LECTURES = Path(__file__).resolve().parents[1] / "lectures"  # a checkout's lectures/


class NotebookError(ValueError):
    """A notebook that cannot be written: one line, naming the file and the way out."""


def lecture_sources(folder: Path = LECTURES) -> list[Path]:
    """The lectures' Jupytext sources, ``NN_name.py``, in order."""
    sources = sorted(Path(folder).glob("[0-9][0-9]_*.py"))
    if not sources:
        raise NotebookError(f"no lectures (NN_name.py) in {folder}: the notebooks are written from a checkout's "
                            "lectures/ folder")
    return sources


def _cells_hash(notebook: dict) -> str:
    """SHA-256 of the cells' types and sources: what a user's edit changes, and running the notebook does not."""
    cells = [(cell["cell_type"], "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"])
             for cell in notebook.get("cells", [])]
    return hashlib.sha256(json.dumps(cells, ensure_ascii=False).encode()).hexdigest()


def notebook_text(source: Path, install_source: str | None = None) -> str:
    """The ``.ipynb`` (JSON text) of one lecture: its cells, the python3 kernel, our mark; the same text every time."""
    import jupytext

    notebook = jupytext.read(source)
    notebook.metadata.pop("jupytext", None)  # no pairing: the notebook stands alone
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"{source.stem[:2]}-{index:02d}"  # stable ids: the same file for the same source
        if install_source and cell.cell_type == "code" and SOURCE_PLACEHOLDER in cell.source:
            cell.source = cell.source.replace(SOURCE_PLACEHOLDER, install_source)
    notebook.metadata["minisgd"] = {"source": f"lectures/{source.name}"}
    text = jupytext.writes(notebook, fmt="ipynb")
    written = json.loads(text)
    written["metadata"]["minisgd"]["cells_sha256"] = _cells_hash(written)
    return json.dumps(written, indent=1, ensure_ascii=False) + "\n"


def _ours_and_unchanged(path: Path) -> bool:
    """Whether ``path`` is a notebook this module wrote, with its cells as written."""
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        mark = notebook["metadata"]["minisgd"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return False
    return isinstance(mark, dict) and mark.get("cells_sha256") == _cells_hash(notebook)


def write_notebooks(out: str | os.PathLike, *, lectures: Path = LECTURES, install_source: str | None = None,
                    force: bool = False) -> list[Path]:
    """Write ``out/NN_name.ipynb`` for every lecture; return the paths written.

    ``out`` must be a folder (made if missing). Everything is checked before
    anything is written: a path in the way that is not one of our unchanged
    notebooks raises :class:`NotebookError` (``force=True`` replaces it).
    """
    out = Path(out).expanduser()
    sources = lecture_sources(lectures)
    targets = [(out / f"{source.stem}.ipynb", source) for source in sources]
    try:
        if out.exists() and not out.is_dir():
            raise NotebookError(f"--out must be a folder; got {out} (a file)")
        for target, _ in targets:
            if target.is_dir() or (target.exists() and not force and not _ours_and_unchanged(target)):
                raise NotebookError(
                    f"{target} exists and is not a notebook written by `python -m minisgd notebooks` (or its cells "
                    "were edited): it is left as it is; choose another --out, or move it away (--force replaces it)"
                )
    except OSError as error:  # a name too long, a path through a file
        raise NotebookError(f"--out {str(out)[:80]}: cannot be used ({error.strerror or error})") from None
    try:
        out.mkdir(parents=True, exist_ok=True)
        for target, source in targets:
            text = notebook_text(source, install_source)
            with atomic_path(target, suffix=".ipynb") as temporary:
                temporary.write_text(text, encoding="utf-8")
    except OSError as error:
        raise NotebookError(f"--out {out}: cannot write there ({error.strerror or error})") from None
    return [target for target, _ in targets]
