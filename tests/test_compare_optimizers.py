"""The optimizer comparison script runs end to end in its --quick form and prints its table."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_compare_optimizers_quick_prints_one_row_per_optimizer():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "compare_optimizers.py"), "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.split() and line.split()[0] in
            ("sgd", "adam", "adamw", "swa")}
    assert set(rows) == {"sgd", "adam", "adamw", "swa"}
    accuracies = [float(rows[name][0]) for name in rows] + [float(rows["swa"][1])]
    assert all(0.0 <= a <= 1.0 for a in accuracies)
    assert "'averaged': 4" in result.stdout  # 2 epochs of 4 updates: SWA from update 4, every update
