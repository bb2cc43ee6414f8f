"""Module bookkeeping (parameters, names, state_dict, train/eval, dtype) and the layers' defaults and errors."""

import math

import numpy as np
import pytest

import minisgd
from minisgd import Tensor, nn
from minisgd.nn import functional as F


class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(4, 8)
        self.out = nn.Linear(8, 2, bias=False)
        self.scale = nn.Parameter(np.ones(1, dtype=np.float32))
        self.note = "not a parameter"

    def forward(self, x):
        return self.out(F.relu(self.hidden(x))) * self.scale


def test_parameters_and_submodules_are_registered_in_order_with_dotted_names():
    model = TwoLayer()
    names = [name for name, _ in model.named_parameters()]
    assert names == ["scale", "hidden.weight", "hidden.bias", "out.weight"]
    assert [p.shape for p in model.parameters()] == [(1,), (8, 4), (8,), (2, 8)]
    assert all(p.requires_grad for p in model.parameters())
    assert model.note == "not a parameter" and model.out.bias is None
    assert set(model.state_dict()) == set(names)


def test_a_shared_parameter_is_listed_once():
    first = nn.Linear(3, 3)
    model = nn.Sequential(first, nn.ReLU(), first)
    assert len(list(model.parameters())) == 2


def test_reassigning_an_attribute_moves_it_between_registries():
    model = TwoLayer()
    model.hidden = None  # no longer a sub-module
    assert [n for n, _ in model.named_parameters()] == ["scale", "out.weight"]
    model.extra = nn.Parameter(np.zeros(2, dtype=np.float32))
    assert "extra" in dict(model.named_parameters())


def test_zero_grad_clears_every_gradient(rng):
    model = TwoLayer()
    model(Tensor(rng.standard_normal((5, 4)).astype(np.float32))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_state_dict_is_a_copy_of_numpy_arrays_and_round_trips(rng):
    model = TwoLayer()
    state = model.state_dict()
    assert all(type(v) is np.ndarray for v in state.values())
    model.hidden.weight.data += 1.0
    assert not np.array_equal(state["hidden.weight"], minisgd.backend.to_numpy(model.hidden.weight.data))
    other = TwoLayer()
    other.load_state_dict(state)
    for name, value in other.state_dict().items():
        np.testing.assert_array_equal(value, state[name])
    assert other.hidden.weight.dtype == np.float32


def test_load_state_dict_lists_missing_unexpected_and_mismatched_keys():
    model = TwoLayer()
    state = model.state_dict()
    del state["scale"]
    state["hidden.wieght"] = np.zeros((8, 4))
    state["out.weight"] = np.zeros((8, 2))
    before = model.state_dict()
    with pytest.raises(ValueError) as error:
        model.load_state_dict(state)
    message = str(error.value)
    assert "missing keys: ['scale']" in message
    assert "unexpected keys: ['hidden.wieght']" in message
    assert "out.weight: expected (2, 8), got (8, 2)" in message
    for name, value in model.state_dict().items():  # nothing was changed
        np.testing.assert_array_equal(value, before[name])


def test_train_and_eval_reach_every_submodule():
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(0.5), nn.BatchNorm2d(1)))
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_to_float64_keeps_parameter_identity_and_integer_buffers():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    params = list(model.parameters())
    model.double()
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]
    assert all(p.dtype == np.float64 for p in params)
    assert model[1].running_mean.dtype == np.float64
    assert model[1].num_batches_tracked.dtype == np.int64
    model.float()
    assert all(p.dtype == np.float32 for p in params)
    with pytest.raises(ValueError, match="expected a device name or a float dtype; got"):
        model.to(np.int32)
    with pytest.raises(ValueError, match="device must be one of"):
        model.to("tpu")


def test_sequential_names_children_0_1_2_and_indexes():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert len(model) == 3 and isinstance(model[1], nn.ReLU) and model[-1] is model[2]
    assert [type(m).__name__ for m in model] == ["Linear", "ReLU", "Linear"]
    with pytest.raises(IndexError, match="index 3 is out of range for 3 modules"):
        model[3]
    with pytest.raises(TypeError, match="argument 1 must be a Module; got function"):
        nn.Sequential(nn.ReLU(), F.relu)


def test_repr_shows_the_tree_like_pytorch():
    text = repr(nn.Sequential(nn.Conv2d(3, 6, 5), nn.ReLU()))
    assert text == (
        "Sequential(\n  (0): Conv2d(3, 6, kernel_size=(5, 5), stride=(1, 1), padding=(0, 0))\n"
        "  (1): ReLU()\n)"
    )


def test_module_without_super_init_gets_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match=r"call super\(\).__init__\(\) before assigning"):
        Broken()


