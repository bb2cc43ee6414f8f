"""The Tensor's interface, the backward pass's bookkeeping, and errors on bad input."""

import sys

import numpy as np
import pytest

import minisgd
from minisgd import Tensor


def test_attributes_and_repr():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert x.shape == (2, 3) and x.ndim == 2 and x.dtype == np.float64 and len(x) == 2
    assert x.device == "cpu" and x.grad is None
    text = repr(x)
    assert "shape=(2, 3)" in text and "float64" in text and "device='cpu'" in text


def test_python_floats_become_float32_and_numpy_float64_is_kept():
    assert Tensor([1.0, 2.0]).dtype == np.float32
    assert Tensor(3.5).dtype == np.float32
    assert Tensor(np.ones(2)).dtype == np.float64
    assert Tensor([1, 2]).dtype.kind == "i"
    assert (Tensor([1.0, 2.0]) * 2.5).dtype == np.float32  # Python scalars do not upcast


def test_item_numpy_detach():
    x = Tensor(np.array([[2.5]]), requires_grad=True)
    assert x.item() == 2.5
    assert isinstance(x.numpy(), np.ndarray)
    detached = (x * 2).detach()
    assert not detached.requires_grad and detached.item() == 5.0
    with pytest.raises(ValueError, match="item"):
        Tensor(np.ones(3)).item()


def test_gradients_accumulate_until_zero_grad():
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (w * 3).sum().backward()
    (w * 3).sum().backward()
    np.testing.assert_array_equal(w.grad, [6.0, 6.0])
    w.zero_grad()
    (w * 3).sum().backward()
    np.testing.assert_array_equal(w.grad, [3.0, 3.0])


def test_explicit_upstream_gradient_for_non_scalar_roots():
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    (x * x).backward(np.array([1.0, 0.0, -1.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 0.0, -6.0])


def test_non_scalar_root_without_grad_is_refused():
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"shape \(3,\).*one-element"):
        (x * 2).backward()


def test_upstream_gradient_of_the_wrong_shape_is_refused():
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match=r"grad has shape \(2,\).*\(3,\)"):
        (x * 2).backward(np.ones(2))


def test_backward_on_a_tensor_without_grad_is_refused():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(np.ones(2)).sum().backward()


def test_graph_is_freed_after_backward():
    x = Tensor(np.ones(2), requires_grad=True)
    loss = (x * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="already used and freed"):
        loss.backward()


def test_no_grad_records_nothing():
    w = Tensor(np.ones(2), requires_grad=True)
    with minisgd.no_grad():
        y = w * 2 + 1
        assert not minisgd.is_grad_enabled()
    assert minisgd.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf


def test_a_ten_thousand_op_chain_does_not_hit_the_recursion_limit():
    assert sys.getrecursionlimit() < 10_000
    x = Tensor(np.array(1.0), requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001 + 0.0
    y.backward()
    assert x.grad == pytest.approx(1.0001**10_000, rel=1e-9)


def test_diamond_graph_visits_shared_node_once():
    """y = a·b with a = b = h(x): the gradient through h is counted once per path."""
    x = Tensor(np.array(0.3), requires_grad=True)
    h = x.exp()
    (h * h).backward()  # d/dx e^{2x} = 2 e^{2x}
    assert x.grad == pytest.approx(2 * np.exp(0.6), rel=1e-12)


def test_comparisons_and_argmax_are_outside_the_graph():
    x = Tensor(np.array([[1.0, 5.0, 2.0]]), requires_grad=True)
    assert (x > 1.5).numpy().tolist() == [[False, True, True]]
    assert x.argmax(axis=1).numpy().tolist() == [1]
    assert not (x > 1.5).requires_grad


def test_numpy_array_on_the_left():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = np.array([3.0, 4.0]) * x
    assert isinstance(y, Tensor)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])


# ------------------------------------------------------------------ bad input
def test_broadcast_mismatch_names_the_operation_and_both_shapes():
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        Tensor(np.ones((2, 3))) + Tensor(np.ones(4))
    with pytest.raises(ValueError, match=r"mul: shapes \(3,\) and \(2,\)"):
        Tensor(np.ones(3)) * np.ones(2)


def test_matmul_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) are not aligned"):
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"matmul: batch shapes"):
        Tensor(np.ones((2, 2, 3))) @ Tensor(np.ones((3, 3, 4)))


def test_non_numeric_data_is_refused():
    with pytest.raises(TypeError, match="numeric"):
        Tensor(["a", "b"])
    with pytest.raises(TypeError, match="floating-point"):
        Tensor([1, 2], requires_grad=True)


def test_bad_reshape_and_index_name_the_shape():
    x = Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"reshape: cannot reshape a tensor of shape \(2, 3\)"):
        x.reshape(4, 2)
    with pytest.raises(IndexError, match=r"getitem: .*shape \(2, 3\)"):
        x[5]


def test_mixing_devices_is_refused_with_both_devices_named():
    """A tensor whose data claims another device (stand-in for a CuPy array) cannot meet a CPU one."""

    class OtherDeviceTensor(Tensor):
        @property
        def device(self):
            return "cuda"

    with pytest.raises(RuntimeError, match=r"add: operands are on different devices: 'cpu'.*'cuda'"):
        Tensor(np.ones(2)) + OtherDeviceTensor(np.ones(2))


def test_asking_for_cuda_without_cupy_says_how_to_install(monkeypatch):
    monkeypatch.setattr(minisgd.backend, "_cupy_or_none", lambda: None)
    with pytest.raises(minisgd.backend.DeviceError, match="pip install cupy-cuda12x"):
        Tensor([1.0]).to("cuda")
    with pytest.raises(ValueError, match="device must be one of 'cpu', 'cuda'; got 'gpu'"):
        Tensor([1.0]).to("gpu")


def test_the_gradient_of_a_0d_tensor_is_an_array_and_momentum_on_it_is_exact():
    """NumPy returns scalars from 0-d arithmetic; .grad must still be an array an optimizer can update in place.

    Loss w²/2 from w₀ = 1 with α = 0.1, μ = 0.9 (PyTorch's rule): b₁ = 1, b₂ = 1.8, b₃ = 2.34,
    so w₁ = 0.9, w₂ = 0.72, w₃ = 0.72 − 0.234 = 0.486.
    """
    from minisgd import optim

    w = Tensor(np.array(1.0), requires_grad=True)
    optimizer = optim.SGD([w], lr=0.1, momentum=0.9)
    for expected in (0.9, 0.72, 0.486):
        optimizer.zero_grad()
        (0.5 * w * w).sum().backward()
        assert w.grad.shape == () and not isinstance(w.grad, np.generic)
        optimizer.step()
        assert w.item() == pytest.approx(expected, rel=1e-12)
