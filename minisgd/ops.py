"""The differentiable primitives: each forward with its backward written beside it.

Every function takes tensors (or Python numbers and arrays, which become
constants), computes its result with the array module of its inputs, and
returns a tensor recorded by :func:`minisgd.tensor.from_op` together with a
``backward(g)`` closure. ``g`` is ∂L/∂out; the closure returns ∂L/∂input for
each input, by the chain rule for that operation. The formula is written in
each docstring.

Saved tensors: an operation whose backward reads an input's data (``mul``
reads the other factor) names it in ``saved=``, one that reads its own output
(``exp``, ``relu``) says ``saves_output=True``; ``backward()`` then refuses to
run if that data was overwritten in place since (see :mod:`minisgd.tensor`).
Views (``reshape``, ``transpose``, ``permute``, basic indexing) pass ``view_of=``.

Dtypes follow PyTorch's promotion (:func:`result_dtype`): Python numbers,
NumPy scalars and 0-d arrays do not change a float32 tensor's dtype.

Broadcasting: when an input was broadcast in the forward pass (a bias of shape
(4,) added to a batch of shape (3, 4)), every output element it touched sends
gradient back to it, so the gradient is *summed* over the broadcast axes:
see :func:`unbroadcast`.
"""

from __future__ import annotations

import builtins
from typing import Any, Sequence

import numpy as np

from minisgd.backend import device_of, get_array_module, map_blocks, row_blocks
from minisgd.tensor import Tensor, check_inplace, from_op

Operand = Any  # a Tensor, a Python number or an array


