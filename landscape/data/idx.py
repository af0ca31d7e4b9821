"""MNIST and Fashion-MNIST from their IDX files, in torchvision's on-disk layout.

`<root>/MNIST/raw/` and `<root>/FashionMNIST/raw/` hold `train-images-idx3-ubyte`,
`train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`, each plain or
gzipped (`.gz`). Files are checked by their IDX headers, never by checksum: a copy rebuilt from
another source is as good as the official one if its header and size agree.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import torch

from .dataset import Dataset
from .files import bad_file, find_file, read_bytes

IMAGE_MAGIC = 2051  # unsigned byte data, 3 dimensions
LABEL_MAGIC = 2049  # unsigned byte data, 1 dimension
SIDE = 28

MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

_FOLDERS = {"mnist": ("MNIST", MNIST_CLASSES), "fashion-mnist": ("FashionMNIST", FASHION_CLASSES)}
_SPLITS = {"train": "train", "test": "t10k"}


def read_mnist(root: Path) -> Dataset:
    return _read("mnist", root)


def read_fashion_mnist(root: Path) -> Dataset:
    return _read("fashion-mnist", root)


def _read(dataset: str, root: Path) -> Dataset:
    folder_name, classes = _FOLDERS[dataset]
    folder = root / folder_name / "raw"
    # Locate all four files before decoding any, so a missing one is reported before slow work.
    paths = {
        split: (find_file(folder, f"{prefix}-images-idx3-ubyte", dataset, root, gzip_ok=True),
                find_file(folder, f"{prefix}-labels-idx1-ubyte", dataset, root, gzip_ok=True))
        for split, prefix in _SPLITS.items()
    }
    decoded = {}
    for split, (images_path, labels_path) in paths.items():
        images = read_idx_images(images_path, dataset)
        labels = read_idx_labels(labels_path, dataset, len(classes))
        if len(images) != len(labels):
            problem = f"holds {len(images)} images but {labels_path.name} holds {len(labels)} labels"
            raise bad_file(images_path, problem, dataset)
        decoded[split] = (torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels))
    return Dataset(dataset, *decoded["train"], *decoded["test"], classes)


def read_idx_images(path: Path, dataset: str) -> np.ndarray:
    """uint8 `[N, 28, 28]` from an IDX image file."""
    data = read_bytes(path, dataset)
    _, count, rows, cols = _header(path, data, 4, IMAGE_MAGIC, dataset)
    if (rows, cols) != (SIDE, SIDE):
        raise bad_file(path, f"holds {rows}×{cols} images, expected {SIDE}×{SIDE}", dataset)
    _check_length(path, data, 16, count, rows * cols, "images", dataset)
    # .copy(): frombuffer views immutable bytes, and torch wants a writable array.
    return np.frombuffer(data, np.uint8, offset=16).reshape(count, rows, cols).copy()


def read_idx_labels(path: Path, dataset: str, num_classes: int) -> np.ndarray:
    """int64 `[N]` from an IDX label file, each checked to be a class index."""
    data = read_bytes(path, dataset)
    _, count = _header(path, data, 2, LABEL_MAGIC, dataset)
    _check_length(path, data, 8, count, 1, "labels", dataset)
    labels = np.frombuffer(data, np.uint8, offset=8).astype(np.int64)
    if count and int(labels.max()) >= num_classes:
        raise bad_file(path, f"holds label {int(labels.max())}, but {dataset} has classes 0..{num_classes - 1}",
                       dataset)
    return labels


def _header(path: Path, data: bytes, fields: int, magic: int, dataset: str) -> tuple[int, ...]:
    if len(data) < 4 * fields:
        raise bad_file(path, f"is truncated: {len(data)} bytes, shorter than the {4 * fields}-byte IDX header",
                       dataset)
    values = struct.unpack(f">{fields}I", data[: 4 * fields])
    if values[0] != magic:
        kind = "image" if magic == IMAGE_MAGIC else "label"
        raise bad_file(path, f"is not an IDX {kind} file: magic number {values[0]}, expected {magic}", dataset)
    return values


def _check_length(path: Path, data: bytes, header: int, count: int, item_size: int, what: str, dataset: str) -> None:
    expected = header + count * item_size
    if len(data) < expected:
        raise bad_file(path, f"is truncated: its header announces {count} {what} ({expected} bytes) "
                             f"but it holds {len(data)} bytes", dataset)
    if len(data) > expected:
        raise bad_file(path, f"has {len(data) - expected} bytes beyond the {count} {what} its header announces",
                       dataset)
