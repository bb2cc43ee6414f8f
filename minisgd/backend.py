"""Where arrays live: the one module of minisgd that knows about CuPy.

minisgd runs one code path on two array libraries. NumPy arrays live on the
``"cpu"`` device, CuPy arrays on ``"cuda"``. Every operation asks this module
for the *array module* of the data it received (``numpy`` or ``cupy``) and
calls that module's functions, so the same line of code runs on either::

    xp = get_array_module(x)       # numpy for a NumPy array, cupy for a CuPy one
    y = xp.maximum(x, 0)

CuPy is optional. It is imported lazily, the first time a ``"cuda"`` array is
asked for, and asking for one without CuPy or without a GPU raises a
:class:`DeviceError` that says what is missing and how to install it.

The default device is ``"cpu"``; the environment variable ``MINISGD_DEVICE``
changes it (``MINISGD_DEVICE=cuda python -m minisgd train``).

Threads on the CPU (NumPy only): :func:`map_blocks` runs independent pieces
of work (blocks of images of a convolution) on a few Python threads at once,
with the BLAS held at one thread inside them, so that the copies and
elementwise work between matrix products use every core too. On a GPU it is a
plain loop: the device parallelises each operation itself. :func:`matmul`
splits one large matrix product the same way (the linear layers use it), and
:func:`row_blocks` a large elementwise operation (the ReLU).

Host memory (Linux): :func:`keep_freed_memory` asks the C library to keep the
memory of freed arrays for the next training step instead of returning it to
the kernel, which would have to hand over (and zero) fresh pages each step.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from types import ModuleType
from typing import Any, Callable, Iterable, Iterator

import numpy as np

DEVICES = ("cpu", "cuda")

INSTALL_HINT = (
    "install the CuPy wheel that matches your CUDA version, for example "
    "`pip install cupy-cuda12x` (CUDA 12) or `pip install cupy-cuda11x` (CUDA 11)"
)


class DeviceError(RuntimeError):
    """A device was asked for that this machine cannot provide."""


def _cupy_or_none() -> ModuleType | None:
    """Import CuPy if it is installed; return None otherwise."""
    if "cupy" in sys.modules:
        return sys.modules["cupy"]
    try:
        import cupy
    except Exception:  # ImportError, or a broken CUDA installation
        return None
    return cupy


def cupy_available() -> bool:
    """True when CuPy can be imported."""
    return _cupy_or_none() is not None


def gpu_available() -> bool:
    """True when CuPy is installed and sees at least one CUDA GPU."""
    cupy = _cupy_or_none()
    if cupy is None:
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no driver, no device
        return False


def check_device(device: str) -> str:
    """Return ``device`` if it names a known device, else raise ValueError."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(map(repr, DEVICES))}; got {device!r}")
    return device


def default_device() -> str:
    """The device new tensors and models use: ``$MINISGD_DEVICE`` or ``"cpu"``."""
    device = os.environ.get("MINISGD_DEVICE", "cpu") or "cpu"
    if device not in DEVICES:
        raise ValueError(
            f"MINISGD_DEVICE must be one of {', '.join(map(repr, DEVICES))}; got {device!r}"
        )
    return device


def array_module(device: str) -> ModuleType:
    """The array module that holds arrays on ``device``: numpy or cupy."""
    check_device(device)
    if device == "cpu":
        return np
    cupy = _cupy_or_none()
    if cupy is None:
        raise DeviceError(f"device 'cuda' needs CuPy, which is not installed: {INSTALL_HINT}")
    if not gpu_available():
        raise DeviceError(
            "device 'cuda' needs a CUDA GPU, and CuPy found none "
            "(check `nvidia-smi`; use device 'cpu' on this machine)"
        )
    return cupy


def _is_cupy_array(array: Any) -> bool:
    # Only look for CuPy when it has been imported: a CuPy array cannot exist otherwise.
    cupy = sys.modules.get("cupy")
    return cupy is not None and isinstance(array, cupy.ndarray)


def get_array_module(array: Any) -> ModuleType:
    """The array module of ``array``: cupy for a CuPy array, numpy for anything else."""
    return sys.modules["cupy"] if _is_cupy_array(array) else np


def device_of(array: Any) -> str:
    """The device an array lives on: ``"cuda"`` for a CuPy array, else ``"cpu"``."""
    return "cuda" if _is_cupy_array(array) else "cpu"


