"""Data for training: the DataLoader, CIFAR-10, the built-in synthetic set, toy sets, transforms.

- :class:`DataLoader` (``loader.py``): seeded, reproducible mini-batches as Tensors;
- :class:`CIFAR10` (``cifar.py``): the real data set, from disk or a verified download;
- :class:`SyntheticShapes` (``synthetic.py``): a CIFAR-10-shaped set drawn from a seed, offline;
- ``toy`` (``toy.py``): linear regression and 2-D classification sets for the lectures;
- ``transforms`` (``transforms.py``): scaling, normalisation and augmentation of batches.
"""

from minisgd.data import toy, transforms
from minisgd.data.cifar import CIFAR10, CorruptDatasetError, DatasetNotFoundError, default_root
from minisgd.data.loader import ArrayDataset, DataLoader
from minisgd.data.synthetic import SyntheticShapes, make_shapes
from minisgd.data.transforms import (
    Compose,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    channel_stats,
    image_transforms,
    random_crop,
    random_horizontal_flip,
    to_float_chw,
)

__all__ = [
    "CIFAR10",
    "ArrayDataset",
    "Compose",
    "CorruptDatasetError",
    "DataLoader",
    "DatasetNotFoundError",
    "Normalize",
    "RandomCrop",
    "RandomHorizontalFlip",
    "SyntheticShapes",
    "channel_stats",
    "default_root",
    "image_transforms",
    "make_shapes",
    "random_crop",
    "random_horizontal_flip",
    "to_float_chw",
    "toy",
    "transforms",
]
