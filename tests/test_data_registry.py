"""Dataset names and roots, the Dataset container, and the built-in digits and synthetic sets."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from landscape.data import Dataset, channel_stats, data_root, dataset_names, load_dataset, make_synthetic
from landscape.errors import DataError, UserError


def test_names_cover_every_reader():
    names = dataset_names()
    for name in ("mnist", "fashion-mnist", "cifar10", "cifar100", "svhn", "digits", "synthetic",
                 "synthetic-rgb", "imagefolder:<path>"):
        assert name in names


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(DataError) as excinfo:
        load_dataset("imagenet")
    assert isinstance(excinfo.value, UserError)
    message = str(excinfo.value)
    assert "'imagenet'" in message and "mnist" in message and "imagefolder:<path>" in message


def test_data_root_precedence(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LANDSCAPE_DATA", raising=False)
    assert data_root() == tmp_path.resolve() / "data"
    monkeypatch.setenv("LANDSCAPE_DATA", str(tmp_path / "env"))
    assert data_root() == tmp_path.resolve() / "env"
    assert data_root("explicit") == tmp_path.resolve() / "explicit"
    assert data_root(Path("~")) == Path.home().resolve()


def test_names_are_case_insensitive():
    assert load_dataset("Synthetic").name == "synthetic"


def test_synthetic_defaults_and_determinism():
    a, b = load_dataset("synthetic"), load_dataset("synthetic")
    assert a.train_x.shape == (2000, 1, 8, 8) and a.test_x.shape == (500, 1, 8, 8) and a.num_classes == 10
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    assert torch.bincount(a.train_y).tolist() == [200] * 10
    assert not torch.equal(make_synthetic(seed=1).train_x, a.train_x)


def test_synthetic_rgb_and_custom_shapes():
    rgb = load_dataset("synthetic-rgb")
    assert rgb.input_shape == (3, 16, 16) and rgb.name == "synthetic-rgb"
    small = make_synthetic(n_train=30, n_test=0, shape=(2, 5, 7), num_classes=3, seed=4)
    assert small.train_x.shape == (30, 2, 5, 7) and small.test_x.shape == (0, 2, 5, 7) and small.num_classes == 3


def test_synthetic_is_learnable_but_not_trivial():
    ds = make_synthetic()
    # Nearest class mean on the training set, scored on the test set: far above chance (10%),
    # far below perfect.
    x = ds.train_x.flatten(1).float()
    means = torch.stack([x[ds.train_y == k].mean(0) for k in range(10)])
    predicted = torch.cdist(ds.test_x.flatten(1).float(), means).argmin(1)
    accuracy = (predicted == ds.test_y).float().mean().item()
    assert 0.4 < accuracy < 0.97


def test_digits_split_is_fixed():
    ds = load_dataset("digits")
    assert ds.train_x.shape == (1497, 1, 8, 8) and ds.test_x.shape == (300, 1, 8, 8)
    assert int(ds.train_x.max()) == 255 and int(ds.train_x.min()) == 0
    again = load_dataset("digits")
    assert torch.equal(ds.test_y, again.test_y) and torch.equal(ds.train_x, again.train_x)
    assert sorted(torch.bincount(ds.test_y).tolist())[0] > 15  # every digit appears in the test set


def test_digits_are_scikit_learns_own_read_without_importing_it():
    import subprocess
    import sys

    from sklearn.datasets import load_digits

    from landscape.data.digits import bundled_digits

    images, labels = bundled_digits()
    reference = load_digits()
    assert np.array_equal(images, reference.images) and np.array_equal(labels, reference.target)
    code = "import sys; from landscape.data.digits import bundled_digits; bundled_digits(); print('sklearn' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_dataset_rejects_inconsistent_tensors():
    x, y = torch.zeros(4, 1, 2, 2, dtype=torch.uint8), torch.zeros(4, dtype=torch.int64)
    with pytest.raises(ValueError, match="uint8"):
        Dataset("d", x.float(), y, x, y, ("a",))
    with pytest.raises(ValueError, match="labels"):
        Dataset("d", x, y[:3], x, y, ("a",))
    with pytest.raises(ValueError, match="outside"):
        Dataset("d", x, y + 1, x, y, ("a",))
    with pytest.raises(ValueError, match="test images"):
        Dataset("d", x, y, torch.zeros(4, 3, 2, 2, dtype=torch.uint8), y, ("a",))


def test_channel_stats_are_exact():
    images = torch.randint(0, 256, (50, 3, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    mean, std = channel_stats(images)
    scaled = images.double() / 255
    assert torch.allclose(torch.tensor(mean, dtype=torch.float64), scaled.mean(dim=(0, 2, 3)))
    assert torch.allclose(torch.tensor(std, dtype=torch.float64), scaled.std(dim=(0, 2, 3), unbiased=False))
