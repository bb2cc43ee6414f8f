"""The loss landscape around a solution: curvature, sharpness and slices.

Everything here looks at a loss ``L(θ)`` through two things: ``loss_fn()``, a
function of no arguments that returns the scalar loss Tensor for the current
values of ``params`` (a list of Tensors, e.g. ``list(model.parameters())``),
and the gradient ``∇L(θ)`` that ``loss_fn().backward()`` fills in. Parameters
are moved in place and always put back as they were, dtype included.

- :func:`hessian_vector_product`: ``H v`` by central differences of gradients;
- :func:`hessian_top_eigenvalue`: ``λ_max`` of ``H`` by power iteration;
- :func:`random_direction`: a random direction, filter-normalised (Li et al. 2018);
- :func:`loss_slice_1d`, :func:`loss_slice_2d`: the loss along one or two directions;
- :func:`loss_along_line`: the loss on the straight line between two solutions;
- :func:`sharpness`: the mean rise of the loss at a fixed distance along random
  filter-normalised directions.

Directions and vectors are lists of arrays, one per parameter, shaped like it.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from minisgd import checks
from minisgd.backend import get_array_module, to_numpy
from minisgd.tensor import Tensor, no_grad

LossFn = Callable[[], Tensor]

#: Relative step of the central differences: the cube root of float64's machine epsilon (see below).
RELATIVE_STEP = float(np.finfo(np.float64).eps) ** (1 / 3)  # ≈ 6.1e-6


@contextmanager
def _moved(params: Sequence[Tensor], values: Sequence[Any] | None = None) -> Iterator[None]:
    """Inside the block each parameter holds ``values[i]`` (float64), or its own value in float64; restored after.

    The data inside ``loss_fn`` must then be float64 too: like PyTorch, a layer refuses float32
    inputs with float64 weights.
    """
    originals = [p.data for p in params]
    try:
        for i, p in enumerate(params):
            source = originals[i] if values is None else values[i]
            p.data = get_array_module(originals[i]).asarray(source, dtype=np.float64)
        yield
    finally:
        for p, original in zip(params, originals):
            p.data = original


def _gradient(loss_fn: LossFn, params: Sequence[Tensor]) -> list[Any]:
    """∇L at the parameters' current values: a list of float64 arrays."""
    for p in params:
        p.grad = None
    loss = loss_fn()
    if not isinstance(loss, Tensor) or loss.size != 1:
        raise ValueError(f"loss_fn must return a scalar Tensor; got {type(loss).__name__} "
                         f"of shape {getattr(loss, 'shape', None)}")
    loss.backward()
    gradient = []
    for p in params:
        xp = get_array_module(p.data)
        gradient.append(xp.zeros(p.shape) if p.grad is None else xp.asarray(p.grad, dtype=np.float64))
        p.grad = None
    return gradient


def _loss(loss_fn: LossFn) -> float:
    with no_grad():
        return float(loss_fn().item())


def _norm(vectors: Sequence[Any]) -> float:
    return float(np.sqrt(sum(float((v * v).sum()) for v in vectors)))


def _check_shapes(params: Sequence[Tensor], vectors: Sequence[Any], name: str) -> None:
    if len(vectors) != len(params):
        raise ValueError(f"{name} must hold one array per parameter ({len(params)}); got {len(vectors)}")
    for i, (p, v) in enumerate(zip(params, vectors)):
        if tuple(v.shape) != tuple(p.shape):
            raise ValueError(f"{name}[{i}] has shape {tuple(v.shape)}; parameter {i} has shape {tuple(p.shape)}")


