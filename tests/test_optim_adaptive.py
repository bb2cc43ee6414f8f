"""Adagrad, RMSprop, Adam and AdamW against hand-computed steps, and against torch.optim when installed.

Also, for every optimizer (SGD included): exact resume from ``state_dict`` and PyTorch parity of parameter groups.

Expected values come from the update rules worked out by hand for gradients
chosen so that the arithmetic is short (a constant gradient, g = 1, β = 0.5),
and from PyTorch's own optimizers on a small CNN (100 steps, every option
combination, the rate driven by a schedule).
"""

import math
import warnings

import numpy as np
import pytest

import minisgd
from minisgd import nn, optim, schedules
from minisgd.nn import functional as F

ADAPTIVE = (optim.Adagrad, optim.RMSprop, optim.Adam, optim.AdamW)


def param(values, dtype=np.float64):
    return minisgd.Tensor(np.array(values, dtype=dtype), requires_grad=True)


def run_constant_gradient(opt, w, gradient, steps):
    """Give every update the same gradient; return the iterates."""
    iterates = []
    for _ in range(steps):
        w.grad = np.array(gradient, dtype=w.data.dtype)
        opt.step()
        iterates.append(w.data.copy())
    return np.array(iterates)


# ------------------------------------------------------------------ defaults
def test_defaults_are_pytorchs():
    w = param([1.0])
    assert optim.Adagrad([w]).param_groups[0] == dict(
        params=[w], lr=0.01, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10
    )
    assert optim.RMSprop([w]).param_groups[0] == dict(
        params=[w], lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False
    )
    assert optim.Adam([w]).param_groups[0] == dict(
        params=[w], lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False
    )
    assert optim.AdamW([w]).param_groups[0]["weight_decay"] == 0.01


# --------------------------------------------------------------------- Adagrad
def test_adagrad_constant_gradient_steps_shrink_as_one_over_sqrt_t():
    # g = c every time, eps = 0: s_t = t c², so update t moves W by α c / (√t |c|) = α sign(c) / √t.
    w = param([0.0, 0.0])
    iterates = run_constant_gradient(optim.Adagrad([w], lr=0.3, eps=0.0), w, [2.0, -0.5], 4)
    expected_distance = 0.3 * np.cumsum([1 / math.sqrt(t) for t in range(1, 5)])
    np.testing.assert_allclose(iterates[:, 0], -expected_distance, rtol=1e-14)
    np.testing.assert_allclose(iterates[:, 1], expected_distance, rtol=1e-14)


def test_adagrad_lr_decay_initial_accumulator_and_weight_decay_by_hand():
    # w₀ = 1, grad of the loss 0 (only the decay λ = 0.5 acts): g = 0.5 w.
    # s₀ = 0.75, lr_decay 1: clr₁ = α, clr₂ = α/2.
    # t=1: g = 0.5,   s = 0.75 + 0.25 = 1,  w₁ = 1 − 0.1·0.5/1 = 0.95
    # t=2: g = 0.475, s = 1 + 0.225625 = 1.225625, w₂ = 0.95 − 0.05·0.475/√1.225625
    w = param([1.0])
    opt = optim.Adagrad([w], lr=0.1, lr_decay=1.0, weight_decay=0.5, initial_accumulator_value=0.75, eps=0.0)
    iterates = run_constant_gradient(opt, w, [0.0], 2)
    assert iterates[0, 0] == pytest.approx(0.95, abs=1e-15)
    assert iterates[1, 0] == pytest.approx(0.95 - 0.05 * 0.475 / math.sqrt(1.225625), abs=1e-15)
    assert opt.state[0]["sum"][0] == pytest.approx(1.225625, abs=1e-15) and opt.state[0]["step"] == 2


# --------------------------------------------------------------------- RMSprop
def test_rmsprop_first_step_is_lr_over_sqrt_one_minus_alpha():
    # v₁ = (1 − a) g², so the first step is α g / (√(1 − a) |g|) = α sign(g) / √(1 − a) (eps = 0): 10 α for a = 0.99.
    w = param([0.0, 0.0])
    iterates = run_constant_gradient(optim.RMSprop([w], lr=0.01, eps=0.0), w, [3.0, -1e-4], 1)
    np.testing.assert_allclose(iterates[0], [-0.1, 0.1], rtol=1e-12)


