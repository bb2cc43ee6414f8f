"""CIFAR-10 from its official Python files, with an optional, verified download.

CIFAR-10 (Krizhevsky, 2009) holds 60 000 colour images of 32×32 pixels in ten
classes: 50 000 for training, 10 000 for testing. Its home page distributes
``cifar-10-python.tar.gz``, which unpacks to a folder ``cifar-10-batches-py/``:

- ``data_batch_1`` … ``data_batch_5`` (training) and ``test_batch``: each a
  Python-2 pickle of a dict with ``data`` (a uint8 array of shape
  (10000, 3072): the red, then green, then blue 32×32 plane of each image),
  ``labels`` (10 000 ints in 0..9), ``batch_label`` and ``filenames``;
- ``batches.meta``: a dict whose ``label_names`` are the ten class names.

:class:`CIFAR10` follows torchvision's conventions: ``root`` holds
``cifar-10-batches-py/``; ``.data`` is (N, 32, 32, 3) uint8, ``.targets`` the
labels, ``.classes`` the names. It looks in ``root`` for, in this order,

1. the extracted folder ``cifar-10-batches-py/``,
2. the archive ``cifar-10-python.tar.gz``, which it checks and extracts,
3. with ``download=True`` only, the archive on the dataset's home page,

and touches the network only in case 3. The archive's MD5 is checked before
anything in it is unpickled, and each extracted file's MD5 is compared with
the official one (torchvision's list) whenever it is read: a file that differs
(damaged, or a rewritten subset) is still read, but the data set names it in
``md5_differs`` and the command line says "not the official files", it is extracted into a temporary folder that is
renamed into place only when complete, and the pickles are read by an
unpickler that accepts nothing but NumPy arrays and plain Python values
(a pickle can otherwise run arbitrary code).
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Any

import numpy as np

ARCHIVE_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
FOLDER_NAME = "cifar-10-batches-py"
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILES = ["test_batch"]
META_FILE = "batches.meta"
ALL_FILES = TRAIN_FILES + TEST_FILES + [META_FILE]
# The MD5 of each official extracted file, as torchvision publishes them (torchvision/datasets/cifar.py:
# train_list, test_list, meta). A file whose MD5 differs is not the official one: damaged, or rewritten
# (a subset); it is still read, and the data set says so (``md5_differs``).
FILE_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}

IMAGE_SHAPE = (3, 32, 32)  # how a row of `data` is laid out: channel planes, then rows, then columns
NUM_CLASSES = 10


class DatasetNotFoundError(FileNotFoundError):
    """The data set is neither on disk nor allowed to be downloaded (or the download failed)."""


class CorruptDatasetError(ValueError):
    """A file of the data set is damaged: wrong checksum, truncated, or not in the expected format."""


def default_root() -> Path:
    """Where data sets live unless told otherwise: ``$MINISGD_DATA`` or ``~/.cache/minisgd``."""
    return Path(os.environ.get("MINISGD_DATA") or Path.home() / ".cache" / "minisgd").expanduser()


# ---------------------------------------------------------------- the pickles
_NUMPY_ARRAY_REBUILD = np.zeros(0).__reduce__()[0]  # numpy's `_reconstruct`, whatever module holds it

# The only globals a CIFAR-10 pickle needs: how NumPy rebuilds an array and its dtype.
# Python 2 wrote NumPy 1's module name; NumPy 2 moved it to numpy._core.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _NUMPY_ARRAY_REBUILD,
    ("numpy._core.multiarray", "_reconstruct"): _NUMPY_ARRAY_REBUILD,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _ForbiddenGlobal(pickle.UnpicklingError):
    """A pickle named a function or class that a CIFAR-10 file never needs."""


class _SafeUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds NumPy arrays and plain Python values, and refuses everything else.

    ``pickle.load`` calls whatever function a file names, so a doctored file
    could run any command; here every name outside ``_ALLOWED_GLOBALS`` is an error.
    """

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _ForbiddenGlobal(f"{module}.{name}") from None


