"""Default weight initialisation, the same rules PyTorch uses.

PyTorch initialises ``Linear`` and ``Conv2d`` weights with Kaiming-uniform
(He et al., 2015) using the leaky-ReLU gain for a negative slope a = √5, and
their biases uniformly in ±1/√fan_in, where fan_in is the number of inputs
that feed one output (in_features, or in_channels·kH·kW):

    gain  = √(2 / (1 + a²))                 (= √(1/3) for a = √5)
    bound = gain · √(3 / fan_in)            (= 1/√fan_in for a = √5)
    w ~ U(−bound, bound),    b ~ U(−1/√fan_in, 1/√fan_in)

So with PyTorch's defaults both weights and biases end up in ±1/√fan_in.
Numbers are drawn from :mod:`minisgd.random`, so ``minisgd.random.manual_seed``
makes initialisation reproducible.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from minisgd import random


def uniform(shape: tuple[int, ...], bound: float, device: str = "cpu", dtype: Any = np.float32) -> Any:
    """An array of ``shape`` with entries drawn from U(−bound, bound):  w = (2u − 1) · bound, u ~ U(0, 1)."""
    u = random.random(shape, device, dtype)
    return (2 * u - 1) * bound  # a Python float keeps u's dtype


def kaiming_uniform(
    shape: tuple[int, ...], fan_in: int, a: float = math.sqrt(5), device: str = "cpu",
    dtype: Any = np.float32,
) -> Any:
    """Kaiming-uniform: U(−bound, bound) with bound = √(2 / (1 + a²)) · √(3 / fan_in)."""
    gain = math.sqrt(2.0 / (1.0 + a * a))
    return uniform(shape, gain * math.sqrt(3.0 / fan_in), device, dtype)
