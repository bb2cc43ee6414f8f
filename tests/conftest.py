"""Shared pytest fixtures and the short/long switch for heavy checks.

Tests marked ``slow`` run in a short form by default (what ``.ci/run`` runs);
``MINISGD_FULL=1 python -m pytest`` runs their long form.
"""

import os

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")  # figures are saved, never shown

FULL = os.environ.get("MINISGD_FULL") == "1"


@pytest.fixture
def rng():
    """A seeded NumPy generator, so every test draws the same numbers each run."""
    return np.random.default_rng(1234)
