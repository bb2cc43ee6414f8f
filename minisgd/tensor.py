"""The Tensor, the graph it records, and reverse-mode differentiation.

A :class:`Tensor` wraps an array (``.data``, NumPy on the CPU or CuPy on a GPU).
Every operation on tensors that require gradients records a :class:`Node`: the
operation's name, the edges to its inputs and a function (``backward``) that
turns the gradient of the loss with respect to the result into gradients with
respect to each input — the chain rule for that one operation:

    ∂L/∂input = (∂output/∂input)ᵀ · ∂L/∂output

The result tensor points to its node (``tensor._node``, PyTorch's
``grad_fn``); a node's edges point to the nodes of its inputs, or to the input
tensor itself when that is a leaf (a weight) that collects a gradient.
``loss.backward()`` visits the nodes from the loss back to the leaves in
reverse topological order and applies each node's rule once, after all the
gradient that flows into it has been summed. Leaves *accumulate* their gradient
into ``.grad``, exactly like PyTorch: call ``zero_grad()`` (on the tensor, the
module or the optimizer) before the next backward, or the gradients of two
batches add up. Each leaf gets its own writable ``.grad`` array, of its own
dtype and on its own device.

After ``backward()`` the graph is freed (the arrays saved for the backward pass
are released), so a second ``backward()`` through the same graph is an error —
run the forward pass again.

In-place operations and version counters (PyTorch's design)
-----------------------------------------------------------
``x += y``, ``x.relu_()`` and ``F.relu(x, inplace=True)`` overwrite ``x.data``.
A backward function that saved ``x`` would then read the wrong numbers, and
the gradient would be silently wrong. So, as in PyTorch:

- every tensor carries a version counter (``x._version``) that each in-place
  operation bumps, and so does ``optimizer.step()`` (it writes the weights
  in place); a view (``reshape``, ``transpose``, ``permute``, basic indexing,
  ``detach``, ``Tensor(t)``) shares the counter of the tensor it looks into, because writing
  through one writes the other;
- an operation records the version of each tensor it saves for its backward;
  ``backward()`` compares, and raises a RuntimeError naming the operation and
  the tensor when a saved tensor was modified in place after it was saved;
- an in-place operation on a leaf that requires grad, or on a view of one,
  raises (outside ``no_grad()``): it would change the weight without the
  graph knowing. Inside ``no_grad()`` it is how a hand-written SGD step
  updates a weight: ``w -= lr * w.grad`` keeps ``w`` the same trainable leaf;
- an in-place operation is recorded like any other: ``x`` becomes the output
  of a new node whose input is the old ``x``. ``x.relu_() + 3 * x`` is
  therefore differentiated correctly (4·[x > 0]), as in PyTorch;
- PyTorch also re-derives the graph of a view after an in-place operation on
  its base (and of the base after one on the view). minisgd does not: using
  such a tensor afterwards in a recorded operation raises a RuntimeError
  instead of giving a wrong gradient.

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


class _VersionCounter:
    """How many times a tensor's memory was written in place; shared by a tensor and its views.

    ``value`` counts in-place writes, ``op`` names the last one, and
    ``rewritten`` is the value after the last in-place write that was
    recorded in the graph (which makes the other tensors sharing the memory
    out of date; see :func:`_check_up_to_date`).
    """

    __slots__ = ("value", "op", "rewritten")

    def __init__(self) -> None:
        self.value = 0
        self.op = ""
        self.rewritten = 0


class Node:
    """One recorded operation (PyTorch's ``grad_fn``).

    ``inputs`` holds one edge per input: the input's node, the input tensor
    itself when it is a leaf that requires grad, or None when no gradient
    flows to it. ``saved`` lists ``(counter, version, input, shape)`` for every
    tensor whose data ``backward`` reads: its version when it was saved, and
    which input it is (−1: the output) and its shape, for the error message.
    """

    __slots__ = ("op", "backward", "inputs", "saved")

    def __init__(self, op: str, backward: BackwardFn, inputs: tuple, saved: tuple) -> None:
        self.op = op
        self.backward: BackwardFn | None = backward
        self.inputs = inputs
        self.saved = saved

    def check_saved(self) -> None:
        """Raise if a tensor this node saved was modified in place after it was saved."""
        for counter, version, position, shape in self.saved:
            if counter.value != version:
                what = f"its output, of shape {shape}" if position < 0 else f"its input {position}, of shape {shape}"
                raise RuntimeError(
                    f"backward(): a tensor needed by the backward of `{self.op}` ({what}) was "
                    f"modified in place by `{counter.op}` after it was saved (saved at version "
                    f"{version}, now at version {counter.value}), so its gradient would be wrong. "
                    "Use the out-of-place operation (e.g. F.relu(x) instead of "
                    "F.relu(x, inplace=True)), or apply it before the tensor is used."
                )

    def free(self) -> None:
        """Release the closure (and the arrays it holds) and the edges."""
        self.backward = None
        self.inputs = ()
        self.saved = ()


class Tensor:
    """An array that remembers how it was computed, so gradients can flow back through it.

    >>> import minisgd
    >>> w = minisgd.Tensor([1.0, -2.0, 3.0], requires_grad=True)
    >>> loss = (w * w).sum()          # L = Σ w²
    >>> loss.backward()
    >>> w.grad                        # ∂L/∂w = 2w
    array([ 2., -4.,  6.], dtype=float32)

    Python floats become float32 (the training default); a NumPy array keeps its
    dtype, so float64 data stays float64 for gradient checks. ``Tensor(array)``
    wraps a NumPy array without copying it (like ``torch.from_numpy``);
    :func:`tensor` copies (like ``torch.tensor``).

    Dtype promotion follows PyTorch where it matters for training (see
    :func:`result_dtype`): Python numbers, NumPy scalars, 0-d arrays and lists
    of numbers do not change a float32 tensor's dtype (``x * np.int64(2)`` and
    ``x * [1, 2, 3]`` stay float32), while a float64 array promotes like a
    float64 tensor.

    Comparisons (``== != < <= > >=``) are elementwise and give boolean tensors,
    as in PyTorch and NumPy: ``(a == b).all()`` asks whether two tensors hold
    the same values. A tensor is hashed by identity (it is a node of a graph),
    so it can key a dict; ``bool()`` of a tensor with several elements raises,
    so ``if a == b:`` on arrays fails loudly instead of testing identity.
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
        self._node: Node | None = None
        # Tensor(t) of a tensor shares t's memory when dtype and device allow (like PyTorch's
        # alias), and so its version counter: an in-place write through either is seen by both.
        shares = isinstance(data, Tensor) and self.data is data.data
        self._counter = data._counter if shares else _VersionCounter()
        self._base: Tensor | None = None  # the tensor a view looks into
        self._graph_version = 0  # the version at which _node was recorded

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

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user (weights, inputs); False for results of recorded operations."""
        return self._node is None

    @property
    def _version(self) -> int:
        """How many in-place operations wrote this tensor's memory (shared with its views)."""
        return self._counter.value

    @property
    def _op(self) -> str:
        return self._node.op if self._node is not None else ""

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

    def _scalar(self, kind: str) -> Any:
        if self.size != 1:
            raise RuntimeError(
                f"{kind}() of a tensor with {self.size} elements (shape {self.shape}) is ambiguous; "
                "only one-element tensors convert (use .any() or .all() for a truth value)"
            )
        return self.data.item()

    def __bool__(self) -> bool:
        return bool(self._scalar("bool"))

    def __float__(self) -> float:
        return float(self._scalar("float"))

    def __int__(self) -> int:
        return int(self._scalar("int"))

    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (copied from the GPU when needed; shared on the CPU).

        Like PyTorch, it raises for a tensor that requires grad: on the CPU the
        array shares the tensor's memory, and a write into it would change the
        tensor behind the graph's back. Call ``t.detach().numpy()``.
        """
        if self.requires_grad:
            raise RuntimeError(
                "numpy(): can't call numpy() on a tensor that requires grad (the array would share "
                "its memory outside the graph); use tensor.detach().numpy() instead"
            )
        return backend.to_numpy(self.data)

    def detach(self) -> Tensor:
        """The same data, cut off from the graph (no gradient flows through it).

        Like PyTorch's ``detach()`` it shares the memory, and so the version
        counter: an in-place operation on either is seen by both.
        """
        out = Tensor(self.data, device=self.device)
        out._counter = self._counter
        return out

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
        _check_up_to_date(self, "backward()")
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

        root = _edge(self)
        pending = {id(root): grad}  # gradient summed so far for each node or leaf
        for edge in reversed(_topological_order(root)):
            edge_grad = pending.pop(id(edge), None)
            if edge_grad is None:
                continue
            if isinstance(edge, Tensor):  # a leaf: accumulate, in its own array of its own dtype
                total = edge_grad if edge.grad is None else edge.grad + edge_grad
                edge.grad = xp.array(total, dtype=edge.dtype)  # a copy: never shared, never read-only
                continue
            if edge.backward is None:
                raise RuntimeError(
                    f"backward(): the graph through {edge.op!r} was already used and freed; "
                    "run the forward pass again before calling backward() a second time"
                )
            edge.check_saved()
            input_grads = edge.backward(edge_grad)
            for source, input_grad in zip(edge.inputs, input_grads):
                if source is None or input_grad is None:
                    continue
                key = id(source)
                pending[key] = input_grad if key not in pending else pending[key] + input_grad
            edge.free()  # the closure holds the arrays saved for backward

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
    def __pos__(self): return self if self.dtype.kind != "b" else ops._refuse_bool(self, "+")
    def __getitem__(self, index): return ops.getitem(self, index)

    # In place (see the module docstring): the same object, recorded as the output of the operation.
    def __iadd__(self, other): return _inplace(self, ops.add, other, "add_")
    def __isub__(self, other): return _inplace(self, ops.sub, other, "sub_")
    def __imul__(self, other): return _inplace(self, ops.mul, other, "mul_")
    def __itruediv__(self, other): return _inplace(self, ops.div, other, "div_")
    def relu_(self): return ops.relu(self, inplace=True)

    # Comparisons give boolean tensors, outside the graph (they have no gradient). The operands
    # are promoted first, as for arithmetic: a float32 tensor meets a float64 0-d one in float32.
    def __eq__(self, other): return _compare(self, other, "eq")
    def __ne__(self, other): return _compare(self, other, "ne")
    def __lt__(self, other): return _compare(self, other, "lt")
    def __le__(self, other): return _compare(self, other, "le")
    def __gt__(self, other): return _compare(self, other, "gt")
    def __ge__(self, other): return _compare(self, other, "ge")

    __hash__ = object.__hash__  # tensors are graph nodes, hashed by identity

    def any(self) -> Tensor:
        """True where any element is nonzero (no gradient; a uint8 tensor gives uint8, as in PyTorch)."""
        return Tensor(self.data.any().astype(np.uint8 if self.dtype == np.uint8 else bool), device=self.device)

    def all(self) -> Tensor:
        """True where every element is nonzero (no gradient; a uint8 tensor gives uint8, as in PyTorch)."""
        return Tensor(self.data.all().astype(np.uint8 if self.dtype == np.uint8 else bool), device=self.device)

    # ------------------------------------------------------- methods (ops.py)
    # Reductions take NumPy's axis=/keepdims= or PyTorch's dim=/keepdim=.
    def sum(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return ops.sum(self, _axis(axis, dim), _keep(keepdims, keepdim))

    def mean(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return ops.mean(self, _axis(axis, dim), _keep(keepdims, keepdim))

    def max(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        """The maximum values (only: unlike ``torch.max(x, dim)``, no indices; use ``argmax``)."""
        return ops.max(self, _axis(axis, dim), _keep(keepdims, keepdim))

    def reshape(self, *shape): return ops.reshape(self, shape[0] if len(shape) == 1 else shape)

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        """Axes ``dim0`` and ``dim1`` swapped, as in PyTorch (NumPy's transpose permutes: use ``permute``)."""
        return ops.transpose(self, dim0, dim1)

    def permute(self, *dims) -> Tensor:
        """The axes in the order ``dims``: ``x.permute(2, 0, 1)``, or a tuple (axes may be negative)."""
        if not dims:
            raise TypeError("permute() missing dims (as in PyTorch; a 0-d tensor takes permute(()))")
        return ops.permute(self, dims[0] if len(dims) == 1 and not isinstance(dims[0], int) else dims)

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
        return ops.permute(self, tuple(reversed(range(self.ndim))))

    def argmax(self, axis=None, *, dim=None) -> Tensor:
        """Index of the largest element (no gradient; not for bool tensors, as in PyTorch)."""
        if self.dtype.kind == "b":
            ops._refuse_bool(self, "argmax")
        return Tensor(self.data.argmax(axis=_axis(axis, dim)), device=self.device)


def tensor(data: Any, dtype: Any = None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a *copy* of ``data`` (PyTorch's ``torch.tensor``).

    Why a factory beside the ``Tensor`` class: ``Tensor(array)`` wraps a NumPy
    array without copying it (cheap, and what the data loader wants), so
    writing into the array changes the tensor. ``tensor(...)`` always copies,
    which is what ``torch.tensor`` does and what a PyTorch user expects from
    the lower-case name. Dtype rules are the same as ``Tensor``'s (and
    PyTorch's): Python floats become float32, Python ints int64, and a NumPy
    array keeps its dtype (``torch.tensor`` keeps it too).

    >>> import numpy as np, minisgd
    >>> a = np.zeros(2)
    >>> t = minisgd.tensor(a)
    >>> a[0] = 5.0
    >>> float(t[0])
    0.0
    """
    return Tensor(_as_array(data, dtype, device).copy(), requires_grad=requires_grad)


_COMPARISONS = {"eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal", "gt": "greater",
                "ge": "greater_equal"}  # the array modules' names


def _compare(a: Tensor, b: Any, op: str) -> Tensor:
    """``a op b`` elementwise (``op``: eq, ne, lt, le, gt or ge) after PyTorch's promotion of the operands."""
    with no_grad():
        a, b = ops._binary(a, b, op)
    xp = backend.get_array_module(a.data)
    return Tensor(getattr(xp, _COMPARISONS[op])(a.data, b.data), device=a.device)


def _axis(axis: Any, dim: Any) -> Any:
    if dim is not None and axis is not None:
        raise TypeError(f"give axis= or dim= (the same thing), not both; got axis={axis!r}, dim={dim!r}")
    return axis if dim is None else dim


def _keep(keepdims: bool, keepdim: bool | None) -> bool:
    return bool(keepdims) if keepdim is None else bool(keepdim)


def _edge(tensor: Tensor) -> Node | Tensor | None:
    """Where gradient for ``tensor`` goes: its node, itself (a leaf that requires grad), or nowhere."""
    if tensor._node is not None:
        return tensor._node
    return tensor if tensor.requires_grad else None


def _check_up_to_date(tensor: Tensor, op: str) -> None:
    """Raise if an in-place operation recorded on a view (or the base) of ``tensor`` changed it unseen."""
    counter = tensor._counter
    if tensor._graph_version < counter.rewritten:
        raise RuntimeError(
            f"{op}: a tensor of shape {tensor.shape} was changed by the in-place operation "
            f"`{counter.op}` applied to a tensor that shares its memory (a view of it, or the tensor "
            "it is a view of), so its recorded graph no longer computes its values. PyTorch "
            "re-derives the graph in this case; minisgd does not: apply the in-place operation "
            "before taking the view, or use the out-of-place operation"
        )


def check_inplace(target: Tensor, op: str) -> None:
    """Refuse (while gradients are recorded) an in-place ``op`` on a leaf that requires grad, or a view of one."""
    if not _grad_enabled:
        return
    base = target._base if target._base is not None else target
    if base.is_leaf and base.requires_grad:
        what = "a view of a leaf tensor" if base is not target else "a leaf tensor"
        raise RuntimeError(
            f"{op}: {what} that requires grad (shape {base.shape}) cannot be modified in place "
            "while gradients are recorded: the graph would not see the change. Use the "
            "out-of-place operation, or update weights inside `with minisgd.no_grad():`"
        )


def _inplace(target: Tensor, operation: Callable[[Any, Any], Tensor], other: Any, op: str) -> Tensor:
    """``target op= other``: computed out of place, written into ``target.data``, recorded on ``target``.

    The backward of the operation may need the old value of ``target`` (the
    gradient of ``a *= b`` for ``b`` is ``g · a_old``), so while recording, the
    operation runs on a copy of the old ``target`` that takes its place in the
    graph; the result is then copied into ``target``'s memory.
    """
    check_inplace(target, op)
    recording = _grad_enabled and (target.requires_grad or (isinstance(other, Tensor) and other.requires_grad))
    before = target
    if recording:
        before = Tensor(target.data.copy(), device=target.device)
        before.requires_grad = target.requires_grad
        before._node = target._node
        _check_up_to_date(target, op)
    result = operation(before, other)
    if result.shape != target.shape:
        raise ValueError(
            f"{op}: the result has shape {result.shape} but the tensor written in place has shape "
            f"{target.shape} (in place, the other operand may only broadcast to the tensor's shape)"
        )
    if ops._category(result.dtype) > ops._category(target.dtype):  # PyTorch: float into int, int into bool
        raise TypeError(
            f"{op}: the result has dtype {result.dtype}, which cannot be written into a tensor "
            f"of dtype {target.dtype}"
        )
    target.data[...] = result.data
    mark_modified(target, op, result._node if recording else None)
    return target


def mark_modified(target: Tensor, op: str, node: Node | None) -> None:
    """Bump ``target``'s version after ``op`` wrote its memory; ``node`` (when recorded) becomes its node."""
    counter = target._counter
    counter.value += 1
    counter.op = op
    if node is not None:
        target._node = node
        target.requires_grad = True
        counter.rewritten = counter.value
        target._graph_version = counter.value


def from_op(
    data: Any,
    parents: tuple[Tensor, ...],
    backward: BackwardFn,
    op: str,
    *,
    saved: tuple[Tensor, ...] = (),
    saves_output: bool = False,
    view_of: Tensor | None = None,
    inplace_of: Tensor | None = None,
) -> Tensor:
    """Wrap ``data``, the result of operation ``op`` on ``parents``, as a graph node.

    ``backward(grad)`` receives ∂L/∂result (an array shaped like ``data``) and
    returns one gradient array per parent, shaped like that parent (or None
    where no gradient flows). The node is recorded only when gradients are
    enabled and some parent requires them; otherwise the result is a plain leaf.

    ``saved`` names the input tensors whose data ``backward`` reads, and
    ``saves_output`` says that it reads the result's: their versions are
    checked before ``backward`` runs. ``view_of`` marks the result as a view
    of that tensor's memory (it shares its version counter). ``inplace_of``
    says ``data`` was written into that tensor, which becomes the result.
    """
    if isinstance(data, np.generic):  # NumPy reductions return scalars; a tensor holds an array
        data = np.asarray(data)
    # Only floating-point results carry gradients (as in PyTorch: a cast to int64 cuts the graph).
    record = _grad_enabled and any(p.requires_grad for p in parents) and data.dtype.kind == "f"
    edges = ()
    if record:
        for parent in parents:
            _check_up_to_date(parent, op)
        edges = tuple(_edge(p) for p in parents)
    if inplace_of is not None:
        result = inplace_of
        node = Node(op, backward, edges, ()) if record else None
        mark_modified(result, op, node)
    else:
        result = Tensor.__new__(Tensor)
        result.data = data
        result.grad = None
        result.requires_grad = record
        result._node = Node(op, backward, edges, ()) if record else None
        result._counter = _VersionCounter() if view_of is None else view_of._counter
        result._base = None if view_of is None else (view_of._base if view_of._base is not None else view_of)
        result._graph_version = result._counter.value
    if record and (saved or saves_output):
        # (counter, version when saved, which input, or -1 for the output, and its shape)
        records = [(t._counter, t._counter.value, _position(t, parents), t.data.shape) for t in saved]
        if saves_output:
            records.append((result._counter, result._counter.value, -1, result.data.shape))
        result._node.saved = tuple(records)
    return result


def _position(tensor: Tensor, parents: tuple[Tensor, ...]) -> int:
    return next(i for i, parent in enumerate(parents) if parent is tensor)


def _topological_order(root: Node | Tensor) -> list[Node | Tensor]:
    """Nodes and leaves reachable from ``root``, each after all of its inputs.

    An iterative depth-first search (a 10,000-operation chain must not hit
    Python's recursion limit): a node is appended once all its inputs are.
    """
    order: list[Node | Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        edge, inputs_done = stack.pop()
        if inputs_done:
            order.append(edge)
            continue
        if id(edge) in visited:
            continue
        visited.add(id(edge))
        stack.append((edge, True))
        if isinstance(edge, Node):
            for source in edge.inputs:
                if source is not None and id(source) not in visited:
                    stack.append((source, False))
    return order


from minisgd import ops  # noqa: E402  (ops needs Tensor, defined above)