def _load_pickle(path: Path) -> dict:
    """Unpickle one CIFAR-10 file (Python 2 strings read as ``bytes``), or raise CorruptDatasetError."""
    with open(path, "rb") as file:
        try:
            content = _SafeUnpickler(file, encoding="bytes").load()
        except _ForbiddenGlobal as error:
            raise CorruptDatasetError(
                f"{path} is not a CIFAR-10 file: it asks to call {error}, and a CIFAR-10 file holds "
                "only NumPy arrays, lists, numbers and strings; refusing to load it (it could run code)"
            ) from None
        except Exception as error:  # whatever a damaged file makes the parser raise
            raise CorruptDatasetError(
                f"{path} is corrupt or truncated ({type(error).__name__}: {error}); "
                f"delete {path.parent} and extract or download CIFAR-10 again"
            ) from error
    if not isinstance(content, dict):
        raise CorruptDatasetError(
            f"{path} is not a CIFAR-10 file: expected a pickled dict, got {type(content).__name__}"
        )
    return content


def _get(content: dict, key: str, path: Path) -> Any:
    """``content[key]`` for a pickle read as bytes (``b"data"``) or as text (``"data"``)."""
    for candidate in (key.encode(), key):
        if candidate in content:
            return content[candidate]
    found = sorted(k.decode("latin1") if isinstance(k, bytes) else str(k) for k in content)
    raise CorruptDatasetError(f"{path} is not a CIFAR-10 file: it has no {key!r} entry (entries: {found})")


def load_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one batch file: images (N, 32, 32, 3) uint8 and labels (N,) int64, checked.

    A row of ``data`` holds the 1024 red values, then the 1024 green, then the
    1024 blue, each plane row by row; reshaping to (N, 3, 32, 32) and moving
    the channel axis last gives the (N, H, W, C) images.
    """
    path = Path(path)
    content = _load_pickle(path)
    data = _get(content, "data", path)
    labels = _get(content, "labels", path)
    row = int(np.prod(IMAGE_SHAPE))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != row:
        if isinstance(data, np.ndarray):
            got = f"{data.dtype} array of shape {data.shape}"
        else:
            got = type(data).__name__
        raise CorruptDatasetError(f"{path}: 'data' must be a uint8 array of shape (N, {row}); got {got}")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        raise CorruptDatasetError(f"{path}: 'labels' must be a list of integers") from None
    if labels.shape != (len(data),):
        raise CorruptDatasetError(
            f"{path}: {len(data)} images but 'labels' has shape {labels.shape}; expected ({len(data)},)"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise CorruptDatasetError(
            f"{path}: labels must be in 0..{NUM_CLASSES - 1}; "
            f"got values from {labels.min()} to {labels.max()}"
        )
    images = data.reshape(-1, *IMAGE_SHAPE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def load_class_names(path: str | os.PathLike) -> list[str]:
    """The ten class names stored in ``batches.meta``."""
    path = Path(path)
    names = _get(_load_pickle(path), "label_names", path)
    if not isinstance(names, list) or len(names) != NUM_CLASSES:
        raise CorruptDatasetError(
            f"{path}: 'label_names' must be a list of {NUM_CLASSES} names; got {names!r}"
        )
    return [name.decode("utf-8") if isinstance(name, bytes) else str(name) for name in names]


# ---------------------------------------------------------------- the archive
def md5sum(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """The MD5 checksum of a file, as 32 hex digits (read in chunks: the archive is 163 MB)."""
    digest = hashlib.md5(usedforsecurity=False)  # a check against damage, not against forgery
    with open(path, "rb") as file:
        while block := file.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def check_md5(path: Path, expected: str) -> None:
    """Raise CorruptDatasetError unless the file's MD5 is ``expected``."""
    actual = md5sum(path)
    if actual != expected:
        raise CorruptDatasetError(
            f"{path} has MD5 {actual}, expected {expected}: the file is incomplete or damaged. "
            "Delete it and download it again (--download)"
        )


def _fetch(url: str, destination: Path) -> None:
    """Download ``url`` to ``destination``, showing a progress bar. The only network access in minisgd."""
    from tqdm import tqdm  # imported here: reading files from disk does not need it

    with urllib.request.urlopen(url, timeout=60) as response, open(destination, "wb") as file:
        total = int(response.headers.get("Content-Length") or 0) or None
        name = url.rsplit("/", 1)[-1]
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {name}") as bar:
            while block := response.read(1 << 16):
                file.write(block)
                bar.update(len(block))


