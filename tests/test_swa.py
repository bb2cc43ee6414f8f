"""Stochastic weight averaging against hand computations, and against torch.optim.swa_utils when installed."""

import math

import numpy as np
import pytest

import minisgd
from minisgd import nn, optim, schedules
from minisgd.optim.swa_utils import AveragedModel, get_ema_avg_fn, swa_schedule, update_bn


def linear_with(weight, bias):
    layer = nn.Linear(2, 1).double()
    layer.weight.data[...] = weight
    layer.bias.data[...] = bias
    return layer


def test_equal_average_of_three_models_by_hand():
    model = linear_with([[1.0, 2.0]], [0.0])
    swa = AveragedModel(model)
    for weight, bias in (([[1.0, 2.0]], [0.0]), ([[4.0, -1.0]], [3.0]), ([[-2.0, 5.0]], [6.0])):
        model.weight.data[...] = weight
        model.bias.data[...] = bias
        swa.update_parameters(model)
    np.testing.assert_allclose(swa.module.weight.data, [[1.0, 2.0]], rtol=1e-15)  # (1+4−2)/3, (2−1+5)/3
    np.testing.assert_allclose(swa.module.bias.data, [3.0], rtol=1e-15)
    assert int(swa.n_averaged) == 3
    model.weight.data[...] = 100.0  # the average is a copy, not a view of the model
    assert swa.module.weight.data[0, 0] == 1.0
    out = swa(minisgd.Tensor(np.array([[1.0, 1.0]])))
    assert float(out.data[0, 0]) == pytest.approx(1.0 + 2.0 + 3.0)  # the averaged model predicts


def test_ema_by_hand():
    # decay 0.5: the first update copies (W = 2), then 0.5·2 + 0.5·4 = 3, then 0.5·3 + 0.5·0 = 1.5.
    model = linear_with([[2.0, 2.0]], [0.0])
    ema = AveragedModel(model, avg_fn=get_ema_avg_fn(0.5))
    for value in (2.0, 4.0, 0.0):
        model.weight.data[...] = value
        ema.update_parameters(model)
    np.testing.assert_allclose(ema.module.weight.data, [[1.5, 1.5]], rtol=1e-15)


def test_state_dict_resumes_the_average(tmp_path):
    # Average 1, 2 (→ 1.5), save, restore into a fresh AveragedModel, add 6: (1 + 2 + 6)/3 = 3.
    model = linear_with([[0.0, 0.0]], [0.0])
    swa = AveragedModel(model)
    for value in (1.0, 2.0):
        model.weight.data[...] = value
        swa.update_parameters(model)
    state = swa.state_dict()
    assert set(state) == {"module.weight", "module.bias", "n_averaged"}  # PyTorch's names
    np.savez(tmp_path / "swa.npz", **state)
    resumed = AveragedModel(linear_with([[9.0, 9.0]], [9.0]))
    with np.load(tmp_path / "swa.npz", allow_pickle=False) as saved:
        resumed.load_state_dict(dict(saved))
    model.weight.data[...] = 6.0
    resumed.update_parameters(model)
    np.testing.assert_allclose(resumed.module.weight.data, [[3.0, 3.0]], rtol=1e-15)
    assert int(resumed.n_averaged) == 3


def test_update_parameters_refuses_another_network():
    with pytest.raises(ValueError, match="does not have the averaged model's parameters"):
        AveragedModel(nn.Linear(2, 1)).update_parameters(nn.Linear(3, 1))


def bn_net():
    return nn.Sequential(nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3, momentum=0.3)).double()


def test_update_bn_is_the_plain_average_of_batch_statistics(rng):
    model = bn_net()
    model.eval()
    batches = [rng.normal(loc=k, size=(4 + k, 2, 3, 3)) for k in range(3)]  # unequal batches: each counts once
    with minisgd.no_grad():
        features = [model[0](minisgd.Tensor(x)).data for x in batches]
    means = [f.mean(axis=(0, 2, 3)) for f in features]
    unbiased = [f.var(axis=(0, 2, 3), ddof=1) for f in features]
    update_bn([(minisgd.Tensor(x), np.zeros(len(x))) for x in batches], model)  # (x, y) pairs
    bn = model[1]
    np.testing.assert_allclose(bn.running_mean, np.mean(means, axis=0), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, np.mean(unbiased, axis=0), rtol=1e-12)
    assert int(bn.num_batches_tracked) == 3 and bn.momentum == 0.3 and not model.training
    # Bare inputs give the same statistics, whatever was there before.
    bn.running_mean[...] = 50.0
    update_bn([x for x in batches], model)
    np.testing.assert_allclose(bn.running_mean, np.mean(means, axis=0), rtol=1e-12)