def test_rmsprop_trajectories_by_hand():
    # a = 0.5, g = 1 always, eps = 0: v₁ = 0.5, v₂ = 0.75, v₃ = 0.875.
    a, lr = 0.5, 0.1
    w = param([0.0])
    plain = run_constant_gradient(optim.RMSprop([w], lr=lr, alpha=a, eps=0.0), w, [1.0], 3)[:, 0]
    steps = [lr / math.sqrt(0.5), lr / math.sqrt(0.75), lr / math.sqrt(0.875)]
    np.testing.assert_allclose(plain, -np.cumsum(steps), rtol=1e-14)
    # Centered: m₁ = 0.5, m₂ = 0.75, m₃ = 0.875 (the same recursion), ṽ = v − m² = 0.25, 0.1875, 0.109375.
    w = param([0.0])
    centered = run_constant_gradient(optim.RMSprop([w], lr=lr, alpha=a, eps=0.0, centered=True), w, [1.0], 3)[:, 0]
    steps = [lr / math.sqrt(0.25), lr / math.sqrt(0.1875), lr / math.sqrt(0.109375)]
    np.testing.assert_allclose(centered, -np.cumsum(steps), rtol=1e-14)
    # Momentum μ = 0.9: b₁ = 1/√0.5, b₂ = 0.9 b₁ + 1/√0.75, W ← W − α b.
    w = param([0.0])
    moving = run_constant_gradient(optim.RMSprop([w], lr=lr, alpha=a, eps=0.0, momentum=0.9), w, [1.0], 2)[:, 0]
    b1 = 1 / math.sqrt(0.5)
    b2 = 0.9 * b1 + 1 / math.sqrt(0.75)
    np.testing.assert_allclose(moving, [-lr * b1, -lr * (b1 + b2)], rtol=1e-14)


# ------------------------------------------------------------------------ Adam
def test_adam_first_step_is_minus_lr_times_sign_of_g():
    # m̂₁ = g, v̂₁ = g²: the first step is α g / (|g| + eps), the same length whatever |g|.
    g = np.array([1e-3, -5.0, 100.0, -1e-6])
    for optimizer_class in (optim.Adam, optim.AdamW):
        w = param(np.zeros(4))
        run_constant_gradient(optimizer_class([w], lr=0.01, weight_decay=0.0), w, g, 1)
        np.testing.assert_allclose(w.data, -0.01 * g / (np.abs(g) + 1e-8), rtol=1e-12)
        np.testing.assert_allclose(w.data[:3], -0.01 * np.sign(g[:3]), rtol=1e-5)


def test_adam_constant_gradient_takes_lr_sized_steps_from_a_schedule():
    # With g = c every time, m = c(1 − β₁ᵗ) and v = c²(1 − β₂ᵗ): after bias correction m̂ = c and
    # v̂ = c², so update t moves W by lr(t) · c / (|c| + eps), whatever β₁, β₂.
    lr = schedules.step(0.1, step_size=2, gamma=0.5)  # 0.1, 0.1, 0.05, 0.05, 0.025
    w = param([0.0])
    iterates = run_constant_gradient(optim.Adam([w], lr=lr, betas=(0.8, 0.95)), w, [2.0], 5)[:, 0]
    steps = np.array([0.1, 0.1, 0.05, 0.05, 0.025]) * 2.0 / (2.0 + 1e-8)
    np.testing.assert_allclose(iterates, -np.cumsum(steps), rtol=1e-12)


