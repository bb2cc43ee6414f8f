"""SGD and the recitation's momentum against problems whose iterates are known in closed form.

Expected values come from linear algebra (the quadratic's (I − αA)ᵗ w₀, the
normal equations), from the momentum recurrence written out in the test, from
the worked examples of the recitation and the TensorFlow docs, and from
torch.optim.SGD itself when PyTorch is installed.
"""

import math
import warnings

import numpy as np
import pytest

import minisgd
from minisgd import optim, schedules


def param(values, dtype=np.float64):
    return minisgd.Tensor(np.array(values, dtype=dtype), requires_grad=True)


def half_square_steps(opt, w, steps):
    """Minimise the loss w²/2 (so g = w) with autograd; return the iterates w₁ … w_steps."""
    iterates = []
    for _ in range(steps):
        opt.zero_grad()
        ((w * w) / 2).sum().backward()
        opt.step()
        iterates.append(float(w.data[0]))
    return iterates


# ---------------------------------------------------------- worked examples
def test_worked_example_momentum_09():
    # TensorFlow's SGD docs: loss w²/2, w₀ = 1, α = 0.1, μ = 0.9 → w₁ = 0.9, w₂ = 0.72.
    for optimizer_class in (optim.SGD, optim.HeavyBallSGD):
        w = param([1.0])
        w1, w2 = half_square_steps(optimizer_class([w], lr=0.1, momentum=0.9), w, 2)
        assert w1 == pytest.approx(0.9, abs=1e-15) and w2 == pytest.approx(0.72, abs=1e-15)
        assert 1.0 - w1 == pytest.approx(0.1) and w1 - w2 == pytest.approx(0.18)  # the second step is larger


def test_worked_example_nesterov():
    # Nesterov: b₁ = g₀ = 1, step along g₀ + μ b₁ = 1.9 → w₁ = 1 − 0.19 = 0.81.
    # Then g₁ = 0.81, b₂ = 0.9·1 + 0.81 = 1.71, step along 0.81 + 0.9·1.71 = 2.349 → w₂ = 0.5751.
    for optimizer_class in (optim.SGD, optim.HeavyBallSGD):
        w = param([1.0])
        w1, w2 = half_square_steps(optimizer_class([w], lr=0.1, momentum=0.9, nesterov=True), w, 2)
        assert w1 == pytest.approx(0.81, abs=1e-15) and w2 == pytest.approx(0.5751, abs=1e-14)


def test_weight_decay_by_hand():
    # g = w + λw = 1.1 w with λ = 0.1: w ← w − 0.1·1.1 w = 0.89 w.
    w = param([1.0])
    iterates = half_square_steps(optim.SGD([w], lr=0.1, weight_decay=0.1), w, 3)
    assert iterates == pytest.approx([0.89, 0.89**2, 0.89**3], abs=1e-15)
    assert w.grad[0] == pytest.approx(0.89**2)  # .grad holds the loss's gradient, without the decay


def test_dampening_by_hand():
    # μ = 0.9, dampening 0.5, α = 0.1, g = w:
    # t=0: b = g = 1 (no dampening on the first step)     w₁ = 1 − 0.1     = 0.9
    # t=1: b = 0.9·1 + 0.5·0.9 = 1.35                       w₂ = 0.9 − 0.135 = 0.765
    # t=2: b = 0.9·1.35 + 0.5·0.765 = 1.5975                w₃ = 0.765 − 0.15975 = 0.60525
    w = param([1.0])
    iterates = half_square_steps(optim.SGD([w], lr=0.1, momentum=0.9, dampening=0.5), w, 3)
    assert iterates == pytest.approx([0.9, 0.765, 0.60525], abs=1e-14)