def to_device(array: Any, device: str) -> Any:
    """Return ``array`` on ``device``, copying between host and GPU only when needed."""
    check_device(device)
    if device_of(array) == device:
        return array
    if device == "cpu":
        return array.get()  # CuPy -> NumPy
    return array_module("cuda").asarray(array)  # NumPy -> CuPy


def to_numpy(array: Any) -> np.ndarray:
    """Return ``array`` as a NumPy array (a copy from the GPU, the array itself on the CPU)."""
    return to_device(array, "cpu") if _is_cupy_array(array) else np.asarray(array)


def synchronize(device: str) -> None:
    """Wait until every queued GPU kernel has finished (a no-op on the CPU).

    Call it before reading a clock: GPU work is asynchronous.
    """
    if check_device(device) == "cuda":
        array_module("cuda").cuda.get_current_stream().synchronize()


# ------------------------------------------------------------- host memory
# glibc's mallopt parameters (malloc.h) and the values minisgd sets.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
TRIM_THRESHOLD_BYTES = 256 * 2**20
MMAP_THRESHOLD_BYTES = 32 * 2**20  # the largest glibc accepts on 64-bit machines


def keep_freed_memory() -> bool:
    """Ask the C library's malloc to keep freed memory for reuse instead of returning it to the kernel.

    Every training step allocates and frees the same large arrays
    (activations, gradients: 16 MB each for small_vgg at batch 128). By
    default glibc hands such blocks back to the kernel when they are freed
    (blocks above its mmap threshold, and any free space above its trim
    threshold at the top of the heap), so the next step's arrays start on
    fresh pages: one page fault per 4 KB, which the kernel must zero. Measured
    on small_vgg: about 7 000 faults and 15 ms per step. With the mmap
    threshold at 32 MB and the trim threshold at 256 MB, arrays up to 32 MB
    come from the heap and the freed memory stays in the process for the next
    step (peak memory is unchanged: it was in use a moment before).

    Linux with glibc only (``mallopt``); elsewhere nothing changes. Returns
    True when both settings were applied. minisgd calls it once, on import.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process already uses
    except (OSError, AttributeError):  # no mallopt (musl, for example)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    # The trim threshold first: setting it also stops glibc from moving the mmap threshold on its own.
    return bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)) and bool(
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    )


KEEPS_FREED_MEMORY = keep_freed_memory()


# ------------------------------------------------------------- CPU threads
def _numpy_blas() -> list[Any]:
    """threadpoolctl's handles on the BLAS libraries NumPy loaded ([] without threadpoolctl)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return []
    return [library for library in ThreadpoolController().lib_controllers if library.user_api == "blas"]


_BLAS = _numpy_blas()
# As many threads as the BLAS was given (OPENBLAS_NUM_THREADS / OMP_NUM_THREADS, else one per core).
CPU_THREADS = max([library.num_threads for library in _BLAS] or [1])
_executor: ThreadPoolExecutor | None = None


def _forget_executor() -> None:
    """In a forked child the pool's threads do not exist: start a new pool when one is needed."""
    global _executor
    _executor = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_executor)


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Hold NumPy's BLAS at one thread inside the ``with`` block, and restore its thread count after."""
    before = [library.num_threads for library in _BLAS]
    for library in _BLAS:
        library.set_num_threads(1)
    try:
        yield
    finally:
        for library, threads in zip(_BLAS, before):
            library.set_num_threads(threads)


