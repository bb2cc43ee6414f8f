"""Writing files so that a crash never leaves a half-written file behind.

Every file minisgd saves (checkpoints, histories, figures) is written to a
temporary name in the same folder and then renamed over the target.
``os.replace`` is atomic on one file system, so a reader sees either the old
file or the whole new one, never a truncated mix, and a run that dies midway
leaves the earlier good file in place.

A run claims its folder with a lock file (:class:`FolderLock`), so that two
runs started at once with the same folder cannot both write there.
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


# ------------------------------------------------------------------ one run per folder
LOCK_NAME = ".minisgd.lock"

try:  # POSIX: the kernel drops a flock when its holder dies, so a stale lock is recognised for certain
    import fcntl
except ImportError:  # Windows: only the PID written in the lock file tells whether its holder lives
    fcntl = None


class FolderInUseError(ValueError):
    """Another live process holds the folder's lock file."""


class FolderLock:
    """The claim on a folder: ``.minisgd.lock`` inside it, created with O_EXCL and held until :meth:`release`.

    Two runs started at once with the same folder cannot both write there:
    the lock file is created with ``O_CREAT | O_EXCL`` (atomic: exactly one
    process creates it) and held with ``flock`` for as long as the run lasts.
    A lock file whose holder has died (killed, power loss) is *stale*: the
    kernel has dropped its ``flock``, so the next run takes it over and says
    so in ``note`` ("… left by process 4242, which is no longer running").
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.note: str | None = None
        self._fd: int | None = None
        while self._fd is None:
            try:
                fd, created = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644), True
            except FileExistsError:
                try:
                    fd, created = os.open(self.path, os.O_RDWR), False
                except FileNotFoundError:
                    continue  # released between the two opens: try again
            previous = _read_pid(fd)
            if not _hold(fd) or (fcntl is None and not created and _alive(previous)):
                os.close(fd)
                holder = f"process {previous}" if previous is not None else "another process"
                raise FolderInUseError(
                    f"{self.folder} is in use by another minisgd run ({holder}, lock file {self.path}); "
                    f"wait for it to end, or choose another folder"
                )
            if not _same_file(fd, self.path):  # its holder released (deleted) it just before we locked it
                os.close(fd)
                continue
            if not created and previous not in (None, os.getpid()):
                self.note = (f"note: took over the lock {self.path} left by process {previous}, "
                             f"which is no longer running")
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self._fd = fd

    def release(self) -> None:
        """Delete the lock file and let go of it (idempotent)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if _same_file(fd, self.path):
                self.path.unlink(missing_ok=True)  # before closing: a waiter then sees it is gone and retries
        finally:
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:  # at interpreter exit the os module may already be gone
            pass


def _hold(fd: int) -> bool:
    """Take the exclusive flock on ``fd`` without waiting; False if another process holds it."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _read_pid(fd: int) -> int | None:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 64).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False
