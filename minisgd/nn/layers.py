"""The layers: small modules that hold their parameters and call :mod:`minisgd.nn.functional`.

Names, shapes and default initialisation follow PyTorch, so that
``torch_model.load_state_dict(minisgd_model.state_dict())`` works (after
turning the arrays into torch tensors) and the other way round:

| layer | parameters (shape) | buffers |
|---|---|---|
| ``Linear(in, out)`` | weight (out, in), bias (out,) | |
| ``Conv2d(C, O, k)`` | weight (O, C, kH, kW), bias (O,) | |
| ``BatchNorm2d(C)`` | weight (C,), bias (C,) | running_mean (C,), running_var (C,), num_batches_tracked () |

Each layer checks its constructor's arguments with :mod:`minisgd.checks`.
Its input is checked once, by the function of :mod:`minisgd.nn.functional`
that it calls; the layer puts its own name in front of that error, so in a
deep network the message says which layer refused the input:
``ValueError: Conv2d(3, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)):
conv2d: expected input of shape (N, 3, H, W) for weight of shape (32, 3, 3, 3);
got shape (8, 1, 32, 32)``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator

import numpy as np

from minisgd import backend, checks
from minisgd.nn import functional as F
from minisgd.nn import init
from minisgd.nn.module import Module, Parameter
from minisgd.tensor import Tensor


def _named(layer: Module, function: Callable[..., Tensor], *args: Any) -> Tensor:
    """``function(*args)``, with the layer's repr in front of the message of a ValueError it raises."""
    try:
        return function(*args)
    except ValueError as error:
        raise ValueError(f"{layer!r}: {error}") from None


class Linear(Module):
    """out = x · Wᵀ + b,  W of shape (out_features, in_features).

    Initialisation (PyTorch's): W and b uniform in ±1/√in_features
    (Kaiming-uniform with a = √5; see :mod:`minisgd.nn.init`).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features = checks.integer("Linear", "in_features", in_features, low=1)
        self.out_features = checks.integer("Linear", "out_features", out_features, low=1)
        device = backend.default_device()
        fan_in = self.in_features
        self.weight = Parameter(init.kaiming_uniform((self.out_features, fan_in), fan_in, device=device))
        self.bias = (
            Parameter(init.uniform((self.out_features,), 1 / math.sqrt(fan_in), device=device))
            if bias else None
        )

    def forward(self, x: Tensor) -> Tensor:
        return _named(self, F.linear, x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Conv2d(Module):
    """2-D convolution: (N, C, H, W) → (N, O, Ho, Wo), weight (O, C, kH, kW); see :func:`F.conv2d`.

    Initialisation (PyTorch's): weight and bias uniform in ±1/√fan_in with
    fan_in = C·kH·kW (Kaiming-uniform with a = √5).
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: F.IntOrPair, stride: F.IntOrPair = 1,
        padding: F.IntOrPair = 0, bias: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = checks.integer("Conv2d", "in_channels", in_channels, low=1)
        self.out_channels = checks.integer("Conv2d", "out_channels", out_channels, low=1)
        self.kernel_size = checks.int_pair("Conv2d", "kernel_size", kernel_size, low=1)
        self.stride = checks.int_pair("Conv2d", "stride", stride, low=1)
        self.padding = checks.int_pair("Conv2d", "padding", padding, low=0)
        device = backend.default_device()
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        shape = (self.out_channels, self.in_channels) + self.kernel_size
        self.weight = Parameter(init.kaiming_uniform(shape, fan_in, device=device))
        self.bias = (
            Parameter(init.uniform((self.out_channels,), 1 / math.sqrt(fan_in), device=device))
            if bias else None
        )

    def forward(self, x: Tensor) -> Tensor:
        return _named(self, F.conv2d, x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}"
        )
        return text if self.bias is not None else text + ", bias=False"