def test_adam_and_amsgrad_second_step_by_hand():
    # β₁ = β₂ = 0.5, eps = 0, g₁ = 2, g₂ = 1.
    # m₁ = 1, v₁ = 2 (first step: −α); m₂ = 1, v₂ = 1.5; m̂₂ = 1/0.75, v̂₂ = 1.5/0.75 = 2.
    # amsgrad keeps v_max = max(2, 1.5) = 2, so v̂₂ = 2/0.75.
    for amsgrad, v_hat in ((False, 2.0), (True, 2.0 / 0.75)):
        w = param([0.0])
        opt = optim.Adam([w], lr=0.1, betas=(0.5, 0.5), eps=0.0, amsgrad=amsgrad)
        w.grad = np.array([2.0])
        opt.step()
        w.grad = np.array([1.0])
        opt.step()
        assert float(w.data[0]) == pytest.approx(-0.1 - 0.1 * (1 / 0.75) / math.sqrt(v_hat), abs=1e-15)
        if amsgrad:
            assert opt.state[0]["max_exp_avg_sq"][0] == 2.0 and opt.state[0]["exp_avg_sq"][0] == 1.5


def test_adam_couples_weight_decay_and_adamw_decouples_it():
    # W₀ = 1, a tiny loss gradient 1e-3, λ = 0.1, α = 0.1.
    # Adam: g = 1e-3 + 0.1 = 0.101, the first step is −α sign(g): W₁ = 0.9 (the decay is normalised away).
    # AdamW: W ← (1 − αλ) W = 0.99, then −α sign(1e-3): W₁ = 0.89.
    w = param([1.0])
    run_constant_gradient(optim.Adam([w], lr=0.1, weight_decay=0.1), w, [1e-3], 1)
    assert float(w.data[0]) == pytest.approx(1.0 - 0.1 * 0.101 / (0.101 + 1e-8), abs=1e-15)
    w = param([1.0])
    run_constant_gradient(optim.AdamW([w], lr=0.1, weight_decay=0.1), w, [1e-3], 1)
    assert float(w.data[0]) == pytest.approx(0.99 - 0.1 * 1e-3 / (1e-3 + 1e-8), abs=1e-15)


def test_adamw_decay_follows_the_scheduled_rate():
    # Zero gradient: Adam's part is 0 (m = 0), so W is multiplied by (1 − lr(t) λ) at each update.
    w = param([1.0])
    opt = optim.AdamW([w], lr=lambda t: 0.1 * (t + 1), weight_decay=0.5)
    iterates = run_constant_gradient(opt, w, [0.0], 3)[:, 0]
    np.testing.assert_allclose(iterates, np.cumprod([1 - 0.05, 1 - 0.1, 1 - 0.15]), rtol=1e-15)


def test_adam_bias_correction_counts_each_parameters_own_updates():
    # b has no gradient for the first two updates; its first update is still a first step (−α sign g).
    a, b = param([0.0]), param([0.0])
    opt = optim.Adam([a, b], lr=0.1, betas=(0.5, 0.5))
    for t in range(3):
        a.grad = np.array([1.0])
        b.grad = np.array([4.0]) if t == 2 else None
        opt.step()
    assert float(b.data[0]) == pytest.approx(-0.1, abs=1e-8)
    assert opt.state[0]["step"] == 3 and opt.state[1]["step"] == 1 and opt.t == 3


# ------------------------------------------------------------------ every one
@pytest.mark.parametrize("optimizer_class", ADAPTIVE, ids=lambda c: c.__name__)
def test_keeps_float32_and_updates_in_place(optimizer_class):
    w = param([1.0, -1.0], dtype=np.float32)
    array = w.data
    opt = optimizer_class([w], lr=0.1)
    run_constant_gradient(opt, w, [0.5, 0.25], 3)
    assert w.data is array and w.data.dtype == np.float32
    assert all(v.dtype == np.float32 for k, v in opt.state_dict().items() if k != "t" and not k.startswith("step"))
    assert np.all(w.data != np.array([1.0, -1.0], dtype=np.float32))


FULL_OPTIONS = {
    optim.SGD: dict(lr=schedules.sgdr(0.1, t0=4, t_mult=2), momentum=0.9, nesterov=True, weight_decay=0.01),
    optim.HeavyBallSGD: dict(lr=schedules.sgdr(0.1, t0=4, t_mult=2), momentum=0.9, nesterov=True, weight_decay=0.01),
    optim.Adagrad: dict(lr=schedules.cosine(0.1, 20), lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1),
    optim.RMSprop: dict(lr=schedules.cosine(0.01, 20), weight_decay=0.01, momentum=0.9, centered=True),
    optim.Adam: dict(lr=schedules.cosine(0.05, 20), weight_decay=0.01, amsgrad=True),
    optim.AdamW: dict(lr=schedules.cosine(0.05, 20), amsgrad=True),
}


