"""benchmarks/product_bound.py: the matrix products of a step, timed alone, beside the frameworks' steps.

The shapes are checked against an independent count: ``train_step.gemm_flops``
adds up each layer's multiply-adds from its sizes (per image: pixels × C × O ×
kernel area), so the products listed for small_vgg must come to exactly those
FLOPs, and lenet's too once its first layer's widened kernel (which multiplies
zeros as well) is counted by its own formula.
"""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import load_benchmark

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "product_bound.py"
product_bound = load_benchmark("product_bound")
train_step = product_bound.train_step


def _flops(products):
    return sum(2 * count * rows * inner * columns for _, count, rows, inner, columns in products)


@pytest.mark.parametrize("batch", [1, 7, 128])
def test_small_vgg_products_add_up_to_the_layer_count(batch):
    assert _flops(product_bound.step_products("small_vgg", batch)) == train_step.gemm_flops("small_vgg", batch)


@pytest.mark.parametrize("batch", [1, 7, 128])
def test_lenet_products_add_up_to_the_layer_count_with_the_widened_first_layer(batch):
    products = product_bound.step_products("lenet", batch)
    first = [p for p in products if p[0].startswith("conv1")]
    narrow_first = 2 * (2 * batch * 28 * 28 * 3 * 6 * 25)  # forward and weight gradient of conv(3 → 6, 5×5)
    assert _flops(products) - _flops(first) == train_step.gemm_flops("lenet", batch) - narrow_first
    # widened by X = 4 output pixels: 28·28/4 wide pixels, a 5 × (3·1 + 5) × 3 patch, 4·6 output channels
    assert _flops(first) == 2 * (2 * batch * (28 * 28 // 4) * (5 * 8 * 3) * (4 * 6))


def test_an_unknown_network_is_refused():
    with pytest.raises(ValueError, match="small_vgg"):
        product_bound.step_products("resnet", 1)


def test_quick_prints_one_row_per_network():
    result = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--no-torch"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].startswith("NumPy BLAS:")
    assert "bound ratio" in lines[2] and "products ms" in lines[2]
    rows = {line.split()[0]: line.split() for line in lines if line.startswith(train_step.NETWORKS)}
    assert set(rows) == set(train_step.NETWORKS)
    for row in rows.values():
        products_ms, minisgd_ms = float(row[1]), float(row[3])
        assert 0 < products_ms and 0 < minisgd_ms


@pytest.mark.parametrize("flags", [["--batch", "-3"], ["--threads", "0"], ["--repeats", "1.5"], ["--batch", "4097"]])
def test_a_bad_flag_is_one_line(flags):
    result = subprocess.run([sys.executable, str(SCRIPT), *flags], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("product_bound.py: error: argument")
    assert "Traceback" not in result.stderr
