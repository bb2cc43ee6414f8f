"""minisgd against PyTorch: the same networks with the same weights give the same numbers.

PyTorch is not a dependency: this module is skipped when it is not installed.
Weights move between the two through ``state_dict`` (same names and shapes),
so these tests also check that promise. Comparisons run in float64, where the
two must agree to ~1e-10, and once in float32 with float32 tolerances.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tnn = torch.nn
TF = torch.nn.functional

import minisgd  # noqa: E402
from minisgd import Tensor, models, optim  # noqa: E402
from minisgd.nn import functional as F  # noqa: E402


def torch_lenet():
    return tnn.Sequential(
        tnn.Conv2d(3, 6, 5), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Conv2d(6, 16, 5), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Flatten(), tnn.Linear(400, 120), tnn.ReLU(), tnn.Linear(120, 84), tnn.ReLU(), tnn.Linear(84, 10),
    )


def torch_small_vgg(batch_norm=False):
    def block(c_in, c_out):
        return [tnn.Conv2d(c_in, c_out, 3, padding=1)] + ([tnn.BatchNorm2d(c_out)] if batch_norm else []) + [tnn.ReLU()]

    return tnn.Sequential(
        *block(3, 32), *block(32, 32), tnn.MaxPool2d(2), *block(32, 64), *block(64, 64), tnn.MaxPool2d(2),
        tnn.Flatten(), tnn.Linear(4096, 256), tnn.ReLU(), tnn.Linear(256, 10),
    )


PAIRS = {
    "lenet": (models.lenet, torch_lenet),
    "small_vgg": (models.small_vgg, torch_small_vgg),
    "small_vgg_bn": (lambda: models.small_vgg(batch_norm=True), lambda: torch_small_vgg(batch_norm=True)),
}


def to_torch(state):
    return {name: torch.from_numpy(np.array(value)) for name, value in state.items()}


def numpy_of(tensor):
    return tensor.detach().numpy()


def twin_models(name, dtype=np.float64):
    """A minisgd model and a PyTorch model holding the minisgd model's weights."""
    minisgd.random.manual_seed(0)
    ours = PAIRS[name][0]().to(dtype)
    theirs = PAIRS[name][1]().to(torch.float64 if dtype == np.float64 else torch.float32)
    theirs.load_state_dict(to_torch(ours.state_dict()))
    return ours, theirs


@pytest.mark.parametrize("name", list(PAIRS))
def test_forward_and_backward_match_pytorch_in_float64(rng, name):
    ours, theirs = twin_models(name)
    images = rng.standard_normal((4, 3, 32, 32))
    labels = np.array([1, 0, 9, 4])

    x = Tensor(images, requires_grad=True)
    logits = ours(x)
    loss = F.cross_entropy(logits, labels)
    loss.backward()

    tx = torch.tensor(images, requires_grad=True)
    tlogits = theirs(tx)
    tloss = TF.cross_entropy(tlogits, torch.from_numpy(labels))
    tloss.backward()

    np.testing.assert_allclose(logits.detach().numpy(), numpy_of(tlogits), rtol=1e-9, atol=1e-12)
    assert np.isclose(loss.item(), tloss.item(), rtol=1e-12)
    np.testing.assert_allclose(x.grad, numpy_of(tx.grad), rtol=1e-8, atol=1e-13)
    theirs_params = dict(theirs.named_parameters())
    for param_name, param in ours.named_parameters():
        np.testing.assert_allclose(
            param.grad, numpy_of(theirs_params[param_name].grad), rtol=1e-8, atol=1e-13, err_msg=param_name
        )
    # BatchNorm's running statistics (unbiased variance) and batch count after one training batch
    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    for key in ours_state:
        np.testing.assert_allclose(ours_state[key], theirs_state[key].numpy(), rtol=1e-12, err_msg=key)


def test_small_vgg_with_batch_norm_in_eval_mode_matches_pytorch(rng):
    ours, theirs = twin_models("small_vgg_bn")
    images = rng.standard_normal((4, 3, 32, 32))
    ours(Tensor(images))  # update running statistics in training mode on both
    theirs(torch.from_numpy(images))
    ours.eval()
    theirs.eval()
    batch = rng.standard_normal((3, 3, 32, 32))
    np.testing.assert_allclose(
        ours(Tensor(batch)).detach().numpy(), numpy_of(theirs(torch.from_numpy(batch))), rtol=1e-9, atol=1e-12
    )


def test_float32_small_vgg_matches_pytorch_within_float32_rounding(rng):
    ours, theirs = twin_models("small_vgg", np.float32)
    images = rng.standard_normal((8, 3, 32, 32)).astype(np.float32)
    labels = rng.integers(0, 10, 8)
    loss = F.cross_entropy(ours(Tensor(images)), labels)
    loss.backward()
    tloss = TF.cross_entropy(theirs(torch.from_numpy(images)), torch.from_numpy(labels))
    tloss.backward()
    assert loss.dtype == np.float32
    assert np.isclose(loss.item(), tloss.item(), rtol=1e-5)
    theirs_params = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        expected = numpy_of(theirs_params[name].grad)
        np.testing.assert_allclose(param.grad, expected, rtol=2e-3, atol=2e-4 * np.abs(expected).max(), err_msg=name)


