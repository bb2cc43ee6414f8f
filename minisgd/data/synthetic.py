"""SyntheticShapes: a built-in, CIFAR-10-shaped data set of coloured shapes and textures.

Real CIFAR-10 has to be downloaded; this set is drawn on the spot from a seed,
so the default training run works offline and gives the same images on every
machine. It has CIFAR-10's format — (N, 32, 32, 3) uint8 images, ten classes,
``.data`` / ``.targets`` / ``.classes`` — and, like CIFAR-10, it is easy for a
small CNN and hard for a linear model:

- five *shapes* (disc, square, triangle, cross, ring) of random size, rotation
  and position, and five *textures* (horizontal, vertical and diagonal
  stripes, checkerboard, dots) of random period, phase and angle jitter;
- the shape or texture has a random colour over a random background colour,
  and random noise is added to every pixel.

What defines a class is a *local pattern* (an edge, a corner, a period) that
can be anywhere in the image and in any colour: exactly what convolutions with
shared weights detect, and what a linear function of the pixels cannot, since
the same pixel is bright in one image of a class and dark in the next. A
linear classifier on the pixels reaches about 30 % test accuracy (chance is
10 %); a LeNet-sized CNN trained for two epochs on 5 000 images, about 75 %.

How a picture is drawn: every class is a *signed distance* ``d(y, x)`` on the
pixel grid, negative inside the shape (for a disc of radius r centred at c,
``d = ‖p − c‖ − r``). The coverage ``a = clip(0.5 − d, 0, 1)`` is 1 inside,
0 outside and in between on the one-pixel border (anti-aliasing), and the image
is ``a · foreground + (1 − a) · background + noise``. All images of a class
are drawn at once, as arrays of shape (n, 32, 32): no loop runs over pixels or
images.
"""

from __future__ import annotations

import numpy as np

from minisgd import checks
from minisgd.data.loader import ArrayDataset

CLASSES = [
    "disc",
    "square",
    "triangle",
    "cross",
    "ring",
    "horizontal stripes",
    "vertical stripes",
    "diagonal stripes",
    "checkerboard",
    "dots",
]
IMAGE_SIZE = 32
DEFAULT_SIZES = {True: 10_000, False: 2_000}


