"""The Tensor, the graph it records, and reverse-mode differentiation.

A :class:`Tensor` wraps an array (``.data``, NumPy on the CPU or CuPy on a GPU).
Every operation on tensors that require gradients records a *node*: the
result remembers its inputs (``_parents``) and a function (``_backward``) that
turns the gradient of the loss with respect to the result into gradients with
respect to each input — the chain rule for that one operation:

    ∂L/∂input = (∂output/∂input)ᵀ · ∂L/∂output

``loss.backward()`` visits the nodes from the loss back to the leaves in
reverse topological order and applies each node's rule once, after all the
gradient that flows into it has been summed. Leaves (tensors made by the user,
such as weights) *accumulate* their gradient into ``.grad``, exactly like
PyTorch: call ``zero_grad()`` (on the tensor, the module or the optimizer)
before the next backward, or the gradients of two batches add up.

After ``backward()`` the graph is freed (the arrays saved for the backward pass
are released), so a second ``backward()`` through the same graph is an error —
run the forward pass again.

The differentiable operations themselves live in :mod:`minisgd.ops`; the
methods and operators of ``Tensor`` call them.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from minisgd import backend

_grad_enabled = True

BackwardFn = Callable[[Any], Sequence[Any]]


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Context manager in which operations record no graph (evaluation, optimizer updates).

    >>> import minisgd
    >>> w = minisgd.Tensor([1.0, 2.0], requires_grad=True)
    >>> with minisgd.no_grad():
    ...     y = w * 2
    >>> y.requires_grad
    False
    """
    global _grad_enabled
    previous = _grad_enabled
    _grad_enabled = False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled() -> bool:
    """False inside ``no_grad()``."""
    return _grad_enabled


def _as_array(data: Any, dtype: Any = None, device: str | None = None) -> Any:
    """Turn user data into a backend array: float32 for Python floats, given dtypes kept.

    Host data (Python numbers, lists, NumPy arrays) goes to ``device``, or to the
    default device (``$MINISGD_DEVICE``, else ``"cpu"``) when none is given;
    data already on a GPU stays there unless ``device`` says otherwise.
    """
    if isinstance(data, Tensor):
        data = data.data
    xp = backend.get_array_module(data)
    if xp is np:
        if device is None:
            device = backend.default_device()
        if dtype is None and not isinstance(data, np.ndarray | np.generic):
            array = np.asarray(data)
            # Python floats become float32, the training default; ints stay integers.
            if array.dtype == np.float64:
                array = array.astype(np.float32)
        else:
            array = np.asarray(data, dtype=dtype)
    else:
        array = xp.asarray(data, dtype=dtype)
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"Tensor: data must be numeric (bool, int or float); got dtype {array.dtype}"
            f" from {type(data).__name__}"
        )
    if device is not None:
        array = backend.to_device(array, device)
    return array


