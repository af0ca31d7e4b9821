"""The MNIST-1D baselines of Greydanus & Kobak (2020): a small 1-D convolutional network and an MLP.

`mnist1d_cnn` (their ConvBase): three 1-D convolutions with 25 channels, kernel 5 then 3 and 3,
stride 2, padding 1, ReLU, then one linear layer; 5,210 parameters on MNIST-1D (length 40 ->
19 -> 10 -> 5, 125 features). `mnist1d_mlp` (their MLPBase): inputs -> 100 -> 100 -> classes,
ReLU; 15,210 parameters on MNIST-1D. Their reported test accuracies: about 94% and 68%.

Both build for any dataset: an input of shape (C, H, W) is read as C channels of a signal of
length H * W (MNIST-1D's (1, 1, 40) is one channel of length 40). Widths scale by `width`.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import Network, scale
from .custom import inferred_prunable
from .permutation import PermutationSpec, chain


def _conv_length(n: int, kernel: int, stride: int = 2, padding: int = 1) -> int:
    return max(1, (n + 2 * padding - kernel) // stride + 1)


class CNN1d(Network):
    """conv1d 25@5/2 -> conv1d 25@3/2 -> conv1d 25@3/2 -> linear, ReLU between."""

    output_layer = "fc.weight"

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, width: float = 1.0):
        super().__init__(input_shape, num_classes, width)
        c, h, w = input_shape
        channels = scale(25, width)
        length = h * w
        # A signal shorter than a kernel is zero-padded on the right to fit it (see forward).
        self.min_length = 5
        length = max(length, self.min_length)
        self.conv1 = nn.Conv1d(c, channels, 5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        for kernel in (5, 3, 3):
            length = _conv_length(length, kernel)
        self.fc = nn.Linear(channels * length, num_classes)

    @property
    def prunable(self) -> tuple[str, ...]:
        return inferred_prunable(self)  # Conv1d and Linear weights

    def permutation_spec(self) -> PermutationSpec:
        return chain(self, ["conv1", "conv2", "conv3", "fc"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(2)  # [N, C, H * W]
        if x.shape[-1] < self.min_length:
            x = F.pad(x, (0, self.min_length - x.shape[-1]))
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.relu(self.conv3(x))
        return self.fc(x.flatten(1))


class MLP1d(Network):
    """inputs -> 100 -> 100 -> classes, ReLU between."""

    output_layer = "fc3.weight"

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, width: float = 1.0):
        super().__init__(input_shape, num_classes, width)
        hidden = scale(100, width)
        self.fc1 = nn.Linear(math.prod(input_shape), hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, num_classes)

    def permutation_spec(self) -> PermutationSpec:
        return chain(self, ["fc1", "fc2", "fc3"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)
