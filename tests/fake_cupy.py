"""A stand-in for CuPy that runs on the CPU, so that CI without a GPU exercises the GPU code path.

GPU code rots when nothing runs it. The mistakes that break minisgd on CuPy
while every CPU test passes are few and well known:

1. calling a NumPy function on device data (``np.concatenate(xs)``,
   ``np.zeros_like(x)``): CuPy arrays refuse implicit conversion to NumPy;
2. mixing a NumPy array made on the host (``np.zeros(shape)``) into arithmetic
   with device arrays: CuPy refuses to mix the two;
3. calling a function CuPy does not have (``xp.some_numpy_only_function``) or
   a NumPy-only trick such as ``np.add.at`` on the array module;
4. forgetting to move data, buffers or state between devices.

This module builds a fake ``cupy`` that catches all four. Its arrays
(:class:`DeviceArray`) are NumPy arrays underneath, so every result is exact,
but:

- any NumPy function called on them raises TypeError (mistake 1);
- a ufunc or operator that mixes them with a plain NumPy array raises (2);
- the fake module offers only the names real CuPy 14 offers, listed in
  ``tests/data/cupy_api.txt`` (read from the real package), and its
  functions refuse plain NumPy arrays except the converters ``asarray`` and
  ``array`` (3);
- ``.get()`` returns a NumPy copy, as CuPy's does, and ``backend`` sees the
  arrays as living on ``"cuda"`` (4).

``install()`` puts it in ``sys.modules["cupy"]``; ``minisgd.backend`` then
treats it exactly as it would treat CuPy (it is the only module that looks).
``tests/conftest.py`` installs it when ``MINISGD_TEST_DEVICE=fake-cupy``, and
``tests/test_gpu_guard.py`` runs the device-agnostic test files that way.

What it cannot catch: ``np.asarray(device_array)`` silently works on a NumPy
subclass, and kernels' speed or memory on a real GPU.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np

CUPY_API = frozenset(
    line.strip()
    for line in (Path(__file__).parent / "data" / "cupy_api.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
)

# CuPy functions that accept host (NumPy) data: they copy it to the device.
CONVERTERS = frozenset({"asarray", "array", "asanyarray", "ascontiguousarray"})


class DeviceArray(np.ndarray):
    """A NumPy array posing as a CuPy array: it refuses NumPy functions and mixing with host arrays."""

    def get(self) -> np.ndarray:
        """A NumPy copy on the host, like ``cupy.ndarray.get()``."""
        return np.array(self.view(np.ndarray))

    def __array_function__(self, func, types, args, kwargs):
        raise TypeError(
            f"numpy.{func.__name__} was called on device (CuPy) data; CuPy arrays refuse "
            f"NumPy functions: use the data's array module, xp.{func.__name__}"
        )

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        for value in inputs:
            if isinstance(value, np.ndarray) and not isinstance(value, DeviceArray):
                raise TypeError(
                    f"{ufunc.__name__}: mixes a device (CuPy) array with a host NumPy array of "
                    f"shape {value.shape}; CuPy refuses this: create it with the array module of the data"
                )
        if "out" in kwargs:
            kwargs["out"] = tuple(_to_host_view(o) for o in kwargs["out"])
        result = getattr(ufunc, method)(*(_to_host_view(v) for v in inputs), **kwargs)
        return _to_device_view(result)


def _to_host_view(value):
    """Plain-NumPy views of device arrays, inside lists and tuples too."""
    if isinstance(value, DeviceArray):
        return value.view(np.ndarray)
    if isinstance(value, (list, tuple)):
        return type(value)(_to_host_view(v) for v in value)
    return value


def _to_device_view(value):
    """Results as device arrays; NumPy scalars become 0-d arrays, as CuPy's reductions return."""
    if isinstance(value, np.generic):
        return np.asarray(value).view(DeviceArray)
    if isinstance(value, np.ndarray) and not isinstance(value, DeviceArray):
        return value.view(DeviceArray)
    if isinstance(value, tuple):
        return tuple(_to_device_view(v) for v in value)
    if isinstance(value, list):
        return [_to_device_view(v) for v in value]
    return value


def _contains_host_array(value) -> bool:
    if isinstance(value, np.ndarray) and not isinstance(value, DeviceArray):
        return value.ndim > 0  # CuPy accepts NumPy scalars (0-d) as Python numbers
    if isinstance(value, (list, tuple)):
        return any(_contains_host_array(v) for v in value)
    return False


def _device_function(name: str, function):
    """Wrap a NumPy function so that it takes and returns device arrays, like CuPy's."""
    converter = name.rsplit(".", 1)[-1] in CONVERTERS

    def wrapper(*args, **kwargs):
        if not converter and (_contains_host_array(args) or _contains_host_array(list(kwargs.values()))):
            raise TypeError(f"{name}: got a host NumPy array; CuPy functions take device arrays only")
        from_host = converter and bool(args) and not isinstance(args[0], DeviceArray)
        args = tuple(_to_host_view(a) for a in args)
        kwargs = {k: _to_host_view(v) for k, v in kwargs.items()}
        result = function(*args, **kwargs)
        if from_host:
            result = np.array(result)  # a transfer copies: device data never aliases host memory
        return _to_device_view(result)

    wrapper.__name__ = name
    return wrapper


class _FakeNamespace(types.ModuleType):
    """A module whose attributes are NumPy's, restricted to CuPy's names and wrapped for device arrays."""

    def __init__(self, name: str, numpy_namespace) -> None:
        super().__init__(name)
        self._numpy_namespace = numpy_namespace

    def __getattr__(self, attribute: str):
        full_name = f"{self.__name__}.{attribute}"
        if attribute.startswith("__") or full_name not in CUPY_API:
            raise AttributeError(f"{full_name} does not exist in CuPy (see tests/data/cupy_api.txt)")
        value = getattr(self._numpy_namespace, attribute)
        if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, np.ufunc)) or (
            callable(value) and not isinstance(value, type)
        ):
            return _device_function(full_name, value)
        return value


class _FakeStream:
    def synchronize(self) -> None:
        """Nothing is queued on the fake device."""


def _fake_cuda() -> types.ModuleType:
    cuda = types.ModuleType("cupy.cuda")
    cuda.runtime = types.SimpleNamespace(getDeviceCount=lambda: 1)
    cuda.get_current_stream = lambda: _FakeStream()
    return cuda


def make_fake_cupy() -> types.ModuleType:
    """Build the fake ``cupy`` module."""
    cupy = _FakeNamespace("cupy", np)
    cupy.__dict__.update(
        ndarray=DeviceArray,
        random=_FakeNamespace("cupy.random", np.random),
        linalg=_FakeNamespace("cupy.linalg", np.linalg),
        lib=types.SimpleNamespace(stride_tricks=_FakeNamespace("cupy.lib.stride_tricks", np.lib.stride_tricks)),
        cuda=_fake_cuda(),
        __version__="fake",
    )
    return cupy


def install() -> types.ModuleType:
    """Make ``import cupy`` return the fake; minisgd's backend then uses it for ``"cuda"``."""
    cupy = make_fake_cupy()
    sys.modules["cupy"] = cupy
    return cupy
