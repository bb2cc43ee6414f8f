"""Every layer and function of minisgd.nn against central finite differences (float64).

``gradcheck`` contracts the output with a random upstream gradient, so a
backward that ignored or mis-scaled its incoming gradient fails. Inputs stay
away from kinks: no ReLU input near 0, and max-pool inputs without ties
(distinct values at least 0.01 apart, far more than the finite-difference step).

This file is device-agnostic (it runs again on the fake CuPy of
tests/test_gpu_guard.py): tensors are made from host data and compared
through ``.numpy()``.
"""

import numpy as np
import pytest

import minisgd
from minisgd import Tensor, gradcheck, nn
from minisgd.nn import functional as F


def leaf(rng, *shape):
    return Tensor(rng.standard_normal(shape), requires_grad=True)


def distinct(rng, *shape):
    """Values in random order, pairwise at least 0.01 apart: no ties for max pooling."""
    size = int(np.prod(shape))
    return Tensor((rng.permutation(size) * 0.01 - size * 0.005).reshape(shape), requires_grad=True)


def away_from_zero(rng, *shape):
    return Tensor(rng.uniform(0.1, 2.0, shape) * rng.choice([-1.0, 1.0], shape), requires_grad=True)


# (N, C, H, W, O, kH, kW, stride, padding): stride 1 and 2, padding 0/1/2,
# non-square kernels, 1 and several channels, batch 1 and > 1.
CONV_CASES = [
    (1, 1, 5, 5, 2, 3, 3, 1, 0),
    (2, 3, 5, 6, 2, 3, 2, 2, 1),
    (2, 2, 6, 5, 3, 2, 3, (2, 1), 2),
    (1, 2, 4, 4, 3, 1, 1, 1, 0),
    (2, 1, 7, 6, 2, 5, 4, 2, (2, 1)),
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d(rng, case):
    n, c, h, w, o, kh, kw, stride, padding = case
    x, weight, bias = leaf(rng, n, c, h, w), leaf(rng, o, c, kh, kw), leaf(rng, o)
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride, padding), x, weight, bias)


def test_conv2d_without_bias_and_with_a_constant_input(rng):
    x, weight = leaf(rng, 2, 2, 4, 4), leaf(rng, 3, 2, 3, 3)
    assert gradcheck(lambda x, w: F.conv2d(x, w, stride=1, padding=1), x, weight)
    constant = Tensor(rng.standard_normal((2, 2, 4, 4)))  # no gradient needed for the input
    assert gradcheck(lambda w: F.conv2d(constant, w, padding=1), weight)


@pytest.mark.parametrize(
    "shape, kernel, stride",
    [((2, 2, 4, 6), 2, None), ((1, 3, 5, 5), 3, 1), ((2, 1, 6, 7), (2, 3), (2, 1)), ((1, 2, 7, 5), 3, 2)],
    ids=["2x2", "3x3-overlap", "2x3-stride2x1", "3x3-stride2-overlap"],
)
@pytest.mark.parametrize("pool", [F.max_pool2d, F.avg_pool2d], ids=["max", "avg"])
def test_pooling(rng, pool, shape, kernel, stride):
    x = distinct(rng, *shape)
    assert gradcheck(lambda x: pool(x, kernel, stride), x)


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5)])
def test_linear(rng, shape):
    x, weight, bias = leaf(rng, *shape), leaf(rng, 2, shape[-1]), leaf(rng, 2)
    assert gradcheck(F.linear, x, weight, bias)
    assert gradcheck(lambda x, w: F.linear(x, w), x, weight)


def test_relu(rng):
    assert gradcheck(F.relu, away_from_zero(rng, 2, 3, 4))


@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_and_log_softmax(rng, axis):
    x = leaf(rng, 3, 5)
    assert gradcheck(lambda x: F.softmax(x, axis), x)
    assert gradcheck(lambda x: F.log_softmax(x, axis), x)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy(rng, smoothing):
    logits = leaf(rng, 4, 5)
    targets = np.array([0, 3, 4, 3])
    assert gradcheck(lambda z: F.cross_entropy(z, targets, label_smoothing=smoothing), logits)


def test_mse_loss_in_both_arguments(rng):
    assert gradcheck(F.mse_loss, leaf(rng, 3, 2), leaf(rng, 3, 2))


def test_dropout_with_a_fixed_mask(rng):
    def fn(x):
        minisgd.random.manual_seed(7)  # the same mask at every evaluation
        return F.dropout(x, p=0.4, training=True)

    assert gradcheck(fn, leaf(rng, 4, 5))


@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 3, 2)], ids=["N,C", "N,C,H,W"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batch_norm(rng, shape, training):
    channels = shape[1]
    x, gamma, beta = leaf(rng, *shape), leaf(rng, channels), leaf(rng, channels)
    running_mean = Tensor(rng.standard_normal(channels)).data
    running_var = Tensor(rng.uniform(0.5, 2.0, channels)).data

    def fn(x, gamma, beta):
        return F.batch_norm(x, running_mean, running_var, gamma, beta, training=training)

    assert gradcheck(fn, x, gamma, beta)


def test_flatten(rng):
    assert gradcheck(lambda x: F.flatten(x) * 1.0, leaf(rng, 2, 3, 2, 2))


def test_a_small_network_of_layers_wrt_input_and_every_parameter(rng):
    """Conv → BatchNorm → ReLU → MaxPool → Conv → AvgPool → Flatten → Dropout → Linear, in float64."""
    minisgd.random.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(3, 2, (2, 1), stride=(1, 1)), nn.AvgPool2d(2, 1), nn.Flatten(),
        nn.Dropout(0.25), nn.Linear(2 * 1 * 2, 3),
    ).double()
    x = leaf(rng, 2, 2, 6, 7)

    def fn(x, *params):
        minisgd.random.manual_seed(1)  # the dropout mask
        return model(x)

    params = list(model.parameters())
    assert all(p.dtype == np.float64 for p in params)
    assert gradcheck(fn, x, *params, atol=1e-5, rtol=1e-4)