def hessian_vector_product(loss_fn: LossFn, params: Sequence[Tensor], vectors: Sequence[Any]) -> list[Any]:
    """H v, the Hessian of the loss times ``vectors``, by central differences of gradients in float64.

        H v ≈ (∇L(θ + h v̂) − ∇L(θ − h v̂)) / (2h) · ‖v‖,   v̂ = v / ‖v‖,

    with ``h = RELATIVE_STEP · (1 + ‖θ‖_∞)``. Why this step: the difference has
    a truncation error of order h² · ‖∇³L‖ (the ε² of any central difference)
    and a rounding error of order u · ‖∇L‖ / h, where u ≈ 2.2e-16 is float64's
    machine epsilon. Their sum is smallest for h ~ u^(1/3) ≈ 6e-6, relative to
    the size of the parameters (a step below the spacing of the floats near θ
    would not move θ at all). For a quadratic loss the gradient is linear, the
    truncation error is zero, and only rounding (~1e-10 relative) remains.
    Parameters are cast to float64 for the computation (the data the loss uses
    may stay float32: NumPy promotes) and put back afterwards.

    The loss must be twice differentiable near θ. A ReLU network's is not: its
    gradient jumps where a unit switches on or off, and a jump inside ±h adds
    about (jump)/(2h) to the result. Use a smooth activation (tanh) to measure
    curvature (tanh, or SiLU x·σ(x) as lecture 09 does).
    """
    params = list(params)
    _check_shapes(params, vectors, "vectors")
    length = _norm(vectors)
    if length == 0:
        return [get_array_module(p.data).zeros(p.shape) for p in params]
    theta = [get_array_module(p.data).asarray(p.data, dtype=np.float64) for p in params]
    scale = max(float(abs(t).max()) if t.size else 0.0 for t in theta)
    h = RELATIVE_STEP * (1.0 + scale)
    unit = [get_array_module(t).asarray(v, dtype=np.float64) / length for t, v in zip(theta, vectors)]
    with _moved(params, [t + h * u for t, u in zip(theta, unit)]):
        plus = _gradient(loss_fn, params)
    with _moved(params, [t - h * u for t, u in zip(theta, unit)]):
        minus = _gradient(loss_fn, params)
    return [(g_plus - g_minus) * (length / (2 * h)) for g_plus, g_minus in zip(plus, minus)]


def hessian_top_eigenvalue(
    loss_fn: LossFn, params: Sequence[Tensor], iterations: int = 100, seed: int = 0, tolerance: float = 1e-6
) -> float:
    """The eigenvalue of largest magnitude of the Hessian, by power iteration.

        v₀ random, ‖v₀‖ = 1;   w = H vₖ;   λₖ = vₖ · w;   vₖ₊₁ = w / ‖w‖.

    λₖ converges to the eigenvalue λ with the largest |λ| (geometrically, at
    the rate |λ₂/λ₁|). Near a minimum the Hessian is (almost) positive
    semi-definite, so that is λ_max, the *sharpness*: gradient descent with a
    step α is stable in that minimum only if α < 2/λ_max. Stops after
    ``iterations`` products, or earlier once λ changes by less than
    ``tolerance`` (relative) from one iteration to the next. Each iteration
    costs two gradients (see :func:`hessian_vector_product`).
    """
    params = list(params)
    iterations = checks.integer("hessian_top_eigenvalue", "iterations", iterations, low=1)
    rng = np.random.default_rng(seed)
    vector = [get_array_module(p.data).asarray(rng.standard_normal(p.shape)) for p in params]
    length = _norm(vector)
    vector = [v / length for v in vector]
    eigenvalue = None
    for _ in range(iterations):
        product = hessian_vector_product(loss_fn, params, vector)
        new = sum(float((v * w).sum()) for v, w in zip(vector, product))
        length = _norm(product)
        if length == 0:
            return 0.0
        vector = [w / length for w in product]
        if eigenvalue is not None and abs(new - eigenvalue) <= tolerance * max(abs(new), 1e-30):
            return new
        eigenvalue = new
    return eigenvalue


def random_direction(params: Sequence[Tensor], seed: int = 0, filter_normalized: bool = True) -> list[Any]:
    """A Gaussian random direction d, shaped like the parameters and on their device; filter-normalised by default.

    The numbers are drawn on the host from ``seed`` (the same direction on every
    device), then moved to the array module of each parameter's data.

    Filter normalisation (Li et al. 2018, "Visualizing the Loss Landscape of
    Neural Nets"): for every filter i of a layer (a slice along the first axis:
    one output channel of a convolution, one output neuron's row of a Linear
    weight), rescale the random direction to the norm of the weights it moves,

        d_i ← d_i / ‖d_i‖ · ‖θ_i‖,

    so that a step of size 1 changes every filter by its own size, and networks
    whose weights differ only in scale (which ReLU networks with batch norm do
    not notice) get comparable plots. Biases and other 1-D parameters (batch
    norm's) get a zero direction, as in the paper. Without normalisation, d is
    plain N(0, 1) noise in every coordinate.
    """
    rng = np.random.default_rng(seed)
    direction = []
    for p in params:
        d = rng.standard_normal(p.shape)
        if filter_normalized:
            if p.ndim <= 1:
                d = np.zeros(p.shape)
            else:
                theta = to_numpy(p.data).astype(np.float64).reshape(p.shape[0], -1)
                rows = d.reshape(p.shape[0], -1)
                rows *= np.linalg.norm(theta, axis=1, keepdims=True) / np.linalg.norm(rows, axis=1, keepdims=True)
                d = rows.reshape(p.shape)
        direction.append(get_array_module(p.data).asarray(d))
    return direction


