"""SVHN (cropped digits) from the official MATLAB files `<root>/svhn/{train,test}_32x32.mat`.

Each file holds `X`, uint8 `(32, 32, 3, N)` (height, width, channel, sample), and `y`, `(N, 1)` labels
1..10 where 10 stands for the digit 0. The `extra_32x32.mat` set is not used.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .dataset import Dataset
from .files import bad_file, find_file

CLASSES = tuple(str(d) for d in range(10))
_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}


def svhn_sources(root: Path) -> list[Path]:
    return [find_file(root / "svhn", name, "svhn", root) for name in _FILES.values()]


def read_svhn(root: Path) -> Dataset:
    train_path, test_path = svhn_sources(root)
    return Dataset("svhn", *_read_mat(train_path), *_read_mat(test_path), CLASSES)


def _read_mat(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    import scipy.io  # deferred: scipy.io costs import time that only SVHN needs

    try:
        mat = scipy.io.loadmat(path, variable_names=("X", "y"))
    except Exception as err:  # scipy raises ValueError, TypeError, MatReadError, OSError... by damage
        raise bad_file(path, f"is not a readable MATLAB file ({type(err).__name__}: {err})", "svhn") from err
    absent = [k for k in ("X", "y") if k not in mat]
    if absent:
        raise bad_file(path, f"lacks the variable(s) {', '.join(absent)}", "svhn")
    x, y = mat["X"], mat["y"]
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise bad_file(path, f"holds X as {x.dtype} {x.shape}, expected uint8 (32, 32, 3, N)", "svhn")
    labels = np.asarray(y).reshape(-1).astype(np.int64)
    if labels.shape[0] != x.shape[3]:
        raise bad_file(path, f"holds {x.shape[3]} images but {labels.shape[0]} labels", "svhn")
    if labels.size and (labels.min() < 1 or labels.max() > 10):
        raise bad_file(path, "holds labels outside 1..10", "svhn")
    labels[labels == 10] = 0
    # loadmat returns Fortran-ordered arrays, so this HWCN -> NCHW copy moves little memory.
    images = np.ascontiguousarray(x.transpose(3, 2, 0, 1))
    return torch.from_numpy(images), torch.from_numpy(labels)