def map_blocks(work: Callable[[Any], Any], blocks: Iterable[Any], device: str) -> list[Any]:
    """``[work(block) for block in blocks]``, on ``CPU_THREADS`` threads on the CPU.

    The blocks must be independent (each writes its own part of the output).
    The calling thread and ``CPU_THREADS − 1`` threads of a pool take the
    blocks one at a time, in order, until none is left: a thread slowed by
    another process then does fewer blocks instead of holding the others up,
    and a call with little work costs no more than waking one thread. While
    they run, NumPy's BLAS is held at one thread, so that the threads do not
    fight the BLAS's own threads for the cores. On a GPU, and where
    threadpoolctl is missing (the BLAS threads cannot then be held), the
    blocks run one after another on the calling thread.

    A block may itself call ``map_blocks``: a helper that has not started by
    the time the calling thread has taken every block is dropped, so a call
    from inside the pool never waits for a thread that is busy running it.

    NumPy's floating-point error handling (``np.errstate``) belongs to each
    thread, so the blocks run under the caller's: an overflow that the caller
    ignores is ignored in the blocks too, and one it turns into an error is an
    error there too.
    """
    global _executor
    blocks = list(blocks)
    if device != "cpu" or not _BLAS:
        return [work(block) for block in blocks]
    if len(blocks) == 1:  # nothing to share (a small product or ReLU): no pool, no bookkeeping
        with one_blas_thread():
            return [work(blocks[0])]
    results: list[Any] = [None] * len(blocks)
    taken = itertools.count()  # the next block to take; next() on it is atomic (under the GIL)
    failed = threading.Event()
    callers_errstate = np.geterr()

    def take_blocks() -> None:
        with np.errstate(**callers_errstate):
            while True:
                index = next(taken)
                if index >= len(blocks) or failed.is_set():
                    return
                try:
                    results[index] = work(blocks[index])
                except BaseException:
                    failed.set()  # the other threads stop taking blocks
                    raise

    with one_blas_thread():
        helpers = []
        if CPU_THREADS > 1 and len(blocks) > 1:
            if _executor is None:
                _executor = ThreadPoolExecutor(CPU_THREADS - 1, thread_name_prefix="minisgd")
            helpers = [_executor.submit(take_blocks) for _ in range(min(CPU_THREADS, len(blocks)) - 1)]
        try:
            take_blocks()
        finally:
            # A helper that has not started yet would find nothing left to do: cancel it. Wait for
            # the others: no thread may still be writing when this returns, even after an error.
            started = [helper for helper in helpers if not helper.cancel()]
            wait(started)
        for helper in started:
            helper.result()  # raises a helper's error here
    return results


def even_parts(size: int, count: int) -> list[slice]:
    """``count`` slices that cover range(size) in order, their lengths within one of each other
    (fewer when size < count; none when size is 0)."""
    bounds = sorted({size * k // max(count, 1) for k in range(max(count, 1) + 1)})
    return [slice(start, stop) for start, stop in zip(bounds[:-1], bounds[1:])]


# Elementwise work on fewer elements than this stays on the calling thread.
SPLIT_ELEMENTS = 2**18


def row_blocks(array: Any) -> list[Any]:
    """Indices that split ``array`` along its first axis for :func:`map_blocks`: one part per thread
    for a CPU array of at least ``SPLIT_ELEMENTS`` elements, else one part, the whole array (``...``).

    For memory-bound elementwise work (a ReLU over a 16 MB activation): one
    core alone does not draw all the memory bandwidth there is; two parts on
    two cores run in a little over half the time.
    """
    if device_of(array) != "cpu" or array.ndim == 0 or array.size < SPLIT_ELEMENTS or CPU_THREADS < 2:
        return [...]
    return even_parts(array.shape[0], CPU_THREADS)


# Products smaller than this many multiply-adds run on the calling thread alone: splitting them
# would save less time than waking another thread costs (tens of microseconds).
SPLIT_MACS = 2**22


def matmul(a: Any, b: Any) -> Any:
    """a @ b for two matrices, on ``CPU_THREADS`` threads through :func:`map_blocks`.

    The rows of a (or, when b has more columns than a has rows, the columns
    of b) are split into one part per thread, and each thread computes its
    part of the product with the BLAS at one thread:

        out[rows] = a[rows] @ b      or      out[:, cols] = a @ b[:, cols]

    The numbers are those of ``a @ b``. Why not let the BLAS use its own
    threads? After a multi-threaded call OpenBLAS keeps its idle threads
    spinning for a while, and in a training step the next thing to run is a
    convolution's blocks on :func:`map_blocks` threads: the spinning thread
    takes a core from them (measured: small_vgg's convolution backward ran
    a third slower after the linear layers' backward). A product of fewer
    than ``SPLIT_MACS`` multiply-adds is one part. On a GPU, or with one
    thread, it is ``a @ b``.
    """
    xp = get_array_module(a)
    if xp is not np or not _BLAS or a.ndim != 2 or b.ndim != 2:
        return xp.matmul(a, b)
    rows, cols = a.shape[0], b.shape[1]
    out = np.empty((rows, cols), dtype=np.result_type(a.dtype, b.dtype))
    split_rows = rows >= cols
    parts = CPU_THREADS if rows * a.shape[1] * cols >= SPLIT_MACS else 1

    def product(part: slice) -> None:
        if split_rows:
            np.matmul(a[part], b, out=out[part])
        else:
            out[:, part] = a @ b[:, part]

    map_blocks(product, even_parts(rows if split_rows else cols, parts), "cpu")
    return out
