"""``Module`` and ``Parameter``: how a network keeps track of its weights.

A :class:`Parameter` is a tensor that requires grad and belongs to a module. A
:class:`Module` remembers every ``Parameter`` and sub-module assigned to one of
its attributes, in order, so that

- ``model.parameters()`` hands the optimizer every weight of the network,
- ``model.state_dict()`` names each weight by its path, exactly as PyTorch
  does (``"0.weight"`` is the weight of the first layer of a ``Sequential``),
  so weights move between minisgd and PyTorch, and
- ``model.train()`` / ``model.eval()`` switch layers such as ``Dropout`` and
  ``BatchNorm2d`` between their training and evaluation behaviour.

Arrays that are part of the state but are not trained (BatchNorm's running
statistics) are *buffers*, registered with :meth:`Module.register_buffer`.

    class TwoLayer(Module):
        def __init__(self):
            super().__init__()
            self.hidden = Linear(4, 8)      # registered as sub-module "hidden"
            self.out = Linear(8, 2)

        def forward(self, x):
            return self.out(F.relu(self.hidden(x)))

    TwoLayer().state_dict().keys()  # hidden.weight, hidden.bias, out.weight, out.bias
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from minisgd import backend
from minisgd.tensor import Tensor, mark_modified


class Parameter(Tensor):
    """A tensor that is a trainable weight of a module: ``requires_grad`` is True by default."""

    def __init__(self, data: Any, requires_grad: bool = True) -> None:
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer and network: subclasses set attributes in ``__init__`` and define ``forward``."""

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------ registration
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}: call super().__init__() before assigning attributes"
            )
        # A name belongs to one place: drop it from wherever it was before.
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self.__dict__.pop(name, None)
        if isinstance(value, (Parameter, Module)):
            self._buffers.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif name in self._buffers:
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # Called only when normal lookup fails: parameters, buffers and modules live in their registries.
        for registry in ("_parameters", "_buffers", "_modules"):
            found = self.__dict__.get(registry, {})
            if name in found:
                return found[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def register_buffer(self, name: str, array: Any) -> None:
        """Record ``array`` as state that is saved and moved with the module but not trained."""
        self.__dict__.pop(name, None)
        self._buffers[name] = array

    # ------------------------------------------------------------------ forward
    def forward(self, *args: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any) -> Any:
        return self.forward(*args)

    # -------------------------------------------------------------- traversal
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every sub-module, depth first, with their dotted paths ("" for self)."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def children(self) -> Iterator[Module]:
        yield from self._modules.values()

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """(path, parameter) for every parameter, each once, in registration order: ``("0.weight", …)``."""
        seen: set[int] = set()
        for path, module in self.named_modules():
            for name, param in module._parameters.items():
                if id(param) not in seen:
                    seen.add(id(param))
                    yield (f"{path}.{name}" if path else name), param

    def parameters(self) -> Iterator[Parameter]:
        """Every parameter of the network: what an optimizer updates."""
        for _, param in self.named_parameters():
            yield param

    def named_buffers(self) -> Iterator[tuple[str, Any]]:
        for path, module in self.named_modules():
            for name, array in module._buffers.items():
                yield (f"{path}.{name}" if path else name), array

    # ---------------------------------------------------------------- training
    def zero_grad(self) -> None:
        """Forget every parameter's gradient (``.grad = None``), before the next backward."""
        for param in self.parameters():
            param.grad = None

    def train(self, mode: bool = True) -> Module:
        """Training behaviour (dropout active, batch statistics) for this module and all below it."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Evaluation behaviour (dropout off, running statistics); the same as ``train(False)``."""
        return self.train(False)

    # ------------------------------------------------------- device and dtype
    def to(self, target: Any) -> Module:
        """Move every parameter and buffer to a device (``"cpu"``, ``"cuda"``) or cast to a float dtype.

        Parameters keep their identity (only ``.data`` changes), so an optimizer
        created before ``to()`` still updates them. Integer buffers such as
        ``num_batches_tracked`` keep their dtype.
        """
        if isinstance(target, str):
            backend.check_device(target)
            convert = lambda array: backend.to_device(array, target)  # noqa: E731
        else:
            dtype = np.dtype(target)
            if dtype.kind != "f":
                raise ValueError(f"Module.to: expected a device name or a float dtype; got {target!r}")
            convert = lambda array: array.astype(dtype) if array.dtype.kind == "f" else array  # noqa: E731
        for module in self.modules():
            for param in module._parameters.values():
                param.data = convert(param.data)
                if param.grad is not None:
                    param.grad = convert(param.grad)
            for name, array in module._buffers.items():
                if array is not None:
                    module._buffers[name] = convert(array)
        return self

    def double(self) -> Module:
        """Cast parameters and float buffers to float64 (for gradient checks)."""
        return self.to(np.float64)

    def float(self) -> Module:
        """Cast parameters and float buffers to float32 (the training default)."""
        return self.to(np.float32)

    # ------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, np.ndarray]:
        """``{path: NumPy array}`` for every parameter and buffer, with PyTorch's names and shapes.

        The arrays are copies: training the model afterwards does not change them.
        """
        state: dict[str, np.ndarray] = {}
        for path, module in self.named_modules():
            prefix = f"{path}." if path else ""
            for name, param in module._parameters.items():
                state[prefix + name] = backend.to_numpy(param.data).copy()
            for name, array in module._buffers.items():
                if array is not None:
                    state[prefix + name] = backend.to_numpy(array).copy()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy the arrays of ``state`` into the parameters and buffers of the same names.

        Every name must match and every shape agree; otherwise a ValueError lists
        the missing keys, the unexpected keys and the shape mismatches, and
        nothing is changed. Values are cast to each parameter's dtype and device.
        """
        own = self.state_dict()
        missing = [key for key in own if key not in state]
        unexpected = [key for key in state if key not in own]
        mismatched = [
            f"{key}: expected {own[key].shape}, got {tuple(np.shape(state[key]))}"
            for key in own
            if key in state and tuple(np.shape(state[key])) != own[key].shape
        ]
        if missing or unexpected or mismatched:
            problems = []
            if missing:
                problems.append(f"missing keys: {missing}")
            if unexpected:
                problems.append(f"unexpected keys: {unexpected}")
            if mismatched:
                problems.append(f"shape mismatches: {mismatched}")
            raise ValueError(f"load_state_dict ({type(self).__name__}): " + "; ".join(problems))

        for path, module in self.named_modules():
            prefix = f"{path}." if path else ""
            for name, param in module._parameters.items():
                param.data = _like(state[prefix + name], param.data)
                mark_modified(param, "load_state_dict", None)  # new values, as PyTorch's copy_ (a version bump)
            for name, array in module._buffers.items():
                if array is not None:
                    module._buffers[name] = _like(state[prefix + name], array)

    # -------------------------------------------------------------------- repr
    def extra_repr(self) -> str:
        """The arguments shown between the parentheses of ``repr``: overridden by layers."""
        return ""

    def __repr__(self) -> str:
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in self._modules.items()]
        if not lines:
            return f"{type(self).__name__}({self.extra_repr()})"
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"


def _like(value: Any, reference: Any) -> Any:
    """``value`` as an array with the dtype and on the device of ``reference``."""
    array = np.array(value, dtype=reference.dtype)  # a copy: the module never shares the caller's array
    return backend.to_device(array, backend.device_of(reference))
