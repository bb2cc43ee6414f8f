"""The layers: small modules that hold their parameters and call :mod:`minisgd.nn.functional`.

Names, shapes and default initialisation follow PyTorch, so that
``torch_model.load_state_dict(minisgd_model.state_dict())`` works (after
turning the arrays into torch tensors) and the other way round:

| layer | parameters (shape) | buffers |
|---|---|---|
| ``Linear(in, out)`` | weight (out, in), bias (out,) | |
| ``Conv2d(C, O, k)`` | weight (O, C, kH, kW), bias (O,) | |
| ``BatchNorm2d(C)`` | weight (C,), bias (C,) | running_mean (C,), running_var (C,), num_batches_tracked () |

Each layer checks its input and names itself in the error:
``ValueError: Conv2d(3, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)):
expected input of shape (N, 3, H, W); got shape (8, 1, 32, 32)``.
"""

from __future__ import annotations

import math
from typing import Any, Iterator

import numpy as np

from minisgd import backend
from minisgd.nn import functional as F
from minisgd.nn import init
from minisgd.nn.module import Module, Parameter
from minisgd.tensor import Tensor


def _positive_int(value: Any, name: str, layer: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{layer}: {name} must be a positive integer; got {value!r}")
    return int(value)


def _check_rank(layer: Module, x: Any, expected: str, rank: int) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{layer!r}: input must be a minisgd.Tensor; got {type(x).__name__}")
    if x.ndim != rank:
        raise ValueError(f"{layer!r}: expected input of shape {expected}; got shape {x.shape}")


def _check_window(layer: Module, x: Tensor, kernel: tuple[int, int], padding: tuple[int, int]) -> None:
    padded = (x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1])
    if kernel[0] > padded[0] or kernel[1] > padded[1]:
        raise ValueError(
            f"{layer!r}: kernel {kernel} is larger than the padded input {padded} "
            f"(input of shape {x.shape})"
        )


class Linear(Module):
    """out = x · Wᵀ + b,  W of shape (out_features, in_features).

    Initialisation (PyTorch's): W and b uniform in ±1/√in_features
    (Kaiming-uniform with a = √5; see :mod:`minisgd.nn.init`).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features = _positive_int(in_features, "in_features", "Linear")
        self.out_features = _positive_int(out_features, "out_features", "Linear")
        device = backend.default_device()
        fan_in = self.in_features
        self.weight = Parameter(init.kaiming_uniform((self.out_features, fan_in), fan_in, device=device))
        self.bias = (
            Parameter(init.uniform((self.out_features,), 1 / math.sqrt(fan_in), device=device))
            if bias else None
        )

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.ndim < 1 or x.shape[-1] != self.in_features:
            shape = x.shape if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{self!r}: expected input of shape (N, {self.in_features}); got {shape}")
        return F.linear(x, self.weight, self.bias)

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
        self.in_channels = _positive_int(in_channels, "in_channels", "Conv2d")
        self.out_channels = _positive_int(out_channels, "out_channels", "Conv2d")
        self.kernel_size = F._pair(kernel_size, "kernel_size", "Conv2d")
        self.stride = F._pair(stride, "stride", "Conv2d")
        self.padding = F._pair(padding, "padding", "Conv2d", minimum=0)
        device = backend.default_device()
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        shape = (self.out_channels, self.in_channels) + self.kernel_size
        self.weight = Parameter(init.kaiming_uniform(shape, fan_in, device=device))
        self.bias = (
            Parameter(init.uniform((self.out_channels,), 1 / math.sqrt(fan_in), device=device))
            if bias else None
        )

    def forward(self, x: Tensor) -> Tensor:
        _check_rank(self, x, f"(N, {self.in_channels}, H, W)", 4)
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"{self!r}: expected input of shape (N, {self.in_channels}, H, W); got shape {x.shape}"
            )
        _check_window(self, x, self.kernel_size, self.padding)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)

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
        self.kernel_size = F._pair(kernel_size, "kernel_size", "MaxPool2d")
        self.stride = self.kernel_size if stride is None else F._pair(stride, "stride", "MaxPool2d")

    def forward(self, x: Tensor) -> Tensor:
        _check_rank(self, x, "(N, C, H, W)", 4)
        _check_window(self, x, self.kernel_size, (0, 0))
        return F.max_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class AvgPool2d(Module):
    """Mean over kH×kW windows moved by ``stride`` (default: the kernel size)."""

    def __init__(self, kernel_size: F.IntOrPair, stride: F.IntOrPair | None = None) -> None:
        super().__init__()
        self.kernel_size = F._pair(kernel_size, "kernel_size", "AvgPool2d")
        self.stride = self.kernel_size if stride is None else F._pair(stride, "stride", "AvgPool2d")

    def forward(self, x: Tensor) -> Tensor:
        _check_rank(self, x, "(N, C, H, W)", 4)
        _check_window(self, x, self.kernel_size, (0, 0))
        return F.avg_pool2d(x, self.kernel_size, self.stride)

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
        self.start_dim = start_dim

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.ndim <= self.start_dim:
            shape = x.shape if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{self!r}: expected input with more than {self.start_dim} dimensions; got {shape}")
        return F.flatten(x, self.start_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}"


class Dropout(Module):
    """Inverted dropout with drop probability ``p`` in training, the identity in evaluation."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1); got {p!r}")
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class BatchNorm2d(Module):
    """Batch normalisation per channel of (N, C, H, W) images; see :func:`F.batch_norm` for the formulas.

    Training uses the batch's statistics and updates the running ones
    (running_var with the unbiased variance, like PyTorch); evaluation uses the
    running statistics. γ (``weight``) starts at 1 and β (``bias``) at 0.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.num_features = _positive_int(num_features, "num_features", "BatchNorm2d")
        if not eps > 0:
            raise ValueError(f"BatchNorm2d: eps must be > 0; got {eps!r}")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"BatchNorm2d: momentum must be in [0, 1]; got {momentum!r}")
        self.eps = float(eps)
        self.momentum = float(momentum)
        xp = backend.array_module(backend.default_device())
        self.weight = Parameter(xp.ones(num_features, dtype=np.float32))
        self.bias = Parameter(xp.zeros(num_features, dtype=np.float32))
        self.register_buffer("running_mean", xp.zeros(num_features, dtype=np.float32))
        self.register_buffer("running_var", xp.ones(num_features, dtype=np.float32))
        self.register_buffer("num_batches_tracked", xp.zeros((), dtype=np.int64))

    def forward(self, x: Tensor) -> Tensor:
        _check_rank(self, x, f"(N, {self.num_features}, H, W)", 4)
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"{self!r}: expected input of shape (N, {self.num_features}, H, W); got shape {x.shape}"
            )
        if self.training:
            self.num_batches_tracked += 1  # a 0-d array, updated in place
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias,
            training=self.training, momentum=self.momentum, eps=self.eps,
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
