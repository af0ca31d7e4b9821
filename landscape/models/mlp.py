"""LeNet-300-100, the fully connected network of Frankle & Carbin (2019), after LeCun et al. (1998).

Input is flattened whatever its shape, so it builds for CIFAR (3072 inputs) as well as MNIST
(784 inputs, 266,610 parameters, the published 266K).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import Network, scale
from .permutation import PermutationSpec, chain


class LeNet300100(Network):
    """inputs -> 300 -> 100 -> classes, ReLU between."""

    output_layer = "fc3.weight"

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, width: float = 1.0):
        super().__init__(input_shape, num_classes, width)
        h1, h2 = scale(300, width), scale(100, width)
        self.fc1 = nn.Linear(math.prod(input_shape), h1)
        self.fc2 = nn.Linear(h1, h2)
        self.fc3 = nn.Linear(h2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)

    def permutation_spec(self) -> PermutationSpec:
        return chain(self, ["fc1", "fc2", "fc3"])


class MLP(Network):
    """inputs -> hidden[0] -> ... -> hidden[-1] -> classes, ReLU between; layers fc1, fc2...

    `mlp_3x512` is Ainsworth et al.'s (2023) MNIST MLP: three hidden layers of 512.
    """

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, width: float = 1.0,
                 *, hidden: tuple[int, ...] = (512, 512, 512)):
        super().__init__(input_shape, num_classes, width)
        sizes = [math.prod(input_shape)] + [scale(h, width) for h in hidden] + [num_classes]
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
            setattr(self, f"fc{i}", nn.Linear(n_in, n_out))
        self.depth = len(sizes) - 1
        self.output_layer = f"fc{self.depth}.weight"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for i in range(1, self.depth):
            x = F.relu(getattr(self, f"fc{i}")(x))
        return getattr(self, f"fc{self.depth}")(x)

    def permutation_spec(self) -> PermutationSpec:
        return chain(self, [f"fc{i}" for i in range(1, self.depth + 1)])
