"""Conv-2, Conv-4 and Conv-6, the VGG-like CIFAR networks of Frankle & Carbin (2019), Figure 2.

Conv-2: [64, 64, pool]; Conv-4: adds [128, 128, pool]; Conv-6: adds [256, 256, pool]. All
convolutions 3x3, padding 1, ReLU, with biases; then fc 256 -> fc 256 -> fc classes on the
flattened map. No BatchNorm, as in the paper.

On CIFAR-10 they have 4,301,642 / 2,425,930 / 2,262,602 parameters. The paper's figure gives
4.3M / 2.4M for Conv-2 / Conv-4 and 38K / 260K / 1.1M convolutional weights, all of which these
match; it gives 1.7M in all for Conv-6, which its own layer sizes cannot produce (1.1M conv
weights plus a 4096x256 first fc layer alone exceed it), so that figure is taken as a typo.
Pools follow the rule in `base`; the flatten size is computed from the input shape.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Network, pool_fits, scale
from .permutation import PermutationSpec, chain


class ConvNet(Network):
    """`stages` pairs of 3x3 convolutions, each pair followed by a 2x2 max-pool; 3 fc layers."""

    output_layer = "fc3.weight"
    STAGE_FILTERS = (64, 128, 256)

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, width: float = 1.0,
                 *, stages: int):
        super().__init__(input_shape, num_classes, width)
        c, h, w = input_shape
        convs, pools = [], []
        for filters in self.STAGE_FILTERS[:stages]:
            f = scale(filters, width)
            convs += [nn.Conv2d(c, f, 3, padding=1), nn.Conv2d(f, f, 3, padding=1)]
            keep = pool_fits(h, w)
            pools += [False, keep]
            if keep:
                h, w = h // 2, w // 2
            c = f
        self.convs = nn.ModuleList(convs)
        self.pool_after = tuple(pools)  # pool_after[i]: max-pool after convs[i]

        hidden = scale(256, width)
        self.fc1 = nn.Linear(c * h * w, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, pool in zip(self.convs, self.pool_after):
            x = F.relu(conv(x))
            if pool:
                x = F.max_pool2d(x, 2)
        x = x.flatten(1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)

    def permutation_spec(self) -> PermutationSpec:
        return chain(self, [f"convs.{i}" for i in range(len(self.convs))] + ["fc1", "fc2", "fc3"])
