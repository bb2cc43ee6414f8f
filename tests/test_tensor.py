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
    assert isinstance(x.detach().numpy(), np.ndarray)
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


# ------------------------------------------------ behaving as a PyTorch user expects
def test_bool_float_int_of_one_element_and_ambiguity_for_more():
    assert bool(Tensor([0.0]) > 1) is False and bool(Tensor([2.0]) > 1) is True
    assert float(Tensor([2.5])) == 2.5 and int(Tensor(np.array([[3.0]]))) == 3
    for convert in (bool, float, int):
        with pytest.raises(RuntimeError, match=rf"{convert.__name__}\(\) of a tensor with 2 elements .* ambiguous"):
            convert(Tensor([1.0, 2.0]))


def test_equality_is_elementwise_and_hashing_is_by_identity():
    a, b = Tensor([1.0, 2.0, 3.0]), Tensor([1.0, 0.0, 3.0])
    np.testing.assert_array_equal((a == b).numpy(), [True, False, True])
    np.testing.assert_array_equal((a != b).numpy(), [False, True, False])
    assert bool((a == Tensor([1.0, 2.0, 3.0])).all()) and not bool((a == b).all()) and bool((a == b).any())
    table = {a: "a", b: "b"}
    assert table[a] == "a" and len({a, b, a}) == 2


def test_reductions_take_dim_and_keepdim_as_well_as_axis():
    x = Tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(x.sum(dim=1).numpy(), [3.0, 12.0])
    np.testing.assert_array_equal(x.mean(dim=0, keepdim=True).numpy(), [[1.5, 2.5, 3.5]])
    np.testing.assert_array_equal(x.max(dim=1).numpy(), [2.0, 5.0])
    np.testing.assert_array_equal(x.argmax(dim=1).numpy(), [2, 2])
    with pytest.raises(TypeError, match="axis= or dim="):
        x.sum(axis=0, dim=1)


def test_tensor_factory_copies_and_the_class_wraps():
    data = np.zeros(3)
    copied, wrapped = minisgd.tensor(data), Tensor(data)
    data[0] = 7.0
    assert copied.numpy()[0] == 0.0 and wrapped.numpy()[0] == 7.0
    assert minisgd.tensor([1.0, 2.0]).dtype == np.float32 and minisgd.tensor([1, 2]).dtype == np.int64
    assert minisgd.tensor(np.ones(2)).dtype == np.float64
    assert minisgd.tensor([1.0], requires_grad=True).requires_grad


def test_every_leaf_gets_its_own_writable_gradient():
    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.ones(3), requires_grad=True)
    upstream = np.array([1.0, 2.0, 3.0])
    (a + b).backward(upstream)
    assert a.grad is not b.grad and a.grad is not upstream
    a.grad *= 0.5  # in-place clipping of one gradient must not touch the other, nor the caller's array
    np.testing.assert_array_equal(b.grad, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(upstream, [1.0, 2.0, 3.0])
    w = Tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    w.sum().backward()  # sum's backward broadcasts a scalar: a read-only view
    assert w.grad.flags.writeable and w.grad.dtype == np.float32
    w.grad *= 2.0
    np.testing.assert_array_equal(w.grad, 2.0)


def test_a_leafs_gradient_has_the_leafs_dtype():
    w = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    (w * np.array([1.0, 2.0, 3.0])).sum().backward()  # the product is float64
    assert w.grad.dtype == np.float32
    np.testing.assert_array_equal(w.grad, [1.0, 2.0, 3.0])


def test_dtype_promotion_follows_pytorch():
    x = Tensor(np.ones(3, dtype=np.float32))
    for y in (x * np.int64(2), x ** np.int64(2), x * [1, 2, 3], x * np.float64(2.0), x * np.array(2.0),
              x + 1, x / 3, 2 ** x, x * Tensor(np.float64(2.0)), x * Tensor(np.arange(3))):
        assert y.dtype == np.float32
    assert (x * np.ones(3)).dtype == np.float64  # a float64 array promotes, like a float64 tensor
    assert (x * Tensor(np.ones(3))).dtype == np.float64
    assert (Tensor(np.arange(3)) * 2.5).dtype == np.float32  # PyTorch's default float, not NumPy's float64
    assert (Tensor(np.arange(3)) * 2).dtype == np.int64
    assert (Tensor(np.arange(3)) / 2).dtype == np.float32  # true division of integers: the default float
    assert (Tensor(np.ones(1)) * 0.1).item() == 0.1  # float64 keeps the exact float64 constant


def test_gradient_flows_through_a_promoting_operand_in_each_dtype():
    w32 = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    w64 = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    (w32 * w64).sum().backward()
    assert w32.grad.dtype == np.float32 and w64.grad.dtype == np.float64
    np.testing.assert_array_equal(w32.grad, [3.0, 4.0])
    np.testing.assert_array_equal(w64.grad, [1.0, 2.0])
