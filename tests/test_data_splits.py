"""Train/validation splits and the normalised device tensors built from them."""
from __future__ import annotations

import pytest
import torch

from landscape.data import DeviceData, channel_stats, device_splits, make_synthetic, split_train_val
from landscape.errors import DataError


def test_split_is_disjoint_covering_and_sorted():
    train, val = split_train_val(100, 20, seed=3)
    assert train.dtype == torch.int64 and val.dtype == torch.int64
    assert len(train) == 80 and len(val) == 20
    assert torch.equal(torch.cat([train, val]).sort().values, torch.arange(100))
    assert torch.equal(train, train.sort().values) and torch.equal(val, val.sort().values)


def test_split_is_deterministic_and_seed_dependent():
    a = split_train_val(1000, 100, seed=0)
    b = split_train_val(1000, 100, seed=0)
    c = split_train_val(1000, 100, seed=1)
    assert torch.equal(a[1], b[1]) and torch.equal(a[0], b[0])
    assert not torch.equal(a[1], c[1])


def test_split_leaves_the_global_generator_alone():
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    split_train_val(50, 5, seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_empty_validation_and_bad_sizes():
    train, val = split_train_val(10, 0, seed=0)
    assert torch.equal(train, torch.arange(10)) and val.numel() == 0
    with pytest.raises(DataError, match="leaves nothing to train on"):
        split_train_val(10, 10, seed=0)
    with pytest.raises(DataError, match="negative"):
        split_train_val(10, -1, seed=0)


def test_device_splits_normalise_with_training_statistics():
    ds = make_synthetic(n_train=300, n_test=50, shape=(3, 4, 4))
    train, val, test = device_splits(ds, val_size=60, split_seed=0, device="cpu")
    assert (len(train), len(val), len(test)) == (240, 60, 50)
    assert train.x.dtype == torch.float32 and train.y.dtype == torch.int64 and train.x.shape == (240, 3, 4, 4)
    train_idx, val_idx = split_train_val(300, 60, 0)
    mean, std = channel_stats(ds.train_x[train_idx])
    assert train.mean == mean and test.std == std and val.mean == mean
    # Training inputs come out at zero mean and unit std per channel.
    assert torch.allclose(train.x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(train.x.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-5)
    expected = (ds.test_x.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(test.x, expected, atol=1e-5)
    assert torch.equal(val.y, ds.train_y[val_idx])


def test_device_splits_without_validation():
    ds = make_synthetic(n_train=40, n_test=10)
    train, val, test = device_splits(ds, val_size=0, split_seed=0, device="cpu")
    assert len(train) == 40 and len(val) == 0 and val.x.shape == (0, 1, 8, 8)


def test_constant_channel_does_not_divide_by_zero():
    images = torch.full((4, 1, 2, 2), 9, dtype=torch.uint8)
    labels = torch.zeros(4, dtype=torch.int64)
    data = DeviceData.from_images(images, labels, mean=(9 / 255,), std=(0.0,), device="cpu")
    assert torch.isfinite(data.x).all() and float(data.x.abs().max()) == 0.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_device_data_lands_on_cuda():
    train, _, _ = device_splits(make_synthetic(n_train=40, n_test=10), 10, 0, "cuda")
    assert train.x.is_cuda and train.y.is_cuda
