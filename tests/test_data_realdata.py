"""Readers against the real datasets in ../shared/data (MNIST IDX files, CIFAR-10 as JPEGs)."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from landscape.data import decode, load_dataset

pytestmark = pytest.mark.realdata

CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    # conftest does this too; restated because writing beside the shared data must never happen.
    monkeypatch.setenv("LANDSCAPE_CACHE", str(tmp_path / "cache"))


# `shared_data` (tests/conftest.py) finds ../shared/data or $LANDSCAPE_SHARED_DATA, or skips.
def test_real_mnist(shared_data):
    ds = load_dataset("mnist", shared_data)
    assert ds.train_x.shape == (60000, 1, 28, 28) and ds.test_x.shape == (10000, 1, 28, 28)
    assert torch.bincount(ds.train_y).sum() == 60000 and ds.train_y.max() == 9
    (mean,), (std,) = ds.channel_stats()
    assert mean == pytest.approx(0.1307, abs=5e-4) and std == pytest.approx(0.3081, abs=5e-4)


def test_real_cifar10_jpeg_subset(shared_data, tmp_path, monkeypatch):
    source = shared_data / "cifar10-jpeg"
    if not source.is_dir():
        pytest.skip(f"real CIFAR-10 not found under {shared_data}: set LANDSCAPE_SHARED_DATA")
    # Decoding all 60,000 JPEGs takes seconds; a symlinked subset exercises the same code.
    subset = tmp_path / "cifar-subset"
    for split, per_class in (("train", 50), ("test", 20)):
        for c in CIFAR_CLASSES:
            (subset / split / c).mkdir(parents=True)
            for name in sorted(os.listdir(source / split / c))[:per_class]:
                (subset / split / c / name).symlink_to(source / split / c / name)
    monkeypatch.setattr(decode, "PARALLEL_MIN_FILES", 0)  # go through the worker pool too
    ds = load_dataset(f"imagefolder:{subset}")
    assert ds.classes == CIFAR_CLASSES
    assert ds.train_x.shape == (500, 3, 32, 32) and ds.test_x.shape == (200, 3, 32, 32)
    assert ds.train_y.tolist() == [k for k in range(10) for _ in range(50)]
    from PIL import Image

    with Image.open(source / "test" / "frog" / sorted(os.listdir(source / "test" / "frog"))[3]) as image:
        expected = np.asarray(image.convert("RGB")).transpose(2, 0, 1)
    assert np.array_equal(ds.test_x[6 * 20 + 3].numpy(), expected)
    mean, _ = ds.channel_stats()
    assert mean == pytest.approx((0.491, 0.482, 0.447), abs=0.06)
