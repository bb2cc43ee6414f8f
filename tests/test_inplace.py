"""In-place operations: PyTorch's version counters, refused leaves, and correct gradients through them.

Each expected gradient is written out from the formula of the function the
test builds (PyTorch computes the same values; the parity tests at the end
compare with it when it is installed).
"""

import numpy as np
import pytest

from minisgd import Tensor, nn, no_grad
from minisgd.nn import functional as F

H = np.array([1.5, -2.0, 0.5, -0.25])
POSITIVE = (H > 0).astype(float)


def _hidden():
    """A leaf w and a non-leaf h = 1·w (so in-place on h is allowed, and gradients reach w)."""
    w = Tensor(H.copy(), requires_grad=True)
    return w, w * 1.0


# ------------------------------------------------ gradients through in-place ops
def test_relu_inplace_then_reuse_gives_pytorchs_gradient():
    w, h = _hidden()
    (h.relu_() + 3 * h).sum().backward()  # = 4·relu(w): the second h is the rectified one
    np.testing.assert_array_equal(w.grad, 4 * POSITIVE)


def test_functional_relu_inplace_returns_the_same_tensor_and_bumps_its_version():
    w, h = _hidden()
    out = F.relu(h, inplace=True)
    assert out is h and h._version == 1
    np.testing.assert_array_equal(h.detach().numpy(), np.maximum(H, 0))


def test_inplace_arithmetic_records_a_correct_gradient():
    w, h = _hidden()
    b = Tensor(np.array([2.0, 3.0, -1.0, 0.5]), requires_grad=True)
    h += b   # h = w + b
    h *= b   # h = (w + b)·b: the gradient for b needs the value of h *before* this line
    h -= 1.0
    h /= 2.0
    h.sum().backward()
    bn = b.detach().numpy()
    np.testing.assert_allclose(w.grad, bn / 2)                # ∂/∂w [(w + b)b − 1]/2 = b/2
    np.testing.assert_allclose(b.grad, (H + 2 * bn) / 2)      # ∂/∂b = (w + 2b)/2


def test_inplace_arithmetic_keeps_the_object_dtype_and_refuses_a_bigger_shape():
    x = Tensor(np.ones(3, dtype=np.float32))
    same = x
    x += np.ones(3)  # float64 operand: written into the float32 tensor, like PyTorch's add_
    assert x is same and x.dtype == np.float32 and x._version == 1
    with pytest.raises(ValueError, match=r"add_: the result has shape \(2, 3\)"):
        x += np.ones((2, 3))
    n = Tensor(np.arange(3))
    with pytest.raises(TypeError, match="mul_: .*float32.*int64"):
        n *= Tensor(np.ones(3, dtype=np.float32))


def test_batch_norm_without_weight_keeps_its_saved_normalised_input():
    rng = np.random.default_rng(0)
    xn, bias, g = rng.standard_normal((6, 3)), np.array([1.0, 2.0, 3.0]), rng.standard_normal((6, 3))
    x = Tensor(xn.copy(), requires_grad=True)
    b = Tensor(bias.copy(), requires_grad=True)
    out = F.batch_norm(x, None, None, None, b, training=True)
    out = F.relu(out, inplace=True)
    out.backward(g)
    # Independent float64 formula: x̂ = (x − μ)/σ, out = relu(x̂ + b).
    mu, var = xn.mean(0), xn.var(0)
    x_hat = (xn - mu) / np.sqrt(var + 1e-5)
    gy = g * (x_hat + bias > 0)
    expected = (gy - gy.mean(0) - x_hat * (gy * x_hat).mean(0)) / np.sqrt(var + 1e-5)
    np.testing.assert_allclose(x.grad, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b.grad, gy.sum(0), rtol=1e-12)


def test_relu_module_inplace_in_a_network_trains_like_the_out_of_place_one():
    rng = np.random.default_rng(1)
    x = Tensor(rng.standard_normal((5, 4)).astype(np.float32))  # the layer's dtype (PyTorch refuses a mix)
    grads = []
    for inplace in (False, True):
        layer = nn.Linear(4, 3)
        layer.weight.data[...] = np.linspace(-1, 1, 12).reshape(3, 4)
        layer.bias.data[...] = 0.1
        nn.Sequential(layer, nn.ReLU(inplace=inplace))(x).sum().backward()
        grads.append(layer.weight.grad.copy())
    np.testing.assert_array_equal(grads[0], grads[1])


# ------------------------------------------------ the version check fires
def test_version_check_fires_when_a_saved_input_is_overwritten():
    w, h = _hidden()
    y = h * h + h.relu_()  # mul saved h, relu_ overwrote it
    with pytest.raises(RuntimeError, match=r"backward of `mul` .* modified in place by `relu_`"):
        y.sum().backward()


def test_version_check_fires_when_a_saved_output_is_overwritten():
    for make in (lambda w: w.exp(), lambda w: w.tanh(), lambda w: w.sigmoid(), lambda w: (w * w).sqrt(),
                 lambda w: F.softmax(w.reshape(1, -1)), lambda w: F.log_softmax(w.reshape(1, -1)),
                 lambda w: w.relu()):
        w = Tensor(H.copy(), requires_grad=True)
        y = make(w)
        op = y._op
        y.relu_()
        with pytest.raises(RuntimeError, match=rf"backward of `{op}` \(its output.*by `relu_`"):
            y.sum().backward()


