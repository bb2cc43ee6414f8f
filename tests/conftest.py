"""Shared pytest fixtures and the short/long switch for heavy checks.

Tests marked ``slow`` run in a short form by default (what ``.ci/run`` runs);
``MINISGD_FULL=1 python -m pytest`` runs their long form.

``MINISGD_TEST_DEVICE=fake-cupy`` runs the tests on the CPU stand-in for CuPy
(``tests/fake_cupy.py``); ``MINISGD_DEVICE=cuda`` on a machine with CuPy and a
GPU runs them on the real one.
"""

import importlib.util
import os
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")  # figures are saved, never shown

if os.environ.get("MINISGD_TEST_DEVICE") == "fake-cupy":
    # Run on the CPU stand-in for CuPy (see fake_cupy.py): every tensor made
    # from host data goes to "cuda", which is the fake device.
    import fake_cupy

    fake_cupy.install()
    os.environ["MINISGD_DEVICE"] = "cuda"

FULL = os.environ.get("MINISGD_FULL") == "1"
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str):
    """The script ``benchmarks/{name}.py`` as a module, freshly executed (the scripts are not a package;
    ``benchmarks/`` goes on sys.path so that they find ``train_step``)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def rng():
    """A seeded NumPy generator, so every test draws the same numbers each run."""
    return np.random.default_rng(1234)


def pytest_terminal_summary(terminalreporter):
    """After the run: how many cases the fuzz harnesses ran (the closing note quotes them)."""
    for module, counts in (("test_cli_fuzz", "CASES"), ("test_checkpoint_fuzz", "COUNTS")):
        if module in sys.modules:
            terminalreporter.write_line(f"{module} cases: {getattr(sys.modules[module], counts)}")
