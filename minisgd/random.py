"""minisgd's random-number generator: one seedable source for initialisation and dropout.

Weight initialisation and dropout masks draw from one NumPy ``Generator`` held
here, so ``manual_seed(0)`` makes a run reproducible, and ``get_state`` /
``set_state`` let a checkpoint carry the generator so a resumed run draws the
same numbers an uninterrupted one would. The state is a small integer array,
which ``.npz`` files store without pickling.

Example::

    >>> import minisgd
    >>> minisgd.random.manual_seed(0)
    >>> a = minisgd.random.generator().random(3)
    >>> minisgd.random.manual_seed(0)
    >>> bool((a == minisgd.random.generator().random(3)).all())
    True
"""

from __future__ import annotations

import numpy as np

from minisgd.backend import array_module, check_device

_generator = np.random.Generator(np.random.PCG64())

_MASK64 = (1 << 64) - 1


def manual_seed(seed: int) -> None:
    """Reset the generator so that the numbers drawn next depend only on ``seed``."""
    global _generator
    _generator = np.random.Generator(np.random.PCG64(seed))


def generator() -> np.random.Generator:
    """The NumPy generator minisgd draws from (host memory)."""
    return _generator


def random(shape: tuple[int, ...], device: str = "cpu", dtype=np.float32):
    """Uniform numbers in [0, 1) of ``shape`` and ``dtype``, created on ``device``.

    The numbers are drawn on the host from :func:`generator` and copied to the
    GPU when ``device`` is ``"cuda"``, so a seed gives the same numbers on every
    device.
    """
    values = _generator.random(shape, dtype=np.float64).astype(dtype, copy=False)
    if check_device(device) == "cpu":
        return values
    return array_module(device).asarray(values)


def get_state() -> np.ndarray:
    """The generator's state as six uint64 numbers (PCG64's 128-bit state and increment)."""
    state = _generator.bit_generator.state
    inner = state["state"]
    return np.array(
        [
            inner["state"] >> 64,
            inner["state"] & _MASK64,
            inner["inc"] >> 64,
            inner["inc"] & _MASK64,
            state["has_uint32"],
            state["uinteger"],
        ],
        dtype=np.uint64,
    )


def set_state(words: np.ndarray) -> None:
    """Restore a state returned by :func:`get_state` (six unsigned integers; ValueError for anything else)."""
    array = np.asarray(words)
    if array.shape != (6,) or array.dtype.kind not in "ui" or (array.dtype.kind == "i" and array.min() < 0):
        raise ValueError(f"random state must be 6 unsigned integers; got an array of {array.dtype} with shape "
                         f"{array.shape}")
    words = [int(w) for w in array]
    bit_generator = np.random.PCG64()
    bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {"state": (words[0] << 64) | words[1], "inc": (words[2] << 64) | words[3]},
        "has_uint32": words[4],
        "uinteger": words[5],
    }
    global _generator
    _generator = np.random.Generator(bit_generator)