def test_weights_move_from_pytorch_to_minisgd(rng):
    torch.manual_seed(0)
    theirs = torch_lenet().double()
    ours = models.lenet().double()
    ours.load_state_dict({name: value.numpy() for name, value in theirs.state_dict().items()})
    images = rng.standard_normal((2, 3, 32, 32))
    np.testing.assert_allclose(
        ours(Tensor(images)).detach().numpy(), numpy_of(theirs(torch.from_numpy(images))), rtol=1e-9, atol=1e-12
    )


def test_three_sgd_momentum_steps_match_pytorch(rng):
    ours, theirs = twin_models("lenet")
    opt = optim.SGD(list(ours.parameters()), lr=0.05, momentum=0.9)
    topt = torch.optim.SGD(theirs.parameters(), lr=0.05, momentum=0.9)
    for _ in range(3):
        images, labels = rng.standard_normal((4, 3, 32, 32)), rng.integers(0, 10, 4)
        opt.zero_grad()
        F.cross_entropy(ours(Tensor(images)), labels).backward()
        opt.step()
        topt.zero_grad()
        TF.cross_entropy(theirs(torch.from_numpy(images)), torch.from_numpy(labels)).backward()
        topt.step()
    theirs_state = theirs.state_dict()
    for name, value in ours.state_dict().items():
        np.testing.assert_allclose(value, theirs_state[name].numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


# -------------------------------------------------------- single functions
@pytest.mark.parametrize(
    "shape, weight_shape, stride, padding",
    [
        ((2, 3, 7, 6), (4, 3, 3, 2), (2, 1), (1, 2)),
        ((1, 2, 9, 9), (3, 2, 5, 5), 2, 2),
        ((3, 1, 5, 5), (2, 1, 1, 1), 1, 0),
    ],
)
def test_conv2d_matches_pytorch(rng, shape, weight_shape, stride, padding):
    x, w, b = rng.standard_normal(shape), rng.standard_normal(weight_shape), rng.standard_normal(weight_shape[0])
    ours = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    out = F.conv2d(*ours, stride=stride, padding=padding)
    tout = TF.conv2d(*theirs, stride=stride, padding=padding)
    np.testing.assert_allclose(out.detach().numpy(), numpy_of(tout), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    tout.backward(torch.from_numpy(g))
    for a, ta in zip(ours, theirs):
        np.testing.assert_allclose(a.grad, numpy_of(ta.grad), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kernel, stride", [(2, 2), (3, 1), ((2, 3), (1, 2))])
def test_max_pool_with_ties_routes_gradients_like_pytorch(rng, kernel, stride):
    """Integer inputs make many ties; PyTorch sends each window's gradient to its first maximum."""
    x = rng.integers(0, 3, size=(2, 3, 6, 7)).astype(np.float64)
    ours, theirs = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, tout = F.max_pool2d(ours, kernel, stride), TF.max_pool2d(theirs, kernel, stride)
    np.testing.assert_array_equal(out.detach().numpy(), numpy_of(tout))
    g = rng.standard_normal(out.shape)
    out.backward(g)
    tout.backward(torch.from_numpy(g))
    np.testing.assert_allclose(ours.grad, numpy_of(theirs.grad), rtol=1e-14)


def test_avg_pool_cross_entropy_with_smoothing_and_log_softmax_match_pytorch(rng):
    x = rng.standard_normal((2, 3, 7, 6))
    np.testing.assert_allclose(
        F.avg_pool2d(Tensor(x), 3, 2).numpy(), numpy_of(TF.avg_pool2d(torch.from_numpy(x), 3, 2)), rtol=1e-12
    )
    z, y = rng.standard_normal((5, 4)) * 10, np.array([0, 3, 2, 2, 1])
    expected = TF.cross_entropy(torch.from_numpy(z), torch.from_numpy(y), label_smoothing=0.1).item()
    assert np.isclose(F.cross_entropy(Tensor(z), y, label_smoothing=0.1).item(), expected, rtol=1e-12)
    np.testing.assert_allclose(
        F.log_softmax(Tensor(z)).numpy(), numpy_of(TF.log_softmax(torch.from_numpy(z), -1)), rtol=1e-12
    )


def test_default_initialisation_has_pytorchs_bounds():
    """Same distribution: the largest |w| of a big layer approaches PyTorch's bound from below."""
    torch.manual_seed(0)
    minisgd.random.manual_seed(0)
    theirs, ours = tnn.Conv2d(32, 64, 3), minisgd.nn.Conv2d(32, 64, 3)
    for name in ("weight", "bias"):
        a, b = np.abs(getattr(ours, name).detach().numpy()).max(), np.abs(numpy_of(getattr(theirs, name))).max()
        assert np.isclose(a, b, rtol=0.02)
        assert a <= 1 / np.sqrt(32 * 9)