def test_forms_agree_at_constant_lr_and_differ_once_lr_changes_by_hand():
    # lr 0.1 for the first update, 0.01 after; loss w²/2, w₀ = 1, μ = 0.9; both give w₁ = 0.9.
    # PyTorch: b₂ = 0.9·1 + 0.9 = 1.8;           w₂ = 0.9 − 0.01·1.8 = 0.882
    # heavy ball: V₂ = 0.9·0.1 + 0.01·0.9 = 0.099; w₂ = 0.9 − 0.099 = 0.801
    def lr(t):
        return 0.1 if t == 0 else 0.01

    w = param([1.0])
    assert half_square_steps(optim.SGD([w], lr=lr, momentum=0.9), w, 2) == pytest.approx([0.9, 0.882], abs=1e-15)
    w = param([1.0])
    assert half_square_steps(optim.HeavyBallSGD([w], lr=lr, momentum=0.9), w, 2) == pytest.approx(
        [0.9, 0.801], abs=1e-15
    )


# ---------------------------------------------------------- analytic problems
def random_spd(rng, n):
    """A symmetric positive-definite matrix with eigenvalues in [0.5, 2]."""
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return q @ np.diag(rng.uniform(0.5, 2.0, n)) @ q.T


def test_gradient_descent_on_a_quadratic_is_a_matrix_power(rng):
    # L(w) = ½ wᵀAw, ∇L = Aw, so w ← (I − αA) w and w_t = (I − αA)ᵗ w₀.
    A, w0, alpha = random_spd(rng, 4), rng.normal(size=4), 0.3
    w = param(w0)
    opt = optim.SGD([w], lr=alpha)
    for t in range(1, 26):
        w.grad = A @ w.data
        opt.step()
        if t in (1, 2, 10, 25):
            expected = np.linalg.matrix_power(np.eye(4) - alpha * A, t) @ w0
            np.testing.assert_allclose(w.data, expected, rtol=1e-12, atol=1e-15)
    assert opt.t == 25


def test_momentum_on_a_1d_quadratic_follows_the_two_term_recurrence():
    # L = a w²/2: w_{t+1} = w_t − α a w_t + μ (w_t − w_{t−1}), with w₁ = w₀ − α a w₀.
    a, alpha, mu = 3.0, 0.05, 0.8
    recurrence = [2.0, 2.0 - alpha * a * 2.0]
    for _ in range(60):
        recurrence.append(recurrence[-1] - alpha * a * recurrence[-1] + mu * (recurrence[-1] - recurrence[-2]))
    for optimizer_class in (optim.SGD, optim.HeavyBallSGD):
        w = param([2.0])
        opt = optimizer_class([w], lr=alpha, momentum=mu)
        iterates = [2.0]
        for _ in range(61):
            w.grad = a * w.data
            opt.step()
            iterates.append(float(w.data[0]))
        np.testing.assert_allclose(iterates, recurrence, rtol=1e-11, atol=1e-14)


def test_gd_sgd_and_minibatch_sgd_reach_the_normal_equation_solution(rng):
    # Least squares L(w) = mean((Xw − y)²)/2 has its minimum at the normal-equation
    # solution (XᵀX) w = Xᵀy. The same optimizer, fed the whole set (gradient descent),
    # one example (pure SGD) or 8 examples (mini-batch SGD) per update, gets there.
    n = 32
    X = np.column_stack([rng.normal(size=(n, 2)), np.ones(n)])  # two features and a bias column
    y = X @ np.array([1.5, -2.0, 0.5]) + rng.normal(0, 0.3, n)
    solution = np.linalg.solve(X.T @ X, X.T @ y)

    def train(batch_size, epochs, lr):
        w = param(np.zeros(3))
        opt = optim.SGD([w], lr=lr)
        order = np.random.default_rng(0)
        for _ in range(epochs):
            shuffled = order.permutation(n)
            for start in range(0, n, batch_size):
                rows = shuffled[start : start + batch_size]
                opt.zero_grad()
                residual = minisgd.Tensor(X[rows]) @ w - minisgd.Tensor(y[rows])
                ((residual * residual).mean() / 2).backward()
                opt.step()
        return w.data

    steps = lambda batch_size, epochs: epochs * math.ceil(n / batch_size)  # noqa: E731
    full = train(n, 300, lr=0.5)
    pure = train(1, 300, lr=schedules.cosine(0.05, steps(1, 300)))  # noisy gradients need a decaying lr
    mini = train(8, 300, lr=schedules.cosine(0.2, steps(8, 300)))
    # (With a constant lr, pure and mini-batch SGD hover 1e-2 to 3e-2 away from the solution.)
    for found in (full, pure, mini):
        np.testing.assert_allclose(found, solution, atol=5e-4)
    np.testing.assert_allclose(full, solution, atol=1e-10)  # no noise: gradient descent converges fully


