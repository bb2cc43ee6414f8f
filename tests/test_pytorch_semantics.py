"""The engine's behaviours that once differed from PyTorch (or gave a silently wrong gradient), each pinned.

Every expected value comes from PyTorch run in the test, or from the formula
in a comment. The random differential tests (tests/test_differential_torch.py)
cover the same ground broadly; these name each case.
"""

import inspect

import numpy as np
import pytest

import minisgd
from minisgd import Tensor, ops, optim
from minisgd.nn import functional as F
from minisgd.optim import swa_utils

torch = pytest.importorskip("torch")


def both(array, requires_grad=True):
    return Tensor(array.copy(), requires_grad=requires_grad), torch.tensor(array.copy(), requires_grad=requires_grad)


# ------------------------------------------------------ silently wrong gradients
def test_permute_with_negative_axes_gives_the_leaf_its_own_shape():
    w, tw = both(np.arange(24.0).reshape(2, 3, 4))
    g = np.arange(24.0).reshape(4, 2, 3)
    w.permute(-1, 0, 1).backward(g)
    tw.permute(-1, 0, 1).backward(torch.tensor(g))
    assert w.grad.shape == (2, 3, 4)
    np.testing.assert_array_equal(w.grad, tw.grad.numpy())


def test_a_numpy_integer_index_is_a_tracked_view():
    w = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    x = w * 1
    row = x[np.int64(0)]
    assert row._counter is x._counter  # a view, like x[0]
    row += 5.0  # writes into x's memory, so x's recorded graph no longer computes x
    with pytest.raises(RuntimeError, match="re-derives the graph"):
        (x * x).sum().backward()


def test_a_vector_element_is_a_view_as_in_pytorch():
    x = Tensor(np.arange(3.0))
    element = x[1]
    element += 10.0
    assert x.data[1] == 11.0  # torch: x[1] += 10 through the 0-d view changes x


@pytest.mark.parametrize("name", sorted(n for n, c in vars(optim).items()
                                        if inspect.isclass(c) and issubclass(c, optim.Optimizer)
                                        and c is not optim.Optimizer))
def test_every_optimizer_step_between_forward_and_backward_raises(name):
    w = Tensor(np.array([1.0, -2.0]), requires_grad=True)
    optimizer = getattr(optim, name)([w], lr=0.1)
    loss = (w * w).sum()  # mul saved w
    w.grad = np.ones(2)
    optimizer.step()
    with pytest.raises(RuntimeError, match=rf"modified in place by `{name}.step\(\)`"):
        loss.backward()  # PyTorch raises here too: the gradient would be taken at the new weights


def test_pytorch_raises_for_a_step_between_forward_and_backward_too():
    w = torch.tensor([1.0, -2.0], requires_grad=True)
    loss = (w * w).sum()
    w.grad = torch.ones(2)
    torch.optim.SGD([w], lr=0.1).step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_averaged_model_update_and_load_state_dict_bump_the_version():
    model = minisgd.nn.Linear(2, 1)
    average = swa_utils.AveragedModel(model)
    weight = next(iter(average.parameters()))
    before = weight._version
    average.update_parameters(model)
    average.update_parameters(model)
    assert weight._version == before + 2
    version = model.weight._version
    model.load_state_dict(model.state_dict())
    assert model.weight._version == version + 1


def test_tensor_of_a_tensor_shares_the_memory_and_the_version_counter():
    t = Tensor(np.zeros(3))
    alias = Tensor(t)
    assert alias.data is t.data and alias._counter is t._counter
    alias += 1.0
    assert t._version == 1 == alias._version  # torch.Tensor(t): both at version 1
    copy = Tensor(t, dtype=np.float32)  # another dtype: a copy with its own counter
    assert copy._counter is not t._counter


# ----------------------------------------------------------- like PyTorch
def test_transpose_swaps_two_axes_and_permute_permutes():
    a = np.arange(6.0).reshape(2, 3)
    x, tx = both(a)
    np.testing.assert_array_equal(x.transpose(0, 1).data, tx.transpose(0, 1).detach().numpy())
    np.testing.assert_array_equal(x.T.data, a.T)
    with pytest.raises(TypeError):
        x.transpose(1, 0, 1)  # a permutation: use permute
    b = np.arange(24.0).reshape(2, 3, 4)
    assert Tensor(b).permute((2, 0, 1)).shape == torch.tensor(b).permute((2, 0, 1)).shape == (4, 2, 3)
    assert Tensor(b).transpose(-1, 0).shape == torch.tensor(b).transpose(-1, 0).shape