class Tensor:
    """An array that remembers how it was computed, so gradients can flow back through it.

    >>> import minisgd
    >>> w = minisgd.Tensor([1.0, -2.0, 3.0], requires_grad=True)
    >>> loss = (w * w).sum()          # L = Σ w²
    >>> loss.backward()
    >>> w.grad                        # ∂L/∂w = 2w
    array([ 2., -4.,  6.], dtype=float32)

    Python floats become float32 (the training default); a NumPy array keeps its
    dtype, so float64 data stays float64 for gradient checks.
    """

    __array_priority__ = 1000  # numpy_array * tensor calls Tensor.__rmul__

    def __init__(
        self, data: Any, requires_grad: bool = False, dtype: Any = None, device: str | None = None
    ) -> None:
        self.data = _as_array(data, dtype, device)
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(
                f"Tensor: only floating-point tensors can require gradients; got dtype {self.data.dtype}"
            )
        self.requires_grad = bool(requires_grad)
        self.grad: Any = None
        self.is_leaf = True
        self._parents: tuple[Tensor, ...] = ()
        self._backward: BackwardFn | None = None
        self._op = ""

    # ------------------------------------------------------------------ basics
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> Any:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def device(self) -> str:
        return backend.device_of(self.data)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        op = f", op={self._op}" if self._op else ""
        return (
            f"Tensor(shape={self.shape}, dtype={self.dtype}, device={self.device!r}{grad}{op})\n"
            f"{backend.to_numpy(self.data)!r}"
        )

    def item(self) -> float | int | bool:
        """The value of a one-element tensor as a Python number."""
        if self.size != 1:
            raise ValueError(f"item(): tensor has {self.size} elements (shape {self.shape}); needs 1")
        return self.data.item()

    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (copied from the GPU when needed)."""
        return backend.to_numpy(self.data)

    def detach(self) -> Tensor:
        """The same data, cut off from the graph (no gradient flows through it)."""
        return Tensor(self.data, device=self.device)

    def to(self, device: str) -> Tensor:
        """This tensor on ``device`` (itself when already there); gradients flow across."""
        backend.check_device(device)
        if device == self.device:
            return self
        source = self.device
        return from_op(
            backend.to_device(self.data, device),
            (self,),
            lambda grad: (backend.to_device(grad, source),),
            "to",
        )

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (``.grad = None``)."""
        self.grad = None

    # ---------------------------------------------------------------- backward
    def backward(self, grad: Any = None) -> None:
        """Compute ∂self/∂leaf for every leaf that requires grad, adding it into ``leaf.grad``.

        ``grad`` is the upstream gradient ∂L/∂self; it may be omitted only when
        ``self`` holds one element (a loss), where it defaults to 1.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward(): this tensor does not require grad, so there is nothing to "
                "differentiate (create the leaves with requires_grad=True, and do not "
                "compute the loss under no_grad())"
            )
        xp = backend.get_array_module(self.data)
        if grad is None:
            if self.size != 1:
                raise RuntimeError(
                    f"backward(): the tensor has shape {self.shape}; implicit gradients exist "
                    "only for one-element tensors (a scalar loss). Reduce it first, e.g. "
                    "loss.mean(), or pass grad= of the same shape"
                )
            grad = xp.ones_like(self.data)
        else:
            grad = _as_array(grad, dtype=self.dtype)
            if backend.device_of(grad) != self.device:
                raise RuntimeError(
                    f"backward(): grad is on device {backend.device_of(grad)!r} but the tensor "
                    f"is on {self.device!r}"
                )
            if grad.shape != self.shape:
                raise ValueError(
                    f"backward(): grad has shape {grad.shape} but the tensor has shape {self.shape}"
                )

        order = _topological_order(self)
        pending = {id(self): grad}  # gradient summed so far for each node
        for node in reversed(order):
            node_grad = pending.pop(id(node), None)
            if node_grad is None:
                continue
            if node.is_leaf:
                total = node_grad if node.grad is None else node.grad + node_grad
                # NumPy turns 0-d results into scalars; .grad is always an array (updatable in place).
                node.grad = xp.asarray(total)
                continue
            if node._backward is None:
                raise RuntimeError(
                    f"backward(): the graph through {node._op!r} was already used and freed; "
                    "run the forward pass again before calling backward() a second time"
                )
            parent_grads = node._backward(node_grad)
            for parent, parent_grad in zip(node._parents, parent_grads):
                if parent_grad is None or not parent.requires_grad:
                    continue
                key = id(parent)
                pending[key] = parent_grad if key not in pending else pending[key] + parent_grad
            # Free the graph: the closure holds the arrays saved for backward.
            node._backward = None
            node._parents = ()

    # ------------------------------------------------------ operators (ops.py)
    def __add__(self, other): return ops.add(self, other)
    def __radd__(self, other): return ops.add(other, self)
    def __sub__(self, other): return ops.sub(self, other)
    def __rsub__(self, other): return ops.sub(other, self)
    def __mul__(self, other): return ops.mul(self, other)
    def __rmul__(self, other): return ops.mul(other, self)
    def __truediv__(self, other): return ops.div(self, other)
    def __rtruediv__(self, other): return ops.div(other, self)
    def __pow__(self, other): return ops.power(self, other)
    def __rpow__(self, other): return ops.power(other, self)
    def __matmul__(self, other): return ops.matmul(self, other)
    def __rmatmul__(self, other): return ops.matmul(other, self)
    def __neg__(self): return ops.neg(self)
    def __pos__(self): return self
    def __getitem__(self, index): return ops.getitem(self, index)

    # Comparisons give boolean tensors, outside the graph (they have no gradient).
    def __lt__(self, other): return Tensor(self.data < _plain(other), device=self.device)
    def __le__(self, other): return Tensor(self.data <= _plain(other), device=self.device)
    def __gt__(self, other): return Tensor(self.data > _plain(other), device=self.device)
    def __ge__(self, other): return Tensor(self.data >= _plain(other), device=self.device)

    __hash__ = object.__hash__  # tensors are graph nodes, compared by identity

    # ------------------------------------------------------- methods (ops.py)
    def sum(self, axis=None, keepdims=False): return ops.sum(self, axis, keepdims)
    def mean(self, axis=None, keepdims=False): return ops.mean(self, axis, keepdims)
    def max(self, axis=None, keepdims=False): return ops.max(self, axis, keepdims)
    def reshape(self, *shape): return ops.reshape(self, shape[0] if len(shape) == 1 else shape)
    def transpose(self, *axes): return ops.transpose(self, axes[0] if len(axes) == 1 else (axes or None))
    def exp(self): return ops.exp(self)
    def log(self): return ops.log(self)
    def sqrt(self): return ops.sqrt(self)
    def tanh(self): return ops.tanh(self)
    def sigmoid(self): return ops.sigmoid(self)
    def relu(self): return ops.relu(self)
    def abs(self): return ops.abs(self)
    def clip(self, min=None, max=None): return ops.clip(self, min, max)

    @property
    def T(self) -> Tensor:
        """The transpose (all axes reversed)."""
        return ops.transpose(self, None)

    def argmax(self, axis=None) -> Tensor:
        """Index of the largest element (no gradient)."""
        return Tensor(self.data.argmax(axis=axis), device=self.device)


def _plain(value: Any) -> Any:
    return value.data if isinstance(value, Tensor) else value


def from_op(data: Any, parents: tuple[Tensor, ...], backward: BackwardFn, op: str) -> Tensor:
    """Wrap ``data``, the result of operation ``op`` on ``parents``, as a graph node.

    ``backward(grad)`` receives ∂L/∂result (an array shaped like ``data``) and
    returns one gradient array per parent, shaped like that parent (or None
    where no gradient flows). The node is recorded only when gradients are
    enabled and some parent requires them; otherwise the result is a plain leaf.
    """
    result = Tensor.__new__(Tensor)
    result.data = data
    result.grad = None
    result._op = op
    result.requires_grad = _grad_enabled and any(p.requires_grad for p in parents)
    result.is_leaf = not result.requires_grad
    result._parents = parents if result.requires_grad else ()
    result._backward = backward if result.requires_grad else None
    return result


def _topological_order(root: Tensor) -> list[Tensor]:
    """Nodes reachable from ``root`` that require grad, each after all of its parents.

    An iterative depth-first search (a 10,000-operation chain must not hit
    Python's recursion limit): a node is appended once all its parents are.
    """
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for parent in node._parents:
            if parent.requires_grad and id(parent) not in visited:
                stack.append((parent, False))
    return order


from minisgd import ops  # noqa: E402  (ops needs Tensor, defined above)