def test_forms_agree_at_constant_lr_on_a_random_problem(rng):
    A, w0 = random_spd(rng, 5), rng.normal(size=5)
    for kwargs in (dict(momentum=0.9), dict(momentum=0.5, nesterov=True), dict(momentum=0.9, weight_decay=0.01)):
        results = []
        for optimizer_class in (optim.SGD, optim.HeavyBallSGD):
            w = param(w0)
            opt = optimizer_class([w], lr=0.07, **kwargs)
            for _ in range(30):
                w.grad = A @ w.data + np.sin(w.data)
                opt.step()
            results.append(w.data.copy())
        np.testing.assert_allclose(results[0], results[1], rtol=1e-12, atol=1e-15)
    # Under a schedule they part ways once the rate changes.
    results = []
    for optimizer_class in (optim.SGD, optim.HeavyBallSGD):
        w = param(w0)
        opt = optimizer_class([w], lr=schedules.step(0.07, step_size=5, gamma=0.3), momentum=0.9)
        for t in range(10):
            w.grad = A @ w.data
            opt.step()
            if t == 4:
                results.append(w.data.copy())
        results.append(w.data.copy())
    np.testing.assert_allclose(results[0], results[2], rtol=1e-12)  # same until the first change
    assert np.max(np.abs(results[1] - results[3])) > 1e-3


# ----------------------------------------------------------- the optimizer
def test_lr_follows_the_schedule_from_t_0():
    w = param([0.0])
    seen = []
    opt = optim.SGD([w], lr=lambda t: 0.5**t)
    for _ in range(4):
        seen.append(opt.lr)
        w.grad = np.array([1.0])
        before = float(w.data[0])
        opt.step()
        assert before - float(w.data[0]) == seen[-1]  # the rate used is the one lr reported
    assert seen == [1.0, 0.5, 0.25, 0.125] and opt.t == 4 and opt.lr == 0.0625


def test_updates_in_place_skip_missing_gradients_and_keep_float32():
    a = minisgd.Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    b = minisgd.Tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    array = a.data
    opt = optim.SGD([a, b], lr=0.5, momentum=0.9)
    a.grad = np.full(3, 2.0, dtype=np.float32)
    opt.step()
    assert a.data is array  # the same array, changed in place
    assert a.data.dtype == np.float32 and np.all(a.data == 0.0)
    assert np.all(b.data == 1.0) and "buffer.1" not in opt.state_dict()  # b had no gradient
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_momentum_schedule_is_used_at_each_step():
    # b ← μ_t b + g with μ_t from the schedule: g = 1 always, μ = 0.5, 0.25, …
    w = param([0.0])
    opt = optim.SGD([w], lr=1.0, momentum=lambda t: 0.5 ** (t + 1))
    buffer, position = None, 0.0
    for t in range(5):
        w.grad = np.array([1.0])
        opt.step()
        buffer = 1.0 if buffer is None else 0.5 ** (t + 1) * buffer + 1.0
        position -= buffer
        assert float(w.data[0]) == pytest.approx(position, abs=1e-15)
        assert opt.momentum == 0.5 ** (t + 2)


def test_load_state_dict_rejects_a_mismatch():
    opt = optim.SGD([param([1.0, 2.0])], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="buffer.0 has shape \\(3,\\) but parameter 0 has shape \\(2,\\)"):
        opt.load_state_dict({"t": np.array(3), "buffer.0": np.zeros(3)})
    with pytest.raises(ValueError, match="expected keys 't'"):
        opt.load_state_dict({"step": np.array(3)})