def _rotated(y: np.ndarray, x: np.ndarray, centre_y, centre_x, angle) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates relative to ``centre``, rotated by ``-angle`` (so the shape turns by ``+angle``)."""
    dy, dx = y - centre_y, x - centre_x
    cos, sin = np.cos(angle), np.sin(angle)
    return cos * dy - sin * dx, sin * dy + cos * dx


def _shape_distance(label: int, y: np.ndarray, x: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """Signed distance, in pixels, to the outline of ``n`` random instances of class ``label``.

    ``y`` and ``x`` are the pixel grid, shape (1, 32, 32); the result has shape
    (n, 32, 32) and is negative inside the shape or on the texture's "ink".
    """
    # One random placement per image, shaped (n, 1, 1) to broadcast over the pixel grid.
    def draw(low: float, high: float) -> np.ndarray:
        return rng.uniform(low, high, size=(n, 1, 1)).astype(np.float32)

    size = draw(6.0, 11.0)  # half-width of a shape, in pixels
    centre_y, centre_x = draw(10.0, 22.0), draw(10.0, 22.0)
    angle = draw(0.0, 2 * np.pi)
    u, v = _rotated(y, x, centre_y, centre_x, angle)

    if label == 0:  # disc
        return np.sqrt(u**2 + v**2) - size
    if label == 1:  # square: the larger of |u| and |v| is the distance to the nearer pair of sides
        return np.maximum(np.abs(u), np.abs(v)) - 0.8 * size
    if label == 2:  # equilateral triangle: inside all three half-planes n_k · p <= 0.6·size
        edges = [v * np.cos(a) + u * np.sin(a) for a in (0.0, 2 * np.pi / 3, 4 * np.pi / 3)]
        return np.maximum(np.maximum(edges[0], edges[1]), edges[2]) - 0.6 * size
    if label == 3:  # cross: the union (minimum) of two perpendicular bars
        half_thickness = 0.3 * size
        bar_1 = np.maximum(np.abs(u) - size, np.abs(v) - half_thickness)
        bar_2 = np.maximum(np.abs(u) - half_thickness, np.abs(v) - size)
        return np.minimum(bar_1, bar_2)
    if label == 4:  # ring: distance to a circle, minus half the ring's thickness
        return np.abs(np.sqrt(u**2 + v**2) - 0.8 * size) - draw(1.2, 2.2)

    # Textures fill the whole image. A stripe pattern is a cosine of the
    # coordinate across the stripes; ink where the cosine is positive, with the
    # value rescaled so that it changes by about 1 per pixel near the edges.
    period = draw(4.0, 8.0)
    phase = draw(0.0, 2 * np.pi)
    jitter = draw(-0.25, 0.25)  # radians: stripes are only roughly horizontal, vertical, diagonal
    scale = period / (2 * np.pi)

    def stripes(direction: np.ndarray) -> np.ndarray:
        across = y * np.cos(direction) + x * np.sin(direction)
        return -np.cos(2 * np.pi * across / period + phase) * scale

    if label == 5:  # horizontal stripes: ink varies along y
        return stripes(jitter)
    if label == 6:  # vertical stripes: ink varies along x
        return stripes(np.pi / 2 + jitter)
    if label == 7:  # diagonal stripes, either diagonal
        diagonal = np.where(draw(0.0, 1.0) < 0.5, np.pi / 4, -np.pi / 4)
        return stripes(diagonal + jitter)
    if label == 8:  # checkerboard: the product of two perpendicular cosines
        along, across = _rotated(y, x, 0.0, 0.0, jitter)
        wave = np.cos(2 * np.pi * along / period + phase) * np.cos(2 * np.pi * across / period + phase)
        return -wave * scale
    if label == 9:  # dots on a square lattice: distance to the nearest lattice point, minus the radius
        along, across = _rotated(y, x, 0.0, 0.0, jitter)
        offset = phase * period / (2 * np.pi)
        dy = (along + offset) % period - period / 2
        dx = (across + offset) % period - period / 2
        return np.sqrt(dy**2 + dx**2) - 0.25 * period
    raise ValueError(f"label must be in 0..{len(CLASSES) - 1}; got {label}")


def make_shapes(
    n_samples: int, seed: int | list[int] = 0, noise: float = 0.08
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n_samples`` images of the ten classes, balanced, from ``seed``.

    ``seed`` is anything ``np.random.default_rng`` takes (an int, or a list of
    ints). Returns ``(images, labels)``: (n, 32, 32, 3) uint8 and (n,) int64.
    The same ``(n_samples, seed, noise)`` always gives the same arrays.
    """
    n_samples = checks.integer("make_shapes", "n_samples", n_samples, low=1)
    noise = checks.number("make_shapes", "noise", noise, low=0)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n_samples) % len(CLASSES))  # balanced to within one image
    coordinates = np.arange(IMAGE_SIZE, dtype=np.float32) + 0.5  # pixel centres
    y, x = coordinates[None, :, None], coordinates[None, None, :]

    # Colours: a dark-ish background and a light-ish foreground, random hue,
    # the two about 0.3 or more apart in brightness so the shape is always visible.
    background = rng.uniform(0.0, 0.6, size=(n_samples, 1, 1, 3))
    foreground = rng.uniform(0.0, 1.0, size=(n_samples, 1, 1, 3))
    brightness_gap = foreground.mean(axis=3, keepdims=True) - background.mean(axis=3, keepdims=True)
    lift = np.maximum(0.0, 0.3 - brightness_gap)
    foreground = np.clip(foreground + lift, 0.0, 1.0)
    swap = rng.random((n_samples, 1, 1, 1)) < 0.3  # sometimes a dark shape on a light background
    foreground, background = np.where(swap, background, foreground), np.where(swap, foreground, background)
    foreground, background = foreground.astype(np.float32), background.astype(np.float32)

    coverage = np.empty((n_samples, IMAGE_SIZE, IMAGE_SIZE, 1), dtype=np.float32)
    for label in range(len(CLASSES)):
        rows = np.flatnonzero(labels == label)
        distance = _shape_distance(label, y, x, rng, len(rows))
        coverage[rows, :, :, 0] = np.clip(0.5 - distance, 0.0, 1.0)

    # a·foreground + (1 − a)·background + noise, then to 0..255; in place, to spare memory.
    # The noise is uniform on [-√3·noise, √3·noise] (standard deviation `noise`):
    # drawing uniform numbers is four times faster than drawing Gaussian ones.
    images = rng.random((n_samples, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.float32)
    images -= np.float32(0.5)
    images *= np.float32(2 * np.sqrt(3) * noise)
    images += background
    images += coverage * (foreground - background)
    images *= np.float32(255.0)
    np.clip(images, 0.0, 255.0, out=images)
    return np.rint(images, out=images).astype(np.uint8), labels.astype(np.int64)


class SyntheticShapes(ArrayDataset):
    """The built-in data set: ten classes of shapes and textures, 32×32×3 uint8, like CIFAR-10.

    ``train=True`` gives ``n_samples`` images (default 10 000) drawn from
    ``seed``, ``train=False`` another ``n_samples`` (default 2 000) drawn from
    a different stream, so the two splits never share an image. The same
    arguments give the same images on every machine.

    ``noise`` is the standard deviation of the pixel noise, on the [0, 1]
    scale. Attributes: ``data`` (N, 32, 32, 3) uint8, ``targets`` (N,) int64,
    ``classes`` the ten names.
    """

    def __init__(
        self, train: bool = True, n_samples: int | None = None, seed: int = 0, noise: float = 0.08
    ) -> None:
        checks.integer("SyntheticShapes", "seed", seed, low=0)
        self.train = bool(train)
        if n_samples is None:
            n_samples = DEFAULT_SIZES[self.train]
        split = 0 if self.train else 1
        images, labels = make_shapes(n_samples, seed=[seed, split], noise=noise)
        super().__init__(images, labels, classes=CLASSES)

    def __repr__(self) -> str:
        split = "train" if self.train else "test"
        return f"SyntheticShapes(split={split!r}, images={len(self)})"
