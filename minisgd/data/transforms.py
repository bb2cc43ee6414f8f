"""Transforms of image batches: scaling, per-channel normalisation and data augmentation.

A transform is any callable ``transform(x, rng) -> x`` that takes a whole
batch ``x`` (a NumPy array, one image per row) and a NumPy random generator,
and returns the transformed batch. The :class:`~minisgd.data.DataLoader`
calls it on every batch before moving the batch to the device, with the
generator of the current epoch, so augmentation is reproducible from the
loader's seed.

Every transform here works on the whole batch at once: no Python loop runs
over the images. The usual pipeline for CIFAR-10 (torchvision's order)::

    mean, std = channel_stats(train.data)          # on the training split only
    augment = Compose([to_float_chw, RandomCrop(padding=4),
                       RandomHorizontalFlip(), Normalize(mean, std)])
    evaluate = Compose([to_float_chw, Normalize(mean, std)])

Images are stored as CIFAR-10 stores them, ``(N, H, W, C)`` uint8 in 0..255.
:func:`to_float_chw` turns them into the ``(N, C, H, W)`` float32 layout the
convolution layers take; the other transforms expect that layout.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from minisgd import checks

Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _check_batch(name: str, x: Any) -> np.ndarray:
    """Raise unless ``x`` is a 4-D NumPy batch of images."""
    if not isinstance(x, np.ndarray) or x.ndim != 4:
        shape = getattr(x, "shape", None)
        raise ValueError(
            f"{name} expects a batch of images as a 4-D NumPy array; "
            f"got {type(x).__name__} with shape {shape}"
        )
    return x


def to_float_chw(x: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """uint8 images ``(N, H, W, C)`` in 0..255 → float32 ``(N, C, H, W)`` in [0, 1].

    ``x_float = x / 255``, with the channel axis moved in front of the pixel
    axes, as convolutions expect. ``rng`` is not used (the transform is not random).

    Only the shape moves: the memory stays channels-last, (N, H, W, C), which is
    the layout the convolution kernels work in (:mod:`minisgd.nn.conv`), so the
    first convolution reads the batch without reordering it.
    """
    _check_batch("to_float_chw", x)
    if x.dtype != np.uint8:
        raise TypeError(f"to_float_chw expects uint8 images (N, H, W, C); got dtype {x.dtype}")
    out = x.astype(np.float32)
    out /= np.float32(255)
    return out.transpose(0, 3, 1, 2)


def channel_stats(images: Any, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of stored images ``(N, H, W, C)``.

    Computed on the *training* split only (the test set must not leak into
    training), on the [0, 1] scale of :func:`to_float_chw` for uint8 images:

        mean_c = (1/M) Σ x_c,     std_c = sqrt((1/M) Σ x_c² − mean_c²),

    where the sums run over the M = N·H·W pixels of channel c. The sums are
    accumulated in float64, ``chunk`` images at a time, so CIFAR-10's 50 000
    images never need a float copy all at once. Returns two float64 arrays of
    shape ``(C,)``, ready for :class:`Normalize`.
    """
    images = np.asarray(images)
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(
            f"channel_stats expects images of shape (N, H, W, C) with N >= 1; got shape {images.shape}"
        )
    if images.dtype.kind not in "uif":
        raise TypeError(f"channel_stats expects numeric images; got dtype {images.dtype}")
    scale = 1 / 255 if images.dtype == np.uint8 else 1.0
    total = np.zeros(images.shape[-1])
    total_sq = np.zeros(images.shape[-1])
    for start in range(0, len(images), chunk):
        block = images[start : start + chunk].astype(np.float64) * scale
        total += block.sum(axis=(0, 1, 2))
        total_sq += (block * block).sum(axis=(0, 1, 2))
    count = images.shape[0] * images.shape[1] * images.shape[2]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    return mean, std