def download_archive(root: Path) -> Path:
    """Download the archive into ``root``, check its MD5, and only then give it its real name.

    The download goes to a temporary file that is deleted if anything fails, so
    ``root`` never holds a partial archive under the real name.
    """
    root.mkdir(parents=True, exist_ok=True)
    archive = root / ARCHIVE_NAME
    handle, partial_name = tempfile.mkstemp(prefix=ARCHIVE_NAME + ".", suffix=".part", dir=root)
    os.close(handle)
    partial = Path(partial_name)
    try:
        try:
            _fetch(ARCHIVE_URL, partial)
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            raise DatasetNotFoundError(
                f"could not download CIFAR-10 from {ARCHIVE_URL}: {error}. Download the file by hand "
                f"and put it at {archive} (minisgd extracts and checks it), or check the connection"
            ) from error
        check_md5(partial, ARCHIVE_MD5)
        os.replace(partial, archive)
    finally:
        partial.unlink(missing_ok=True)
    return archive


def _checked_members(archive: tarfile.TarFile, path: Path) -> list[tarfile.TarInfo]:
    """The archive's members, after checking that each is a plain file or folder inside FOLDER_NAME.

    A doctored archive could hold ``../../.bashrc``, an absolute path or a
    link pointing outside the target folder; extracting it would write there.
    """
    members = archive.getmembers()
    for member in members:
        parts = Path(member.name).parts
        if (
            member.name.startswith(("/", "\\"))
            or ".." in parts
            or not parts
            or parts[0] != FOLDER_NAME
            or not (member.isfile() or member.isdir())
        ):
            raise CorruptDatasetError(
                f"{path} is not the CIFAR-10 archive: it holds {member.name!r}, which is not a plain "
                f"file or folder inside {FOLDER_NAME}/; refusing to extract it"
            )
    return members


def extract_archive(archive_path: Path, root: Path) -> Path:
    """Extract ``cifar-10-batches-py/`` from the archive into ``root``, atomically.

    The files go to a temporary folder inside ``root``; only when all of them
    are there is the folder renamed to ``root/cifar-10-batches-py``, so an
    interrupted extraction (a damaged archive, a full disk) leaves nothing that
    looks like a data set.
    """
    target = root / FOLDER_NAME
    staging = Path(tempfile.mkdtemp(prefix=f".{FOLDER_NAME}.", suffix=".tmp", dir=root))
    try:
        try:
            with tarfile.open(archive_path, "r:gz") as archive:
                members = _checked_members(archive, archive_path)
                if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: the standard library checks too
                    archive.extractall(staging, members=members, filter="data")
                else:
                    archive.extractall(staging, members=members)
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
            raise CorruptDatasetError(
                f"{archive_path} could not be extracted ({type(error).__name__}: {error}); "
                "the file is damaged: delete it and download it again (--download)"
            ) from error
        missing = [name for name in ALL_FILES if not (staging / FOLDER_NAME / name).is_file()]
        if missing:
            raise CorruptDatasetError(
                f"{archive_path} is not the CIFAR-10 archive: {FOLDER_NAME}/ lacks {', '.join(missing)}"
            )
        try:
            os.rename(staging / FOLDER_NAME, target)
        except OSError:
            if not target.is_dir():  # not someone else extracting at the same moment
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def prepare(root: str | os.PathLike | None = None, download: bool = False) -> Path:
    """Make sure ``root/cifar-10-batches-py`` exists and return it.

    Uses, in this order, the extracted folder, a local archive
    ``root/cifar-10-python.tar.gz`` (MD5-checked, then extracted), or, only
    with ``download=True``, the archive downloaded from the dataset's home
    page. Raises :class:`DatasetNotFoundError` with instructions when none is
    available, :class:`CorruptDatasetError` when the archive is damaged.
    """
    root = Path(root).expanduser() if root is not None else default_root()
    folder, archive = root / FOLDER_NAME, root / ARCHIVE_NAME
    if folder.is_dir():
        return folder
    if archive.is_file():
        try:
            check_md5(archive, ARCHIVE_MD5)
        except CorruptDatasetError:
            if not download:
                raise
            archive = download_archive(root)  # a damaged local copy is replaced when allowed to
    elif download:
        archive = download_archive(root)
    else:
        raise DatasetNotFoundError(
            f"CIFAR-10 not found in {root}: expected the folder {folder} "
            f"(with {', '.join(ALL_FILES)}) or the archive {archive}. "
            f"Download {ARCHIVE_URL} and put it in {root}, or pass --download "
            "(download=True) to fetch it (163 MB)"
        )
    return extract_archive(archive, root)


