"""Data augmentation applied to a whole batch at once, on the batch's own device.

Each function draws its randomness from the `torch.Generator` it is given, on that generator's
device, and moves the few draws (offsets, flip bits) to the batch's device. So a training run that
seeds a CPU generator gets the same augmentations every time and on every device, independent of
torch's global generator.

Augmentation runs after normalisation: padding for random crops fills with 0 in normalised space,
i.e. with the training set's mean colour rather than black. That is a deliberate, documented
difference from torchvision's default (black padding before normalising); it matters little, and it
lets batches be gathered already normalised.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ConfigError

AUGMENT_KINDS = ("none", "flip", "crop", "crop-flip")


def augment_batch(x: torch.Tensor, kind: str, generator: torch.Generator) -> torch.Tensor:
    """Augment a float `[N, C, H, W]` batch by `kind`, one of `AUGMENT_KINDS`.

    Crops pad by 4 pixels for 32×32 images (the usual CIFAR recipe) and by min(H, W) // 8, at least
    1, for other sizes. `crop-flip` crops first, then flips.
    """
    if kind not in AUGMENT_KINDS:
        raise ConfigError(f"unknown augmentation {kind!r}", f"use one of {', '.join(AUGMENT_KINDS)}")
    if kind in ("crop", "crop-flip"):
        x = random_crop(x, crop_padding(x.shape[-2], x.shape[-1]), generator)
    if kind in ("flip", "crop-flip"):
        x = random_flip(x, generator)
    return x


def crop_padding(height: int, width: int) -> int:
    return max(1, min(height, width) // 8)


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad each image by `padding` and crop it back to H×W at its own random offset."""
    rows, cols = crop_offsets(x.shape[0], padding, generator, x.device)
    return crop_at(x, padding, rows, cols)


def crop_offsets(n: int, padding: int, generator: torch.Generator,
                 device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample top and left offsets into the padded image, each uniform in [0, 2 * padding]."""
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=generator, device=generator.device).to(device)
    return offsets[0], offsets[1]


def crop_at(x: torch.Tensor, padding: int, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Crop `x` zero-padded by `padding` at per-sample offsets `rows`, `cols`, as one gather."""
    if padding == 0:
        return x
    n, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    row_index = rows[:, None] + torch.arange(h, device=x.device)  # [N, H]
    col_index = cols[:, None] + torch.arange(w, device=x.device)  # [N, W]
    return padded[torch.arange(n, device=x.device)[:, None, None, None],
                  torch.arange(c, device=x.device)[None, :, None, None],
                  row_index[:, None, :, None],
                  col_index[:, None, None, :]]


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    return flip_where(x, flip_mask(x.shape[0], generator, x.device))


def flip_mask(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Which of `n` samples to flip: bool `[N]`, each True with probability 1/2."""
    return torch.rand(n, generator=generator, device=generator.device).to(device) < 0.5


def flip_where(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.where(mask[:, None, None, None], x.flip(-1), x)