# -------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(lr=-0.1), "SGD: lr must be a finite number >= 0 or a schedule \\(a callable t -> value\\); got -0.1"),
        (dict(lr=float("nan")), "lr must be a finite number >= 0 or a schedule .*; got nan"),
        (dict(lr=float("inf")), "lr must be a finite number >= 0 or a schedule .*; got inf"),
        (dict(lr=0.1, momentum=-0.5), "momentum must be a finite number >= 0 or a schedule .*; got -0.5"),
        (dict(lr=0.1, weight_decay=-1.0), "SGD: weight_decay must be >= 0; got -1.0"),
        (dict(lr=0.1, momentum=0.9, dampening=2.0), "dampening must be in \\[0, 1\\]; got 2.0"),
        (dict(lr=0.1, nesterov=True), "nesterov=True needs momentum > 0 and dampening = 0; got momentum=0.0"),
        (
            dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
            "nesterov=True needs momentum > 0 and dampening = 0",
        ),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        optim.SGD([param([1.0])], **kwargs)


def test_empty_params():
    with pytest.raises(ValueError, match="params is empty"):
        optim.SGD([], lr=0.1)


@pytest.mark.parametrize("bad", [-0.01, float("nan"), float("inf")])
def test_a_schedule_returning_a_bad_lr_stops_at_that_step(bad):
    w = param([1.0])
    opt = optim.SGD([w], lr=lambda t: 0.1 if t < 3 else bad)
    for _ in range(3):
        w.grad = np.array([1.0])
        opt.step()
    w.grad = np.array([1.0])
    with pytest.raises(
        ValueError, match=f"learning rate schedule returned {bad} at step t=3; lr must be a finite number >= 0"
    ):
        opt.step()
    assert float(w.data[0]) == pytest.approx(0.7) and opt.t == 3  # nothing was applied


# ---------------------------------------------------- against torch.optim.SGD
def pytorch_iterates(torch, w0, A, b, steps, make_scheduler=None, **sgd_kwargs):
    """torch.optim.SGD on L(w) = ½wᵀAw + bᵀw + Σw⁴/4, in float64; the iterates."""
    w = torch.nn.Parameter(torch.tensor(w0, dtype=torch.float64))
    A_t, b_t = torch.tensor(A), torch.tensor(b)
    opt = torch.optim.SGD([w], **sgd_kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheduler = make_scheduler(opt, torch.optim.lr_scheduler) if make_scheduler else None
        iterates = []
        for _ in range(steps):
            opt.zero_grad()
            (0.5 * w @ A_t @ w + b_t @ w + (w**4).sum() / 4).backward()
            opt.step()
            if scheduler is not None:
                scheduler.step()
            iterates.append(w.detach().numpy().copy())
    return np.array(iterates)


def minisgd_iterates(w0, A, b, steps, **sgd_kwargs):
    """minisgd's SGD on the same loss, with its gradient Aw + b + w³ written out."""
    w = param(w0)
    opt = optim.SGD([w], **sgd_kwargs)
    iterates = []
    for _ in range(steps):
        w.grad = A @ w.data + b + w.data**3
        opt.step()
        iterates.append(w.data.copy())
    return np.array(iterates)


TORCH_SETTINGS = [
    dict(lr=0.05),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3),
    dict(lr=0.05, momentum=0.8, nesterov=True),
    dict(lr=0.05, weight_decay=0.1),
    dict(lr=0.05, momentum=0.9, dampening=0.5, weight_decay=0.01),
    dict(lr=0.05, momentum=0.7, nesterov=True, weight_decay=0.05),
]


@pytest.mark.parametrize("settings", TORCH_SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()))
def test_matches_torch_sgd(settings, rng):
    torch = pytest.importorskip("torch")
    A, b, w0 = random_spd(rng, 4), rng.normal(size=4), rng.normal(size=4)
    expected = pytorch_iterates(torch, w0, A, b, 40, **settings)
    np.testing.assert_allclose(minisgd_iterates(w0, A, b, 40, **settings), expected, rtol=1e-10, atol=1e-13)


