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
        (lambda: recipe.build_optimizer(recipe.build_model(), "lion"), "optimizer must be one of 'sgd'"),
        (lambda: recipe.build_optimizer(recipe.build_model(), lr=-1), "lr must be a finite number >= 0 or a schedule"),
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


# ------------------------------------------------- optimizers, clipping, SWA
# PyTorch's documented defaults (torch.optim, 2.x), written out here; SGD's are the recipe's, and RMSprop's
# rate is the recipe's 1e-3 (Keras's default; PyTorch: 0.01).
EXPECTED_DEFAULTS = {
    "sgd": ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": False, "weight_decay": 5e-4}),
    "heavy-ball": ("HeavyBallSGD", {"lr": 0.05, "momentum": 0.9, "nesterov": False, "weight_decay": 5e-4}),
    "adagrad": ("Adagrad", {"lr": 0.01, "lr_decay": 0.0, "weight_decay": 0.0, "eps": 1e-10,
                            "initial_accumulator_value": 0.0}),
    "rmsprop": ("RMSprop", {"lr": 1e-3, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0,
                            "centered": False}),
    "adam": ("Adam", {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False}),
    "adamw": ("AdamW", {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01, "amsgrad": False}),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_DEFAULTS))
def test_build_optimizer_gives_each_optimizer_its_own_defaults(name):
    cls, expected = EXPECTED_DEFAULTS[name]
    optimizer = recipe.build_optimizer(recipe.build_model(), name)
    assert type(optimizer).__name__ == cls
    group = optimizer.param_groups[0]
    assert {k: group[k] for k in expected} == expected


def test_build_optimizer_defaults_agree_with_pytorch():
    torch = pytest.importorskip("torch")
    w = [torch.nn.Parameter(torch.zeros(2))]
    for name, peer in (("adagrad", torch.optim.Adagrad(w)), ("adam", torch.optim.Adam(w)),
                       ("adamw", torch.optim.AdamW(w))):
        group = recipe.build_optimizer(recipe.build_model(), name).param_groups[0]
        for key in EXPECTED_DEFAULTS[name][1]:
            assert group[key] == peer.defaults[key], (name, key)


def test_build_optimizer_passes_each_setting_and_refuses_other_optimizers_settings():
    model = recipe.build_model()
    adam = recipe.build_optimizer(model, "adam", lr=0.01, betas=(0.8, 0.95), eps=1e-6, amsgrad=True)
    assert {k: adam.param_groups[0][k] for k in ("lr", "betas", "eps", "amsgrad")} == \
        {"lr": 0.01, "betas": (0.8, 0.95), "eps": 1e-6, "amsgrad": True}
    rms = recipe.build_optimizer(model, "rmsprop", alpha=0.9, centered=True, momentum=0.5)
    assert (rms.param_groups[0]["alpha"], rms.param_groups[0]["centered"], rms.param_groups[0]["momentum"]) == \
        (0.9, True, 0.5)
    assert recipe.build_optimizer(model, "adagrad", lr_decay=0.1).param_groups[0]["lr_decay"] == 0.1
    for name, settings, message in [
        ("adam", {"nesterov": True}, "nesterov applies to optimizer sgd, heavy-ball only; got optimizer 'adam'"),
        ("adamw", {"momentum": 0.9}, "momentum applies to optimizer sgd, heavy-ball, rmsprop only"),
        ("sgd", {"betas": (0.9, 0.99)}, "betas applies to optimizer adam, adamw only; got optimizer 'sgd'"),
        ("adam", {"centered": True}, "centered applies to optimizer rmsprop only"),
        ("rmsprop", {"lr_decay": 0.1}, "lr_decay applies to optimizer adagrad only"),
        ("sgd", {"amsgrad": True}, "amsgrad applies to optimizer adam, adamw only"),
        ("sgd", {"eps": 1e-8}, "eps applies to optimizer adagrad, rmsprop, adam, adamw only"),
        ("adam", {"betas": (0.9, 1.0)}, "betas must be in [0, 1); got 1.0"),
        ("rmsprop", {"alpha": 1.5}, "alpha must be in [0, 1]; got 1.5"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            recipe.build_optimizer(model, name, **settings)


def test_no_decay_bias_bn_puts_exactly_the_biases_and_batchnorm_in_a_group_without_decay():
    model = recipe.build_model("small-vgg", batch_norm=True)
    optimizer = recipe.build_optimizer(model, "sgd", no_decay_bias_bn=True)
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0.0
    # small_vgg's BatchNorm layers are the ones with running statistics; their weight is γ.
    bn = {key.rsplit(".", 1)[0] for key in model.state_dict() if key.endswith("running_mean")}
    expected = {name for name, _ in model.named_parameters() if name.endswith("bias") or name.rsplit(".", 1)[0] in bn}
    by_id = {id(p): name for name, p in model.named_parameters()}
    assert {by_id[id(p)] for p in no_decay["params"]} == expected and expected
    assert {by_id[id(p)] for p in decay["params"]} == set(by_id.values()) - expected


def test_fit_clips_the_gradient_norm_between_backward_and_step():
    import minisgd
    from minisgd import nn, optim
    from minisgd.train import fit

    rng = np.random.default_rng(0)
    x = minisgd.Tensor(rng.normal(size=(8, 5)).astype(np.float32))
    y = minisgd.Tensor(rng.integers(0, 3, size=8))
    model = nn.Linear(5, 3)
    before = [p.data.copy() for p in model.parameters()]
    # The unclipped gradient, from an identical copy of the model.
    twin = nn.Linear(5, 3)
    twin.load_state_dict(model.state_dict())
    from minisgd.nn import functional as F

    F.cross_entropy(twin(x), y).backward()
    grads = [p.grad.copy() for p in twin.parameters()]
    total = math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads))
    max_norm, lr = total / 4, 0.5  # the gradient is 4× too long: scaled by max_norm / (total + 1e-6)
    fit(model, [(x, y)], optim.SGD(model.parameters(), lr=lr), epochs=1, clip_grad_norm=max_norm, progress=False)
    for w0, g, p in zip(before, grads, model.parameters()):
        np.testing.assert_allclose(p.data, w0 - lr * g * max_norm / (total + 1e-6), rtol=1e-5, atol=1e-7)