def test_sum_over_no_dims_sums_everything_as_in_pytorch():
    a = np.arange(6.0).reshape(2, 3)
    x, tx = both(a)
    assert x.sum(dim=()).shape == tuple(tx.sum(dim=()).shape) == ()
    assert x.sum(dim=()).item() == tx.sum(dim=()).item() == 15.0
    assert x.mean(axis=()).item() == tx.mean(dim=()).item()


@pytest.mark.parametrize("g", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("op", ["abs", "clip", "maximum"])
def test_an_infinite_or_nan_upstream_gradient_flows_like_pytorch(op, g):
    a = np.array([-1.0, 0.0, 2.0, np.nan])
    x, tx = both(a)
    y = {"abs": lambda t: t.abs(), "clip": lambda t: t.clip(-0.5, 1.0), "maximum": lambda t: ops.maximum(t, 0.0)}[op]
    ty = {"abs": torch.abs, "clip": lambda t: t.clamp(-0.5, 1.0),
          "maximum": lambda t: torch.maximum(t, torch.zeros(4, dtype=t.dtype))}[op]
    y(x).backward(np.full(4, g))
    ty(tx).backward(torch.full((4,), g, dtype=torch.float64))
    np.testing.assert_array_equal(x.grad, tx.grad.numpy())  # equal NaNs compare equal here


def test_dtype_promotion_matches_pytorch():
    i, u = np.array([1, 2, 3]), np.array([200, 100], dtype=np.uint8)
    cases = [
        (Tensor(i) ** 2.5, torch.tensor(i) ** 2.5),
        (Tensor(u).sum(), torch.tensor(u).sum()),
        (ops.concatenate([Tensor(np.zeros(2, np.float32)), Tensor(np.zeros(2, np.int64))]),
         torch.cat([torch.zeros(2), torch.zeros(2, dtype=torch.int64)])),
        (Tensor(i).clip(0.5, 2.5), torch.tensor(i).clamp(0.5, 2.5)),
        (Tensor(i) * np.float64(2.0), torch.tensor(i) * np.float64(2.0)),
        (Tensor(u) / -3, torch.tensor(u) / -3),
    ]
    for ours, theirs in cases:
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
        np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-6)


def test_conv2d_backward_on_an_empty_batch_gives_zero_gradients():
    x, tx = both(np.zeros((0, 3, 5, 5)))
    w, tw = both(np.ones((4, 3, 3, 3)))
    b, tb = both(np.ones(4))
    F.conv2d(x, w, b, 1, 1).sum().backward()
    torch.nn.functional.conv2d(tx, tw, tb, 1, 1).sum().backward()
    for ours, theirs in ((x, tx), (w, tw), (b, tb)):
        np.testing.assert_array_equal(ours.grad, theirs.grad.numpy())


def test_max_over_an_axis_then_inplace_relu_computes_like_pytorch():
    a = np.array([[1.0, -3.0, 2.0], [-4.0, -1.0, -2.0]])
    x, tx = both(a)
    m = (x * 1).max(axis=1)
    m.relu_()
    m.sum().backward()
    tm = (tx * 1).max(dim=1).values
    tm.relu_()
    tm.sum().backward()
    np.testing.assert_array_equal(x.grad, tx.grad.numpy())


def test_max_pool_with_a_kernel_wider_than_256_finds_the_true_maximum():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1, 1, 2, 300))
    x, tx = both(a)
    F.max_pool2d(x, (2, 300)).sum().backward()
    torch.nn.functional.max_pool2d(tx, (2, 300)).sum().backward()
    np.testing.assert_array_equal(x.grad, tx.grad.numpy())


def test_numpy_of_a_tensor_that_requires_grad_raises_like_pytorch():
    x, tx = both(np.zeros(2))
    with pytest.raises(RuntimeError, match="requires grad"):
        tx.numpy()
    with pytest.raises(RuntimeError, match="requires grad"):
        x.numpy()
    assert x.detach().numpy() is not None


def test_a_cast_to_an_integer_dtype_cuts_the_graph():
    x = Tensor(np.array([1.5, 2.5]), requires_grad=True)
    assert not ops.cast(x, np.int64).requires_grad  # torch: x.to(torch.int64).requires_grad is False


def test_wide_convolution_route_keeps_an_infinite_pixel_to_itself():
    a = np.array([[[[0.0, np.inf, 1.0, 2.0]]]])
    x, tx = both(a)
    w, tw = both(np.array([[[[0.0]]]]))
    np.testing.assert_array_equal(F.conv2d(x, w).data, torch.nn.functional.conv2d(tx, tw).detach().numpy())
