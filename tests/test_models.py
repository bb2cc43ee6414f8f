"""The reference networks: structure (PyTorch's names and shapes), whole-network gradients, and learning."""

import numpy as np
import pytest

import minisgd
from minisgd import Tensor, models, nn, optim
from minisgd.nn import functional as F

LENET_KEYS = {  # PyTorch's names: the index of the layer in the Sequential, then the parameter
    "0.weight": (6, 3, 5, 5), "0.bias": (6,),
    "3.weight": (16, 6, 5, 5), "3.bias": (16,),
    "7.weight": (120, 400), "7.bias": (120,),
    "9.weight": (84, 120), "9.bias": (84,),
    "11.weight": (10, 84), "11.bias": (10,),
}
SMALL_VGG_KEYS = {
    "0.weight": (32, 3, 3, 3), "0.bias": (32,),
    "2.weight": (32, 32, 3, 3), "2.bias": (32,),
    "5.weight": (64, 32, 3, 3), "5.bias": (64,),
    "7.weight": (64, 64, 3, 3), "7.bias": (64,),
    "11.weight": (256, 4096), "11.bias": (256,),
    "13.weight": (10, 256), "13.bias": (10,),
}


def shapes(model):
    return {name: value.shape for name, value in model.state_dict().items()}


def test_lenet_has_pytorchs_names_shapes_and_parameter_count():
    model = models.lenet()
    assert shapes(model) == LENET_KEYS
    # (6·3·25 + 6) + (16·6·25 + 16) + (400·120 + 120) + (120·84 + 84) + (84·10 + 10)
    assert sum(p.size for p in model.parameters()) == 62006


def test_small_vgg_has_pytorchs_names_shapes_and_parameter_count():
    model = models.small_vgg()
    assert shapes(model) == SMALL_VGG_KEYS
    expected = (
        (32 * 27 + 32) + (32 * 288 + 32) + (64 * 288 + 64) + (64 * 576 + 64) + (4096 * 256 + 256) + (256 * 10 + 10)
    )
    assert sum(p.size for p in model.parameters()) == expected


def test_small_vgg_with_batch_norm_puts_one_after_each_convolution():
    model = models.small_vgg(batch_norm=True)
    kinds = [type(m).__name__ for m in model]
    assert kinds[:4] == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d"]
    assert kinds.count("BatchNorm2d") == 4
    assert [i for i, k in enumerate(kinds) if k == "BatchNorm2d"] == [1, 4, 8, 11]
    state = model.state_dict()
    assert state["1.running_var"].shape == (32,) and state["11.num_batches_tracked"].shape == ()


@pytest.mark.parametrize("build", [models.lenet, models.small_vgg], ids=["lenet", "small_vgg"])
def test_output_is_one_logit_per_class_in_float32(rng, build):
    out = build()(Tensor(rng.standard_normal((3, 3, 32, 32)).astype(np.float32)))
    assert out.shape == (3, 10) and out.dtype == np.float32
    assert models.lenet(num_classes=4)(Tensor(np.zeros((1, 3, 32, 32), dtype=np.float32))).shape == (1, 4)


@pytest.mark.parametrize(
    "build", [models.lenet, models.small_vgg, lambda: models.small_vgg(batch_norm=True)],
    ids=["lenet", "small_vgg", "small_vgg_bn"],
)
def test_whole_network_gradient_matches_a_directional_finite_difference(rng, build):
    """⟨∇L, v⟩ from backward() against (L(θ + εv) − L(θ − εv)) / 2ε along a random direction v.

    One finite difference checks every parameter and the input at once: a
    wrong gradient anywhere in the network would change the inner product.
    """
    minisgd.random.manual_seed(0)
    model = build().double()
    x = Tensor(rng.standard_normal((2, 3, 32, 32)), requires_grad=True)
    y = np.array([3, 7])
    tensors = [x] + list(model.parameters())
    # Unit-length directions keep each element's step tiny, so that no ReLU input
    # or max-pool tie is crossed between θ − εv and θ + εv.
    directions = [v / np.linalg.norm(v) for v in (rng.standard_normal(t.shape) for t in tensors)]

    F.cross_entropy(model(x), y).backward()
    analytic = sum(float((t.grad * v).sum()) for t, v in zip(tensors, directions))

    def loss_at(step):
        for t, v in zip(tensors, directions):
            t.data += step * v
        with minisgd.no_grad():
            value = F.cross_entropy(model(x), y).item()
        for t, v in zip(tensors, directions):
            t.data -= step * v
        return value

    eps = 1e-6
    numeric = (loss_at(eps) - loss_at(-eps)) / (2 * eps)
    assert np.isclose(analytic, numeric, rtol=1e-4, atol=1e-9), (analytic, numeric)


@pytest.mark.parametrize(
    "build, lr, steps, factor",
    [(models.lenet, 0.05, 40, 0.1), (models.small_vgg, 0.02, 30, 0.9)],
    ids=["lenet", "small_vgg"],
)
def test_sgd_with_momentum_lowers_the_loss_on_a_small_batch(rng, build, lr, steps, factor):
    """16 random images with random labels: LeNet memorises them; small_vgg makes steady progress."""
    minisgd.random.manual_seed(0)
    model = build()
    optimizer = optim.SGD(list(model.parameters()), lr=lr, momentum=0.9)
    x = Tensor(rng.standard_normal((16, 3, 32, 32)).astype(np.float32))
    y = rng.integers(0, 10, 16)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert abs(losses[0] - np.log(10)) < 0.2  # chance level at the start
    assert losses[-1] < factor * losses[0], losses


def test_eval_mode_treats_each_image_independently(rng):
    """With running statistics (eval) an image's output does not depend on the rest of the batch."""
    model = models.small_vgg(batch_norm=True)
    x = Tensor(rng.standard_normal((4, 3, 32, 32)).astype(np.float32))
    model(x)  # one training-mode batch updates the running statistics
    model.eval()
    together = model(x).detach().numpy()
    alone = model(Tensor(x.detach().numpy()[:1])).detach().numpy()
    np.testing.assert_allclose(alone[0], together[0], rtol=1e-4, atol=1e-5)
    model.train()
    assert not np.allclose(model(Tensor(x.detach().numpy()[:2])).detach().numpy()[0], together[0], atol=1e-3)


def test_gradients_do_not_flow_into_the_input_unless_asked(rng):
    model = models.lenet()
    x = Tensor(rng.standard_normal((2, 3, 32, 32)).astype(np.float32))
    F.cross_entropy(model(x), np.array([0, 1])).backward()
    assert x.grad is None
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())


def test_models_are_built_from_nn_layers():
    assert isinstance(models.small_vgg(), nn.Sequential)
    assert isinstance(models.lenet()[0], nn.Conv2d)