def test_update_bn_on_the_averaged_model_and_without_batch_norm(rng):
    model = bn_net()
    swa = AveragedModel(model)
    swa.update_parameters(model)
    x = rng.normal(size=(8, 2, 3, 3))
    update_bn([x], swa)
    with minisgd.no_grad():
        feature = swa.module[0](minisgd.Tensor(x)).data
    np.testing.assert_allclose(swa.module[1].running_mean, feature.mean(axis=(0, 2, 3)), rtol=1e-12)
    plain = nn.Linear(2, 1)
    before = plain.state_dict()
    update_bn([np.ones((1, 2))], plain)  # no BatchNorm: nothing to do
    assert all(np.array_equal(before[k], v) for k, v in plain.state_dict().items())


def test_swa_schedule_anneals_then_holds():
    base = schedules.constant(0.1)
    cos = swa_schedule(base, swa_start=10, swa_lr=0.02, anneal_steps=4)
    assert [cos(t) for t in (0, 9, 10)] == [0.1, 0.1, 0.1]
    # τ = 2 of A = 4: 0.02 + ½ (0.1 − 0.02)(1 + cos(π/2)) = 0.06.
    assert cos(12) == pytest.approx(0.06, abs=1e-15)
    assert cos(14) == pytest.approx(0.02, abs=1e-15) and cos(1000) == pytest.approx(0.02, abs=1e-15)
    lin = swa_schedule(schedules.cosine(0.2, 20), swa_start=10, swa_lr=0.5, anneal_steps=4, anneal="linear")
    assert lin(9) == pytest.approx(0.1 * (1 + math.cos(math.pi * 9 / 20)))
    assert lin(10) == pytest.approx(0.1) and lin(12) == pytest.approx(0.3) and lin(20) == pytest.approx(0.5)
    up = swa_schedule(schedules.constant(0.01), swa_start=5, swa_lr=0.05, anneal_steps=2)  # cos anneals up too
    assert [up(t) for t in (4, 5, 6, 7, 50)] == pytest.approx([0.01, 0.01, 0.03, 0.05, 0.05], abs=1e-15)
    with pytest.raises(ValueError, match="swa_schedule: anneal must be one of 'cos', 'linear'; got 'cosine'"):
        swa_schedule(base, swa_start=10, swa_lr=0.05, anneal="cosine")


def test_swa_averages_sgd_iterates_that_bounce_around_a_minimum(rng):
    # Least squares with noisy mini-batch gradients at a constant rate: the iterates bounce around the
    # solution of the normal equations; their average sits much closer to it than the last iterate.
    n = 64
    X = np.column_stack([rng.normal(size=(n, 2)), np.ones(n)])
    y = X @ np.array([1.0, -2.0, 0.5]) + rng.normal(0, 0.5, n)
    solution = np.linalg.solve(X.T @ X, X.T @ y)
    model = nn.Linear(3, 1, bias=False).double()
    opt = optim.SGD(model.parameters(), lr=0.2)
    swa = AveragedModel(model)
    order = np.random.default_rng(0)
    for epoch in range(60):
        for rows in order.permutation(n).reshape(-1, 4):
            pred = model(minisgd.Tensor(X[rows]))
            residual = pred - minisgd.Tensor(y[rows, None])
            opt.zero_grad()
            ((residual * residual).mean() / 2).backward()
            opt.step()
        if epoch >= 20:
            swa.update_parameters(model)
    last_error = np.linalg.norm(model.weight.data[0] - solution)
    swa_error = np.linalg.norm(swa.module.weight.data[0] - solution)
    assert swa_error < last_error / 3 and swa_error < 0.05


def test_matches_torch_swa_utils(rng):
    torch = pytest.importorskip("torch")
    from torch.optim import swa_utils as torch_swa

    model = bn_net()
    tmodel = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.BatchNorm2d(3, momentum=0.3)).double()
    ours, theirs = AveragedModel(model), torch_swa.AveragedModel(tmodel)
    ema, tema = AveragedModel(model, get_ema_avg_fn(0.9)), torch_swa.AveragedModel(
        tmodel, multi_avg_fn=torch_swa.get_ema_multi_avg_fn(0.9))
    for _ in range(4):
        state = {k: rng.normal(size=v.shape) if v.dtype.kind == "f" else v for k, v in model.state_dict().items()}
        model.load_state_dict(state)
        tmodel.load_state_dict({k: torch.tensor(v) for k, v in state.items()})
        for a, b in ((ours, theirs), (ema, tema)):
            a.update_parameters(model)
            b.update_parameters(tmodel)
    batches = [rng.normal(size=(5, 2, 4, 4)) for _ in range(3)]
    update_bn(batches, ours)
    torch_swa.update_bn([torch.tensor(x) for x in batches], theirs)
    for a, b in ((ours, theirs), (ema, tema)):
        expected = {k: v.detach().numpy() for k, v in b.state_dict().items()}
        for key, value in a.state_dict().items():
            if b is tema and "running" in key:
                continue  # update_bn ran on the SWA pair only
            np.testing.assert_allclose(value, expected[key], rtol=1e-12, err_msg=key)
