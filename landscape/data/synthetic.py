"""A small procedurally generated image classification task, for tests and quick experiments.

Each class has a smooth random prototype image. A sample is its class prototype at a random contrast,
shifted (circularly) by up to H//8 pixels in each direction, plus strong per-pixel Gaussian noise.
The shift and noise keep it from being trivial: logistic regression reaches about 84% test accuracy
on the default 1×8×8 task (79% on 3×16×16) and a small MLP somewhat more, so training visibly makes
progress without finishing in one step. Everything is drawn from one seeded generator, so a seed always
gives the same images.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .dataset import Dataset

NOISE = 1.0          # per-pixel noise std, in units of the prototypes' std
CONTRAST = (0.5, 1.5)  # range of the per-sample prototype amplitude
_REFERENCE_PIXELS = 64  # the default 1×8×8 sets the difficulty; larger images are scaled to match
# Maps the signal (roughly ±3) into [0, 1] around mid-grey; the rare extremes clip.
_SCALE, _OFFSET = 0.2, 0.5


def make_synthetic(n_train: int = 2000, n_test: int = 500, shape: tuple[int, int, int] = (1, 8, 8),
                   num_classes: int = 10, seed: int = 0, name: str = "synthetic") -> Dataset:
    """A deterministic synthetic dataset of `n_train + n_test` uint8 images of `shape`."""
    if n_train < 1 or n_test < 0 or num_classes < 2 or len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"make_synthetic needs n_train >= 1, n_test >= 0, num_classes >= 2 and a (C, H, W) shape, "
                         f"got {n_train}, {n_test}, {num_classes}, {shape}")
    g = torch.Generator().manual_seed(seed)
    n = n_train + n_test
    # More pixels carry more independent evidence (a linear read-out gains sqrt(pixels) in
    # signal-to-noise), so the signal shrinks as images grow to keep the difficulty about the same.
    prototypes = _prototypes(num_classes, shape, g) * (_REFERENCE_PIXELS / math.prod(shape)) ** 0.5
    labels = torch.cat([_balanced_labels(n_train, num_classes, g), _balanced_labels(n_test, num_classes, g)])
    contrast = torch.empty(n, 1, 1, 1).uniform_(*CONTRAST, generator=g)
    signal = _shift(prototypes[labels] * contrast, max(1, shape[1] // 8), g)
    noisy = signal + NOISE * torch.randn(n, *shape, generator=g)
    images = (noisy * _SCALE + _OFFSET).clamp(0, 1).mul(255).round().to(torch.uint8)
    classes = tuple(f"pattern{k}" for k in range(num_classes))
    return Dataset(name, images[:n_train], labels[:n_train], images[n_train:], labels[n_train:], classes)


def _balanced_labels(n: int, num_classes: int, g: torch.Generator) -> torch.Tensor:
    """Each class as often as `n` allows (counts differ by at most one), in shuffled order."""
    return torch.randperm(n, generator=g) % num_classes


def _prototypes(num_classes: int, shape: tuple[int, int, int], g: torch.Generator) -> torch.Tensor:
    """Smooth patterns (random at half resolution, upsampled), each scaled to zero mean, unit std."""
    c, h, w = shape
    coarse = torch.randn(num_classes, c, (h + 1) // 2, (w + 1) // 2, generator=g)
    smooth = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    centred = smooth - smooth.mean(dim=(1, 2, 3), keepdim=True)
    return centred / centred.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)


def _shift(x: torch.Tensor, max_shift: int, g: torch.Generator) -> torch.Tensor:
    """Roll each image by its own random offset in [-max_shift, max_shift], as one gather."""
    n, c, h, w = x.shape
    dy = torch.randint(-max_shift, max_shift + 1, (n, 1), generator=g)
    dx = torch.randint(-max_shift, max_shift + 1, (n, 1), generator=g)
    rows = (torch.arange(h) - dy) % h
    cols = (torch.arange(w) - dx) % w
    return x[torch.arange(n)[:, None, None, None], torch.arange(c)[None, :, None, None],
             rows[:, None, :, None], cols[:, None, None, :]]