class MaxPool2d(Module):
    """Maximum over kH×kW windows moved by ``stride`` (default: the kernel size, windows that do not overlap)."""

    def __init__(self, kernel_size: F.IntOrPair, stride: F.IntOrPair | None = None) -> None:
        super().__init__()
        self.kernel_size = checks.int_pair("MaxPool2d", "kernel_size", kernel_size, low=1)
        self.stride = self.kernel_size if stride is None else checks.int_pair("MaxPool2d", "stride", stride, low=1)

    def forward(self, x: Tensor) -> Tensor:
        return _named(self, F.max_pool2d, x, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class AvgPool2d(Module):
    """Mean over kH×kW windows moved by ``stride`` (default: the kernel size)."""

    def __init__(self, kernel_size: F.IntOrPair, stride: F.IntOrPair | None = None) -> None:
        super().__init__()
        self.kernel_size = checks.int_pair("AvgPool2d", "kernel_size", kernel_size, low=1)
        self.stride = self.kernel_size if stride is None else checks.int_pair("AvgPool2d", "stride", stride, low=1)

    def forward(self, x: Tensor) -> Tensor:
        return _named(self, F.avg_pool2d, x, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class ReLU(Module):
    """out = max(x, 0); ``inplace=True`` overwrites the input (see :func:`F.relu`)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = bool(inplace)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x, self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Flatten(Module):
    """(N, C, H, W) → (N, C·H·W), in PyTorch's element order."""

    def __init__(self, start_dim: int = 1) -> None:
        super().__init__()
        self.start_dim = checks.integer("Flatten", "start_dim", start_dim, low=0)

    def forward(self, x: Tensor) -> Tensor:
        return _named(self, F.flatten, x, self.start_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}"


class Dropout(Module):
    """Inverted dropout with drop probability ``p`` in training, the identity in evaluation."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = checks.number("Dropout", "p", p, low=0, high=1)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class BatchNorm2d(Module):
    """Batch normalisation per channel of (N, C, H, W) images; see :func:`F.batch_norm` for the formulas.

    Training uses the batch's statistics and updates the running ones
    (running_var with the unbiased variance, like PyTorch); evaluation uses the
    running statistics. γ (``weight``) starts at 1 and β (``bias``) at 0.
    ``momentum=None`` makes the running statistics the average over every
    batch seen so far (momentum 1/k for the k-th batch), as in PyTorch.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1) -> None:
        super().__init__()
        self.num_features = checks.integer("BatchNorm2d", "num_features", num_features, low=1)
        self.eps = checks.number("BatchNorm2d", "eps", eps, low=0, low_open=True)
        self.momentum = None if momentum is None else checks.number("BatchNorm2d", "momentum", momentum, low=0, high=1)
        xp = backend.array_module(backend.default_device())
        self.weight = Parameter(xp.ones(num_features, dtype=np.float32))
        self.bias = Parameter(xp.zeros(num_features, dtype=np.float32))
        self.register_buffer("running_mean", xp.zeros(num_features, dtype=np.float32))
        self.register_buffer("running_var", xp.ones(num_features, dtype=np.float32))
        self.register_buffer("num_batches_tracked", xp.zeros((), dtype=np.int64))

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.ndim != 4 or x.shape[1] != self.num_features:
            shape = x.shape if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{self!r}: expected input of shape (N, {self.num_features}, H, W); got shape {shape}")
        if self.training:
            self.num_batches_tracked += 1  # a 0-d array, updated in place
        momentum = self.momentum
        if momentum is None:  # cumulative average: the k-th batch gets weight 1/k
            momentum = 1.0 / float(self.num_batches_tracked) if self.training else 0.0
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias,
            training=self.training, momentum=momentum, eps=self.eps,
        )

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class Sequential(Module):
    """Modules applied one after the other; children are named "0", "1", … like PyTorch's."""

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for index, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(
                    f"Sequential: argument {index} must be a Module; got {type(module).__name__}"
                )
            setattr(self, str(index), module)

    def forward(self, x: Any) -> Any:
        for module in self._modules.values():
            x = module(x)
        return x

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int) -> Module:
        modules = list(self._modules.values())
        if not -len(modules) <= index < len(modules):
            raise IndexError(f"Sequential: index {index} is out of range for {len(modules)} modules")
        return modules[index]