# ---------------------------------------------------------------- the data set
def describe_files(files: list[str]) -> str:
    """``["data_batch_1", …, "data_batch_4"]`` → ``"data_batch_1-4 of 5"`` (``"of 5"`` only when some are missing).

    Training batches in a row are written as a range (``data_batch_1-4``), others
    listed (``data_batch_1, 3, 5 of 5``); any other file name is kept as it is.
    """
    numbers = [int(name.rsplit("_", 1)[1]) for name in files if name in TRAIN_FILES]
    others = [name for name in files if name not in TRAIN_FILES]
    parts = []
    if numbers:
        consecutive = len(numbers) > 1 and numbers == list(range(numbers[0], numbers[-1] + 1))
        text = (f"data_batch_{numbers[0]}-{numbers[-1]}" if consecutive
                else "data_batch_" + ", ".join(str(n) for n in numbers))
        parts.append(text + ("" if len(numbers) == len(TRAIN_FILES) else f" of {len(TRAIN_FILES)}"))
    return ", ".join(parts + others)


def describe_checksums(read: list[str], differing: list[str]) -> str:
    """``"the official files (MD5 checked)"`` or ``"not the official files: MD5 differs for data_batch_1-4 of 5"``."""
    if not differing:
        return "the official files (MD5 checked)"
    names = describe_files([n for n in read if n in differing]).replace(f" of {len(TRAIN_FILES)}", "")
    return f"not the official files: MD5 differs for {names}"


class CIFAR10:
    """The CIFAR-10 training (50 000 images) or test (10 000 images) split.

    Attributes
    ----------
    data:    (N, 32, 32, 3) uint8 images, channels last, as torchvision has them.
    targets: (N,) int64 labels in 0..9.
    classes: the ten class names, ``["airplane", "automobile", …, "truck"]``.
    folder:  the ``cifar-10-batches-py`` folder read.
    files:   the batch files read, in order (``["data_batch_1", …]`` or ``["test_batch"]``).
    missing: the split's official files that were not there (``[]`` for a complete folder).
    md5_differs: the files read whose MD5 is not the official one (:data:`FILE_MD5`), ``[]`` when all are.

    ``root`` defaults to ``$MINISGD_DATA`` or ``~/.cache/minisgd``; see
    :func:`prepare` for where the files are looked for. Without the files and
    without ``download=True`` it raises :class:`DatasetNotFoundError` saying
    where to put them.

    A folder with only some of the five training batches (a subset, such as
    one with ``data_batch_1`` … ``data_batch_4``) is read as it is: the
    training split is every ``data_batch_i`` present, and ``files`` and
    ``missing`` say which (:func:`describe_files` writes it as one phrase, which
    the command line prints). ``batches.meta``, ``test_batch`` and at least one
    training batch must be there.
    """

    def __init__(
        self, root: str | os.PathLike | None = None, train: bool = True, download: bool = False
    ) -> None:
        self.root = Path(root).expanduser() if root is not None else default_root()
        self.train = bool(train)
        self.folder = folder = prepare(self.root, download=download)
        present = [name for name in TRAIN_FILES if (folder / name).is_file()]
        required = [name for name in TEST_FILES + [META_FILE] if not (folder / name).is_file()]
        if required or not present:
            lacking = required + ([] if present else [f"every one of {TRAIN_FILES[0]} … {TRAIN_FILES[-1]}"])
            raise DatasetNotFoundError(
                f"{folder} is incomplete: it lacks {', '.join(lacking)}. Delete the folder and extract "
                f"{ARCHIVE_NAME} again, or pass --download (download=True)"
            )
        self.files = present if self.train else list(TEST_FILES)
        self.missing = [name for name in TRAIN_FILES if name not in present] if self.train else []
        batches = [load_batch(folder / name) for name in self.files]
        self.data = np.concatenate([images for images, _ in batches])
        self.targets = np.concatenate([labels for _, labels in batches])
        self.classes = load_class_names(folder / META_FILE)
        self.md5_differs = [name for name in self.files + [META_FILE] if md5sum(folder / name) != FILE_MD5[name]]

    def __len__(self) -> int:
        return len(self.data)

    def describe_files(self) -> str:
        """The files read, as a phrase: ``"data_batch_1-4 of 5"``, ``"data_batch_1-5"``, ``"test_batch"``."""
        return describe_files(self.files)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.int64]:
        return self.data[index], self.targets[index]

    def __repr__(self) -> str:
        split = "train" if self.train else "test"
        return f"CIFAR10(root={str(self.root)!r}, split={split!r}, images={len(self)})"