@pytest.mark.parametrize("optimizer_class", list(FULL_OPTIONS), ids=lambda c: c.__name__)
def test_state_dict_round_trip_continues_exactly(optimizer_class, rng, tmp_path):
    A = np.diag([0.5, 1.0, 2.0])
    kwargs = FULL_OPTIONS[optimizer_class]
    w = param(rng.normal(size=3))
    opt = optimizer_class([w], **kwargs)
    for _ in range(6):
        w.grad = A @ w.data
        opt.step()
    np.savez(tmp_path / "state.npz", **opt.state_dict())
    saved_w = w.data.copy()
    for _ in range(6):
        w.grad = A @ w.data
        opt.step()
    w2 = param(saved_w)
    resumed = optimizer_class([w2], **kwargs)
    with np.load(tmp_path / "state.npz", allow_pickle=False) as state:
        resumed.load_state_dict(dict(state))
    assert resumed.t == 6
    for _ in range(6):
        w2.grad = A @ w2.data
        resumed.step()
    np.testing.assert_array_equal(w2.data, w.data)
    # {"t": 0} alone is a fresh start: the next update is a first step again.
    resumed.load_state_dict({"t": np.array(0)})
    assert resumed.t == 0 and resumed.state == [{}]


def test_load_state_dict_rejects_keys_of_another_optimizer():
    opt = optim.Adam([param([1.0, 2.0])])
    with pytest.raises(ValueError, match="Adam.load_state_dict: expected keys 't', 'step.0' … 'step.0'"):
        opt.load_state_dict({"t": np.array(1), "buffer.0": np.zeros(2)})
    with pytest.raises(ValueError, match="exp_avg.0 has shape \\(3,\\) but parameter 0 has shape \\(2,\\)"):
        opt.load_state_dict({"t": np.array(1), "exp_avg.0": np.zeros(3)})


@pytest.mark.parametrize(
    "optimizer_class, kwargs, message",
    [
        (optim.Adagrad, dict(lr=-1.0), "Adagrad: lr must be a finite number >= 0 or a schedule"),
        (optim.Adagrad, dict(lr_decay=-0.1), "Adagrad: lr_decay must be >= 0; got -0.1"),
        (optim.Adagrad, dict(eps=float("nan")), "Adagrad: eps must be a finite number >= 0; got nan"),
        (optim.RMSprop, dict(alpha=1.5), "RMSprop: alpha must be in \\[0, 1\\]; got 1.5"),
        (optim.RMSprop, dict(momentum=-0.9), "RMSprop: momentum must be >= 0; got -0.9"),
        (optim.Adam, dict(betas=(0.9, 1.0)), "Adam: betas\\[1\\] must be in \\[0, 1\\); got 1.0"),
        (optim.Adam, dict(betas=0.9), "Adam: betas must be a pair \\(beta1, beta2\\), each in \\[0, 1\\); got 0.9"),
        (optim.AdamW, dict(weight_decay=-0.01), "AdamW: weight_decay must be >= 0; got -0.01"),
    ],
)
def test_bad_arguments(optimizer_class, kwargs, message):
    with pytest.raises(ValueError, match=message):
        optimizer_class([param([1.0])], **kwargs)


