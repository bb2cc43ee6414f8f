"""Argument checks, written once for the whole package.

Every public function, layer, schedule, optimizer and the command line checks
its arguments with these few functions, so a bad value always gets the same
kind of message: where it was passed, the argument's name, what is allowed and
what was received::

    ValueError: step: gamma must be > 0; got -0.5

``where`` names the function or class that received the argument (an empty
string leaves the prefix out). Each function returns the value converted to
the plain Python type it was checked as, so the caller stores what was checked.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

MAX_INTEGER = 2**63 - 1  # the largest int64: an integer argument beyond it cannot reach NumPy


def fail(where: str, name: str, allowed: str, value: Any) -> None:
    """Raise the one ValueError form: ``"{where}: {name} must be {allowed}; got {value!r}"`` (a long repr cut)."""
    prefix = f"{where}: " if where else ""
    text = repr(value)
    if len(text) > 100:  # a 400-digit integer: its start and its length, so that the message stays one line
        text = f"{text[:40]}…({len(text)} characters)"
    raise ValueError(f"{prefix}{name} must be {allowed}; got {text}")


def is_real(value: Any) -> bool:
    """True for Python and NumPy ints and floats; False for bools, strings, arrays."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_integer(value: Any) -> bool:
    """True for Python and NumPy integers; False for bools and floats."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _range_text(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return "a finite number"


def number(
    where: str,
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a float, if it is a finite real number in the range.

    ``low``/``high`` bound the range (``None``: unbounded on that side);
    ``low_open``/``high_open`` exclude the bound itself. ``number(w, "lr", x, low=0)``
    allows lr >= 0; ``number(w, "beta", x, low=0, high=1, high_open=True)``
    allows 0 <= beta < 1.
    """
    allowed = _range_text(low, high, low_open, high_open)
    if not is_real(value) or not math.isfinite(value):
        fail(where, name, allowed if allowed == "a finite number" else f"a finite number {allowed}", value)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        fail(where, name, allowed, value)
    return float(value)


def integer(
    where: str,
    name: str,
    value: Any,
    *,
    low: int | None = None,
    high: int | None = None,
    whole_float: bool = False,
) -> int:
    """``value`` as an int, if it is an integer in [low, high].

    With ``whole_float=True`` a float with no fractional part (``2.0``) is
    accepted too, as schedules accept step counts computed from epochs.
    Without ``high``, values above :data:`MAX_INTEGER` (2⁶³ − 1, NumPy's
    int64) are refused too.
    """
    if high is None and is_real(value) and math.isfinite(value) and value > MAX_INTEGER:
        high = MAX_INTEGER  # a count beyond int64 is a mistake, and NumPy cannot hold it
    if low is not None and high is not None:
        allowed = f"an integer in [{low}, {high}]"
    elif low is not None:
        allowed = f"an integer >= {low}"
    elif high is not None:
        allowed = f"an integer <= {high}"
    else:
        allowed = "an integer"
    whole = is_integer(value) or (
        whole_float and is_real(value) and math.isfinite(value) and float(value).is_integer()
    )
    if not whole or (low is not None and value < low) or (high is not None and value > high):
        fail(where, name, allowed, value)
    return int(value)


def int_pair(where: str, name: str, value: Any, *, low: int) -> tuple[int, int]:
    """An int or a pair of ints (kernel size, stride, padding) as a pair, each >= ``low``."""
    pair = (value, value) if is_integer(value) else value
    if not isinstance(pair, (tuple, list)) or len(pair) != 2 or not all(is_integer(v) for v in pair):
        fail(where, name, "an int or a pair of ints", value)
    if min(pair) < low:
        fail(where, name, f">= {low}", value)
    return int(pair[0]), int(pair[1])


def choice(where: str, name: str, value: Any, allowed: Sequence[Any]) -> Any:
    """``value`` itself, if it is one of ``allowed``."""
    if value not in allowed:
        fail(where, name, "one of " + ", ".join(repr(a) for a in allowed), value)
    return value


def increasing(where: str, name: str, values: Any) -> list:
    """``values`` as a list of finite numbers >= 0, each larger than the one before."""
    try:
        values = list(values)
    except TypeError:
        fail(where, name, "a list of numbers", values)
    if not all(is_real(v) and math.isfinite(v) and v >= 0 for v in values):
        fail(where, name, "a list of finite numbers >= 0", values)
    if any(b <= a for a, b in zip(values, values[1:])):
        fail(where, name, "strictly increasing", values)
    return [int(v) if float(v).is_integer() else float(v) for v in values]


def schedule_or_number(where: str, name: str, value: Any) -> Any:
    """A callable ``t -> value`` is returned as it is; otherwise a finite number >= 0 as a float."""
    if callable(value):
        return value
    if not is_real(value) or not math.isfinite(value) or value < 0:
        fail(where, name, "a finite number >= 0 or a schedule (a callable t -> value)", value)
    return float(value)


def schedule(where: str, name: str, value: Any) -> Any:
    """``value`` itself, if it is a schedule: a callable ``t -> value``."""
    if not callable(value):
        fail(where, name, "a schedule (a callable t -> lr)", value)
    return value