# ------------------------------------------------------------ initialisation
@pytest.mark.parametrize(
    "layer, fan_in",
    [(lambda: nn.Linear(300, 200), 300), (lambda: nn.Conv2d(16, 64, 5), 16 * 25)],
    ids=["Linear", "Conv2d"],
)
def test_default_initialisation_is_uniform_in_plus_minus_one_over_sqrt_fan_in(layer, fan_in):
    """PyTorch's Kaiming-uniform with a = √5: bound = √(2/(1+5)) · √(3/fan_in) = 1/√fan_in."""
    minisgd.random.manual_seed(0)
    module = layer()
    bound = 1 / math.sqrt(fan_in)
    for values in (module.weight.detach().numpy(), module.bias.detach().numpy()):
        assert values.dtype == np.float32
        assert np.abs(values).max() <= bound
        assert np.abs(values).max() > 0.9 * bound
    w = module.weight.detach().numpy().ravel()
    # U(−b, b) has mean 0 and variance b²/3; 60 000 and 25 600 draws give errors well inside these margins.
    assert abs(w.mean()) < 0.02 * bound
    assert abs(w.var() / (bound**2 / 3) - 1) < 0.03


def test_initialisation_is_reproducible_with_a_seed():
    minisgd.random.manual_seed(5)
    first = nn.Linear(4, 3).weight.detach().numpy()
    minisgd.random.manual_seed(5)
    np.testing.assert_array_equal(nn.Linear(4, 3).weight.detach().numpy(), first)


def test_batchnorm_starts_at_identity_and_counts_batches(rng):
    bn = nn.BatchNorm2d(3)
    state = bn.state_dict()
    assert list(state) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    np.testing.assert_array_equal(state["weight"], np.ones(3))
    np.testing.assert_array_equal(state["running_var"], np.ones(3))
    assert state["num_batches_tracked"].shape == () and state["num_batches_tracked"] == 0
    x = Tensor(rng.standard_normal((4, 3, 2, 2)).astype(np.float32))
    bn(x)
    bn(x)
    assert bn.state_dict()["num_batches_tracked"] == 2
    bn.eval()
    bn(x)
    assert bn.state_dict()["num_batches_tracked"] == 2


# ---------------------------------------------------------------- bad input
def test_layers_name_themselves_with_expected_and_received_shapes():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    with pytest.raises(
        ValueError,
        match=r"Conv2d\(3, 8, kernel_size=\(3, 3\).*expected input of shape \(N, 3, H, W\).*; got shape \(2, 1, 8, 8\)",
    ):
        conv(Tensor(np.zeros((2, 1, 8, 8), dtype=np.float32)))
    with pytest.raises(
        ValueError, match=r"Conv2d\(3, 8.*expected input of shape \(N, C, H, W\).*; got shape \(3, 8, 8\)"
    ):
        conv(Tensor(np.zeros((3, 8, 8), dtype=np.float32)))
    with pytest.raises(
        ValueError,
        match=r"Conv2d\(3, 8, kernel_size=\(5, 5\).*kernel size \(5, 5\) is larger than the padded input \(3, 3\)",
    ):
        nn.Conv2d(3, 8, 5)(Tensor(np.zeros((1, 3, 3, 3), dtype=np.float32)))
    with pytest.raises(
        ValueError,
        match=r"Linear\(in_features=4, .*\): linear: expected input of shape \(\.\.\., 4\); got shape \(5, 3\)",
    ):
        nn.Linear(4, 2)(Tensor(np.zeros((5, 3), dtype=np.float32)))
    with pytest.raises(
        ValueError, match=r"BatchNorm2d\(4, .*expected input of shape \(N, 4, H, W\); got shape \(2, 3, 5, 5\)"
    ):
        nn.BatchNorm2d(4)(Tensor(np.zeros((2, 3, 5, 5), dtype=np.float32)))
    with pytest.raises(
        ValueError, match=r"MaxPool2d\(kernel_size=\(2, 2\).*shape \(N, C, H, W\).*; got shape \(4, 4\)"
    ):
        nn.MaxPool2d(2)(Tensor(np.zeros((4, 4), dtype=np.float32)))
    with pytest.raises(
        ValueError, match=r"AvgPool2d\(kernel_size=\(3, 3\).*kernel size \(3, 3\) is larger than the padded input"
    ):
        nn.AvgPool2d(3)(Tensor(np.zeros((1, 1, 2, 2), dtype=np.float32)))


def test_layer_constructors_reject_bad_arguments():
    with pytest.raises(ValueError, match=r"Dropout: p must be in \[0, 1\]; got 1.5"):
        nn.Dropout(1.5)
    with pytest.raises(ValueError, match="Conv2d: in_channels must be an integer >= 1; got 0"):
        nn.Conv2d(0, 4, 3)
    with pytest.raises(ValueError, match="Conv2d: kernel_size must be >= 1; got 0"):
        nn.Conv2d(1, 4, 0)
    with pytest.raises(ValueError, match="Linear: out_features must be an integer >= 1; got 2.5"):
        nn.Linear(3, 2.5)
    with pytest.raises(ValueError, match="BatchNorm2d: momentum must be in"):
        nn.BatchNorm2d(3, momentum=2.0)
