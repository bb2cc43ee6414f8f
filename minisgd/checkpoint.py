"""Checkpoints: everything needed to resume training exactly, in one ``.npz`` file.

A checkpoint holds

- ``model/<name>``: the model's ``state_dict`` (PyTorch's names and shapes);
- ``optimizer/<name>``: the optimizer's ``state_dict`` (momentum buffers and the
  update count ``t``, which is also where the learning-rate schedule stands);
- ``random_state``: minisgd's random generator (dropout masks to come);
- ``epoch``: the number of completed epochs;
- ``history`` and ``meta``: the training history and the run's settings, as JSON text;
- ``<section>/<name>``: any further named groups of arrays the run needs
  (``plateau/`` for ReduceLROnPlateau's state, ``snapshot.0/`` … for the
  snapshot ensemble's members taken so far).

Only numeric and text arrays are stored, and the file is read with
``allow_pickle=False``: loading a checkpoint cannot run code. Files are
written atomically (see :mod:`minisgd.atomic`).
"""

from __future__ import annotations

import json
import os
import struct
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from minisgd import random
from minisgd.atomic import atomic_path
from minisgd.backend import to_numpy

FORMAT_VERSION = 2


class CheckpointError(Exception):
    """A checkpoint that cannot be read or does not fit the model."""


def save_checkpoint(
    path: str | os.PathLike,
    *,
    model: Any,
    optimizer: Any,
    epoch: int,
    history: dict | None = None,
    meta: dict | None = None,
    sections: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """Save model, optimizer, random state, progress and further ``sections`` of arrays to ``path`` (atomically).

    ``sections`` maps a name (no ``/``; not ``model`` or ``optimizer``) to a
    ``{key: array}`` dict, stored as ``<name>/<key>``.
    """
    arrays: dict[str, np.ndarray] = {"format_version": np.array(FORMAT_VERSION)}
    arrays.update({f"model/{k}": np.asarray(v) for k, v in model.state_dict().items()})
    arrays.update({f"optimizer/{k}": np.asarray(v) for k, v in optimizer.state_dict().items()})
    arrays["random_state"] = random.get_state()
    arrays["epoch"] = np.array(epoch)
    arrays["history"] = np.array(json.dumps(history or {}))
    arrays["meta"] = np.array(json.dumps(meta or {}))
    for section, values in (sections or {}).items():
        if "/" in section or section in ("model", "optimizer"):
            raise ValueError(f"save_checkpoint: a section name must be free of '/' and not model/optimizer; "
                             f"got {section!r}")
        arrays.update({f"{section}/{k}": np.asarray(to_numpy(v)) for k, v in values.items()})
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as file:
            np.savez(file, **arrays)
    return Path(path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint: ``{"model", "optimizer", "random_state", "epoch", "history", "meta", "sections"}``.

    ``sections`` maps each further section's name to its ``{key: array}`` dict.

    Raises CheckpointError for a missing, truncated or foreign file.
    """
    path = Path(path)
    try:
        is_file = path.is_file()
    except OSError as error:  # a name too long
        raise CheckpointError(f"checkpoint {path} cannot be read: {error.strerror or error}") from None
    if not is_file:
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except UNREADABLE:
        # Never retried with allow_pickle=True: a pickle can run code.
        raise CheckpointError(
            f"{path} is not a minisgd checkpoint (corrupt, truncated or another kind of file)"
        ) from None
    required = {"format_version", "random_state", "epoch", "history", "meta"}
    if not required <= arrays.keys():
        missing = ", ".join(sorted(required - arrays.keys()))
        raise CheckpointError(f"checkpoint {path} is not a minisgd checkpoint (missing {missing})")
    version = _whole_number(path, arrays, "format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {version}; this minisgd reads version {FORMAT_VERSION}"
        )
    epoch = _whole_number(path, arrays, "epoch")
    history, meta = _json_object(path, arrays, "history"), _json_object(path, arrays, "meta")

    def section(prefix: str) -> dict[str, np.ndarray]:
        return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}

    sections: dict[str, dict[str, np.ndarray]] = {}
    for name, value in arrays.items():
        if "/" in name and not name.startswith(("model/", "optimizer/")):
            group, key = name.split("/", 1)
            sections.setdefault(group, {})[key] = value
    return {
        "sections": sections,
        "model": section("model/"),
        "optimizer": section("optimizer/"),
        "random_state": arrays["random_state"],
        "epoch": epoch,
        "history": history,
        "meta": meta,
    }


# What reading a damaged or crafted zip can raise: a bad header or CRC (BadZipFile), an "encrypted" flag
# (RuntimeError), an unknown compression method (NotImplementedError), a corrupt deflate stream (zlib.error),
# a member NumPy cannot parse (ValueError; SyntaxError or tokenize's TokenError for a damaged .npy header),
# sizes beyond memory (MemoryError), and the rest.
UNREADABLE = (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError, RuntimeError,
              NotImplementedError, zlib.error, KeyError, struct.error, UnicodeDecodeError, OverflowError,
              MemoryError, TypeError, SyntaxError, tokenize.TokenError)


def _whole_number(path: Path, arrays: dict[str, np.ndarray], key: str) -> int:
    """``arrays[key]`` as an int, if it is one integer >= 0 (CheckpointError otherwise)."""
    value = arrays[key]
    if value.shape != () or value.dtype.kind not in "iu" or int(value) < 0:
        raise CheckpointError(f"{path} is not a minisgd checkpoint: its {key} is {_describe(value)}, "
                              f"not a whole number >= 0")
    return int(value)


def _json_object(path: Path, arrays: dict[str, np.ndarray], key: str) -> dict:
    """``arrays[key]``, a JSON text, read as a dict (CheckpointError otherwise)."""
    value = arrays[key]
    try:
        if value.shape != () or value.dtype.kind != "U":
            raise ValueError
        loaded = json.loads(str(value))
        if not isinstance(loaded, dict):
            raise ValueError
    except (ValueError, RecursionError):
        raise CheckpointError(f"{path} is not a minisgd checkpoint: its {key} is {_describe(value)}, "
                              f"not a JSON object") from None
    return loaded


def _describe(value: np.ndarray) -> str:
    """A short phrase for a stored array: ``"a float64 scalar 2.5"``, ``"an int64 array of shape (3,)"``."""
    if value.shape == ():
        text = repr(value.item())
        return f"a {value.dtype} scalar {text[:40] + '…' if len(text) > 40 else text}"
    return f"an array of {value.dtype} with shape {value.shape}"


def restore(checkpoint: dict[str, Any], *, model: Any, optimizer: Any) -> None:
    """Load a checkpoint's state into ``model``, ``optimizer`` and minisgd's random generator.

    A checkpoint of another architecture raises CheckpointError naming the
    keys that do not match.
    """
    try:
        model.load_state_dict(checkpoint["model"])
    except (KeyError, ValueError) as error:
        message = error.args[0] if error.args else str(error)
        raise CheckpointError(f"the checkpoint does not fit this model: {message}") from None
    optimizer.load_state_dict(checkpoint["optimizer"])
    random.set_state(checkpoint["random_state"])
