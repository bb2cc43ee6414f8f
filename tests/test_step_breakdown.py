"""benchmarks/step_breakdown.py: a training step's time, part by part, in both frameworks.

No timing is asserted (speed lives in benchmarks/). What is tested: every part
of a lenet step is caught by the clocks in minisgd (and by the profiler's event
names in PyTorch, when it is installed), the library is left as it was, and
the command line prints its one table and refuses bad flags in one line.
"""

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import load_benchmark

import minisgd.nn.functional
import minisgd.ops

ENGINE = importlib.import_module("minisgd.tensor")  # the module (``minisgd.tensor`` is also a function)

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "step_breakdown.py"
step_breakdown = load_benchmark("step_breakdown")
HAS_TORCH = importlib.util.find_spec("torch") is not None
COMPUTING_PARTS = ("convolutions", "max pooling", "ReLU", "linear layers", "loss", "update")


@pytest.mark.parametrize("name, part", [
    ("Conv2d", "convolutions"), ("conv2d", "convolutions"), ("autograd::engine::evaluate_function: "
                                                             "ConvolutionBackward0", "convolutions"),
    ("MaxPool2d", "max pooling"), ("aten::max_pool2d", "max pooling"),
    ("autograd::engine::evaluate_function: MaxPool2DWithIndicesBackward0", "max pooling"),
    ("relu_", "ReLU"), ("aten::relu_", "ReLU"), ("autograd::engine::evaluate_function: ReluBackward0", "ReLU"),
    ("Linear", "linear layers"), ("autograd::engine::evaluate_function: AddmmBackward0", "linear layers"),
    ("autograd::engine::evaluate_function: TBackward0", "linear layers"),
    ("cross_entropy", "loss"), ("autograd::engine::evaluate_function: NllLossBackward0", "loss"),
    ("Optimizer.step#SGD.step", "update"), ("autograd::engine::evaluate_function: torch::autograd::AccumulateGrad",
                                            "update"),
    ("Flatten", "other"), ("reshape", "other"), ("aten::flatten", "other"),
])
def test_names_of_both_frameworks_go_to_their_part(name, part):
    assert step_breakdown.part_of(name) == part


def test_every_part_of_a_minisgd_step_is_clocked_and_the_library_is_restored():
    before = (ENGINE.from_op, minisgd.ops.from_op, minisgd.nn.functional.from_op,
              minisgd.nn.functional.cross_entropy)
    parts = step_breakdown.breakdown_minisgd("lenet", 4, 0, 2)
    assert set(parts) == set(step_breakdown.PARTS)
    assert all(parts[part] > 0 for part in COMPUTING_PARTS), parts
    assert (ENGINE.from_op, minisgd.ops.from_op, minisgd.nn.functional.from_op,
            minisgd.nn.functional.cross_entropy) == before


@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed")
def test_every_part_of_a_pytorch_step_is_found_among_the_profiler_events():
    parts = step_breakdown.breakdown_torch("lenet", 4, 1, 2)
    assert all(parts[part] > 0 for part in COMPUTING_PARTS), parts


def test_quick_prints_every_part_of_both_networks():
    result = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].startswith("NumPy BLAS:")
    for network in ("small_vgg", "lenet"):
        rows = [line[len(network):].strip() for line in lines if line.startswith(network + " ")]
        for part in (*step_breakdown.PARTS, "sum of parts", "step, no clocks"):
            assert any(row.startswith(part) for row in rows), (network, part, rows)
        if HAS_TORCH:
            assert all(row.endswith("x") for row in rows if row.startswith(COMPUTING_PARTS))


@pytest.mark.parametrize("flags", [["--batch", "0"], ["--steps", "-1"], ["--rounds", "many"], ["--threads", "257"]])
def test_a_bad_flag_is_one_line(flags):
    result = subprocess.run([sys.executable, str(SCRIPT), *flags], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("step_breakdown.py: error: argument")
    assert "Traceback" not in result.stderr
