"""Lectures 04–07 (decay, SGDR, choosing hyperparameters, the CIFAR-10 CNN), run as students run them.

Each script runs once, in its ``--smoke`` mode, in a subprocess with ``--out`` in a
temporary folder; the tests read what it printed and saved. Printed numbers
are checked against formulas written here (the schedules' closed forms, ln 10,
SGDR's restart times), not against the library.

The subprocesses run BLAS on one thread: the matrices of these tiny runs are
small, and a second BLAS thread only fights other processes for the cores
(ten times slower when the machine is busy).
"""

import math
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
LECTURES = ROOT / "lectures"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def lecture_env(data_root):
    """The environment of a lecture run: CPU, one BLAS thread, CIFAR-10 looked for in data_root."""
    env = dict(os.environ, MINISGD_DATA=str(data_root), PYTHONPATH=str(ROOT), MPLBACKEND="Agg",
               OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("MINISGD_DEVICE", None)  # the fake-CuPy test mode sets it; the scripts run on the real CPU
    return env


def run_lecture(script, out, *options, data_root):
    """Run lectures/<script> --smoke --out <out> on the CPU; return its stdout (it must exit with 0)."""
    env = lecture_env(data_root)
    result = subprocess.run(
        [sys.executable, str(LECTURES / script), "--smoke", "--out", str(out), *options],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env=env,
    )
    assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def check_figures(out, names):
    """Every figure exists, is a PNG of a sensible size, and is not one flat colour."""
    for name in names:
        path = out / name
        assert path.is_file(), f"{name} was not saved"
        assert path.read_bytes()[:8] == PNG_SIGNATURE, f"{name} is not a PNG"
        image = matplotlib.image.imread(path)
        assert image.shape[0] >= 300 and image.shape[1] >= 500, f"{name} is only {image.shape[:2]} pixels"
        assert image[..., :3].std() > 0.02, f"{name} is (nearly) blank"
    assert sorted(p.name for p in out.glob("*.png")) == sorted(names)


def number_after(text, label):
    """The first number printed after `label` (a literal string)."""
    match = re.search(re.escape(label) + r"\s*([-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?)", text)
    assert match, f"no number after {label!r} in the output:\n{text}"
    return float(match.group(1))


@pytest.fixture(scope="module")
def empty_data_root(tmp_path_factory):
    """A data folder with no CIFAR-10 in it."""
    return tmp_path_factory.mktemp("no_cifar")


@pytest.fixture(scope="module")
def lecture(tmp_path_factory, empty_data_root):
    """Runs each script once per test module: lecture("04_lr_decay.py") -> (stdout, out folder)."""
    done = {}

    def get(script):
        if script not in done:
            out = tmp_path_factory.mktemp(script.removesuffix(".py"))
            done[script] = (run_lecture(script, out, data_root=empty_data_root), out)
        return done[script]

    return get


# ---------------------------------------------------------------- 04 lr decay
def test_04_prints_the_recitation_schedules_as_the_formulas_give_them(lecture):
    stdout, out = lecture("04_lr_decay.py")
    check_figures(out, ["04_recitation_schedules.png", "04_all_schedules.png", "04_training_comparison.png"])
    alpha0, T = 0.1, 100
    rows = {int(m.group(1)): [float(v) for v in m.group(2).split()]
            for m in re.finditer(r"^\s+(\d+)\s+((?:\d\.\d{5}\s*){3})$", stdout, re.MULTILINE)}
    assert sorted(rows) == [0, 29, 30, 50, 59, 60, 90, 99]
    for t, (step, cosine, linear) in rows.items():
        milestones_passed = sum(t >= m for m in (30, 60, 90))
        assert step == pytest.approx(alpha0 * 0.1**milestones_passed, abs=1e-5)  # x0.1 after 30, 60, 90
        assert cosine == pytest.approx(0.5 * alpha0 * (1 + math.cos(t * math.pi / T)), abs=1e-5)
        assert linear == pytest.approx(alpha0 * (1 - t / T), abs=1e-5)
    assert rows[29][0] == 0.1 and rows[30][0] == pytest.approx(0.01)  # the off-by-one that bites


def test_04_trains_with_every_schedule_and_prints_the_final_losses(lecture):
    stdout, _ = lecture("04_lr_decay.py")
    table = {}
    for name in ["constant", "step", "cosine", "linear", "plateau"]:
        match = re.search(re.escape(name) + r"\s+([\d.e+-]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)"
                          r"\s+([\d.]+)$", stdout, re.MULTILINE)
        assert match, f"no row for {name} in the table:\n{stdout}"
        last_lr, train_loss, train_acc, val_loss, val_acc, test_acc = map(float, match.groups())
        assert math.isfinite(train_loss) and 0 <= train_acc <= 1 and 0 <= val_acc <= 1 and 0 <= test_acc <= 1
        table[name] = (last_lr, train_loss, val_acc, test_acc)
    assert table["constant"][0] == pytest.approx(0.02)  # α₀ never changes
    assert table["cosine"][0] < 1e-3 and table["linear"][0] < 1e-3  # both end near 0
    assert "lowest final training loss:" in stdout
    # The choice is made on the validation split (held out from the training images), reported on the test split.
    split = re.search(r"(\d+) training and (\d+) test images; (\d+) of the training images train, (\d+) held out "
                      r"for validation, (\d+) test images", stdout)
    assert split, stdout
    loaded, tested, kept, held_out, final = map(int, split.groups())
    assert kept + held_out == loaded and held_out > 0 and tested == final == 300  # validation ⊂ training images
    match = re.search(r"chosen on validation accuracy: (\w+) \(([\d.]+)\); its test accuracy, the final number: "
                      r"([\d.]+)", stdout)
    assert match, stdout
    chosen = match[1]
    assert float(match[2]) == max(v[2] for v in table.values()) == table[chosen][2]
    assert float(match[3]) == table[chosen][3]


# ------------------------------------------------------------------- 05 SGDR
def test_05_restarts_follow_t0_times_t_mult_powers(lecture):
    stdout, out = lecture("05_sgdr.py")
    check_figures(out, ["05_sgdr_schedules.png", "05_sharp_vs_flat.png", "05_snapshot_ensemble.png"])
    t0, horizon = 10, 150
    for t_mult in (1, 2):
        expected, start, length = [], 0, t0  # cycle i lasts T₀·T_mult^i epochs
        while start + length <= horizon:
            start += length
            expected.append(start)
            length *= t_mult
        assert f"SGDR T_mult = {t_mult} (T₀ = {t0} epochs): restarts after epochs {expected}" in stdout


def test_05_the_followed_run_leaves_the_sharp_minimum_for_the_flat_one(lecture):
    stdout, _ = lecture("05_sgdr.py")
    sharp_limit = number_after(stdout, "stable for α < 2/λ =")
    assert sharp_limit < 0.15 < number_after(stdout.split("flat minimum:")[1], "stable for α < 2/λ =")
    places = re.findall(r"^\s+t =\s+\d+: w =\s+[-\d.]+ \((.+?)\)", stdout, re.MULTILINE)
    assert places[0] == "at the sharp minimum" and places[-1] == "at the flat minimum"
    # Share of runs in the flat basin at the end: SGDR above the small constant rate.
    final_share = {name: int(re.search(re.escape(name) + r".*?(\d+)%\s*$", stdout, re.MULTILINE).group(1))
                   for name in ("constant α = 0.01", "SGDR, α_max = 0.15")}
    assert final_share["SGDR, α_max = 0.15"] > final_share["constant α = 0.01"]


def test_05_compares_the_three_strategies_at_the_end_of_the_budget(lecture):
    stdout, _ = lecture("05_sgdr.py")
    line = next(line for line in stdout.splitlines() if line.startswith("at the end of the same budget:"))
    shares = [int(v) for v in re.findall(r"(\d+)%", line)]
    assert len(shares) == 3 and all(0 <= v <= 100 for v in shares)


def test_05_reports_the_snapshot_ensemble_and_the_single_model(lecture):
    stdout, _ = lecture("05_sgdr.py")
    snapshots = re.findall(r"snapshot \d: test accuracy ([\d.]+)", stdout)
    assert len(snapshots) == 3  # --smoke: 3 cycles, one snapshot at the end of each
    ensemble = number_after(stdout, "snapshot ensemble (3 snapshots):       accuracy")
    single = number_after(stdout, "single model (one cosine, same budget): accuracy")
    assert 0.0 <= ensemble <= 1.0 and 0.0 <= single <= 1.0
    assert "snapshots after updates [10, 20, 30]" in stdout  # 30 updates in 3 equal cycles
    assert "data: SyntheticShapes (built-in), 600 training and 300 test images" in stdout
    error = number_after(stdout, "sqrt(p(1 − p)/n) = ±")
    assert error == pytest.approx(100 * math.sqrt(ensemble * (1 - ensemble) / 300), abs=0.051)  # binomial


# ---------------------------------------------- 06 choosing hyperparameters
def test_06_initial_loss_is_ln_10(lecture):
    stdout, out = lecture("06_choosing_hyperparameters.py")
    check_figures(out, ["06_overfit_small_sample.png", "06_lr_sweep.png", "06_lr_range_test.png",
                        "06_train_longer.png"])
    assert abs(number_after(stdout, "initial loss =") - math.log(10)) < 0.1
    assert number_after(stdout, "last layer's weights ×10 the initial loss is") > math.log(10) + 1


def test_06_overfits_the_small_sample(lecture):
    stdout, _ = lecture("06_choosing_hyperparameters.py")
    assert number_after(stdout, "overfit train accuracy =") >= 95.0


def test_06_sweeps_four_rates_and_runs_the_range_test(lecture):
    stdout, _ = lecture("06_choosing_hyperparameters.py")
    rows = re.findall(r"^\s+(1e-0[1-4])\s+([\d.]+)\s+(\S+)\s+(.+)$", stdout, re.MULTILINE)
    assert [r[0] for r in rows] == ["1e-01", "1e-02", "1e-03", "1e-04"]
    assert dict((r[0], r[3]) for r in rows)["1e-04"] == "barely moves: too small"
    assert 1e-4 <= number_after(stdout, "suggested (minimum / 5) =") <= 1.0
    assert "val accuracy:" in stdout and "after 4 epochs" in stdout
    match = re.search(r"val loss: ([\d.]+) after 2 epochs, lowest ([\d.]+) at epoch (\d+), ([\d.]+) after 4 epochs",
                      stdout)
    assert match, stdout
    after_short, lowest, epoch, after_long = float(match[1]), float(match[2]), int(match[3]), float(match[4])
    assert lowest <= min(after_short, after_long) and 1 <= epoch <= 4


# ------------------------------------------------------------ 07 the CNN
def test_07_falls_back_to_the_built_in_data_without_cifar10(lecture):
    stdout, out = lecture("07_cifar10_cnn.py")  # MINISGD_DATA is an empty folder
    check_figures(out, ["07_sample_images.png", "07_learning_curves.png", "07_per_class_accuracy.png",
                        "07_test_predictions.png"])
    assert "CIFAR-10 is not available: CIFAR-10 not found in" in stdout
    assert "Falling back to the built-in synthetic data set (SyntheticShapes" in stdout
    assert "Run with --download to fetch CIFAR-10" in stdout
    assert "data: SyntheticShapes (built-in)" in stdout
    assert abs(number_after(stdout, "initial loss =") - math.log(10)) < 0.1
    accuracy = number_after(stdout, "test accuracy =")
    per_class = re.findall(r"^(\S.*?)\s+([\d.]+)%\s+(\d+)$", stdout, re.MULTILINE)
    assert len(per_class) == 10
    counts = np.array([int(n) for _, _, n in per_class])
    class_acc = np.array([float(a) for _, a, _ in per_class])
    assert counts.sum() == 300  # --smoke: 300 test images
    assert accuracy == pytest.approx(np.sum(class_acc * counts) / counts.sum(), abs=0.2)


def write_tiny_cifar(root: Path, per_batch: int = 40) -> None:
    """root/cifar-10-batches-py in CIFAR-10's format (pickled dicts of uint8 rows and labels), random pixels."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        content = {b"data": rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8),
                   b"labels": [int(v) for v in rng.integers(0, 10, size=per_batch)]}
        (folder / name).write_bytes(pickle.dumps(content, protocol=4))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [n.encode() for n in CIFAR_NAMES]}))


def test_07_uses_cifar10_from_data_dir_when_it_is_there(tmp_path, empty_data_root):
    write_tiny_cifar(tmp_path / "cifar")
    out = tmp_path / "out"
    stdout = run_lecture("07_cifar10_cnn.py", out, "--data-dir", str(tmp_path / "cifar"), data_root=empty_data_root)
    assert "Falling back" not in stdout
    folder = tmp_path / "cifar" / "cifar-10-batches-py"
    assert (f"data: CIFAR-10 from {folder} (data_batch_1-5, test_batch), 200 training images and 40 test images"
            in stdout)  # 5 × 40 training, 40 test: every file read, named
    for name in CIFAR_NAMES:
        assert re.search(rf"^{name}\s+[\d.]+%\s+\d+$", stdout, re.MULTILINE), f"no per-class row for {name}"
    assert len(list(out.glob("07_*.png"))) == 4


def test_07_asking_for_a_gpu_without_one_is_a_one_line_error(tmp_path, empty_data_root):
    from minisgd import backend

    if backend.gpu_available():
        pytest.skip("this machine has a GPU")
    env = lecture_env(empty_data_root)
    result = subprocess.run(
        [sys.executable, str(LECTURES / "07_cifar10_cnn.py"), "--smoke", "--device", "cuda", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=env,
    )
    assert result.returncode == 2
    assert "--device cuda needs CuPy and a CUDA GPU" in result.stderr
    assert not list(tmp_path.glob("*.png"))


# ------------------------------------------------------- notebook format
@pytest.mark.parametrize("script", ["04_lr_decay.py", "05_sgdr.py", "06_choosing_hyperparameters.py",
                                    "07_cifar10_cnn.py"])
def test_scripts_are_jupytext_percent_notebooks(script):
    text = (LECTURES / script).read_text(encoding="utf-8")
    assert text.startswith("# ---\n# jupyter:\n#   jupytext:\n")
    assert "format_name: percent" in text
    assert text.count("# %% [markdown]") >= 5
    assert "lecture.start(" in text  # options parse in a notebook too (minisgd/lecture.py)
    jupytext = pytest.importorskip("jupytext")
    notebook = jupytext.reads(text, fmt="py:percent")
    kinds = [cell.cell_type for cell in notebook.cells]
    assert kinds.count("markdown") >= 5 and kinds.count("code") >= 5


REAL_SUBSET = ROOT.parent / "shared" / "data" / "cifar10-subset"  # ../shared/… from the project root; else skipped


@pytest.mark.skipif(not (REAL_SUBSET / "cifar-10-batches-py").is_dir(), reason="the real CIFAR-10 subset is absent")
def test_07_default_run_trains_on_every_image_in_data_dir_and_learns(tmp_path, empty_data_root):
    """The default run with --data-dir (no --smoke): every training image found, and learning a student can see."""
    result = subprocess.run(
        [sys.executable, str(LECTURES / "07_cifar10_cnn.py"), "--out", str(tmp_path), "--data-dir", str(REAL_SUBSET)],
        capture_output=True, text=True, timeout=600, cwd=ROOT, env=lecture_env(empty_data_root),
    )
    assert result.returncode == 0, result.stderr
    stdout = result.stdout
    from minisgd.data import CIFAR10

    on_disk = CIFAR10(REAL_SUBSET, train=True), CIFAR10(REAL_SUBSET, train=False)  # what the folder holds
    assert (f"(data_batch_1-4 of 5, test_batch), {len(on_disk[0])} training images and {len(on_disk[1])} test images"
            in stdout)
    epochs = re.findall(r"^epoch (\d+)/(\d+): train loss ([\d.]+), train acc ([\d.]+)%, test loss ([\d.]+), "
                        r"test acc ([\d.]+)%", stdout, re.MULTILINE)
    assert len(epochs) == int(epochs[0][1]) >= 5
    first, last = epochs[0], epochs[-1]
    assert float(last[2]) < float(first[2]) - 0.5  # the training loss falls clearly
    assert float(last[5]) >= 30.0  # three times chance (10 %), on every test image