def test_matches_torch_sgd_under_schedulers(rng):
    torch = pytest.importorskip("torch")
    A, b, w0 = random_spd(rng, 4), rng.normal(size=4), rng.normal(size=4)
    cases = [
        (schedules.multistep(0.05, [10, 20]), lambda o, L: L.MultiStepLR(o, [10, 20])),
        (schedules.cosine(0.05, 40), lambda o, L: L.CosineAnnealingLR(o, 40)),
        (schedules.sgdr(0.05, 3, 2), lambda o, L: L.CosineAnnealingWarmRestarts(o, 3, 2)),
    ]
    for ours, theirs in cases:
        expected = pytorch_iterates(torch, w0, A, b, 40, theirs, lr=0.05, momentum=0.9, weight_decay=0.01)
        found = minisgd_iterates(w0, A, b, 40, lr=ours, momentum=0.9, weight_decay=0.01)
        np.testing.assert_allclose(found, expected, rtol=1e-10, atol=1e-13, err_msg=repr(ours))


def test_cycled_momentum_matches_torch(rng):
    torch = pytest.importorskip("torch")
    A, b, w0 = random_spd(rng, 4), rng.normal(size=4), rng.normal(size=4)
    one = schedules.one_cycle(0.1, total_steps=40)
    expected = pytorch_iterates(torch, w0, A, b, 40, lambda o, L: L.OneCycleLR(o, 0.1, 40), lr=0.1, momentum=0.9)
    found = minisgd_iterates(w0, A, b, 40, lr=one, momentum=one.momentum)
    np.testing.assert_allclose(found, expected, rtol=1e-10, atol=1e-13)
    clr = schedules.cyclic(0.01, 0.1, step_size=5, mode="triangular2")
    expected = pytorch_iterates(
        torch, w0, A, b, 40, lambda o, L: L.CyclicLR(o, 0.01, 0.1, 5, mode="triangular2"), lr=0.1, momentum=0.9
    )
    found = minisgd_iterates(w0, A, b, 40, lr=clr, momentum=clr.momentum)
    np.testing.assert_allclose(found, expected, rtol=1e-10, atol=1e-13)


# -------------------------------------------------------- parameter groups
def test_parameter_groups_override_the_defaults_by_hand():
    # a: the defaults (lr 0.1, λ 0.5): g = 1 + 0.5·1 = 1.5, a₁ = 1 − 0.15 = 0.85.
    # b: lr 0.2 and no decay: g = 1, b₁ = 1 − 0.2 = 0.8.
    a, b = param([1.0]), param([1.0])
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 0.2, "weight_decay": 0.0}], lr=0.1, weight_decay=0.5)
    a.grad, b.grad = np.array([1.0]), np.array([1.0])
    opt.step()
    assert float(a.data[0]) == pytest.approx(0.85, abs=1e-15) and float(b.data[0]) == pytest.approx(0.8, abs=1e-15)
    assert opt.params == [a, b] and [g["lr"] for g in opt.param_groups] == [0.1, 0.2]


def test_parameter_groups_keep_their_own_schedules_and_state_numbering(tmp_path):
    # Momentum buffers are numbered through the groups (PyTorch's numbering): a → 0, b → 1, c → 2.
    a, b, c = param([1.0]), param([2.0]), param([3.0])
    opt = optim.SGD([{"params": [a, b]}, {"params": [c], "lr": lambda t: 0.5**t}], lr=0.1, momentum=0.9)
    for _ in range(2):
        for p in (a, b, c):
            p.grad = np.array([1.0])
        opt.step()
    # c: b₁ = 1, c₁ = 3 − 1·1 = 2; b₂ = 1.9, c₂ = 2 − 0.5·1.9 = 1.05. a: 1 − 0.1 − 0.19 = 0.71.
    assert float(c.data[0]) == pytest.approx(1.05, abs=1e-15) and float(a.data[0]) == pytest.approx(0.71, abs=1e-15)
    assert sorted(opt.state_dict()) == ["buffer.0", "buffer.1", "buffer.2", "t"]
    assert opt.lr == 0.1  # the first group's rate
    with pytest.raises(ValueError, match="groups have different lr"):
        opt.lr_schedule


