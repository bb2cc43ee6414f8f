"""The toy-problem lectures (01, 02, 03, 08) run top to bottom and show what their slides say.

Each script runs once, in ``--smoke`` mode, in a subprocess (as a student runs
it: ``python lectures/NN_name.py``) with ``--out`` pointing at a temporary
folder. The tests then read what it printed and saved. Expected values come
from the recitation's worked example (steps 0.1 and 0.18, Nesterov w₁ = 0.81),
from the 1/B law of the variance of a mean, and from closed forms printed
beside the measured numbers — never from the scripts' own arithmetic alone.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

LECTURES = Path(__file__).resolve().parent.parent / "lectures"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

FIGURES = {
    "01_gd_vs_sgd.py": [
        "01_loss_vs_updates_and_compute.png",
        "01_trajectory_contour.png",
        "01_gradient_variance.png",
    ],
    "02_minibatch.py": [
        "02_gradient_noise_vs_batch_size.png",
        "02_convergence_per_epoch_and_second.png",
    ],
    "03_momentum.py": [
        "03_ravine_trajectories.png",
        "03_recitation_vs_pytorch_under_decay.png",
        "03_decay_with_noisy_gradients.png",
    ],
    "08_loss_landscape.py": [
        "08_loss_landscape_contour.png",
        "08_loss_landscape_3d.png",
    ],
}
NUMBER = r"([-+]?\d+(?:\.\d*)?(?:e[-+]?\d+)?)"


def run_lecture(script: str, out: Path) -> str:
    """Run ``lectures/<script> --smoke --out <out>`` on the CPU; return what it printed."""
    env = dict(os.environ)
    env.pop("MINISGD_DEVICE", None)  # the lectures run on the CPU (the fake CuPy device lives in-process only)
    env["MPLBACKEND"] = "Agg"
    result = subprocess.run(
        [sys.executable, str(LECTURES / script), "--smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=LECTURES.parent,
    )
    assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def lecture_runs(tmp_path_factory):
    """Every script run once: {script: (stdout, output folder)}."""
    runs = {}
    for script in FIGURES:
        out = tmp_path_factory.mktemp(script.removesuffix(".py"))
        runs[script] = (run_lecture(script, out), out)
    return runs


def numbers_after(label: str, text: str) -> list[float]:
    """The numbers printed on the first line that contains ``label``, after it."""
    for line in text.splitlines():
        if label in line:
            return [float(n) for n in re.findall(NUMBER, line.split(label, 1)[1])]
    raise AssertionError(f"no line with {label!r} in the output:\n{text}")


def value_of(name: str, line_label: str, text: str) -> float:
    """The number printed as ``name = <number>`` on the line containing ``line_label``."""
    for line in text.splitlines():
        if line_label in line:
            match = re.search(re.escape(name) + r"\s*=\s*" + NUMBER, line)
            assert match, f"{name!r} not on the line {line!r}"
            return float(match.group(1))
    raise AssertionError(f"no line with {line_label!r} in the output:\n{text}")


# ------------------------------------------------------------------ all four
@pytest.mark.parametrize("script", sorted(FIGURES))
def test_saves_its_figures_as_png(lecture_runs, script):
    stdout, out = lecture_runs[script]
    for name in FIGURES[script]:
        path = out / name
        assert path.is_file(), f"{script} did not save {name}"
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000, f"{name} is not a real PNG figure"
        assert name in stdout  # the script tells the student where its figures are
    assert sorted(p.name for p in out.iterdir()) == sorted(FIGURES[script])  # nothing else left behind


@pytest.mark.parametrize("script", sorted(FIGURES))
def test_is_a_jupytext_percent_notebook(script):
    source = (LECTURES / script).read_text(encoding="utf-8")
    assert "format_name: percent" in source
    assert source.count("# %% [markdown]") >= 3  # explanations between the code cells
    assert re.search(r"^# %%$", source, re.MULTILINE)  # code cells
    assert "lecture.start(" in source and "plt.show" not in source  # options and backend: minisgd/lecture.py


# ------------------------------------------------------------------ 01
def test_gd_vs_sgd_variance_matches_closed_form(lecture_runs):
    stdout, _ = lecture_runs["01_gd_vs_sgd.py"]
    measured = numbers_after("at the minimum: E‖∇F_i − ∇F‖² =", stdout)[0]
    closed_form = numbers_after("(1/N) Σ r_i² (x_i² + 1) =", stdout)[0]
    assert measured > 0.1  # not zero at the minimum: the point of the slide
    assert measured == pytest.approx(closed_form, rel=1e-3)
    at_start = numbers_after("at the start  : E‖∇F_i − ∇F‖² =", stdout)[0]
    assert at_start > measured


def test_gd_vs_sgd_compute_story(lecture_runs):
    stdout, _ = lecture_runs["01_gd_vs_sgd.py"]
    gd_one_pass = value_of("F − F_opt", "GD  (1 update)", stdout)
    sgd_one_pass = value_of("F − F_opt", "SGD (", stdout)
    assert sgd_one_pass < gd_one_pass / 10  # same compute, far lower loss for SGD
    gd_final = value_of("final F − F_opt", "GD :", stdout)
    sgd_final = value_of("final F − F_opt", "SGD:", stdout)
    assert gd_final < 1e-8 < sgd_final  # per update, GD converges; SGD stalls at its noise floor


# ------------------------------------------------------------------ 02
def test_minibatch_variance_falls_as_one_over_b(lecture_runs):
    stdout, _ = lecture_runs["02_minibatch.py"]
    ratio = numbers_after("variance ratio B=1 / B=16:", stdout)[0]
    assert 16 / 2 < ratio < 16 * 2
    # Every row of the table: measured within a factor 2 of σ²/B·(N−B)/(N−1).
    rows = re.findall(r"^\s+(\d+)\s+" + NUMBER + r"\s+" + NUMBER + r"\s+" + NUMBER + r"\s*$", stdout, re.MULTILINE)
    assert len(rows) >= 6
    for batch, measured, _, predicted in rows:
        assert 0.5 < float(measured) / float(predicted) < 2.0, f"B = {batch}"


# ------------------------------------------------------------------ 03
@pytest.mark.parametrize("form", ["recitation form (HeavyBallSGD)", "PyTorch form (SGD)"])
def test_momentum_worked_example(lecture_runs, form):
    stdout, _ = lecture_runs["03_momentum.py"]
    # loss w²/2, w₀ = 1, α = 0.1, β = 0.9: V₁ = 0.1, V₂ = 0.9·0.1 + 0.1·0.9 = 0.18.
    assert value_of("step 1", form, stdout) == pytest.approx(0.1, abs=1e-4)
    assert value_of("step 2", form, stdout) == pytest.approx(0.18, abs=1e-4)
    assert value_of("w1", form, stdout) == pytest.approx(0.9, abs=1e-4)
    assert value_of("w2", form, stdout) == pytest.approx(0.72, abs=1e-4)


def test_momentum_worked_example_nesterov(lecture_runs):
    stdout, _ = lecture_runs["03_momentum.py"]
    # b₁ = g₀ = 1; step α (g₀ + β b₁) = 0.1 · 1.9 = 0.19.
    assert value_of("w1", "Nesterov", stdout) == pytest.approx(0.81, abs=1e-4)


def test_momentum_forms_agree_at_constant_lr_and_differ_under_decay(lecture_runs):
    stdout, _ = lecture_runs["03_momentum.py"]
    constant = value_of("max |W_recitation − W_PyTorch|", "constant α:", stdout)
    decayed = value_of("max |W_recitation − W_PyTorch|", "step decay:", stdout)
    assert constant < 1e-9
    assert decayed > 1e-2


def test_momentum_beats_plain_gd_in_the_ravine(lecture_runs):
    stdout, _ = lecture_runs["03_momentum.py"]
    final = {beta: numbers_after(f"β = {beta}: L after", stdout)[1] for beta in ("0.0", "0.5", "0.9")}
    assert final["0.9"] < final["0.5"] < final["0.0"]


# ------------------------------------------------------------------ 08
def test_loss_landscape_minima_and_paths(lecture_runs):
    stdout, _ = lecture_runs["08_loss_landscape.py"]
    a1, b1, a2, b2, _ = numbers_after("minima at (a, b) =", stdout)
    assert (a1, b1) == pytest.approx((-a2, -b2))  # (a, b) and (−a, −b): the same function
    assert a1 == pytest.approx(2.0, abs=0.2) and b1 == pytest.approx(1.5, abs=0.3)  # near the teacher's (2, 1.5)
    saddle = numbers_after("L at the saddle (0, 0) =", stdout)[0]
    losses = {name: value_of("L", name, stdout) for name in ("GD (α", "SGD, B", "momentum (α")}
    assert all(loss < saddle / 10 for loss in losses.values())  # every path left the saddle region


def test_minibatch_times_to_tolerance_show_the_noise_floor(lecture_runs):
    stdout, _ = lecture_runs["02_minibatch.py"]
    rows = dict(re.findall(r"^\s+(\d+)((?:\s+(?:inf|\d+\.\d{3})){3})\s*$", stdout, re.MULTILINE))
    assert "1" in rows and len(rows) >= 4
    pure_sgd = rows["1"].split()
    assert pure_sgd[-1] == "inf"  # constant-α pure SGD never gets within 1e-6 of F_min: its noise floor
    assert "lowest F − F_min after" in stdout  # (which B wins needs more than --smoke's 0.05 s)
