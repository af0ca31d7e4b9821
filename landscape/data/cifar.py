"""CIFAR-10 and CIFAR-100 from the official "python version" pickle batches.

`<root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}` and
`<root>/cifar-100-python/{train, test, meta}` (CIFAR-100 uses the 100 fine labels). The batches were
pickled by Python 2, so they load with `encoding='bytes'` and their dict keys are bytes.
"""
from __future__ import annotations

import codecs
import io
import pickle
from pathlib import Path

import numpy as np
import torch

from .dataset import Dataset
from .files import bad_file, find_file, read_bytes

_PIXELS = 3 * 32 * 32


def read_cifar10(root: Path) -> Dataset:
    folder = root / "cifar-10-batches-py"
    train_files = [f"data_batch_{i}" for i in range(1, 6)]
    paths = {n: find_file(folder, n, "cifar10", root) for n in train_files + ["test_batch", "batches.meta"]}
    classes = _class_names(paths["batches.meta"], b"label_names", 10, "cifar10")
    train = [_read_batch(paths[n], b"labels", 10, "cifar10") for n in train_files]
    test = _read_batch(paths["test_batch"], b"labels", 10, "cifar10")
    train_x = torch.cat([x for x, _ in train])
    train_y = torch.cat([y for _, y in train])
    return Dataset("cifar10", train_x, train_y, *test, classes)


def read_cifar100(root: Path) -> Dataset:
    folder = root / "cifar-100-python"
    paths = {n: find_file(folder, n, "cifar100", root) for n in ("train", "test", "meta")}
    classes = _class_names(paths["meta"], b"fine_label_names", 100, "cifar100")
    train = _read_batch(paths["train"], b"fine_labels", 100, "cifar100")
    test = _read_batch(paths["test"], b"fine_labels", 100, "cifar100")
    return Dataset("cifar100", *train, *test, classes)


def _read_batch(path: Path, label_key: bytes, num_classes: int, dataset: str) -> tuple[torch.Tensor, torch.Tensor]:
    batch = _unpickle(path, dataset)
    data, labels = _require(batch, (b"data", label_key), path, dataset)
    data = np.asarray(data)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _PIXELS:
        raise bad_file(path, f"holds its images as {data.dtype} {data.shape}, expected uint8 (N, {_PIXELS})", dataset)
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (data.shape[0],):
        raise bad_file(path, f"holds {data.shape[0]} images but {labels.size} labels", dataset)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise bad_file(path, f"holds labels outside 0..{num_classes - 1}", dataset)
    # Rows are 1024 red, then 1024 green, then 1024 blue values, row-major: exactly CHW.
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
    return images, torch.from_numpy(labels)


def _class_names(path: Path, key: bytes, count: int, dataset: str) -> tuple[str, ...]:
    (names,) = _require(_unpickle(path, dataset), (key,), path, dataset)
    if not isinstance(names, list) or len(names) != count or not all(isinstance(n, bytes) for n in names):
        raise bad_file(path, f"does not list {count} class names under {key!r}", dataset)
    return tuple(n.decode("utf-8", "replace") for n in names)


def _require(batch: object, keys: tuple[bytes, ...], path: Path, dataset: str) -> list:
    if not isinstance(batch, dict):
        raise bad_file(path, f"holds a {type(batch).__name__}, not the dict of a CIFAR batch", dataset)
    absent = [k for k in keys if k not in batch]
    if absent:
        raise bad_file(path, f"lacks the key(s) {', '.join(map(repr, absent))}", dataset)
    return [batch[k] for k in keys]


def _unpickle(path: Path, dataset: str) -> object:
    try:
        return _ArrayUnpickler(io.BytesIO(read_bytes(path, dataset)), encoding="bytes").load()
    except pickle.UnpicklingError as err:
        raise bad_file(path, f"is not a CIFAR pickle batch ({err})", dataset) from err
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as err:
        # What a truncated or garbled pickle raises depends on where the damage is.
        raise bad_file(path, f"is truncated or corrupt ({type(err).__name__}: {err})", dataset) from err


def _numpy_globals() -> dict[tuple[str, str], object]:
    """The numpy callables an array pickle names, found through numpy itself.

    Asking numpy's own reducers (rather than importing `numpy.core...`) works on numpy 1 and 2,
    whose module paths differ, without touching numpy 2's deprecated `numpy.core` shim.
    """
    array = np.zeros(1, np.uint8)
    reconstruct = array.__reduce__()[0]
    frombuffer = array.__reduce_ex__(5)[0]
    scalar = np.int64(0).__reduce__()[0]
    allowed: dict[tuple[str, str], object] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{package}.multiarray", "scalar")] = scalar
        allowed[(f"{package}.numeric", "_frombuffer")] = frombuffer
    # Python 3 writes bytes into protocol-2 pickles as codecs.encode(text, "latin1").
    allowed[("_codecs", "encode")] = codecs.encode
    return allowed


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays, and refuses every other global.

    A pickle can name any importable callable, so an unrestricted `pickle.load` of a downloaded
    file runs whatever the file asks for. CIFAR batches need only numpy's array reconstruction.
    """

    _allowed = _numpy_globals()

    def find_class(self, module: str, name: str) -> object:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"it refers to {module}.{name}, which a CIFAR batch never does") from None