# --------------------------------------------------------------------- helpers
def unbroadcast(grad: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``grad`` back to ``shape``, undoing NumPy broadcasting.

    Broadcasting prepends axes and stretches axes of length 1; their gradient is
    the sum over the copies:  (3, 4) → (4,) sums axis 0; (3, 4) → (3, 1) sums
    axis 1 with keepdims.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


_PYTHON_KINDS = {bool: np.dtype(bool), int: np.dtype(np.int64), float: np.dtype(np.float64)}


def _category(dtype: Any) -> int:
    """0 for bool, 1 for integers, 2 for floats: the order in which dtypes promote."""
    return "biuf".index(dtype.kind) if dtype.kind != "u" else 1


def result_dtype(a: Tensor, b: Tensor) -> Any:
    """The dtype of ``a op b``, by PyTorch's promotion rule (which differs from NumPy's).

    1. Of two categories (bool < integer < float), the higher one decides:
       its operand's dtype is the result's (int64 · float32 is float32 in
       PyTorch; NumPy says float64).
    2. In the same category a tensor with dimensions decides over a 0-d one
       (a float32 batch times a 0-d float64 array stays float32; NumPy 2
       says float64).
    3. Otherwise the larger dtype wins (float32 with float64 gives float64).

    Python numbers, NumPy scalars (numbers to PyTorch too) and lists are
    converted by :func:`_constant` first; 0-d arrays are 0-d tensors here, so
    none of them promotes a float32 tensor, while a float64 array does, like a
    float64 tensor would.
    """
    if a.dtype == b.dtype:
        return a.dtype
    category_a, category_b = _category(a.dtype), _category(b.dtype)
    if category_a != category_b:
        return (a if category_a > category_b else b).dtype
    if (a.ndim == 0) != (b.ndim == 0):
        return (b if a.ndim == 0 else a).dtype
    return np.result_type(a.dtype, b.dtype)


def _constant(value: Any, like: Tensor) -> Tensor:
    """A Python number, a list or a host array as a constant tensor on ``like``'s device.

    Python numbers and lists carry no dtype: they take ``like``'s dtype when
    their kind fits in it (``x * 2`` and ``x * [1, 2, 3]`` stay float32; a
    float64 tensor times 0.1 uses float64's 0.1), and PyTorch's default
    otherwise (float32 for floats, int64 for integers).
    """
    xp = get_array_module(like.data)
    if isinstance(value, np.generic):
        value = value.item()  # a NumPy scalar is a number to PyTorch (np.float64(2) * x keeps x's dtype)
    if isinstance(value, (bool, int, float, list, tuple)):
        kind = _PYTHON_KINDS.get(type(value)) or np.asarray(value).dtype
        if _category(kind) <= _category(like.dtype):
            dtype = like.dtype
        else:
            dtype = np.float32 if kind.kind == "f" else np.int64
        if isinstance(value, int) and not isinstance(value, bool) and np.dtype(dtype).kind in "iu":
            return Tensor(xp.asarray(value).astype(dtype), device=like.device)  # wraps like PyTorch: uint8 − 3
        return Tensor(xp.asarray(value, dtype=dtype), device=like.device)
    return Tensor(value, device=like.device)


def cast(a: Tensor, dtype: Any) -> Tensor:
    """out = a converted to ``dtype``;  ∂L/∂a = g converted back to a's dtype."""
    if a.dtype == dtype:
        return a
    return from_op(a.data.astype(dtype), (a,), lambda g: (g.astype(a.dtype),), "cast")


def _operands(a: Operand, b: Operand, op: str) -> tuple[Tensor, Tensor]:
    """Both operands of a binary operation as tensors on one device, of one dtype (:func:`result_dtype`)."""
    if not isinstance(a, Tensor):
        a = _constant(a, like=b)
    if not isinstance(b, Tensor):
        b = _constant(b, like=a)
    if a.device != b.device:
        raise RuntimeError(
            f"{op}: operands are on different devices: {a.device!r} (shape {a.shape}) and "
            f"{b.device!r} (shape {b.shape}); move one with .to(device)"
        )
    dtype = result_dtype(a, b)
    return cast(a, dtype), cast(b, dtype)


def _is_bool(value: Operand) -> bool:
    return isinstance(value, (bool, np.bool_)) or (isinstance(value, Tensor) and value.dtype.kind == "b")


def _check_broadcast(a: Tensor, b: Tensor, op: str) -> None:
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(
            f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together"
        ) from None


def _binary(a: Operand, b: Operand, op: str) -> tuple[Tensor, Tensor]:
    a, b = _operands(a, b, op)
    _check_broadcast(a, b, op)
    return a, b


def _refuse_bool(a: Tensor, op: str) -> Tensor:
    """Raise: ``op`` is not defined on a bool tensor in PyTorch (``-``, ``+``, ``abs``, ``relu``, …; use ``~``)."""
    raise TypeError(f"{op}: not supported on a bool tensor (as in PyTorch); cast it first, or use ~ for not")


def _normalize_axis(axis: Any, ndim: int, op: str = "reduce", allow_repeats: bool = False) -> tuple[int, ...]:
    """``axis`` (None: all; an int; a sequence, possibly empty) as non-negative ints.

    As in PyTorch, a 0-d tensor accepts axis 0 and −1, and ``dim=()`` reduces
    over every axis (``x.sum(dim=())`` is ``x.sum()``; NumPy's ``axis=()``
    would reduce over none).
    """
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    if not axes:
        return tuple(range(ndim))
    for ax in axes:
        if not isinstance(ax, (int, np.integer)) or isinstance(ax, bool):
            raise TypeError(f"{op}: axis must be an int or a sequence of ints; got {axis!r}")
        if not -builtins.max(ndim, 1) <= ax < builtins.max(ndim, 1):
            raise ValueError(f"{op}: axis {ax} is out of range for a tensor with {ndim} dimensions")
    normalized = tuple(int(ax) % builtins.max(ndim, 1) for ax in axes)
    if not allow_repeats and len(set(normalized)) != len(normalized):
        raise ValueError(f"{op}: axis {axis!r} names an axis more than once")
    if ndim == 0:
        return ()
    return normalized


# ------------------------------------------------------------------ arithmetic
def add(a: Operand, b: Operand) -> Tensor:
    """out = a + b;  ∂L/∂a = g,  ∂L/∂b = g  (each summed back to its shape)."""
    a, b = _binary(a, b, "add")
    return from_op(
        a.data + b.data,
        (a, b),
        lambda g: (unbroadcast(g, a.shape), unbroadcast(g, b.shape)),
        "add",
    )


def sub(a: Operand, b: Operand) -> Tensor:
    """out = a − b;  ∂L/∂a = g,  ∂L/∂b = −g  (not with a bool operand, as in PyTorch)."""
    if _is_bool(a) or _is_bool(b):
        _refuse_bool(a, "sub")
    a, b = _binary(a, b, "sub")
    return from_op(
        a.data - b.data,
        (a, b),
        lambda g: (unbroadcast(g, a.shape), unbroadcast(-g, b.shape)),
        "sub",
    )


def mul(a: Operand, b: Operand) -> Tensor:
    """out = a · b (elementwise);  ∂L/∂a = g · b,  ∂L/∂b = g · a."""
    a, b = _binary(a, b, "mul")
    a_data, b_data = a.data, b.data

    def backward(g):
        grad_a = unbroadcast(g * b_data, a.shape) if a.requires_grad else None
        grad_b = unbroadcast(g * a_data, b.shape) if b.requires_grad else None
        return grad_a, grad_b

    saved = ((b,) if a.requires_grad else ()) + ((a,) if b.requires_grad else ())
    return from_op(a_data * b_data, (a, b), backward, "mul", saved=saved)


def div(a: Operand, b: Operand) -> Tensor:
    """out = a / b;  ∂L/∂a = g / b,  ∂L/∂b = −g · (a / b) / b.

    (a / b) / b rather than a / b², PyTorch's order: b² underflows to 0 for
    |b| < 1e−154 in float64 where (a / b) / b is still finite. True division
    of integers gives float32, PyTorch's default float (NumPy's is float64):
    the operands become float32 before they meet, so uint8 / −3 divides by −3.
    """
    if not (_is_float(a) or _is_float(b)):
        a, b = _as_float32(a), _as_float32(b)
    a, b = _binary(a, b, "div")
    a_data, b_data = a.data, b.data

    def backward(g):
        grad_a = unbroadcast(g / b_data, a.shape) if a.requires_grad else None
        grad_b = unbroadcast(-g * (a_data / b_data / b_data), b.shape) if b.requires_grad else None
        return grad_a, grad_b

    saved = (a, b) if b.requires_grad else (b,)
    return from_op(a_data / b_data, (a, b), backward, "div", saved=saved)


def _is_float(value: Operand) -> bool:
    return isinstance(value, (float, np.floating)) or (isinstance(value, Tensor) and value.dtype.kind == "f")


def _as_float32(value: Operand) -> Operand:
    """A bool or integer operand as float32 (a tensor cast, a number made a float)."""
    if isinstance(value, Tensor):
        return cast(value, np.float32)
    if isinstance(value, (bool, int, np.generic)):
        return float(value)
    return np.asarray(value, dtype=np.float32)


def neg(a: Tensor) -> Tensor:
    """out = −a;  ∂L/∂a = −g."""
    return from_op(-a.data, (a,), lambda g: (-g,), "neg")


def power(a: Operand, b: Operand) -> Tensor:
    """out = a ** b.

    ∂L/∂a = g · b · a^(b−1),  ∂L/∂b = g · a^b · ln a  (needed only when b is a tensor).

    Where a formula is 0 · ∞ PyTorch's values are used, which are the limits
    that make sense for training: ∂/∂a is 0 where b = 0 (x ** 0 is constant,
    even at x = 0), and ∂/∂b is 0 where a = 0 and b >= 0 (0 ** b does not
    change with b, and 0 ** 0 = 1). An integer tensor to a negative integer
    power raises, as in NumPy (PyTorch truncates 2 ** −1 to 0 for tensors).
    """
    if isinstance(a, Tensor) and isinstance(b, (int, float, np.integer, np.floating)) and not isinstance(b, bool):
        exponent = b.item() if isinstance(b, np.generic) else b  # a Python number keeps x's dtype
        a = cast(a, result_dtype(a, _constant(exponent, like=a)))  # int ** 2.5 is float32, bool ** 2 int64
        a_data = a.data
        xp = get_array_module(a_data)

        def backward_constant(g):
            if exponent == 0:
                return (xp.zeros_like(g),)
            return (g * exponent * a_data ** (exponent - 1),)

        return from_op(a_data**exponent, (a,), backward_constant, "pow", saved=(a,))
    if _is_bool(a) and _is_bool(b):
        _refuse_bool(a, "pow")
    a, b = _binary(a, b, "pow")
    a_data, b_data = a.data, b.data
    out = a_data**b_data
    xp = get_array_module(out)

    def backward(g):
        zero = xp.zeros((), dtype=g.dtype)
        grad_a = grad_b = None
        with np.errstate(divide="ignore", invalid="ignore"):  # the 0 · ∞ cases are replaced below
            # PyTorch's order: ∂/∂a is selected (0 where b = 0, whatever g is); ∂/∂b is masked first,
            # then multiplied by g (so an infinite g times a masked 0 is NaN there)
            if a.requires_grad:
                grad_a = unbroadcast(xp.where(b_data == 0, zero, g * b_data * a_data ** (b_data - 1)), a.shape)
            if b.requires_grad:
                constant_in_b = (a_data == 0) & (b_data >= 0)
                grad_b = unbroadcast(g * xp.where(constant_in_b, zero, out * xp.log(a_data)), b.shape)
        return grad_a, grad_b

    return from_op(out, (a, b), backward, "pow", saved=(a, b), saves_output=True)


def matmul(a: Operand, b: Operand) -> Tensor:
    """out = a @ b (matrix product, batched over leading axes like NumPy).

    For matrices: ∂L/∂a = g · bᵀ,  ∂L/∂b = aᵀ · g.  A 1-D operand is treated as a
    row (left) or column (right) vector, as in NumPy.
    """
    a = a if isinstance(a, Tensor) else _constant(a, like=b)
    b = b if isinstance(b, Tensor) else _constant(b, like=a)
    if a.dtype != b.dtype:
        raise TypeError(f"matmul: both operands must have the same dtype, as in PyTorch; got {a.dtype} and {b.dtype}")
    a, b = _operands(a, b, "matmul")
    if a.dtype.kind == "b":
        _refuse_bool(a, "matmul")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must have at least 1 dimension; got shapes {a.shape} and {b.shape}")
    a_shape2 = a.shape if a.ndim > 1 else (1,) + a.shape
    b_shape2 = b.shape if b.ndim > 1 else b.shape + (1,)
    if a_shape2[-1] != b_shape2[-2]:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} are not aligned: "
            f"{a_shape2[-1]} (last axis of the first) != {b_shape2[-2]} (the second's rows)"
        )
    try:
        batch = np.broadcast_shapes(a_shape2[:-2], b_shape2[:-2])
    except ValueError:
        raise ValueError(
            f"matmul: batch shapes of {a.shape} and {b.shape} cannot be broadcast together"
        ) from None
    a_data, b_data = a.data, b.data
    out_shape2 = batch + (a_shape2[-2], b_shape2[-1])

    def backward(g):
        xp = get_array_module(g)
        g2 = g.reshape(out_shape2)
        grad_a = grad_b = None
        if a.requires_grad:
            grad_a = g2 @ xp.swapaxes(b_data.reshape(b_shape2), -1, -2)
            grad_a = unbroadcast(grad_a, a_shape2).reshape(a.shape)
        if b.requires_grad:
            grad_b = xp.swapaxes(a_data.reshape(a_shape2), -1, -2) @ g2
            grad_b = unbroadcast(grad_b, b_shape2).reshape(b.shape)
        return grad_a, grad_b

    saved = ((b,) if a.requires_grad else ()) + ((a,) if b.requires_grad else ())
    return from_op(a_data @ b_data, (a, b), backward, "matmul", saved=saved)


