"""Residual networks for small images.

`resnet20/32/56`: He et al. (2016), section 4.2 — a 3x3 stem convolution with 16 filters, three
stages of n basic blocks with 16, 32 and 64 filters (depth 6n + 2), global average pool, one
linear layer. Where a block changes shape (the first block of stages 2 and 3) its shortcut is a
1x1 strided convolution plus BatchNorm — He et al.'s option B, the one open_lth uses (He et
al.'s CIFAR table uses option A, zero-padded identity, which has no parameters). Hence 272,474
parameters for ResNet-20 on CIFAR-10, equal to open_lth, against He et al.'s 0.27M; ResNet-32
and ResNet-56 likewise sit slightly above their 0.46M and 0.85M.

`resnet18`: the ImageNet ResNet-18 (He et al. 2016, four stages of two basic blocks with 64,
128, 256 and 512 filters, option B shortcuts) adapted to small images the usual way: a 3x3
stride-1 stem and no max-pool. 11,173,962 parameters on CIFAR-10, the common CIFAR ResNet-18.

Convolutions have no bias (BatchNorm follows each). The residual addition is out of place so
the blocks stay safe under `torch.func` transforms and autograd alike. Stride-2 convolutions
never shrink a map below 1x1 (padding 1), so no layer is skipped on small inputs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Network, scale
from .permutation import Axis, PermutationGroup, PermutationSpec, group, in_axes, out_axes


class Projection(nn.Module):
    """Option-B shortcut: 1x1 convolution with the block's stride, then BatchNorm."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers around a shortcut; ReLU after the first and after the sum."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = Projection(c_in, c_out, stride) if stride != 1 or c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        skip = x if self.shortcut is None else self.shortcut(x)
        return F.relu(out + skip)


class ResNet(Network):
    """Stem conv-BN-ReLU, stages of basic blocks (stride 2 entering every stage but the first),
    global average pool, linear. `plan` is ((filters, blocks), ...) per stage."""

    output_layer = "fc.weight"

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, width: float = 1.0,
                 *, plan: tuple[tuple[int, int], ...]):
        super().__init__(input_shape, num_classes, width)
        c = scale(plan[0][0], width)
        self.conv = nn.Conv2d(input_shape[0], c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)
        blocks = []
        for stage, (filters, n) in enumerate(plan):
            f = scale(filters, width)
            for i in range(n):
                blocks.append(BasicBlock(c, f, stride=2 if stage > 0 and i == 0 else 1))
                c = f
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.conv(x)))
        x = self.blocks(x)
        x = x.mean(dim=(2, 3))  # global average pool
        return self.fc(x)

    def permutation_spec(self) -> PermutationSpec:
        """One group inside each block (conv1, bn1 -> conv2), and one per residual stream: the stem
        and every block without a projection write the same stream, so they share its permutation;
        a projection shortcut starts a new stream (in these plans, once per stage)."""
        groups: list[PermutationGroup] = []
        stream: list[Axis] = out_axes(self.conv, "conv") + out_axes(self.bn, "bn")
        probes = ["bn"]
        size = self.conv.out_channels

        def close(index: int) -> None:
            groups.append(PermutationGroup(f"stream{index}", size, tuple(stream), tuple(probes)))

        streams = 0
        for i, block in enumerate(self.blocks):
            b = f"blocks.{i}"
            groups.append(group(self, f"{b}.inner", block.conv1.out_channels, [f"{b}.conv1", f"{b}.bn1"],
                                [f"{b}.conv2"], [f"{b}.bn1"]))
            stream += in_axes(f"{b}.conv1")
            if block.shortcut is not None:  # the stream ends here: the projection reads it
                stream += in_axes(f"{b}.shortcut.conv")
                close(streams)
                streams += 1
                stream = out_axes(block.shortcut.conv, f"{b}.shortcut.conv") \
                    + out_axes(block.shortcut.bn, f"{b}.shortcut.bn")
                probes, size = [], block.conv2.out_channels
            stream += out_axes(block.conv2, f"{b}.conv2") + out_axes(block.bn2, f"{b}.bn2")
            probes.append(b)
        stream += in_axes("fc")
        close(streams)
        return PermutationSpec(tuple(groups))


def cifar_plan(depth: int) -> tuple[tuple[int, int], ...]:
    """He et al.'s CIFAR plan for depth 6n + 2."""
    n = (depth - 2) // 6
    return ((16, n), (32, n), (64, n))


RESNET18_PLAN = ((64, 2), (128, 2), (256, 2), (512, 2))
