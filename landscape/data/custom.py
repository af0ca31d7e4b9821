"""Datasets from outside landscape: `--dataset package.module:factory` and names that packages
register under the `landscape.datasets` entry point group.

The protocol: `factory(root)` is called with the data root (`--data-dir`, a `pathlib.Path`) and
returns the training and test data in one of these forms:

* `(train_x, train_y, test_x, test_y)`, or a dict with those keys (and optionally `classes`,
  a list of class names);
* `(train, test)` where each is `(x, y)` or a `torch.utils.data.Dataset` of `(x, y)` pairs.

`x` is a torch tensor or numpy array: `[N, C, H, W]` images, `[N, H, W]` grey images, or `[N, L]`
1-D signals (stored as `[N, 1, 1, L]`). uint8 is taken as 8-bit pixels (scaled by 1/255 before
normalising, as for the built-in image sets); any other dtype is kept as float32 in its own units.
`y` holds integer class indices 0..K-1 (K = the number of `classes`, else the largest label + 1).

Splits, normalisation (per-channel statistics of the training split), augmentation and the decode
cache then work as for the built-in datasets. A `Dataset` is materialised once, sample by sample,
into the decode cache; the cached copy is keyed by the module file (its path, size and time), so
editing the module rebuilds it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError
from ..plugins import CodeSource, one_line
from .cache import cache_dir, cached
from .dataset import Dataset

ENTRY_GROUP = "landscape.datasets"
PROTOCOL = ("factory(root) must return (train_x, train_y, test_x, test_y) arrays or (train, test) datasets; "
            "see README, \"Your own model and data\"")


def read_custom(source: CodeSource, root: Path) -> Dataset:
    """Call the factory and turn what it returns into a Dataset (through the cache for a Dataset)."""
    factory = source.load("dataset")
    try:
        result = factory(root)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the user's code raises is theirs to fix
        raise DataError(f"--dataset {source.name}: the factory failed ({type(exc).__name__}: {one_line(exc)})",
                        PROTOCOL) from None
    train, test, classes = _parts(result, source.name)
    if any(isinstance(part, torch.utils.data.Dataset) for part in (train, test)):
        module_file = _module_file(source)
        return cached(f"{source.name}@{root}", [module_file] if module_file else [],
                      lambda: _dataset(source.name, train, test, classes), cache_dir(root))
    return _dataset(source.name, train, test, classes)


def _module_file(source: CodeSource) -> str | None:
    import sys

    module = sys.modules.get(source.target.partition(":")[0])
    return getattr(module, "__file__", None)


def _parts(result: Any, name: str) -> tuple[Any, Any, list[str] | None]:
    classes = None
    if isinstance(result, dict):
        missing = [k for k in ("train_x", "train_y", "test_x", "test_y") if k not in result]
        if missing:
            raise DataError(f"--dataset {name}: the factory's dict lacks {', '.join(missing)}", PROTOCOL)
        classes = result.get("classes")
        return (result["train_x"], result["train_y"]), (result["test_x"], result["test_y"]), classes
    if isinstance(result, (tuple, list)) and len(result) == 4:
        return (result[0], result[1]), (result[2], result[3]), None
    if isinstance(result, (tuple, list)) and len(result) == 2:
        return result[0], result[1], None
    raise DataError(f"--dataset {name}: the factory returned a {type(result).__name__}"
                    + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""), PROTOCOL)


def _dataset(name: str, train: Any, test: Any, classes: list[str] | None) -> Dataset:
    (train_x, train_y), (test_x, test_y) = _split(train, name, "train"), _split(test, name, "test")
    if train_x.dtype != test_x.dtype:
        train_x, test_x = train_x.float(), test_x.float()
    if train_x.shape[1:] != test_x.shape[1:]:
        raise DataError(f"--dataset {name}: train samples have shape {tuple(train_x.shape[1:])} but test samples "
                        f"{tuple(test_x.shape[1:])}", "return train and test data of one shape")
    if len(train_y) == 0:
        raise DataError(f"--dataset {name}: the training split is empty", PROTOCOL)
    top = int(max(train_y.max(), test_y.max() if len(test_y) else 0))
    low = int(min(train_y.min(), test_y.min() if len(test_y) else 0))
    count = len(classes) if classes is not None else top + 1
    if low < 0 or top >= count:
        raise DataError(f"--dataset {name}: labels run from {low} to {top}, outside the {count} classes 0..{count - 1}",
                        "labels must be class indices 0..K-1 (K = len(classes) if the factory gives classes)")
    names = tuple(str(c) for c in classes) if classes is not None else tuple(str(k) for k in range(count))
    return Dataset(name, train_x, train_y, test_x, test_y, names)


def _split(part: Any, name: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(part, torch.utils.data.Dataset):
        part = _materialise(part, name, split)
    if not isinstance(part, (tuple, list)) or len(part) != 2:
        raise DataError(f"--dataset {name}: the {split} split is a {type(part).__name__}, not (x, y) or a Dataset",
                        PROTOCOL)
    x, y = (_tensor(v, name, f"{split} {what}") for v, what in zip(part, ("inputs", "labels")))
    if x.dim() == 2:
        x = x[:, None, None, :]  # [N, L] signals as [N, 1, 1, L]
    elif x.dim() == 3:
        x = x[:, None]  # [N, H, W] grey images
    if x.dim() != 4:
        raise DataError(f"--dataset {name}: {split} inputs have shape {tuple(x.shape)}",
                        "give [N, C, H, W], [N, H, W] or [N, L]")
    if x.dtype != torch.uint8:
        x = x.to(torch.float32)
        if not bool(torch.isfinite(x).all()):
            raise DataError(f"--dataset {name}: {split} inputs hold NaN or infinite values", "clean the data first")
    if y.dim() != 1 or len(y) != len(x):
        raise DataError(f"--dataset {name}: {len(x)} {split} inputs but labels of shape {tuple(y.shape)}",
                        "give one integer label per sample")
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        if y.dtype == torch.bool or not bool((y == y.round()).all()):
            raise DataError(f"--dataset {name}: {split} labels are not integers", "give class indices 0..K-1")
    return x.contiguous(), y.to(torch.int64)


def _tensor(value: Any, name: str, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    try:
        return torch.from_numpy(np.ascontiguousarray(np.asarray(value)))
    except (TypeError, ValueError) as exc:
        raise DataError(f"--dataset {name}: cannot read the {what} as an array ({one_line(exc)})", PROTOCOL) from None


def _materialise(dataset: torch.utils.data.Dataset, name: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Every `(x, y)` of a map-style Dataset, stacked. Once per module version: the result is cached."""
    try:
        n = len(dataset)
        pairs = [dataset[i] for i in range(n)]
        xs = torch.stack([_tensor(p[0], name, f"{split} inputs") for p in pairs]) if n else torch.zeros(0, 1, 1, 1)
        ys = torch.as_tensor([int(p[1]) for p in pairs], dtype=torch.int64)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"--dataset {name}: cannot read the {split} Dataset ({type(exc).__name__}: {one_line(exc)})",
                        "a Dataset must have __len__ and __getitem__ returning (x, y) with x of one shape") from None
    return xs, ys
