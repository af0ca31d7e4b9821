"""Any image classification dataset laid out as `<path>/{train,test}/<class>/<image>`.

Class folders sorted by name give the label indices (the layout torchvision's ImageFolder reads), so
CIFAR-10's folders `airplane` … `truck` come out as its official labels 0 … 9. Files are taken in
name order within a class. Hidden files and files without an image suffix are skipped.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .dataset import Dataset
from .decode import decode_groups

PREFIX = "imagefolder:"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp"})
SPLITS = ("train", "test")


@dataclass(frozen=True)
class FolderListing:
    """The files of an imagefolder dataset, per split, with their labels."""

    classes: tuple[str, ...]
    files: dict[str, list[str]]  # absolute paths as str: 60,000 Path objects cost half a second
    labels: dict[str, np.ndarray]

    def all_files(self) -> list[str]:
        return [p for split in SPLITS for p in self.files[split]]


def imagefolder_name(path: Path) -> str:
    return f"{PREFIX}{path}"


def imagefolder_sources(path: Path) -> list[str]:
    return list_imagefolder(path).all_files()


def read_imagefolder(path: Path) -> Dataset:
    listing = list_imagefolder(path)
    train_x, test_x = decode_groups([listing.files[s] for s in SPLITS], f"decoding {path.name}")
    return Dataset(imagefolder_name(path),
                   torch.from_numpy(train_x), torch.from_numpy(listing.labels["train"]),
                   torch.from_numpy(test_x), torch.from_numpy(listing.labels["test"]),
                   listing.classes)


def list_imagefolder(path: Path) -> FolderListing:
    layout = f"lay it out as {path}/train/<class>/<image> and {path}/test/<class>/<image>"
    for split in SPLITS:
        if not (path / split).is_dir():
            raise DataError(f"imagefolder {path} has no {split}/ folder", layout)
    classes = tuple(_subfolders(path / "train"))
    if not classes:
        raise DataError(f"imagefolder {path}/train holds no class folders", layout)
    strays = sorted(set(_subfolders(path / "test")) - set(classes))
    if strays:
        raise DataError(f"imagefolder {path}/test has class folder(s) {', '.join(strays)} that {path}/train lacks",
                        "every test class needs a train folder of the same name (it fixes the label index)")
    files, labels = {}, {}
    for split in SPLITS:
        per_class = [_images(path / split / c) if (path / split / c).is_dir() else [] for c in classes]
        files[split] = [p for class_files in per_class for p in class_files]
        labels[split] = np.repeat(np.arange(len(classes), dtype=np.int64), [len(f) for f in per_class])
    return FolderListing(classes, files, labels)


def _subfolders(folder: Path) -> list[str]:
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))


def _images(folder: Path) -> list[str]:
    with os.scandir(folder) as entries:
        paths = sorted(e.path for e in entries
                       if not e.name.startswith(".") and os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES)
    if not paths:
        raise DataError(f"class folder {folder} holds no images",
                        f"add images ({', '.join(sorted(IMAGE_SUFFIXES))}) or remove the folder")
    return paths
