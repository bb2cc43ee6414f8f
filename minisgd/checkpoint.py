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
import zipfile
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
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        # Never retried with allow_pickle=True: a pickle can run code.
        raise CheckpointError(
            f"{path} is not a minisgd checkpoint (corrupt, truncated or another kind of file)"
        ) from None
    required = {"format_version", "random_state", "epoch", "history", "meta"}
    if not required <= arrays.keys():
        missing = ", ".join(sorted(required - arrays.keys()))
        raise CheckpointError(f"checkpoint {path} is not a minisgd checkpoint (missing {missing})")
    if int(arrays["format_version"]) != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {int(arrays['format_version'])}; "
            f"this minisgd reads version {FORMAT_VERSION}"
        )

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
        "epoch": int(arrays["epoch"]),
        "history": json.loads(str(arrays["history"])),
        "meta": json.loads(str(arrays["meta"])),
    }


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