@pytest.mark.parametrize(
    "params, message",
    [
        (lambda a, b: [{"params": [a]}, {"params": [b], "lr": 0.1, "betas": (0.9, 0.99)}],
         "param_groups\\[1\\] has unknown options \\['betas'\\]; allowed: 'params', 'lr', 'momentum'"),
        (lambda a, b: [{"params": [a]}, {"lr": 0.1}], "param_groups\\[1\\] has no 'params' key"),
        (lambda a, b: [a, {"params": [b]}], "params mixes tensors and dicts"),
        (lambda a, b: [{"params": [a, b]}, {"params": [b]}], "a parameter appears in more than one group"),
        (lambda a, b: a, "params must be an iterable of tensors or a list of dicts .*; got 'Tensor'"),
        (lambda a, b: {"params": [a]}, "params must be an iterable of tensors or a list of dicts .*; got 'dict'"),
        (lambda a, b: [{"params": [np.ones(2)]}], "param_groups\\[0\\]\\['params'\\] must hold tensors; got a ndarray"),
        (lambda a, b: [{"params": []}], "params is empty"),
        (lambda a, b: [{"params": [a]}, {"params": [b], "lr": -1.0}], "SGD param_groups\\[1\\]: lr must be"),
        (lambda a, b: [{"params": [a], "momentum": 0.0}, {"params": [b]}],
         "SGD param_groups\\[0\\]: nesterov=True needs momentum > 0"),
    ],
)
def test_bad_parameter_groups_get_a_clear_error(params, message):
    with pytest.raises(ValueError, match=message):
        optim.SGD(params(param([1.0]), param([2.0])), lr=0.1, momentum=0.9, nesterov=True)


def test_heavy_ball_groups_refuse_dampening():
    with pytest.raises(ValueError, match="HeavyBallSGD: dampening must be 0"):
        optim.HeavyBallSGD([{"params": [param([1.0])], "dampening": 0.5}], lr=0.1)


@pytest.mark.parametrize(
    "optimizer_class", [optim.SGD, optim.HeavyBallSGD, optim.Adagrad, optim.RMSprop, optim.Adam, optim.AdamW]
)
def test_two_groups_equal_two_optimizers(optimizer_class, rng):
    # Groups only route options: two groups behave as two optimizers, one per group.
    A, w0 = random_spd(rng, 2), rng.normal(size=2)
    options = dict(lr=0.05, weight_decay=0.1, **({"momentum": 0.9} if "SGD" in optimizer_class.__name__ else {}))
    x, y = param(w0), param(-w0)
    together = optimizer_class([{"params": [x]}, {"params": [y], "lr": 0.01, "weight_decay": 0.0}], **options)
    x2, y2 = param(w0), param(-w0)
    apart = [optimizer_class([x2], **options), optimizer_class([y2], **{**options, "lr": 0.01, "weight_decay": 0.0})]
    for _ in range(5):
        x.grad, y.grad, x2.grad, y2.grad = A @ x.data, A @ y.data, A @ x2.data, A @ y2.data
        together.step()
        for opt in apart:
            opt.step()
    np.testing.assert_array_equal(x.data, x2.data)
    np.testing.assert_array_equal(y.data, y2.data)


def test_no_decay_groups_leave_biases_and_batch_norm_undecayed():
    model = minisgd.nn.Sequential(minisgd.nn.Conv2d(3, 4, 3), minisgd.nn.BatchNorm2d(4), minisgd.nn.Flatten(),
                                  minisgd.nn.Linear(4, 2, bias=False))
    groups = optim.no_decay_groups(model)
    assert [p for p in groups[0]["params"]] == [model[0].weight, model[3].weight] and "weight_decay" not in groups[0]
    assert groups[1]["params"] == [model[0].bias, model[1].weight, model[1].bias] and groups[1]["weight_decay"] == 0.0
    # The optimizer decays only the first group: with zero gradients only decayed weights move.
    opt = optim.SGD(groups, lr=0.1, weight_decay=0.5)
    before = {name: p.data.copy() for name, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = np.zeros_like(p.data)
    opt.step()
    for name, p in model.named_parameters():
        factor = 1.0 if name.endswith("bias") or name.startswith("1.") else 1 - 0.1 * 0.5
        np.testing.assert_allclose(p.data, before[name] * np.float32(factor), rtol=1e-6, err_msg=name)
    assert len(optim.no_decay_groups(minisgd.nn.Linear(2, 2, bias=False))) == 1