class Normalize:
    """Per-channel standardisation of ``(N, C, H, W)`` batches: ``x̂_c = (x_c − mean_c) / std_c``.

    After it, every channel of the training data has mean 0 and standard
    deviation 1, which keeps the first layer's pre-activations in a good range
    whatever the colour statistics of the data set. Take ``mean`` and ``std``
    from :func:`channel_stats` on the training split. The output keeps the
    input's float dtype.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        self.std = np.asarray(std, dtype=np.float64).reshape(-1)
        if self.mean.shape != self.std.shape or self.mean.size == 0:
            raise ValueError(
                "Normalize: mean and std need one value per channel, as many of each; "
                f"got {self.mean.size} means and {self.std.size} stds"
            )
        if not np.all(self.std > 0):
            raise ValueError(f"Normalize: std must be > 0 in every channel; got {self.std.tolist()}")

    def __call__(self, x: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        _check_batch("Normalize", x)
        if x.dtype.kind != "f":
            raise TypeError(f"Normalize expects float images (apply to_float_chw first); got dtype {x.dtype}")
        if x.shape[1] != self.mean.size:
            raise ValueError(
                f"Normalize has statistics for {self.mean.size} channels but the batch has "
                f"{x.shape[1]} on axis 1 (layout (N, C, H, W)); got shape {x.shape}"
            )
        mean, std = self.mean.astype(x.dtype), self.std.astype(x.dtype)
        out = np.array(x, order="K")  # a copy with x's memory layout
        if out.flags.c_contiguous:  # (N, C, H, W) memory: each channel's statistics over runs of H·W pixels
            out -= mean.reshape(1, -1, 1, 1)
            out /= std.reshape(1, -1, 1, 1)
            return out
        # Channels-last memory (what to_float_chw returns): NumPy's innermost loop would run over the 3
        # channels of one pixel, three times slower; over rows of W·C numbers with the statistics
        # repeated W times, it is the same arithmetic at full speed, and the layout stays channels-last.
        rows = out.transpose(0, 2, 3, 1).reshape(out.shape[0], out.shape[2], -1)  # a view when channels-last
        if not np.may_share_memory(rows, out):
            return (x - mean.reshape(1, -1, 1, 1)) / std.reshape(1, -1, 1, 1)  # any other layout
        width = out.shape[3]
        rows -= np.tile(mean, width)
        rows /= np.tile(std, width)
        return out

    def __repr__(self) -> str:
        return f"Normalize(mean={np.round(self.mean, 4).tolist()}, std={np.round(self.std, 4).tolist()})"


class RandomCrop:
    """Pad each image with ``padding`` zeros on every side, then cut a random window of the original size.

    For an image of size H×W the padded image is (H+2p)×(W+2p); the window's
    top-left corner ``(dy, dx)`` is drawn uniformly from {0, …, 2p}², one per
    image: the image shifts by up to ``p`` pixels in each direction, and what
    slides in from outside is black. The generator is asked for ``dy`` (N
    integers) and then ``dx`` (N integers), in that order.

    Vectorised: ``sliding_window_view`` sees every H×W window of the padded
    batch (a view, no copy), and one fancy index picks window ``(dy[n], dx[n])``
    for image ``n``.
    """

    def __init__(self, padding: int = 4) -> None:
        self.padding = checks.integer("RandomCrop", "padding", padding, low=0)

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        _check_batch("RandomCrop", x)
        n, _, height, width = x.shape
        p = self.padding
        dy = rng.integers(0, 2 * p + 1, size=n)
        dx = rng.integers(0, 2 * p + 1, size=n)
        padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        # windows[n, c, i, j] is the H×W window of image n, channel c, whose corner is (i, j).
        windows = np.lib.stride_tricks.sliding_window_view(padded, (height, width), axis=(2, 3))
        # The index arrays on axes 0, 2, 3 pair up image n with its own (dy[n], dx[n]);
        # the result has shape (N, C, H, W).
        return windows[np.arange(n), :, dy, dx]

    def __repr__(self) -> str:
        return f"RandomCrop(padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror each image left-right with probability ``p`` (a cat looking left is still a cat).

    One uniform number per image is drawn from the generator; image ``n`` is
    flipped when ``u[n] < p``. Works on ``(N, C, H, W)`` batches (the last
    axis is the width).
    """

    def __init__(self, p: float = 0.5) -> None:
        self.p = checks.number("RandomHorizontalFlip", "p", p, low=0, high=1)

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        _check_batch("RandomHorizontalFlip", x)
        flip = rng.random(len(x)) < self.p
        return np.where(flip[:, None, None, None], x[..., ::-1], x)

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


def random_crop(padding: int = 4) -> RandomCrop:
    """The transform :class:`RandomCrop` (padding, then a random window of the original size)."""
    return RandomCrop(padding)


def random_horizontal_flip(p: float = 0.5) -> RandomHorizontalFlip:
    """The transform :class:`RandomHorizontalFlip` (mirror each image with probability ``p``)."""
    return RandomHorizontalFlip(p)


class Compose:
    """Apply several transforms one after the other, passing the same generator to each."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        transforms = list(transforms)
        for position, transform in enumerate(transforms):
            if not callable(transform):
                raise TypeError(
                    f"Compose: transforms[{position}] must be a callable transform(x, rng) -> x; "
                    f"got {type(transform).__name__}"
                )
        self.transforms = transforms

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        for transform in self.transforms:
            x = transform(x, rng)
        return x

    def __repr__(self) -> str:
        names = ", ".join(getattr(t, "__name__", None) or repr(t) for t in self.transforms)
        return f"Compose([{names}])"


def image_transforms(
    mean: Sequence[float], std: Sequence[float], augment: bool = False
) -> Compose:
    """The standard pipeline: ``to_float_chw``, then (with ``augment``) crop and flip, then ``Normalize``.

    Use ``augment=True`` for the training loader and ``augment=False`` for the
    test loader; both normalise with the *training* statistics.
    """
    steps: list[Transform] = [to_float_chw]
    if augment:
        steps += [RandomCrop(padding=4), RandomHorizontalFlip(p=0.5)]
    steps.append(Normalize(mean, std))
    return Compose(steps)
