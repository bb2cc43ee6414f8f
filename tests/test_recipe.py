"""The recipe's builders: plain arguments, ValueError naming the argument, schedules in epochs → updates.

Every schedule the recipe builds is compared with its formula written out here
in updates (S updates per epoch), independently of minisgd.schedules.
"""

import math
import re

import numpy as np
import pytest

from minisgd import recipe
from minisgd.plateau import ReduceLROnPlateau

S, EPOCHS, LR = 10, 4, 0.1  # updates per epoch, epochs, peak rate
T = EPOCHS * S


def cos_anneal(t, length, high=LR, low=0.0):
    return low + 0.5 * (high - low) * (1 + math.cos(math.pi * t / length))


FORMULAS = {
    "constant": lambda t: LR,
    "step": lambda t: LR * 0.1 ** (t // S),  # --step-size 1 epoch
    "multistep": lambda t: LR * 0.1 ** ((t >= 2 * S) + (t >= 3 * S)),  # default milestones: epochs 2 and 3
    "exponential": lambda t: LR * 0.5 ** (t / S),  # γ = 0.5 per epoch, applied every update
    "linear": lambda t: LR * (1 - t / T),
    "polynomial": lambda t: LR * (1 - t / T) ** 1.0,
    "inverse-time": lambda t: LR / (1 + 1.0 * t / S),
    "inverse-sqrt": lambda t: LR * min(t / S, math.sqrt(S / t)) if t else 0.0,  # warm-up of one epoch
    "cosine": lambda t: cos_anneal(t, T),
    # T₀ = 1 epoch, T_mult = 2: cycles of S, 2S, 4S updates, restarting at t = S and 3S.
    "sgdr": lambda t: (cos_anneal(t, S) if t < S
                       else cos_anneal(t - S, 2 * S) if t < 3 * S else cos_anneal(t - 3 * S, 4 * S)),
    "snapshot": lambda t: cos_anneal(t % S, S),  # one cycle per epoch
    "cyclic": lambda t: LR / 10 + (LR - LR / 10) * max(0.0, 1 - abs(t / 5 - 2 * math.floor(1 + t / 10) + 1)),
    "reduce-on-plateau": lambda t: LR,  # until a metric says otherwise
}


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_each_schedule_is_its_formula_in_updates(name):
    schedule = recipe.build_schedule(name, lr=LR, epochs=EPOCHS, steps_per_epoch=S)
    for t in range(T):
        assert schedule(t) == pytest.approx(FORMULAS[name](t), rel=1e-9, abs=1e-15), t


def test_one_cycle_peaks_at_lr_and_ends_far_below():
    schedule = recipe.build_schedule("one-cycle", lr=LR, epochs=EPOCHS, steps_per_epoch=S)
    rates = [schedule(t) for t in range(T)]
    assert rates[0] == pytest.approx(LR / 25) and max(rates) == pytest.approx(LR, rel=1e-6)
    assert rates[-1] < LR / 25 / 1000


@pytest.mark.parametrize("name", sorted(FORMULAS) + ["one-cycle"])
def test_a_warm_up_composes_with_every_schedule(name):
    W = 7
    plain = recipe.build_schedule(name, lr=LR, epochs=EPOCHS, steps_per_epoch=S)
    warmed = recipe.build_schedule(name, lr=LR, epochs=EPOCHS, steps_per_epoch=S, warmup_steps=W)
    if name == "inverse-sqrt":  # its own warm-up: W replaces the default of one epoch
        assert warmed(W) == pytest.approx(LR) and warmed(W / 2) == pytest.approx(LR / 2)
        return
    assert warmed(0) == 0.0
    assert warmed(3) == pytest.approx(plain(0) * 3 / W)
    for t in range(W, T):
        assert warmed(t) == pytest.approx(plain(t - W), rel=1e-12)


def test_reduce_on_plateau_is_reachable_under_a_warm_up():
    schedule = recipe.build_schedule("reduce-on-plateau", lr=LR, patience=0, factor=0.5, warmup_steps=3)
    plateau = recipe.plateau_of(schedule)
    assert isinstance(plateau, ReduceLROnPlateau)
    plateau.step(1.0)
    plateau.step(2.0)  # worse: with patience 0, cut at once
    assert schedule(3) == pytest.approx(LR / 2) and schedule(100) == pytest.approx(LR / 2)
    assert recipe.plateau_of(recipe.build_schedule("cosine")) is None


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: recipe.build_schedule("warm"), "schedule must be one of 'constant'"),
        (lambda: recipe.build_schedule("step", gamma=0), "build_schedule: gamma must be > 0; got 0"),
        (lambda: recipe.build_schedule("multistep", milestones=[3, 1]), "milestones must be strictly increasing"),
        (lambda: recipe.build_schedule("multistep", milestones=[0.5]), "milestones must be whole epochs >= 1"),
        (lambda: recipe.build_schedule("cosine", lr=0.1, min_lr=0.2), "min_lr must be <= lr (0.1); got 0.2"),
        (lambda: recipe.build_schedule("cosine", epochs=0), "epochs must be an integer >= 1; got 0"),
        (lambda: recipe.build_model("resnet"), "build_model: model must be one of 'lenet', 'small-vgg'"),
        (lambda: recipe.build_model("lenet", batch_norm=True), "batch_norm applies to model 'small-vgg' only"),
        (lambda: recipe.load_datasets("mnist"), "dataset must be one of 'synthetic', 'cifar10'; got 'mnist'"),
        (lambda: recipe.load_datasets(train_size=0), "train_size must be an integer >= 1; got 0"),
        (lambda: recipe.build_optimizer(recipe.build_model(), momentum=1.0), "momentum must be in [0, 1)"),
        (lambda: recipe.build_optimizer(recipe.build_model(), "adam"), "optimizer must be one of 'sgd'"),
        (lambda: recipe.build_optimizer(recipe.build_model(), lr=-1), "lr must be a finite number >= 0"),
        (lambda: recipe.check_config(recipe.RunConfig(schedule="cosine", snapshots=True)),
         "snapshots must be used with a schedule with cycles"),
    ],
)
def test_bad_settings_raise_value_error_naming_them(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_check_config_fixes_multistep_milestones_so_a_longer_resume_keeps_them():
    config = recipe.check_config(recipe.RunConfig(schedule="multistep", epochs=8))
    assert config.milestones == [4, 6]


def test_a_run_from_the_recipe_trains_saves_and_resumes(tmp_path):
    config = recipe.RunConfig(train_size=128, test_size=64, batch_size=32, epochs=2, schedule="snapshot",
                              snapshots=True)
    run = recipe.start_run(config, tmp_path / "run")
    assert run.steps_per_epoch == 4 and run.snapshot_steps == [4, 8]
    result = recipe.train_run(run, progress=False, log=None)
    assert result.stopped is None and result.snapshot_count == 2 and 0 <= result.snapshot_test_acc <= 1
    assert sorted(p.name for p in result.saved) == sorted(recipe.RUN_FILES)

    again = recipe.resume_run(tmp_path / "run")
    assert again.start_epoch == again.saved_epoch == 2 and len(again.snapshots) == 2
    for saved, reloaded in zip(run.snapshots, again.snapshots):
        for name in saved:
            np.testing.assert_array_equal(saved[name], reloaded[name])
    with pytest.raises(ValueError, match="snapshot schedule was built for 2 epochs"):
        recipe.resume_run(tmp_path / "run", epochs=3)
    with pytest.raises(ValueError, match="already holds a run"):
        recipe.start_run(config, tmp_path / "run")