@pytest.mark.parametrize("inplace_op", ["relu_", "add_", "sub_", "mul_", "div_"])
def test_version_check_fires_for_each_inplace_operation(inplace_op):
    w = Tensor(H.copy(), requires_grad=True)
    x = Tensor(np.array([1.0, 2.0, 3.0, 4.0]))
    y = w * x  # saves x for w's gradient
    apply = {
        "relu_": lambda: x.relu_(),
        "add_": lambda: x.__iadd__(1.0),
        "sub_": lambda: x.__isub__(1.0),
        "mul_": lambda: x.__imul__(2.0),
        "div_": lambda: x.__itruediv__(2.0),
    }[inplace_op]
    apply()
    assert x._version == 1
    with pytest.raises(RuntimeError, match=rf"backward of `mul` \(its input 1.*by `{inplace_op}`"):
        y.sum().backward()


def test_weights_updated_between_forward_and_backward_are_caught():
    w = Tensor(H.copy(), requires_grad=True)
    x = Tensor(np.ones(4), requires_grad=True)
    y = (w * x).sum()
    with no_grad():
        w -= 0.1  # the product saved w for x's gradient
    with pytest.raises(RuntimeError, match=r"backward of `mul` .* by `sub_`"):
        y.backward()


def test_views_share_the_version_counter():
    h = Tensor(np.arange(6.0))
    for view in (h.reshape(2, 3), h[1:4], h.reshape(2, 3).transpose(0, 1), h.reshape(2, 3).T, h.detach(), Tensor(h)):
        assert view._counter is h._counter
    h.relu_()
    assert h.reshape(3, 2)._version == 1
    assert h[[0, 1]]._counter is not h._counter  # advanced indexing copies


def test_using_a_view_made_stale_by_an_inplace_op_on_its_base_raises():
    w, h = _hidden()
    v = h.reshape(2, 2)
    h.relu_()
    with pytest.raises(RuntimeError, match="shares its memory"):
        v.sum()
    w, h = _hidden()
    part = h[:2]
    part.relu_()  # h's values change through the view
    with pytest.raises(RuntimeError, match="shares its memory"):
        (h * 2).sum()


# ------------------------------------------------ leaves
def test_inplace_on_a_leaf_that_requires_grad_raises_outside_no_grad():
    w = Tensor(H.copy(), requires_grad=True)
    for apply in (lambda: w.__iadd__(1.0), lambda: w.__isub__(1.0), lambda: w.__imul__(2.0),
                  lambda: w.__itruediv__(2.0), lambda: w.relu_(), lambda: F.relu(w, inplace=True)):
        with pytest.raises(RuntimeError, match="a leaf tensor that requires grad"):
            apply()
    np.testing.assert_array_equal(w.detach().numpy(), H)  # untouched


def test_inplace_on_a_view_of_a_parameter_raises_and_leaves_the_weights_alone():
    layer = nn.Linear(3, 2)
    before = layer.weight.detach().numpy().copy()
    with pytest.raises(RuntimeError, match="a view of a leaf tensor that requires grad"):
        F.relu(layer.weight.reshape(-1), inplace=True)
    with pytest.raises(RuntimeError, match="a view of a leaf tensor that requires grad"):
        v = layer.weight[0]
        v *= 2.0
    np.testing.assert_array_equal(layer.weight.detach().numpy(), before)


def test_hand_written_sgd_step_updates_the_weight_in_place():
    w = Tensor(H.copy(), requires_grad=True)
    memory = w.data
    for _ in range(2):
        w.grad = None
        (w * w).sum().backward()
        with no_grad():
            w -= 0.25 * w.grad   # w ← w − ¼·2w = w/2
    assert w.data is memory and w.is_leaf and w.requires_grad
    np.testing.assert_allclose(w.detach().numpy(), H / 4)
    w.grad = None
    (w * 3).sum().backward()
    np.testing.assert_array_equal(w.grad, 3.0)


# ------------------------------------------------ parity with PyTorch
def test_pytorch_parity_for_the_inplace_cases():
    torch = pytest.importorskip("torch")
    b_np = np.array([2.0, 3.0, -1.0, 0.5])
    cases = {
        "relu_ then reuse": (lambda h, b: h.relu_() + 3 * h, lambda h, b: torch.relu_(h) + 3 * h),
        "arithmetic": (lambda h, b: _arith(h, b), lambda h, b: _arith(h, b)),
    }
    for name, (ours, theirs) in cases.items():
        w, h = _hidden()
        b = Tensor(b_np.copy(), requires_grad=True)
        ours(h, b).sum().backward()
        wt = torch.tensor(H, requires_grad=True)
        bt = torch.tensor(b_np, requires_grad=True)
        theirs(wt * 1.0, bt).sum().backward()
        np.testing.assert_allclose(w.grad, wt.grad.numpy(), rtol=1e-12, err_msg=name)
        if bt.grad is not None:
            np.testing.assert_allclose(b.grad, bt.grad.numpy(), rtol=1e-12, err_msg=name)
    wt = torch.tensor(H, requires_grad=True)
    ht = wt * 1.0
    yt = ht * ht + torch.relu_(ht)
    with pytest.raises(RuntimeError):
        yt.sum().backward()  # PyTorch refuses the same case as test_version_check_fires_when_...


def _arith(h, b):
    h += b
    h *= b
    h -= 1.0
    h /= 2.0
    return h
