"""benchmarks/winograd_f4.py: Winograd F(4×4, 3×3), the forward pass measured against im2col.

Expected values come from elsewhere: the matrices Bᵀ, G, Aᵀ as Lavin & Gray
print them (written out here, not taken from the script), the identity checked
against a direct 4×4 correlation of one tile, and every convolution against
:func:`minisgd.nn.conv_reference.conv2d` in float64. A hypothesis search draws
the shapes; the command line refuses bad flags in one line.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import load_benchmark
from hypothesis import given, settings
from hypothesis import strategies as st

from minisgd import Tensor, backend
from minisgd.nn import conv_reference

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "winograd_f4.py"
f4 = load_benchmark("winograd_f4")

B_T = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], dtype=np.float64)


def test_the_matrices_satisfy_the_identity_on_one_tile(rng):
    """Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A is the 4×4 correlation of the 6×6 tile d with the 3×3 kernel g."""
    for _ in range(5):
        d, kernel = rng.standard_normal((6, 6)), rng.standard_normal((3, 3))
        direct = np.array([[(d[y : y + 3, x : x + 3] * kernel).sum() for x in range(4)] for y in range(4)])
        y = A_T @ ((f4.G @ kernel @ f4.G.T) * (B_T @ d @ B_T.T)) @ A_T.T
        np.testing.assert_allclose(y, direct, rtol=1e-12, atol=1e-12)


def test_the_one_axis_transforms_are_the_matrices(rng):
    d = [rng.standard_normal((3, 5)) for _ in range(6)]
    out = [np.empty((3, 5)) for _ in range(6)]
    f4.transform_b(d, out, np.empty((3, 5)), np.empty((3, 5)))
    np.testing.assert_allclose(np.stack(out), np.einsum("kl,lij->kij", B_T, np.stack(d)), rtol=1e-13, atol=1e-13)
    y = [np.empty((3, 5)) for _ in range(4)]
    f4.transform_a(d, y, [np.empty((3, 5)) for _ in range(4)])
    np.testing.assert_allclose(np.stack(y), np.einsum("kl,lij->kij", A_T, np.stack(d)), rtol=1e-13, atol=1e-13)


def _reference(x, w, b):
    out = conv_reference.conv2d(Tensor(x), Tensor(w), Tensor(b), stride=1, padding=1)
    return backend.to_numpy(out.data)


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 5), channels=st.integers(1, 9), out_channels=st.integers(1, 9),
       tiles_h=st.integers(1, 3), tiles_w=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_equals_the_reference_convolution_in_float64(batch, channels, out_channels, tiles_h, tiles_w, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, channels, 4 * tiles_h, 4 * tiles_w))
    w = rng.standard_normal((out_channels, channels, 3, 3))
    b = rng.standard_normal(out_channels)
    expected = _reference(x, w, b)
    got = f4.conv2d_f4(x, w, b)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * np.abs(expected).max())


def test_float32_within_the_bound_the_benchmark_checks(rng):
    """small_vgg's 32 → 32 layer in float32 stays within 1e-5 of the largest float64 output (measured ~6e-6)."""
    x = rng.standard_normal((2, 32, 32, 32))
    w = rng.standard_normal((32, 32, 3, 3)) / np.sqrt(9 * 32)
    b = rng.standard_normal(32)
    expected = _reference(x, w, b)
    got = f4.conv2d_f4(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32))
    assert got.dtype == np.float32
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()


def test_refuses_sides_not_divisible_by_4():
    with pytest.raises(ValueError, match="divisible by 4"):
        f4.conv2d_f4(np.zeros((1, 2, 6, 8)), np.zeros((3, 2, 3, 3)), np.zeros(3))


def test_quick_prints_one_table_with_every_layer():
    result = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].startswith("NumPy BLAS:") and "kernel" in lines[1]
    assert "speed ratio" in lines[2] and "F(4,3) products" in lines[2]
    rows = [line for line in lines if "→" in line]
    assert len(rows) == len(f4.LAYERS) and all(row.split()[6].endswith("x") for row in rows)


@pytest.mark.parametrize("flags", [["--batch", "0"], ["--batch", "9" * 30], ["--rounds", "x"], ["--rounds", "101"]])
def test_a_bad_flag_is_one_line(flags):
    result = subprocess.run([sys.executable, str(SCRIPT), *flags], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("winograd_f4.py: error: argument")
    assert "Traceback" not in result.stderr
