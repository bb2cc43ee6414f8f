"""minisgd.checks: the one set of argument checks, and the one message form they share."""

import math

import numpy as np
import pytest

from minisgd import checks


def test_number_accepts_the_range_and_returns_a_float():
    assert checks.number("f", "lr", 1, low=0) == 1.0 and isinstance(checks.number("f", "lr", np.float32(0.5)), float)
    assert checks.number("f", "beta", 0.0, low=0, high=1, high_open=True) == 0.0


@pytest.mark.parametrize(
    "value, kwargs, message",
    [
        (-0.5, dict(low=0, low_open=True), "step: gamma must be > 0; got -0.5"),
        (0, dict(low=0, low_open=True), "step: gamma must be > 0; got 0"),
        (1.0, dict(low=0, high=1, high_open=True), r"step: gamma must be in \[0, 1\); got 1.0"),
        (math.nan, dict(low=0), "step: gamma must be a finite number >= 0; got nan"),
        ("0.1", dict(), "step: gamma must be a finite number; got '0.1'"),
        (True, dict(), "step: gamma must be a finite number; got True"),
    ],
)
def test_number_refuses_with_the_one_message_form(value, kwargs, message):
    with pytest.raises(ValueError, match=message):
        checks.number("step", "gamma", value, **kwargs)


def test_integer_pair_choice_increasing_schedule():
    assert checks.integer("f", "n", np.int64(3), low=1) == 3
    assert checks.integer("f", "n", 2.0, low=1, whole_float=True) == 2
    with pytest.raises(ValueError, match="f: n must be an integer >= 1; got 2.5"):
        checks.integer("f", "n", 2.5, low=1, whole_float=True)
    with pytest.raises(ValueError, match=r"f: n must be an integer in \[0, 3\]; got 4"):
        checks.integer("f", "n", 4, low=0, high=3)
    assert checks.int_pair("f", "k", 3, low=1) == (3, 3) and checks.int_pair("f", "k", (1, 2), low=0) == (1, 2)
    with pytest.raises(ValueError, match=r"f: k must be an int or a pair of ints; got \(1, 2, 3\)"):
        checks.int_pair("f", "k", (1, 2, 3), low=1)
    with pytest.raises(ValueError, match="f: mode must be one of 'a', 'b'; got 'c'"):
        checks.choice("f", "mode", "c", ("a", "b"))
    assert checks.increasing("f", "m", (1, 2.5)) == [1, 2.5]
    with pytest.raises(ValueError, match=r"f: m must be strictly increasing; got \[2, 2\]"):
        checks.increasing("f", "m", [2, 2])
    assert checks.schedule("f", "s", abs) is abs
    with pytest.raises(ValueError, match=r"f: s must be a schedule \(a callable t -> lr\); got 0.1"):
        checks.schedule("f", "s", 0.1)


def test_an_empty_where_leaves_the_prefix_out():
    with pytest.raises(ValueError, match="^p must be >= 0; got -1$"):
        checks.number("", "p", -1, low=0)