# -------------------------------------------------- against torch.optim, on a CNN
@pytest.fixture
def torch():
    """PyTorch on one thread (these tensors are tiny: more threads only contend on a shared machine)."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(threads)


def small_cnn():
    """Conv(3→4, 3) ReLU MaxPool2 → Linear(36→5), in float64: 8×8 images, 5 classes."""
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(36, 5)).double()


def torch_cnn(torch, state):
    tnn = torch.nn
    net = tnn.Sequential(tnn.Conv2d(3, 4, 3), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(), tnn.Linear(36, 5)).double()
    net.load_state_dict({k: torch.tensor(v) for k, v in state.items()})
    return net


def cnn_batches(rng, count=4, batch=8):
    return [(rng.normal(size=(batch, 3, 8, 8)), rng.integers(0, 5, size=batch)) for _ in range(count)]


def train_both(torch, minisgd_class, torch_class, kwargs, schedule, steps, rng, bias_group=None):
    """``steps`` updates of the same CNN in minisgd and PyTorch; PyTorch's lr is set from the same schedules.

    ``bias_group``: options for a second group holding the biases (its ``"lr"`` a schedule).
    """
    ours = small_cnn()
    theirs = torch_cnn(torch, ours.state_dict())
    batches = cnn_batches(rng)
    rates = [schedule] if bias_group is None else [schedule, bias_group["lr"]]

    def groups(model, at_t0):
        if bias_group is None:
            return list(model.parameters())
        named = list(model.named_parameters())
        options = {**bias_group, "lr": bias_group["lr"](0)} if at_t0 else bias_group
        return [{"params": [p for n, p in named if not n.endswith("bias")]},
                {"params": [p for n, p in named if n.endswith("bias")], **options}]

    opt = minisgd_class(groups(ours, False), lr=schedule, **kwargs)
    topt = torch_class(groups(theirs, True), lr=schedule(0), **kwargs)
    for t in range(steps):
        x, y = batches[t % len(batches)]
        opt.zero_grad()
        F.cross_entropy(ours(minisgd.Tensor(x)), y).backward()
        opt.step()
        for group, rate in zip(topt.param_groups, rates):
            group["lr"] = rate(t)
        topt.zero_grad()
        torch.nn.functional.cross_entropy(theirs(torch.tensor(x)), torch.tensor(y)).backward()
        topt.step()
    return ours.state_dict(), {k: v.detach().numpy() for k, v in theirs.state_dict().items()}


def option_grid(**choices):
    keys = list(choices)
    grid = [{}]
    for key in keys:
        grid = [{**g, key: value} for g in grid for value in choices[key]]
    return grid


PARITY_CASES = (
    [("Adagrad", o) for o in option_grid(lr_decay=[0.0, 0.05], weight_decay=[0.0, 0.01],
                                         initial_accumulator_value=[0.0, 0.1], eps=[1e-10])]
    + [("RMSprop", o) for o in option_grid(centered=[False, True], momentum=[0.0, 0.9], weight_decay=[0.0, 0.01])]
    + [("Adam", o) for o in option_grid(amsgrad=[False, True], weight_decay=[0.0, 0.01], betas=[(0.9, 0.999)])]
    + [("AdamW", o) for o in option_grid(amsgrad=[False, True], weight_decay=[0.01, 0.1], betas=[(0.8, 0.99)])]
    + [("SGD", o) for o in option_grid(momentum=[0.9], nesterov=[False, True], weight_decay=[0.0, 5e-4])]
)
RATES = {"Adagrad": 0.05, "RMSprop": 0.002, "Adam": 0.005, "AdamW": 0.005, "SGD": 0.05}


@pytest.mark.parametrize(
    "name, options", PARITY_CASES, ids=[f"{n}-" + ",".join(f"{k}={v}" for k, v in o.items()) for n, o in PARITY_CASES]
)
def test_matches_torch_on_a_small_cnn_for_100_steps(name, options, rng, torch):
    schedule = schedules.warmup(schedules.cosine(RATES[name], 90), 10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, theirs = train_both(torch, getattr(optim, name), getattr(torch.optim, name), options, schedule, 100, rng)
    for key in ours:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-9, atol=1e-11, err_msg=key)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_parameter_groups_match_torch(name, rng, torch):
    # Biases in a second group with their own lr (3× the schedule) and no weight decay.
    options = dict(weight_decay=0.05, **({"momentum": 0.9} if name == "SGD" else {}))
    lr = RATES[name]
    schedule = schedules.cosine(lr, 50)
    group = {"weight_decay": 0.0, "lr": schedules.cosine(3 * lr, 50)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, theirs = train_both(torch, getattr(optim, name), getattr(torch.optim, name), options, schedule, 50,
                                  rng, bias_group=group)
    for key in ours:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-9, atol=1e-11, err_msg=key)