# ------------------------------------------------------------------ reductions
def sum(a: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    """out = Σ a over ``axis``;  ∂L/∂a = g broadcast back over the summed axes.

    ``axis=()`` sums over every axis, as PyTorch's ``dim=()`` does. The sum of
    bool or integer values is int64, as in PyTorch (NumPy's of uint8 is uint64).
    """
    axes = _normalize_axis(axis, a.ndim, "sum")
    kept_shape = tuple(1 if i in axes else n for i, n in enumerate(a.shape))
    xp = get_array_module(a.data)
    dtype = a.dtype if a.dtype.kind == "f" else np.int64
    return from_op(
        a.data.sum(axis=axes, keepdims=keepdims, dtype=dtype),
        (a,),
        lambda g: (xp.broadcast_to(g.reshape(kept_shape), a.shape),),
        "sum",
    )


def mean(a: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    """out = (1/n) Σ a over ``axis`` (n elements);  ∂L/∂a = g / n broadcast back.

    Floating-point tensors only, as in PyTorch (cast an integer tensor first).
    """
    if a.dtype.kind != "f":
        raise TypeError(f"mean: needs a floating-point tensor; got dtype {a.dtype} (cast it first)")
    axes = _normalize_axis(axis, a.ndim, "mean")
    count = 1
    for ax in axes:
        count *= a.shape[ax]
    return div(sum(a, axes, keepdims), count)


def max(a: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    """out = max of a over ``axis``; ∂L/∂a is g at the maximum and 0 elsewhere. On ties, as in PyTorch:

    - one axis (``x.max(1)``, PyTorch's ``max(x, dim)``): the first maximum
      takes all of g (a NaN is the maximum). Where it is is found in the
      forward pass, and the backward reads nothing else, so an in-place
      operation on x or on the output afterwards (``x.max(1).relu_()``) is fine;
    - every axis (``x.max()``): g / count goes to each of the ``count`` tied
      maxima (or NaNs), selected, so an infinite g stays there;
    - a tuple of axes (PyTorch's ``amax``): (g / count) · [a = out], a product,
      so a NaN anywhere in a row makes the row's gradient NaN, as in PyTorch.
    The last two read a and the output in the backward (an in-place write on either raises).
    """
    axes = _normalize_axis(axis, a.ndim, "max")
    if any(a.shape[ax] == 0 for ax in axes) or (a.size == 0 and not axes):
        raise ValueError(f"max: the maximum over an empty axis is undefined; got shape {a.shape}, axis {axis}")
    a_data = a.data
    xp = get_array_module(a_data)
    out_shape = tuple(n for i, n in enumerate(a.shape) if i not in axes)
    if isinstance(axis, (int, np.integer)) and a.ndim == 0:  # torch.max(x, 0) of a 0-d x: x itself
        return from_op(a_data.copy(), (a,), lambda g: (g,), "max")
    if isinstance(axis, (int, np.integer)):  # torch.max(x, dim)
        first = xp.expand_dims(a_data.argmax(axis=axes[0]), axes[0])
        out_kept = xp.take_along_axis(a_data, first, axis=axes[0])
        positions = xp.arange(a.shape[axes[0]]).reshape((-1,) + (1,) * (a.ndim - axes[0] - 1))
        chosen = positions == first  # where each row's first maximum is

        def backward_first(g):
            return (xp.where(chosen, g.reshape(out_kept.shape), xp.zeros((), dtype=g.dtype)),)

        out = out_kept if keepdims else out_kept.reshape(out_shape)
        return from_op(out, (a,), backward_first, "max")
    out_kept = a_data.max(axis=axes, keepdims=True)

    def backward(g):
        g = g.reshape(out_kept.shape)
        if axis is None:  # torch.max(x): ties and NaNs share g, selected
            is_max = (a_data == out_kept) | (xp.isnan(a_data) & xp.isnan(out_kept))
            count = is_max.sum(axis=axes, keepdims=True).astype(g.dtype)
            return (xp.where(is_max, g / count, xp.zeros((), dtype=g.dtype)),)
        is_max = a_data == out_kept  # torch.amax: scaled by the count, then multiplied by the mask
        return ((g / is_max.sum(axis=axes, keepdims=True).astype(g.dtype)) * is_max,)

    out = out_kept if keepdims else out_kept.reshape(out_shape)
    return from_op(out, (a,), backward, "max", saved=(a,), saves_output=True)


# ------------------------------------------------------------------ shape ops
def reshape(a: Tensor, shape: Any) -> Tensor:
    """out = a with a new shape (same elements);  ∂L/∂a = g reshaped back."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    try:
        out = a.data.reshape(shape)
    except ValueError:
        raise ValueError(
            f"reshape: cannot reshape a tensor of shape {a.shape} ({a.size} elements) into {shape}"
        ) from None
    view = a if get_array_module(out).may_share_memory(out, a.data) else None
    return from_op(out, (a,), lambda g: (g.reshape(a.shape),), "reshape", view_of=view)


def permute(a: Tensor, dims: Sequence[int]) -> Tensor:
    """out = a with its axes in the order ``dims``: out.shape[i] = a.shape[dims[i]];  ∂L/∂a = g permuted back.

    Negative axes count from the end. The inverse permutation is taken of the
    axes made non-negative (``argsort`` of raw axes such as (−1, 0, 1) would
    not be the inverse).
    """
    dims = tuple(dims)
    problem = f"permute: dims {dims} are not a permutation of the {a.ndim} axes of a tensor of shape {a.shape}"
    if len(dims) != a.ndim or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in dims):
        raise ValueError(problem)
    axes = _normalize_axis(dims, a.ndim, "permute", allow_repeats=True)
    if sorted(axes) != list(range(a.ndim)):
        raise ValueError(problem)
    inverse = tuple(int(i) for i in np.argsort(axes))
    return from_op(a.data.transpose(axes), (a,), lambda g: (g.transpose(inverse),), "permute", view_of=a)


def transpose(a: Tensor, dim0: int, dim1: int) -> Tensor:
    """out = a with axes ``dim0`` and ``dim1`` swapped (PyTorch's ``transpose``);  ∂L/∂a = g swapped back."""
    axes = list(range(a.ndim))
    if a.ndim:  # a 0-d tensor accepts dims 0 and −1, and stays as it is
        first, second = _normalize_axis((dim0, dim1), a.ndim, "transpose", allow_repeats=True)
        axes[first], axes[second] = axes[second], axes[first]
    else:
        _normalize_axis((dim0, dim1), a.ndim, "transpose", allow_repeats=True)
    return from_op(a.data.transpose(axes), (a,), lambda g: (g.transpose(axes),), "transpose", view_of=a)


def _is_basic_index(index: Any) -> bool:
    """True for indexing by ints (Python's or NumPy's), slices, None and Ellipsis, which never repeats an element."""
    parts = index if isinstance(index, tuple) else (index,)
    basic = (int, np.integer, slice, type(None), type(Ellipsis))
    return all(isinstance(p, basic) and not isinstance(p, (bool, np.bool_)) for p in parts)


def getitem(a: Tensor, index: Any) -> Tensor:
    """out = a[index] with slices, ints and integer or boolean arrays.

    ∂L/∂a is zero except at the selected positions, which receive g. An integer
    array may select one element several times; its gradients then add up,
    which the backward does with ``bincount`` over flat positions.
    """
    xp = get_array_module(a.data)

    def on_device(part):  # index arrays live where the data lives
        if isinstance(part, Tensor):
            part = part.data
        return xp.asarray(part) if isinstance(part, (np.ndarray, list)) else part

    index = tuple(map(on_device, index)) if isinstance(index, tuple) else on_device(index)
    basic = _is_basic_index(index)
    parts = index if isinstance(index, tuple) else (index,)
    if basic and not any(p is Ellipsis for p in parts):
        parts += (Ellipsis,)  # x[0] of a vector: a 0-d view into x (as in PyTorch), not a copied scalar
    try:
        out = a.data[parts if basic else index]
    except IndexError as error:
        raise IndexError(f"getitem: index {index!r} is invalid for shape {a.shape}: {error}") from None

    def backward(g):
        if basic:
            grad = xp.zeros(a.shape, dtype=g.dtype)
            grad[index] = g
            return (grad,)
        positions = xp.arange(a.size).reshape(a.shape)[index]
        grad = xp.bincount(positions.ravel(), weights=g.ravel(), minlength=a.size)
        return (grad.astype(g.dtype).reshape(a.shape),)

    # Basic indexing gives a view (even an empty one), so an in-place write through it is
    # counted by a's version counter; an integer array or a mask gives a copy.
    return from_op(out, (a,), backward, "getitem", view_of=a if basic else None)


def concatenate(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """out = the tensors joined along ``axis``;  ∂L/∂tensors[i] = the slice of g it produced."""
    tensors = _same_device(tensors, "concatenate")
    xp = get_array_module(tensors[0].data)
    try:
        out = xp.concatenate([t.data for t in tensors], axis=axis)
    except ValueError as error:
        shapes = [t.shape for t in tensors]
        raise ValueError(f"concatenate: shapes {shapes} do not fit along axis {axis}: {error}") from None
    axis = axis % out.ndim
    bounds = np.cumsum([0] + [t.shape[axis] for t in tensors])

    def backward(g):
        lead = (slice(None),) * axis
        return tuple(g[lead + (slice(start, stop),)] for start, stop in zip(bounds[:-1], bounds[1:]))

    return from_op(out, tuple(tensors), backward, "concatenate")


def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """out = the tensors stacked along a new ``axis``;  ∂L/∂tensors[i] = g[..., i, ...]."""
    tensors = _same_device(tensors, "stack")
    shapes = {t.shape for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack: all tensors must have the same shape; got {[t.shape for t in tensors]}")
    xp = get_array_module(tensors[0].data)
    out = xp.stack([t.data for t in tensors], axis=axis)
    axis = axis % out.ndim

    def backward(g):
        lead = (slice(None),) * axis
        return tuple(g[lead + (i,)] for i in range(len(tensors)))

    return from_op(out, tuple(tensors), backward, "stack")


def _same_device(tensors: Sequence[Any], op: str) -> list[Tensor]:
    """The tensors on one device, cast to one dtype by PyTorch's rule (float32 with int64 is float32)."""
    if len(tensors) == 0:
        raise ValueError(f"{op}: needs at least one tensor")
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        raise RuntimeError(f"{op}: tensors are on different devices: {sorted(devices)}")
    top = builtins.max(_category(t.dtype) for t in tensors)  # bool < integer < float, then the larger
    dtype = np.result_type(*[t.dtype for t in tensors if _category(t.dtype) == top])
    return [cast(t, dtype) for t in tensors]


def pad(a: Tensor, pad_width: Any, value: float = 0.0) -> Tensor:
    """out = a surrounded by ``value`` (NumPy's ``pad_width``: an int, a pair, or a pair per axis).

    ∂L/∂a = g with the padding cut off. Widths must be >= 0 (PyTorch's ``F.pad``
    crops for a negative width; this one only pads).
    """
    widths = np.zeros((0, 2), np.int64)  # a 0-d tensor has nothing to pad
    if a.ndim:
        widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (a.ndim, 2))
    if (widths < 0).any():
        raise ValueError(f"pad: pad widths must be >= 0; got {pad_width!r}")
    xp = get_array_module(a.data)
    out = xp.pad(a.data, [tuple(map(int, w)) for w in widths], constant_values=value) if a.ndim else a.data.copy()
    inner = tuple(slice(int(before), int(before) + n) for (before, _), n in zip(widths, a.shape))
    return from_op(out, (a,), lambda g: (g[inner],), "pad")


# ----------------------------------------------------------- elementwise maths
def _floating(a: Tensor) -> Tensor:
    """``a`` itself when floating-point; bool and integers become float32, as in PyTorch's exp, log, …"""
    return a if a.dtype.kind == "f" else cast(a, np.float32)


def exp(a: Tensor) -> Tensor:
    """out = eᵃ;  ∂L/∂a = g · out."""
    a = _floating(a)
    out = get_array_module(a.data).exp(a.data)
    return from_op(out, (a,), lambda g: (g * out,), "exp", saves_output=True)


def log(a: Tensor) -> Tensor:
    """out = ln a;  ∂L/∂a = g / a."""
    a = _floating(a)
    a_data = a.data
    return from_op(get_array_module(a_data).log(a_data), (a,), lambda g: (g / a_data,), "log", saved=(a,))


def sqrt(a: Tensor) -> Tensor:
    """out = √a;  ∂L/∂a = g / (2 √a)."""
    a = _floating(a)
    out = get_array_module(a.data).sqrt(a.data)
    return from_op(out, (a,), lambda g: (g / (2 * out),), "sqrt", saves_output=True)


def tanh(a: Tensor) -> Tensor:
    """out = tanh a;  ∂L/∂a = g · (1 − out²)."""
    a = _floating(a)
    out = get_array_module(a.data).tanh(a.data)
    return from_op(out, (a,), lambda g: (g * (1 - out * out),), "tanh", saves_output=True)


def sigmoid(a: Tensor) -> Tensor:
    """out = σ(a) = 1 / (1 + e⁻ᵃ);  ∂L/∂a = g · out · (1 − out).

    Computed from e = e^(−|a|), which lies in (0, 1] and never overflows:
    σ(a) = 1 / (1 + e) for a >= 0 and e / (1 + e) for a < 0. The second form
    keeps full relative precision for very negative a (σ(−20) ≈ 2.06e−9 in
    float32, so log σ(a) stays finite), where 1 − 1/(1 + eᵃ) would round to 0.
    """
    a = _floating(a)
    xp = get_array_module(a.data)
    e = xp.exp(-xp.abs(a.data))
    out = xp.where(a.data >= 0, 1 / (1 + e), e / (1 + e))
    return from_op(out, (a,), lambda g: (g * out * (1 - out),), "sigmoid", saves_output=True)


def relu(a: Tensor, inplace: bool = False) -> Tensor:
    """out = max(a, 0);  ∂L/∂a = g · [out > 0]  (the one ReLU: ``Tensor.relu``, ``F.relu``, ``nn.ReLU``).

    The backward reads the *output*, as PyTorch's does ([out > 0] = [a > 0]);
    like PyTorch's ``threshold_backward`` it zeroes g where out <= 0, so a NaN
    input passes its gradient through.
    So ``inplace=True`` (``x.relu_()``, PyTorch's ``ReLU(inplace=True)``) can
    write the result into ``a``'s memory, saving one activation, and still
    back-propagate correctly: ``x.relu_() + 3 * x`` has gradient 4·[x > 0].
    If another operation saved ``a`` before it was overwritten, backward()
    raises (see :mod:`minisgd.tensor`); on a leaf that requires grad, or a
    view of one, the in-place form raises at once.
    """
    xp = get_array_module(a.data)
    if a.dtype.kind == "b":
        _refuse_bool(a, "relu")
    if inplace:
        check_inplace(a, "relu_")
    # empty_like keeps the input's memory layout: a channels-last activation stays channels-last.
    out = a.data if inplace else xp.empty_like(a.data, dtype=xp.result_type(a.data, 0))  # max(a, 0)'s dtype
    # A large array is done in parts of its first axis, one per core (memory-bound work; see row_blocks).
    parts = row_blocks(a.data)
    map_blocks(lambda rows: xp.maximum(a.data[rows], 0, out=out[rows]), parts, device_of(out))

    def backward(g):
        grad = xp.empty_like(g)
        map_blocks(lambda rows: zero_where(out[rows] <= 0, g[rows], out=grad[rows]), parts, device_of(g))
        return (grad,)

    return from_op(
        out, (a,), backward, "relu_" if inplace else "relu", saves_output=True, inplace_of=a if inplace else None
    )


def zero_where(drop: Any, g: Any, out: Any = None) -> Any:
    """g with +0 where ``drop`` is True: ``where(drop, 0, g)`` without a branch per element.

    NumPy's ``where`` branches on every element, and on the random signs of
    activations the processor mispredicts half of those branches: it runs
    about ten times slower than a multiplication. ``g * ~drop`` would be as
    fast but is not the same number everywhere (−3·0 = −0, ∞·0 = NaN). So
    this keeps or clears the *bits* of g: ``drop − 1`` as an unsigned integer
    of g's width is 0 where drop is True and all bits set where it is False,
    and its bitwise AND with g's bits is +0 or g itself, exactly. Written into
    ``out`` when it is given.
    """
    xp = get_array_module(g)
    bits = xp.subtract(drop, 1, dtype=xp.dtype(f"u{g.itemsize}"))  # 0, or all bits set
    xp.bitwise_and(g.view(bits.dtype), bits, out=bits if out is None else out.view(bits.dtype))
    return bits.view(g.dtype) if out is None else out


def abs(a: Tensor) -> Tensor:
    """out = |a|;  ∂L/∂a = g · sign(a)  (sign 0 at a = 0 and at NaN, as in PyTorch; so ∞ · 0 = NaN there)."""
    if a.dtype.kind == "b":
        _refuse_bool(a, "abs")
    xp = get_array_module(a.data)
    a_data = a.data

    def backward(g):
        sign = (a_data > 0).astype(g.dtype) - (a_data < 0).astype(g.dtype)
        return (g * sign,)

    return from_op(xp.abs(a_data), (a,), backward, "abs", saved=(a,))


def maximum(a: Operand, b: Operand) -> Tensor:
    """out = elementwise max(a, b).

    ∂L/∂a = g where a > b, ∂L/∂b = g where b > a; a tie splits g in halves.
    Where either is NaN (so is out) both receive g, as in PyTorch.
    """
    a, b = _binary(a, b, "maximum")
    a_data, b_data = a.data, b.data
    xp = get_array_module(a_data)

    def backward(g):
        tie, half, zero = a_data == b_data, 0.5 * g, xp.zeros((), dtype=g.dtype)
        # g where a > b, and where either is NaN (not a < b); selected, never multiplied (∞ · 0 = NaN)
        return (
            unbroadcast(xp.where(tie, half, xp.where(a_data < b_data, zero, g)), a.shape) if a.requires_grad else None,
            unbroadcast(xp.where(tie, half, xp.where(b_data < a_data, zero, g)), b.shape) if b.requires_grad else None,
        )

    return from_op(xp.maximum(a_data, b_data), (a, b), backward, "maximum", saved=(a, b))


def clip(a: Tensor, min: float | None = None, max: float | None = None) -> Tensor:
    """out = a limited to [min, max];  ∂L/∂a = g inside the range, 0 where a was clipped (and at NaN).

    As in PyTorch, an integer tensor clipped to a float bound becomes float32
    (bool clipped to integers, int64), and the gradient is selected, not
    multiplied, so an infinite g stays where it is. Unlike PyTorch, min > max
    raises (PyTorch returns max everywhere), and so does an integer bound that
    does not fit in an integer tensor's dtype (PyTorch wraps −1 to 255 for uint8).
    """
    if min is None and max is None:
        raise ValueError("clip: give at least one of min and max")
    if min is not None and max is not None and min > max:
        raise ValueError(f"clip: min must be <= max; got min={min}, max={max}")
    bounds = [bound for bound in (min, max) if bound is not None]
    if a.dtype.kind != "f" and any(isinstance(bound, (float, np.floating)) for bound in bounds):
        a = cast(a, np.float32)
    elif a.dtype.kind == "b":
        a = cast(a, np.int64)  # bool clipped to integers: int64, as in PyTorch
    elif a.dtype.kind in "iu":
        info = np.iinfo(a.dtype)
        if any(not info.min <= bound <= info.max for bound in bounds):
            raise ValueError(
                f"clip: bounds min={min}, max={max} do not fit in the tensor's dtype {a.dtype} "
                f"[{info.min}, {info.max}] (PyTorch wraps -1 to 255 for uint8)"
            )
    a_data = a.data
    xp = get_array_module(a_data)
    out = xp.clip(a_data, min, max)
    inside = xp.ones(a.shape, dtype=bool)
    if min is not None:
        inside &= a_data >= min
    if max is not None:
        inside &= a_data <= max
    return from_op(out, (a,), lambda g: (xp.where(inside, g, xp.zeros((), dtype=g.dtype)),), "clip")


def where(condition: Any, a: Operand, b: Operand) -> Tensor:
    """out = a where ``condition`` holds, else b;  ∂L/∂a = g where condition, ∂L/∂b = g elsewhere."""
    if isinstance(condition, Tensor):
        condition = condition.data
    a, b = _binary(a, b, "where")
    xp = get_array_module(a.data)
    condition = xp.asarray(condition, dtype=bool)
    try:
        out = xp.where(condition, a.data, b.data)
    except ValueError:
        raise ValueError(
            f"where: condition {condition.shape}, a {a.shape} and b {b.shape} cannot be broadcast together"
        ) from None
    zero = xp.zeros((), dtype=out.dtype)

    def backward(g):
        return (
            unbroadcast(xp.where(condition, g, zero), a.shape) if a.requires_grad else None,
            unbroadcast(xp.where(condition, zero, g), b.shape) if b.requires_grad else None,
        )

    return from_op(out, (a, b), backward, "where")
