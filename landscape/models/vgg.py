"""VGG-11, VGG-16 and VGG-19 for CIFAR as in open_lth (Frankle et al. 2020, "Linear Mode
Connectivity and the Lottery Ticket Hypothesis"), after Simonyan & Zisserman (2015).

Each convolution is 3x3, padding 1, with a bias, followed by BatchNorm and ReLU; the plans are
VGG's with four max-pools (the fifth is dropped, as open_lth does for 32x32 input). The
classifier is open_lth's CIFAR variant: an average pool over the remaining map and a single
linear layer, no 4096-wide fc layers. open_lth averages with a fixed 2x2 window (exactly the
whole 2x2 map left from 32x32 input); here the average is global, which is the same on CIFAR
and also works when other input sizes leave a different map size.

On CIFAR-10: VGG-11 9,231,114, VGG-16 14,728,266, VGG-19 20,040,522 parameters, equal to
open_lth's tests (and the 20.0M of Frankle & Carbin 2019 for VGG-19). Pools follow the rule in
`base`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Network, pool_fits, scale
from .permutation import PermutationSpec, chain

POOL = "M"
PLANS: dict[int, tuple] = {
    11: (64, POOL, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512),
    16: (64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL, 512, 512, 512, POOL, 512, 512, 512),
    19: (64, 64, POOL, 128, 128, POOL, 256, 256, 256, 256, POOL, 512, 512, 512, 512, POOL,
         512, 512, 512, 512),
}


class ConvBNReLU(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class VGG(Network):
    output_layer = "fc.weight"

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, width: float = 1.0,
                 *, depth: int):
        super().__init__(input_shape, num_classes, width)
        c, h, w = input_shape
        blocks, pools = [], []
        for spec in PLANS[depth]:
            if spec == POOL:
                keep = pool_fits(h, w)
                pools[-1] = keep
                if keep:
                    h, w = h // 2, w // 2
            else:
                f = scale(spec, width)
                blocks.append(ConvBNReLU(c, f))
                pools.append(False)
                c = f
        self.blocks = nn.ModuleList(blocks)
        self.pool_after = tuple(pools)  # pool_after[i]: max-pool after blocks[i]
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block, pool in zip(self.blocks, self.pool_after):
            x = block(x)
            if pool:
                x = F.max_pool2d(x, 2)
        x = x.mean(dim=(2, 3))  # global average pool
        return self.fc(x)

    def permutation_spec(self) -> PermutationSpec:
        # Each block's conv and BatchNorm share one group; the block's output (after ReLU) is the probe.
        blocks = [f"blocks.{i}" for i in range(len(self.blocks))]
        return chain(self, [f"{b}.conv" for b in blocks] + ["fc"], probes=blocks,
                     norms={f"{b}.conv": f"{b}.bn" for b in blocks})