def loss_slice_1d(
    loss_fn: LossFn, params: Sequence[Tensor], direction: Sequence[Any], alphas: Sequence[float]
) -> np.ndarray:
    """L(θ + α d) for every α of ``alphas`` (float64 parameters; θ is put back afterwards)."""
    params = list(params)
    _check_shapes(params, direction, "direction")
    theta = [get_array_module(p.data).asarray(p.data, dtype=np.float64) for p in params]
    d = [get_array_module(t).asarray(v, dtype=np.float64) for t, v in zip(theta, direction)]
    losses = []
    for alpha in alphas:
        with _moved(params, [t + alpha * v for t, v in zip(theta, d)]):
            losses.append(_loss(loss_fn))
    return np.array(losses)


def loss_slice_2d(
    loss_fn: LossFn,
    params: Sequence[Tensor],
    direction_x: Sequence[Any],
    direction_y: Sequence[Any],
    alphas: Sequence[float],
    betas: Sequence[float],
) -> np.ndarray:
    """L(θ + α d_x + β d_y) on the grid: ``result[j, i]`` is at (alphas[i], betas[j]) (contour's layout)."""
    params = list(params)
    _check_shapes(params, direction_x, "direction_x")
    _check_shapes(params, direction_y, "direction_y")
    theta = [get_array_module(p.data).asarray(p.data, dtype=np.float64) for p in params]
    dx = [get_array_module(t).asarray(v, dtype=np.float64) for t, v in zip(theta, direction_x)]
    dy = [get_array_module(t).asarray(v, dtype=np.float64) for t, v in zip(theta, direction_y)]
    grid = np.empty((len(betas), len(alphas)))
    for j, beta in enumerate(betas):
        for i, alpha in enumerate(alphas):
            with _moved(params, [t + alpha * a + beta * b for t, a, b in zip(theta, dx, dy)]):
                grid[j, i] = _loss(loss_fn)
    return grid


def loss_along_line(
    loss_fn: LossFn, params: Sequence[Tensor], start: Sequence[Any], end: Sequence[Any], ts: Sequence[float]
) -> np.ndarray:
    """L((1 − t) θ_start + t θ_end) for every t of ``ts`` (t = 0: start, t = 1: end; outside: extrapolated).

    ``start`` and ``end`` are lists of arrays (e.g. ``[state[name] for name, _ in model.named_parameters()]``);
    the parameters are put back to their own values afterwards.
    """
    params = list(params)
    _check_shapes(params, start, "start")
    _check_shapes(params, end, "end")
    a = [get_array_module(p.data).asarray(v, dtype=np.float64) for p, v in zip(params, start)]
    b = [get_array_module(p.data).asarray(v, dtype=np.float64) for p, v in zip(params, end)]
    losses = []
    for t in ts:
        with _moved(params, [(1 - t) * x + t * y for x, y in zip(a, b)]):
            losses.append(_loss(loss_fn))
    return np.array(losses)


def sharpness(
    loss_fn: LossFn, params: Sequence[Tensor], radius: float = 0.1, directions: int = 10, seed: int = 0
) -> float:
    """Mean rise of the loss at distance ``radius`` along random filter-normalised directions.

        S = (1/K) Σₖ [ (L(θ + ρ dₖ) + L(θ − ρ dₖ)) / 2 − L(θ) ],   k = 1 … K,

    with ρ = ``radius`` and dₖ = :func:`random_direction` (seed + k). Going both
    ways cancels the slope, so for small ρ, S ≈ ½ ρ² · mean(dₖᵀ H dₖ): an
    average curvature in the directions that matter for the weights' scale,
    where λ_max is the worst one.
    """
    params = list(params)
    radius = checks.number("sharpness", "radius", radius, low=0, low_open=True)
    directions = checks.integer("sharpness", "directions", directions, low=1)
    with _moved(params):
        centre = _loss(loss_fn)
    rises = []
    for k in range(directions):
        d = random_direction(params, seed=seed + k)
        plus, minus = loss_slice_1d(loss_fn, params, d, [radius, -radius])
        rises.append((plus + minus) / 2 - centre)
    return float(np.mean(rises))
