"""LeNet-5 (LeCun et al. 1998) in its common modern form: ReLU and max-pooling.

conv 6@5x5 -> pool -> conv 16@5x5 -> pool -> fc 120 -> fc 84 -> fc classes.

The first convolution is zero-padded by 2 so a 28x28 MNIST digit plays the role of LeNet's
32x32 padded input (61,706 parameters on MNIST, the usual figure). The second convolution is
unpadded as in the original, except where its input is smaller than its 5x5 kernel (8x8
digits reach it at 4x4): there it is padded by 2 ("same") so the network still builds. Pools
follow the rule in `base`. The flatten size is computed from the input shape.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Network, pool_fits, scale
from .permutation import PermutationSpec, chain


class LeNet5(Network):
    output_layer = "fc3.weight"

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, width: float = 1.0):
        super().__init__(input_shape, num_classes, width)
        c, h, w = input_shape
        c1, c2, f1, f2 = (scale(n, width) for n in (6, 16, 120, 84))

        self.conv1 = nn.Conv2d(c, c1, kernel_size=5, padding=2)  # keeps h, w
        self.pool1 = pool_fits(h, w)
        if self.pool1:
            h, w = h // 2, w // 2

        pad = (0 if h >= 5 else 2, 0 if w >= 5 else 2)
        self.conv2 = nn.Conv2d(c1, c2, kernel_size=5, padding=pad)
        h, w = h + 2 * pad[0] - 4, w + 2 * pad[1] - 4
        self.pool2 = pool_fits(h, w)
        if self.pool2:
            h, w = h // 2, w // 2

        self.fc1 = nn.Linear(c2 * h * w, f1)
        self.fc2 = nn.Linear(f1, f2)
        self.fc3 = nn.Linear(f2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        if self.pool1:
            x = F.max_pool2d(x, 2)
        x = F.relu(self.conv2(x))
        if self.pool2:
            x = F.max_pool2d(x, 2)
        x = x.flatten(1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)

    def permutation_spec(self) -> PermutationSpec:
        return chain(self, ["conv1", "conv2", "fc1", "fc2", "fc3"])
