"""Neural-network building blocks: ``Module``, the layers, and ``functional`` (imported as ``F``).

    from minisgd import nn
    from minisgd.nn import functional as F

    model = nn.Sequential(nn.Conv2d(3, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1176, 10))
    loss = F.cross_entropy(model(images), labels)

| file | what it holds |
|---|---|
| ``module.py`` | ``Module`` (parameters, ``state_dict``, ``train``/``eval``, ``to``) and ``Parameter`` |
| ``layers.py`` | ``Linear``, ``Conv2d``, ``MaxPool2d``, ``AvgPool2d``, ``ReLU``, ``Flatten``, ``Dropout``, |
| | ``BatchNorm2d``, ``Sequential`` |
| ``functional.py`` | the differentiable functions the layers call, and the losses |
| ``conv.py`` | im2col convolution and pooling on plain arrays |
| ``init.py`` | PyTorch's default initialisation |
| ``utils.py`` | gradient clipping: ``clip_grad_norm_``, ``clip_grad_value_`` |
"""

from minisgd.nn import functional, init, utils
from minisgd.nn.layers import (
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Flatten,
    Linear,
    MaxPool2d,
    ReLU,
    Sequential,
)
from minisgd.nn.module import Module, Parameter

__all__ = [
    "AvgPool2d",
    "BatchNorm2d",
    "Conv2d",
    "Dropout",
    "Flatten",
    "Linear",
    "MaxPool2d",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
    "functional",
    "init",
    "utils",
]
