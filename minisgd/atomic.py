"""Writing files so that a crash never leaves a half-written file behind.

Every file minisgd saves (checkpoints, histories, figures) is written to a
temporary name in the same folder and then renamed over the target.
``os.replace`` is atomic on one file system, so a reader sees either the old
file or the whole new one, never a truncated mix, and a run that dies midway
leaves the earlier good file in place.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    ``suffix`` keeps the extension on the temporary name, for writers that
    choose the format from it (matplotlib's ``savefig``)::

        with atomic_path("run/loss.png", suffix=".png") as tmp:
            figure.savefig(tmp)
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.tmp.", suffix=suffix, dir=target.parent)
    os.close(handle)
    temporary = Path(temporary)
    try:
        yield temporary
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it private; give it a normal file's mode
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(text)


def remove_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files (``.<name>.tmp.*``) that a killed save left in ``folder``; return them.

    A save interrupted by Ctrl-C removes its own temporary file; one killed
    outright (SIGKILL, power loss) cannot, so a resumed run calls this first.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = [path for path in folder.glob(".*.tmp.*") if path.is_file()]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed
