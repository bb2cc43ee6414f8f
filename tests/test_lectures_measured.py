"""Lectures 09 (flat and sharp minima, measured) and 10 (snapshot ensembles and SWA), in --smoke mode.

Like the other lecture tests, each script runs once in a subprocess with
``--out`` in a temporary folder, and the tests read what it printed and saved.
The checks use facts that do not come from the scripts' arithmetic: an
ensemble of one snapshot predicts exactly what that snapshot predicts (the
argmax of a softmax is the argmax of the logits), the snapshot times of M
equal cycles are multiples of T/M, and λ_max of a network's Hessian at a
point it has been trained to is positive. The real CIFAR-10 subset, when it
is at ``../shared/data/cifar10-subset``, is used through ``--data-dir``.
"""

import math
import re
from pathlib import Path

import pytest
from test_lectures_cnn import check_figures, run_lecture

ROOT = Path(__file__).resolve().parents[1]
REAL_SUBSET = ROOT.parent / "shared" / "data" / "cifar10-subset"  # ../shared/… from the project root; else skipped
NUMBER = r"([-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?)"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """run(script, *options) -> (stdout, out folder), each combination run once per module."""
    done = {}
    no_data = tmp_path_factory.mktemp("no_cifar")

    def get(script, *options):
        key = (script, options)
        if key not in done:
            out = tmp_path_factory.mktemp(script.removesuffix(".py"))
            done[key] = (run_lecture(script, out, *options, data_root=no_data), out)
        return done[key]

    return get


def has_swa():
    try:
        from minisgd.optim.swa_utils import AveragedModel  # noqa: F401
    except ImportError:
        return False
    return True


# ------------------------------------------------------------------ 09
def test_09_measures_every_network(run):
    stdout, out = run("09_flat_sharp_measured.py")
    check_figures(out, ["09_slices_and_sharpness.png", "09_small_vs_large_batch.png"])
    rows = re.findall(rf"^(B = .+?|SWA of .+?)\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}$",
                      stdout, re.MULTILINE)
    names = [r[0].strip() for r in rows]
    assert [n for n in names if not n.startswith("SWA")] == ["B = 32, cosine", "B = 1024, cosine",
                                                             "B = 128, constant", "B = 128, cosine", "B = 128, SGDR ×3"]
    if has_swa():
        assert "SWA of B = 128, constant" in names and "SWA average vs its constant-rate run:" in stdout
    for name, train_loss, test_acc, lam, two_over_lam, sharp in rows:
        lam = float(lam)
        assert 0 < lam < 1e4, f"{name}: λ_max = {lam}"  # positive curvature where SGD has been
        assert float(two_over_lam) == pytest.approx(2 / lam, rel=2e-2, abs=2e-3)
        assert 0 <= float(test_acc) <= 1 and math.isfinite(float(train_loss)) and math.isfinite(float(sharp))
    for pair in ("large vs small batch:", "constant vs cosine:", "SGDR vs cosine:"):
        assert pair in stdout
    correlation = float(re.search(r"rank correlation of λ_max with test accuracy .*?: " + NUMBER, stdout).group(1))
    assert -1 <= correlation <= 1
    assert "the same without the large batch" in stdout
    assert "line from the B = 32 to the B = 1024 solution" in stdout
    assert "binomial standard error of up to ±" in stdout


def test_09_trains_the_large_batch_to_the_small_batchs_training_loss(run):
    """The comparison is between minima: B = 1024 keeps the try whose training loss is closest to B = 32's."""
    stdout, _ = run("09_flat_sharp_measured.py")
    tries = [(int(e), float(loss), float(target)) for e, loss, target in
             re.findall(rf"^\s+B = 1024,\s+(\d+) epochs: training loss {NUMBER} \(target {NUMBER}\)$",
                        stdout, re.MULTILINE)]
    assert len(tries) >= 2, stdout
    table = {m[0].strip(): float(m[1]) for m in
             re.findall(rf"^(B = .+?)\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}$", stdout, re.MULTILINE)}
    target = table["B = 32, cosine"]
    assert all(t == pytest.approx(target, abs=1e-4) for _, _, t in tries)  # the small batch's training loss
    closest = min(tries, key=lambda row: abs(row[1] - target))
    assert table["B = 1024, cosine"] == pytest.approx(closest[1], abs=1e-4)
    epochs = int(re.search(r"^B = 1024, cosine\s*:\s+(\d+) epochs", stdout, re.MULTILINE).group(1))
    assert epochs == closest[0] and epochs > int(re.search(r"^B = 32, cosine\s*:\s+(\d+) epochs", stdout,
                                                          re.MULTILINE).group(1))


