"""Mini-batches: the :class:`DataLoader` that feeds SGD, and :class:`ArrayDataset`.

Stochastic gradient descent estimates the gradient of the loss over the whole
training set from a *mini-batch* of ``B`` examples,

    g = (1/B) · Σ_{i in batch} ∇ℓ(x_i, y_i; w),

so how the batches are drawn is part of the algorithm:

- ``batch_size=1`` is pure SGD (one example per update),
- ``batch_size=B`` is mini-batch SGD,
- ``batch_size=None`` uses the whole data set in every step: full-batch
  gradient descent.

With ``shuffle=True`` every epoch visits the examples in a new random order.
That order is a function of ``(seed, epoch)`` only: epoch ``e`` uses the
generator ``np.random.default_rng([seed, e])``, first to draw the permutation,
then to draw the random numbers of the data augmentation (the ``transform``),
batch after batch. ``loader.epoch`` counts the passes completed so far; saving
it in a checkpoint and restoring it with ``set_epoch`` makes a resumed run see
exactly the batches an uninterrupted run would.

Batches are cut and transformed on the host with NumPy, then moved to the
loader's device and handed out as :class:`minisgd.Tensor` pairs ``(x, y)``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator

import numpy as np

from minisgd import backend, checks
from minisgd.tensor import Tensor

Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]


class ArrayDataset:
    """A data set held in two arrays: ``data`` (inputs) and ``targets``, one row per example.

    The same attributes as :class:`~minisgd.data.CIFAR10`, so a
    :class:`DataLoader` takes either. ``classes`` (optional) names the labels.

    >>> import numpy as np
    >>> ds = ArrayDataset(np.zeros((4, 2)), np.array([0, 1, 0, 1]))
    >>> len(ds), ds[1][1]
    (4, np.int64(1))
    """

    def __init__(self, data: Any, targets: Any, classes: list[str] | None = None) -> None:
        self.data = np.asarray(data)
        self.targets = np.asarray(targets)
        if self.data.ndim == 0 or self.targets.ndim == 0:
            raise ValueError(
                "ArrayDataset: data and targets must be arrays with one row per example; "
                f"got shapes {self.data.shape} and {self.targets.shape}"
            )
        if len(self.data) != len(self.targets):
            raise ValueError(
                "ArrayDataset: data and targets must have the same number of rows; "
                f"got {len(self.data)} and {len(self.targets)}"
            )
        self.classes = list(classes) if classes is not None else None

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[np.ndarray, Any]:
        return self.data[index], self.targets[index]

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(data={self.data.shape} {self.data.dtype}, targets={self.targets.shape})"


def _as_arrays(dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    """The ``(inputs, targets)`` arrays of a pair or of an object with ``.data`` and ``.targets``."""
    if hasattr(dataset, "data") and hasattr(dataset, "targets"):
        inputs, targets = dataset.data, dataset.targets
    elif isinstance(dataset, (tuple, list)) and len(dataset) == 2:
        inputs, targets = dataset
    else:
        raise TypeError(
            "DataLoader: dataset must be a pair of arrays (inputs, targets) or an object with "
            f"`.data` and `.targets` (CIFAR10, SyntheticShapes, ArrayDataset); got {type(dataset).__name__}"
        )
    if backend.device_of(inputs) != "cpu" or backend.device_of(targets) != "cpu":
        raise TypeError(
            "DataLoader: the dataset must live in host memory (NumPy arrays); the loader moves "
            "each batch to its device. Pass the arrays before moving them to the GPU"
        )
    inputs, targets = np.asarray(inputs), np.asarray(targets)
    if inputs.ndim == 0 or targets.ndim == 0:
        raise ValueError(
            "DataLoader: inputs and targets must have one row per example; "
            f"got shapes {inputs.shape} and {targets.shape}"
        )
    if len(inputs) != len(targets):
        raise ValueError(
            "DataLoader: inputs and targets must have the same number of rows; "
            f"got {len(inputs)} and {len(targets)}"
        )
    if len(inputs) == 0:
        raise ValueError("DataLoader: the dataset is empty; got 0 examples")
    if inputs.dtype.kind not in "biuf":
        raise TypeError(f"DataLoader: inputs must be numeric; got dtype {inputs.dtype}")
    if targets.dtype.kind not in "biuf":
        raise TypeError(f"DataLoader: targets must be numeric; got dtype {targets.dtype}")
    return inputs, targets


class DataLoader:
    """Hands out the examples of a data set in mini-batches ``(x, y)`` of :class:`minisgd.Tensor`.

    Parameters
    ----------
    dataset:
        a pair of arrays ``(inputs, targets)`` with one row per example, or an
        object with ``.data`` and ``.targets`` (:class:`~minisgd.data.CIFAR10`,
        :class:`~minisgd.data.SyntheticShapes`, :class:`ArrayDataset`).
    batch_size:
        examples per batch ``B``; ``1`` is pure SGD, ``None`` the whole data
        set in every batch (full-batch gradient descent).
    shuffle:
        visit the examples in a new random order every epoch.
    drop_last:
        skip the last, smaller batch when ``B`` does not divide the data set.
    seed:
        seeds the order and the augmentation: epoch ``e`` draws from
        ``np.random.default_rng([seed, e])``. ``None`` picks a random seed
        once, when the loader is made (read it back from ``loader.seed``).
    transform:
        a callable ``transform(x, rng) -> x`` applied to each NumPy batch
        before it moves to the device (see :mod:`minisgd.data.transforms`).
    device:
        where the batches go: ``"cpu"`` or ``"cuda"``; ``None`` means
        :func:`minisgd.backend.default_device` (``$MINISGD_DEVICE`` or ``"cpu"``).

    The inputs ``x`` come out as float32, or float64 when the data set's inputs
    are float64; integer targets (class labels) as int64, float targets with
    their own dtype.

    >>> import numpy as np
    >>> X, y = np.arange(10.0).reshape(5, 2), np.array([0, 1, 0, 1, 1])
    >>> loader = DataLoader((X, y), batch_size=2)
    >>> len(loader)
    3
    >>> [tuple(xb.shape) for xb, yb in loader]
    [(2, 2), (2, 2), (1, 2)]
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int | None = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int | None = None,
        transform: Transform | None = None,
        device: str | None = None,
    ) -> None:
        self.inputs, self.targets = _as_arrays(dataset)
        n = len(self.inputs)
        if batch_size is None:
            batch_size = n
        elif not checks.is_integer(batch_size) or batch_size < 1:
            checks.fail("DataLoader", "batch_size", "an integer >= 1, or None for the whole data set", batch_size)
        if drop_last and batch_size > n:
            raise ValueError(
                f"batch_size={batch_size} with drop_last=True leaves no batch at all: "
                f"the data set has only {n} examples"
            )
        if seed is None:
            seed = int(np.random.default_rng().integers(2**63))
        elif not checks.is_integer(seed) or seed < 0:
            checks.fail("DataLoader", "seed", "an integer >= 0, or None for a random one", seed)
        if transform is not None and not callable(transform):
            raise TypeError(
                f"transform must be a callable transform(x, rng) -> x or None; got {type(transform).__name__}"
            )
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = int(seed)
        self.transform = transform
        self.device = backend.check_device(device) if device is not None else backend.default_device()
        # float64 inputs stay float64 (gradient checks); everything else trains in float32.
        self.input_dtype = np.float64 if self.inputs.dtype == np.float64 else np.float32
        self.target_dtype = np.int64 if self.targets.dtype.kind in "biu" else self.targets.dtype
        self._epoch = 0

    # -------------------------------------------------------------- the epoch
    @property
    def epoch(self) -> int:
        """Passes over the data completed so far; the next iteration runs epoch ``epoch``."""
        return self._epoch

    @epoch.setter
    def epoch(self, epoch: int) -> None:
        self._epoch = checks.integer("DataLoader", "epoch", epoch, low=0)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration run epoch ``epoch`` (to resume from a checkpoint)."""
        self.epoch = epoch

    def state_dict(self) -> dict[str, int]:
        """What a checkpoint needs to continue the same sequence of batches: seed and epoch."""
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`: the next iteration yields what the saved loader's would."""
        missing = {"seed", "epoch"} - set(state)
        if missing:
            raise KeyError(f"DataLoader state is missing {sorted(missing)}; got keys {sorted(state)}")
        self.seed = checks.integer("DataLoader.load_state_dict", "seed", int(state["seed"]), low=0)
        self.set_epoch(int(state["epoch"]))

    def epoch_rng(self, epoch: int) -> np.random.Generator:
        """The generator of epoch ``epoch``: it draws the order, then the augmentation."""
        return np.random.default_rng([self.seed, epoch])

    # ------------------------------------------------------------ the batches
    def __len__(self) -> int:
        """Batches per epoch: ⌈N/B⌉, or ⌊N/B⌋ with ``drop_last``."""
        n = len(self.inputs)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield the batches ``(x, y)`` of epoch ``self.epoch``; count the epoch as done at the end.

        An iteration left early (``break``) does not count: the next one
        repeats the same epoch.
        """
        epoch = self.epoch
        rng = self.epoch_rng(epoch)
        n = len(self.inputs)
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        for batch in range(len(self)):
            rows = order[batch * self.batch_size : (batch + 1) * self.batch_size]
            # Indexing with an array of rows copies: a transform cannot change the data set.
            x, y = self.inputs[rows], self.targets[rows]
            if self.transform is not None:
                x = self._apply_transform(x, rng)
            x = x.astype(self.input_dtype, copy=False)
            y = y.astype(self.target_dtype, copy=False)
            yield Tensor(x, device=self.device), Tensor(y, device=self.device)
        self._epoch = epoch + 1

    def _apply_transform(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = self.transform(x, rng)
        if not isinstance(out, np.ndarray) or out.ndim == 0 or len(out) != len(x):
            shape = getattr(out, "shape", None)
            raise TypeError(
                f"transform must return a NumPy array with one row per example ({len(x)} rows); "
                f"got {type(out).__name__} with shape {shape}"
            )
        return out

    def __repr__(self) -> str:
        return (
            f"DataLoader(examples={len(self.inputs)}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last}, seed={self.seed}, "
            f"epoch={self.epoch}, device={self.device!r})"
        )
