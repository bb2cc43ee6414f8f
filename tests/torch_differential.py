"""Helpers of the differential tests against PyTorch (tests/test_differential_torch.py).

A case builds the same computation twice, once with minisgd and once with
PyTorch, from the same NumPy inputs. :func:`check_case` runs both forward
passes, then both backward passes from the same upstream gradient, and
compares what PyTorch would let a student see: whether it raised, the
result's shape, dtype and values, and the gradient of every input.

The strategies draw the inputs: shapes with empty and 0-d axes, the five
dtypes (bool, uint8, int64, float32, float64) and values that include 0, −0,
±inf and NaN.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minisgd
from minisgd import Tensor
from minisgd.backend import to_numpy

DTYPES = [np.dtype(np.bool_), np.dtype(np.uint8), np.dtype(np.int64), np.dtype(np.float32), np.dtype(np.float64)]
FLOATS = [np.dtype(np.float32), np.dtype(np.float64)]
SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, np.inf, -np.inf, np.nan]
# Relative tolerance by dtype (the absolute one scales with the largest finite value compared).
TOLERANCE = {np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-11}


# ------------------------------------------------------------------ strategies
def elements(dtype: np.dtype, special: bool) -> st.SearchStrategy:
    """Values of one dtype: small integers, or floats that are finite or include 0, −0, ±inf and NaN."""
    if dtype.kind == "b":
        return st.booleans()
    if dtype == np.uint8:
        return st.integers(0, 255)
    if dtype.kind == "i":
        return st.integers(-6, 6)
    width = 32 if dtype == np.float32 else 64
    # 0, or magnitudes from 1e-15 to 4: PyTorch computes s / x as s · (1/x) and its backward
    # from (1/x)², which overflow for tiny x in float32 (the gradient of 0 / 1e-30 is NaN there,
    # 0 by minisgd's formula −g · (s / x) / x).
    tiny = float(np.float32(1e-15)) if width == 32 else 1e-15  # a bound the width represents exactly
    finite = st.one_of(st.just(0.0), st.floats(tiny, 4, width=width), st.floats(-4, -tiny, width=width))
    if not special:
        return finite
    return st.one_of(st.sampled_from(SPECIAL), finite)


def arrays(draw: Callable, dtype: Any, shape: tuple[int, ...], special: bool | None = None) -> np.ndarray:
    """An array of ``dtype`` and ``shape``; floats have special values in about one array in three."""
    dtype = np.dtype(dtype)
    if special is None:
        special = draw(st.integers(0, 2)) == 0
    return draw(hnp.arrays(dtype, shape, elements=elements(dtype, special)))


def shapes(min_dims: int = 0, max_dims: int = 4, min_side: int = 0, max_side: int = 3) -> st.SearchStrategy:
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


# ------------------------------------------------------------------ conversion
def torch_dtype_name(dtype: Any) -> str:
    return str(dtype).replace("torch.", "")


def to_torch(array: np.ndarray) -> torch.Tensor:
    """A PyTorch leaf with a copy of ``array``; floating-point leaves require grad."""
    out = torch.tensor(np.array(array))
    return out.requires_grad_() if out.is_floating_point() else out


def to_ours(array: np.ndarray) -> Tensor:
    """A minisgd leaf with a copy of ``array``; floating-point leaves require grad."""
    array = np.array(array)
    return Tensor(array, requires_grad=array.dtype.kind == "f")


# ------------------------------------------------------------------ comparison
def assert_close(ours: Any, theirs: Any, what: str, rtol: float | None = None, scale: float = 1.0) -> None:
    """Same shape, same dtype, same values: exact for bool and integers; for floats the same NaN and
    infinity positions, and the finite values within ``rtol`` (by default the dtype's tolerance) of
    the largest of them, or of ``scale`` when that is larger (intermediate values that cancel)."""
    if isinstance(theirs, torch.Tensor):
        their_dtype = torch_dtype_name(theirs.dtype)
        theirs = theirs.detach().numpy()
    else:
        theirs = np.asarray(theirs)
        their_dtype = str(theirs.dtype)
    ours = to_numpy(ours.data) if isinstance(ours, Tensor) else np.asarray(ours)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape}, PyTorch {theirs.shape}"
    assert str(ours.dtype) == their_dtype, f"{what}: dtype {ours.dtype}, PyTorch {their_dtype}"
    if ours.dtype.kind != "f":
        assert np.array_equal(ours, theirs), f"{what}: values\n{ours}\nPyTorch\n{theirs}"
        return
    nan_ours, nan_theirs = np.isnan(ours), np.isnan(theirs)
    assert np.array_equal(nan_ours, nan_theirs), f"{what}: NaN at different places\n{ours}\nPyTorch\n{theirs}"
    inf = np.isinf(theirs)
    assert np.array_equal(np.isinf(ours), inf) and np.array_equal(ours[inf], theirs[inf]), (
        f"{what}: infinities differ\n{ours}\nPyTorch\n{theirs}"
    )
    finite = np.isfinite(theirs)
    scale = max(1.0, scale, float(np.abs(theirs[finite]).max(initial=0.0)))
    rtol = TOLERANCE[ours.dtype] if rtol is None else max(rtol, TOLERANCE[ours.dtype])
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=rtol, atol=rtol * scale, err_msg=what)


def assert_grad_close(ours: Tensor, theirs: torch.Tensor, what: str, rtol: float | None = None,
                      scale: float = 1.0) -> None:
    """The gradients of one input; a missing gradient on one side must be zero on the other."""
    mine, their = ours.grad, theirs.grad
    if mine is None and their is None:
        return
    if mine is None or their is None:
        present = mine if mine is not None else their.numpy()
        assert not np.any(present), f"{what}: one side has no gradient, the other has {present}"
        return
    assert_close(mine, their, what, rtol, scale)


# --------------------------------------------------------- documented choices
@dataclass(frozen=True)
class Choice:
    """A documented case where minisgd raises and PyTorch computes: the op, the message, the reason."""

    op: str
    message: str  # a regular expression that the error message of minisgd matches
    reason: str


# Where PyTorch raises from inside its own backward formula for a valid input; minisgd computes.
TORCH_FAILURES: list[Choice] = []


@dataclass
class Outcome:
    """What one side did: its result (or error) for the forward and the backward pass."""

    result: Any = None
    error: BaseException | None = None
    notes: list[str] = field(default_factory=list)


def run(function: Callable[[], Any]) -> Outcome:
    try:
        return Outcome(result=function())
    except Exception as error:  # noqa: BLE001 (comparing the raising behaviour of two libraries)
        return Outcome(error=error)


def documented(op: str, error: BaseException, choices: list[Choice]) -> Choice | None:
    for choice in choices:
        if choice.op == op and re.search(choice.message, str(error)):
            return choice
    return None


def expect_same_raising(op: str, ours: Outcome, theirs: Outcome, choices: list[Choice], stage: str) -> bool:
    """True when both computed; False when both raised (or minisgd raised for a documented reason).

    PyTorch raising and minisgd computing is a failure; so is minisgd raising where PyTorch
    computes, unless ``choices`` documents it.
    """
    if theirs.error is not None and documented(op, theirs.error, TORCH_FAILURES):
        return False  # PyTorch fails inside its own formula; minisgd may compute (see TORCH_FAILURES)
    if theirs.error is not None:
        assert ours.error is not None, (
            f"{op} ({stage}): PyTorch raises ({type(theirs.error).__name__}: {theirs.error}) but minisgd does not"
        )
        return False
    if ours.error is not None:
        choice = documented(op, ours.error, choices)
        if choice is None:
            raise AssertionError(
                f"{op} ({stage}): minisgd raises ({type(ours.error).__name__}: {ours.error}) "
                "but PyTorch computes it, and this is not a documented choice"
            ) from ours.error
        return False
    return True


def as_tensors(result: Any) -> list[Any]:
    return list(result) if isinstance(result, (tuple, list)) else [result]


def check_case(
    op: str,
    inputs: list[np.ndarray],
    ours_fn: Callable[..., Any],
    torch_fn: Callable[..., Any],
    upstream: Callable[[tuple[int, ...], Any], np.ndarray] | None,
    choices: list[Choice],
    scale: float = 1.0,
) -> str:
    """Run one case on both libraries and compare everything; returns how it ended (for counting).

    Floats are compared with the tolerance of the least precise float dtype in the case (a float32
    operand makes PyTorch compute some products in float32), relative to ``scale`` or the values.
    """
    ours_in = [to_ours(a) for a in inputs]
    torch_in = [to_torch(a) for a in inputs]
    theirs = run(lambda: torch_fn(*torch_in))
    ours = run(lambda: ours_fn(*ours_in))
    if not expect_same_raising(op, ours, theirs, choices, "forward"):
        return "raised"
    ours_out, their_out = as_tensors(ours.result), as_tensors(theirs.result)
    assert len(ours_out) == len(their_out), f"{op}: {len(ours_out)} results, PyTorch {len(their_out)}"
    floats = [a.dtype for a in inputs if a.dtype.kind == "f"]
    floats += [np.dtype(torch_dtype_name(t.dtype)) for t in their_out
               if isinstance(t, torch.Tensor) and t.is_floating_point()]
    rtol = max((TOLERANCE[d] for d in floats), default=None)
    for i, (mine, their) in enumerate(zip(ours_out, their_out)):
        assert_close(mine, their, f"{op}: result {i}", rtol, scale)
    mine, their = ours_out[0], their_out[0]
    if upstream is None or not isinstance(their, torch.Tensor) or not their.requires_grad:
        assert not (isinstance(mine, Tensor) and mine.requires_grad and not their_requires(their)), (
            f"{op}: the result requires grad in minisgd but not in PyTorch"
        )
        return "forward"
    assert isinstance(mine, Tensor) and mine.requires_grad, f"{op}: the result does not require grad"
    g = upstream(tuple(their.shape), np.dtype(torch_dtype_name(their.dtype)))
    theirs = run(lambda: their.backward(torch.tensor(g)))
    ours = run(lambda: mine.backward(g.copy()))
    if not expect_same_raising(op, ours, theirs, choices, "backward"):
        return "raised"
    for i, (a, b) in enumerate(zip(ours_in, torch_in)):
        if a.requires_grad:
            assert_grad_close(a, b, f"{op}: gradient of input {i}", rtol, scale)
    return "backward"


def their_requires(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.requires_grad


__all__ = ["Choice", "DTYPES", "FLOATS", "arrays", "assert_close", "check_case", "minisgd", "shapes"]