# ------------------------------------------------------------------ 10
def check_snapshot_lecture(stdout, cycles, total):
    times = [int(t) for t in re.search(r"snapshots after updates \[([\d, ]+)\]", stdout).group(1).split(",")]
    assert times == [total * k // cycles for k in range(1, cycles + 1)]  # M equal cycles
    snapshots = [float(a) for a in re.findall(r"snapshot \d: test accuracy " + NUMBER, stdout)]
    assert len(snapshots) == cycles
    ensemble = [float(a) for a in re.findall(r"m = \d+: " + NUMBER, stdout)]
    assert len(ensemble) == cycles
    assert ensemble[0] == snapshots[-1]  # an ensemble of one snapshot is that snapshot
    single = float(re.search(r"one cosine, \d+ updates: test accuracy " + NUMBER, stdout).group(1))
    gain = float(re.search(r"snapshot ensemble − single cosine: " + NUMBER, stdout).group(1))
    assert gain == pytest.approx(100 * (ensemble[-1] - single), abs=0.101)  # both printed to 3 decimals


def test_10_snapshot_ensemble_and_single_cosine(run):
    stdout, out = run("10_snapshot_ensembles_swa.py")
    check_figures(out, ["10_snapshots_and_swa.png"])
    total = int(re.search(r"budget: \d+ epochs = (\d+) updates", stdout).group(1))
    assert total == 3 * math.ceil(600 / 64)  # --smoke: 3 epochs of 600 images in batches of 64
    check_snapshot_lecture(stdout, cycles=3, total=total)
    if has_swa():
        swa = float(re.search(r"SWA average \(\d+ iterates\)\s+" + NUMBER, stdout).group(1))
        gain = float(re.search(r"SWA average − single cosine: " + NUMBER, stdout).group(1))
        single = float(re.search(r"one cosine, \d+ updates: test accuracy " + NUMBER, stdout).group(1))
        assert gain == pytest.approx(100 * (swa - single), abs=0.101)  # both printed to 3 decimals


@pytest.mark.skipif(not (REAL_SUBSET / "cifar-10-batches-py").is_dir(), reason="the real CIFAR-10 subset is absent")
def test_10_trains_on_real_images_with_data_dir(run):
    stdout, out = run("10_snapshot_ensembles_swa.py", "--data-dir", str(REAL_SUBSET))
    assert "data: CIFAR-10 from" in stdout and "600 training and 300 test images" in stdout
    total = int(re.search(r"budget: \d+ epochs = (\d+) updates", stdout).group(1))
    check_snapshot_lecture(stdout, cycles=3, total=total)
    check_figures(out, ["10_snapshots_and_swa.png"])


def test_data_dir_without_cifar_is_one_clear_line(tmp_path):
    import subprocess
    import sys

    from test_lectures_cnn import lecture_env

    result = subprocess.run(
        [sys.executable, str(ROOT / "lectures" / "10_snapshot_ensembles_swa.py"), "--smoke", "--out",
         str(tmp_path / "out"), "--data-dir", str(tmp_path / "nothing-here")],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=lecture_env(tmp_path),
    )
    assert result.returncode != 0
    assert result.stderr.strip().startswith(f"--data-dir {tmp_path / 'nothing-here'}:")
    assert "Traceback" not in result.stderr
    assert not list((tmp_path / "out").glob("*.png"))