def test_swa_settings_are_checked_before_any_data_is_loaded():
    for settings, message in [
        ({"swa_lr": 0.01}, "swa_lr needs swa_start"),
        ({"swa_start": 4, "epochs": 4}, "swa_start must be < epochs (4), so that at least one epoch is averaged"),
        ({"swa_start": 1, "schedule": "reduce-on-plateau"}, "swa_start cannot be used with schedule reduce-on"),
        ({"swa_start": 1, "schedule": "sgdr", "snapshots": True}, "swa_start cannot be combined with snapshots"),
        ({"clip_grad_norm": -1.0}, "clip_grad_norm must be > 0; got -1.0"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            recipe.check_config(recipe.RunConfig(**settings))
    config = recipe.check_config(recipe.RunConfig(optimizer="adam", swa_start=2))
    assert (config.lr, config.swa_lr, config.momentum) == (1e-3, 1e-3 / 5, None)  # defaults written in


def test_hold_out_validation_sets_aside_a_random_disjoint_sample():
    train, _ = recipe.load_datasets("synthetic", train_size=300, test_size=10, seed=0)
    kept, val = recipe.hold_out_validation(train, 50, seed=3)
    assert (len(kept), len(val)) == (250, 50)
    # every training image lands in exactly one part: compare the rows as bytes
    rows = sorted(image.tobytes() + bytes([int(t)]) for image, t in zip(train.data, train.targets))
    parts = sorted(image.tobytes() + bytes([int(t)])
                   for part in (kept, val) for image, t in zip(part.data, part.targets))
    assert rows == parts
    # a random sample, not the first or the last rows; the same for the same seed, another for another seed
    first = {image.tobytes() for image in train.data[:50]}
    last = {image.tobytes() for image in train.data[-50:]}
    chosen = {image.tobytes() for image in val.data}
    assert chosen != first and chosen != last
    assert np.array_equal(recipe.hold_out_validation(train, 50, seed=3)[1].data, val.data)
    assert not np.array_equal(recipe.hold_out_validation(train, 50, seed=4)[1].data, val.data)
    # the training images keep their order
    order = [i for i, image in enumerate(train.data) if image.tobytes() not in chosen]
    assert np.array_equal(kept.data, train.data[order])


@pytest.mark.parametrize("size", [0, 300, -1, 2.5, True])
def test_hold_out_validation_must_leave_training_images(size):
    train, _ = recipe.load_datasets("synthetic", train_size=300, test_size=10, seed=0)
    with pytest.raises(ValueError, match="val_size must be an integer in \\[1, 299\\]"):
        recipe.hold_out_validation(train, size)
