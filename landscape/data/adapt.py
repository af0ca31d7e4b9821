"""Adapting a dataset's images to another input shape, so a network found on one dataset can be
trained on another (ticket transfer, Morcos et al. 2019).

The rule: channels first (3 -> 1 by the mean of the channels, 1 -> 3 by repetition), then size
(bilinear resize with antialiasing, as PIL's resize would do), then rounding back to uint8.
"""
from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F

from .dataset import Dataset


def adapt_images(images: torch.Tensor, shape: tuple[int, int, int], chunk: int = 10000) -> torch.Tensor:
    c, h, w = shape
    if tuple(images.shape[1:]) == shape:
        return images
    out = torch.empty((len(images), c, h, w), dtype=torch.uint8)
    for start in range(0, len(images), chunk):
        x = images[start:start + chunk].float()
        if x.shape[1] != c:
            x = x.mean(1, keepdim=True) if c == 1 else x.expand(-1, c, -1, -1)
        if tuple(x.shape[2:]) != (h, w):
            x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        out[start:start + chunk] = x.round().clamp(0, 255).to(torch.uint8)
    return out


def adapt_dataset(dataset: Dataset, shape: tuple[int, int, int]) -> Dataset:
    if dataset.input_shape == tuple(shape):
        return dataset
    tag = "x".join(str(s) for s in shape)
    return replace(dataset, name=f"{dataset.name}@{tag}", train_x=adapt_images(dataset.train_x, shape),
                   test_x=adapt_images(dataset.test_x, shape))
