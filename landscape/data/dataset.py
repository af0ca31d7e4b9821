"""The in-memory form every reader produces: raw uint8 images (or float32 signals) and int64 labels,
train and test."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True, eq=False)  # eq=False: comparing tensors field by field is ambiguous
class Dataset:
    """A labelled image classification dataset, images kept as uint8 `[N, C, H, W]`.

    Images stay uint8 until they go to the training device (see `device.py`): a quarter of the
    memory of float32, and the exact values the files hold. Data that is not 8-bit pixels (1-D
    signals such as MNIST-1D, a user's float arrays) is kept as float32 in its own units; 1-D
    signals of length L have the shape `[N, C, 1, L]`.
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        # Readers validate their files; a failure here is a bug in a reader (or a cache entry
        # that is not what it claims to be), so it is a ValueError, not a DataError.
        for split, x, y in (("train", self.train_x, self.train_y), ("test", self.test_x, self.test_y)):
            where = f"{self.name} {split}"
            if x.dtype not in (torch.uint8, torch.float32) or x.dim() != 4:
                raise ValueError(f"{where} images must be uint8 or float32 [N, C, H, W], "
                                 f"got {x.dtype} {tuple(x.shape)}")
            if y.dtype != torch.int64 or y.shape != (x.shape[0],):
                raise ValueError(f"{where} labels must be int64 [{x.shape[0]}], got {y.dtype} {tuple(y.shape)}")
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= len(self.classes)):
                raise ValueError(f"{where} labels fall outside 0..{len(self.classes) - 1}")
        if self.train_x.dtype != self.test_x.dtype:
            raise ValueError(f"{self.name} train images are {self.train_x.dtype}, test images {self.test_x.dtype}")
        if self.train_x.shape[1:] != self.test_x.shape[1:]:
            raise ValueError(f"{self.name} train images are {tuple(self.train_x.shape[1:])} "
                             f"but test images are {tuple(self.test_x.shape[1:])}")
        if not self.classes or not all(isinstance(c, str) for c in self.classes):
            raise ValueError(f"{self.name} class names must be a non-empty tuple of strings")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """`(C, H, W)` of one image."""
        c, h, w = self.train_x.shape[1:]
        return (int(c), int(h), int(w))

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def channel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std of the training images scaled to [0, 1]."""
        return channel_stats(self.train_x)

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={len(self.train_y)}, test={len(self.test_y)}, "
                f"shape={self.input_shape}, classes={self.num_classes})")


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of uint8 `[N, C, H, W]` images scaled to [0, 1]
    (of float32 data: in its own units).

    Works from a 256-bin histogram per channel: exact, and it never materialises a float copy of
    the images (CIFAR-10 as float64 would be 1.2 GB).
    """
    if images.dtype == torch.float32 and images.dim() == 4 and images.shape[0] > 0:
        values = images.transpose(0, 1).reshape(images.shape[1], -1).double()
        return (tuple(float(m) for m in values.mean(1)),
                tuple(float(s) for s in values.std(1, unbiased=False)))
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[0] == 0:
        raise ValueError(f"channel_stats needs non-empty uint8 [N, C, H, W] images, "
                         f"got {images.dtype} {tuple(images.shape)}")
    levels = torch.arange(256, dtype=torch.float64) / 255.0
    means, stds = [], []
    for c in range(images.shape[1]):
        counts = torch.bincount(images[:, c].reshape(-1), minlength=256).to(torch.float64)
        total = counts.sum()
        mean = (counts * levels).sum() / total
        var = (counts * (levels - mean) ** 2).sum() / total
        means.append(float(mean))
        stds.append(float(var.sqrt()))
    return tuple(means), tuple(stds)
