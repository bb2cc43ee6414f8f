"""The two reference networks of the course, built from :mod:`minisgd.nn` layers.

Both are ``nn.Sequential`` with exactly the layers of their PyTorch
equivalents, so their ``state_dict`` keys ("0.weight", "0.bias", "3.weight", …)
and shapes are PyTorch's, and weights move between the two.

Their ReLUs are ``ReLU(inplace=True)``, as in torchvision's VGG: each one
follows a convolution or linear layer whose output nothing else needs, so the
ReLU may overwrite it, which saves one activation's memory per layer (the
numbers computed are the same).

``lenet()`` is the network of PyTorch's CIFAR-10 tutorial (62 006 parameters);
``small_vgg()`` two VGG blocks of 3×3 convolutions (1 116 970 parameters), the
network of the recitation's coding example.
"""

from __future__ import annotations

from minisgd import nn


def lenet(num_classes: int = 10) -> nn.Sequential:
    """LeNet-5 for 3×32×32 images.

    Conv(3→6, 5) ReLU MaxPool2 → Conv(6→16, 5) ReLU MaxPool2 → Flatten (16·5·5 = 400)
    → Linear(400→120) ReLU → Linear(120→84) ReLU → Linear(84→classes)
    """
    return nn.Sequential(
        nn.Conv2d(3, 6, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(inplace=True),
        nn.Linear(120, 84), nn.ReLU(inplace=True),
        nn.Linear(84, num_classes),
    )


def small_vgg(num_classes: int = 10, batch_norm: bool = False) -> nn.Sequential:
    """Two VGG blocks and a classifier for 3×32×32 images.

    [Conv(3→32, 3, pad 1) ReLU, Conv(32→32, 3, pad 1) ReLU, MaxPool2]        32×32 → 16×16
    [Conv(32→64, 3, pad 1) ReLU, Conv(64→64, 3, pad 1) ReLU, MaxPool2]       16×16 → 8×8
    Flatten (64·8·8 = 4096) → Linear(4096→256) ReLU → Linear(256→classes)

    With ``batch_norm=True`` a BatchNorm2d follows every convolution (before its ReLU).
    """

    def conv_block(in_channels: int, out_channels: int) -> list[nn.Module]:
        layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, padding=1)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(nn.ReLU(inplace=True))
        return layers

    return nn.Sequential(
        *conv_block(3, 32), *conv_block(32, 32), nn.MaxPool2d(2),
        *conv_block(32, 64), *conv_block(64, 64), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 8 * 8, 256), nn.ReLU(inplace=True),
        nn.Linear(256, num_classes),
    )
