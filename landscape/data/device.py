"""Dataset splits as normalised float tensors living on the training device.

Small image datasets fit in accelerator memory whole (CIFAR-10's training set is 0.6 GB as float32),
so training gathers batches by index from one tensor instead of running a DataLoader: no workers, no
per-sample Python, no host-to-device copy per step.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .dataset import Dataset, channel_stats
from .splits import split_train_val


@dataclass(frozen=True, eq=False)
class DeviceData:
    """One split's images as one normalised float tensor on the training device, labels beside it."""

    x: torch.Tensor             # float32 [N, C, H, W], (pixel/255 - mean) / std per channel (float data: (x - mean) / std)
    y: torch.Tensor             # int64 [N], on the same device
    mean: tuple[float, ...]     # the per-channel statistics x was normalised with
    std: tuple[float, ...]

    @classmethod
    def from_images(cls, images: torch.Tensor, labels: torch.Tensor, *, mean: tuple[float, ...],
                    std: tuple[float, ...], device: torch.device | str) -> "DeviceData":
        """Normalise uint8 `[N, C, H, W]` images with `mean`/`std` (of [0, 1]-scaled pixels) on `device`."""
        device = torch.device(device)
        # Move uint8 and convert there: a quarter of the bytes over the bus, and the GPU does the maths.
        if images.dtype == torch.uint8:
            x = images.to(device).to(torch.float32).div_(255.0)
        else:  # float data in its own units; a copy, since it is normalised in place below
            x = images.to(device=device, dtype=torch.float32, copy=True)
        shape = (1, -1, 1, 1)
        mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(shape)
        # A constant channel has std 0; dividing by 1 instead leaves it centred at 0, not infinite.
        std_t = torch.tensor([s if s > 0 else 1.0 for s in std], dtype=torch.float32, device=device).view(shape)
        x = x.sub_(mean_t).div_(std_t)
        return cls(x, labels.to(device=device, dtype=torch.int64), tuple(mean), tuple(std))

    def __len__(self) -> int:
        return int(self.y.shape[0])


def device_splits(dataset: Dataset, val_size: int, split_seed: int,
                  device: torch.device | str) -> tuple[DeviceData, DeviceData, DeviceData]:
    """`(train, val, test)` on `device`, validation held out of the training set by `split_train_val`.

    All three are normalised with the channel statistics of the training indices alone, so nothing
    about the held-out images leaks into the inputs the model trains on. With `val_size=0` the
    validation split is empty.
    """
    train_idx, val_idx = split_train_val(len(dataset.train_y), val_size, split_seed)
    train_images = dataset.train_x[train_idx]
    mean, std = channel_stats(train_images)

    def make(images: torch.Tensor, labels: torch.Tensor) -> DeviceData:
        return DeviceData.from_images(images, labels, mean=mean, std=std, device=device)

    return (make(train_images, dataset.train_y[train_idx]),
            make(dataset.train_x[val_idx], dataset.train_y[val_idx]),
            make(dataset.test_x, dataset.test_y))
