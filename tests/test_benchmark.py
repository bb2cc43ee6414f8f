"""The benchmark runs end to end in its --quick form (no timing is asserted: speed lives in benchmarks/)."""

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import load_benchmark
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "train_step.py"


def test_train_step_benchmark_quick_prints_one_table_with_both_networks():
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any("NumPy sgemm:" in line and "GFLOP/s" in line for line in lines)
    blas = next(line for line in lines if line.startswith("NumPy BLAS:"))  # what ran: library, kernel, threads
    assert "kernel" in blas and "threads" in blas and "OPENBLAS_CORETYPE" in blas
    header = next(line for line in lines if line.startswith("network"))
    for column in ("batch", "framework", "img/s", "peak MB", "speed ratio", "memory ratio"):
        assert column in header
    rows = {(line.split()[0], line.split()[2]) for line in lines if line.startswith(("small_vgg", "lenet"))}
    assert {("small_vgg", "minisgd"), ("lenet", "minisgd")} <= rows
    if importlib.util.find_spec("torch") is not None:
        assert {("small_vgg", "pytorch"), ("lenet", "pytorch")} <= rows
        minisgd_row = next(line for line in lines if line.startswith("small_vgg") and "minisgd" in line)
        assert minisgd_row.rstrip().endswith("x")  # the ratios are printed beside minisgd's row


def test_gemm_flop_count_of_lenet_by_hand():
    train_step = load_benchmark("train_step")
    # LeNet multiply-adds per image: conv1 28·28·6·75, conv2 10·10·16·150, fc 400·120 + 120·84 + 84·10.
    conv1, rest = 28 * 28 * 6 * 75, 10 * 10 * 16 * 150 + 400 * 120 + 120 * 84 + 84 * 10
    # forward + weight gradient for the first layer; forward + weight + input gradients for the others
    assert train_step.gemm_flops("lenet", 1) == 2 * (2 * conv1 + 3 * rest)


def _load_script():
    return load_benchmark("train_step")


def test_the_gpu_worker_runs_on_the_fake_cupy(monkeypatch):
    """The --device cuda path (model, batch and buffers on the device, synchronised clocks) on tests/fake_cupy.py."""
    sys.path.insert(0, str(ROOT / "tests"))
    import fake_cupy

    monkeypatch.setitem(sys.modules, "cupy", fake_cupy.make_fake_cupy())
    result = _load_script().worker_minisgd("lenet", 4, 1, 2, device="cuda")
    assert result["seconds"] > 0


def test_cuda_without_cupy_exits_with_the_install_hint():
    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed: this machine runs the real GPU benchmark instead")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cuda", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "pip install cupy-cuda12x" in result.stderr


def test_the_header_names_a_forced_openblas_kernel(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    assert "OPENBLAS_CORETYPE=Haswell" in _load_script().blas_description()


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(max_size=60), st.integers(-10**30, 10**30).map(str)),
       low=st.integers(0, 5), span=st.integers(0, 5000))
def test_a_benchmark_count_flag_is_in_its_range_or_one_argparse_error(text, low, span):
    """Every text a user can type: an integer in [low, high], or argparse's own error (one line, exit 2)."""
    parse = _load_script().bounded_int(low, low + span)
    try:
        value = parse(text)
    except argparse.ArgumentTypeError as error:
        assert f"from {low} to {low + span}" in str(error) and "\n" not in str(error)
    else:
        assert low <= value <= low + span and value == int(text)
