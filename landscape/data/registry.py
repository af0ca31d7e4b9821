"""Dataset names, where their files live, and loading them (through the cache where decoding is slow)."""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from ..plugins import CodeSource, entry_points, resolve_source
from .cache import cache_dir, cached
from .cifar import read_cifar10, read_cifar100
from .custom import ENTRY_GROUP, read_custom
from .dataset import Dataset
from .digits import read_digits
from .idx import read_fashion_mnist, read_mnist
from .imagefolder import PREFIX as IMAGEFOLDER_PREFIX
from .imagefolder import imagefolder_name, imagefolder_sources, read_imagefolder
from .mnist1d import make_mnist1d
from .svhn import read_svhn, svhn_sources
from .synthetic import make_synthetic

DATA_ENV = "LANDSCAPE_DATA"


@dataclass(frozen=True)
class _Reader:
    read: Callable[[Path], Dataset]
    # The files a decoded copy depends on. Set only where decoding is slow enough (about half a
    # second or more) that reading a cached copy pays for the disk it takes.
    sources: Callable[[Path], list[Path]] | None = None


_READERS: dict[str, _Reader] = {
    "mnist": _Reader(read_mnist),  # gunzip + frombuffer: ~0.2 s, not worth 55 MB of cache
    "fashion-mnist": _Reader(read_fashion_mnist),
    "cifar10": _Reader(read_cifar10),
    "cifar100": _Reader(read_cifar100),
    "svhn": _Reader(read_svhn, svhn_sources),  # zlib-compressed MATLAB files, ~230 MB decoded
    "digits": _Reader(lambda root: read_digits()),
    # generated from a seed (about a second of numpy); the cached copy depends on no file
    "mnist1d": _Reader(lambda root: make_mnist1d(), lambda root: []),
    "synthetic": _Reader(lambda root: make_synthetic()),
    "synthetic-rgb": _Reader(lambda root: make_synthetic(shape=(3, 16, 16), name="synthetic-rgb")),
    # CIFAR-10's shape and size, for benchmarks on a machine without the real files (gpu_check.py)
    "synthetic-cifar10": _Reader(lambda root: make_synthetic(50000, 10000, (3, 32, 32), name="synthetic-cifar10")),
    # four classes: for tests of moving a network between datasets with different class counts
    "synthetic-4": _Reader(lambda root: make_synthetic(num_classes=4, seed=4, name="synthetic-4")),
}
_IMAGEFOLDER = _Reader(read_imagefolder, imagefolder_sources)


def dataset_names() -> list[str]:
    """Every built-in name `load_dataset` accepts, `imagefolder:<path>` standing for any folder
    (besides `package.module:factory` and the names packages register, see `dataset_catalog`)."""
    return sorted(_READERS) + [f"{IMAGEFOLDER_PREFIX}<path>"]


def dataset_catalog() -> list[tuple[str, str]]:
    """(name, origin) of every named dataset: the built-in ones, then those packages register."""
    plugins = [(name, f"{s.origin}: {s.target}") for name, s in sorted(entry_points(ENTRY_GROUP).items())
               if name not in _READERS]
    return [(name, "built-in") for name in dataset_names()] + plugins


def dataset_source(name: str) -> CodeSource | None:
    """The outside code a dataset name stands for; None for a built-in (or unknown) name."""
    if name.startswith(IMAGEFOLDER_PREFIX) or name.strip().lower() in _READERS:
        return None
    return resolve_source(name.strip(), ENTRY_GROUP, set(_READERS))


def data_root(explicit: str | Path | None = None) -> Path:
    """The folder that holds downloaded datasets: `explicit`, else $LANDSCAPE_DATA, else ./data."""
    chosen = explicit if explicit not in (None, "") else os.environ.get(DATA_ENV) or "data"
    return Path(chosen).expanduser().resolve()


def load_dataset(name: str, root: str | Path | None = None) -> Dataset:
    """Load a dataset by name, its files looked up under `data_root(root)`.

    `imagefolder:<path>` reads `<path>` itself; a relative `<path>` is taken from the current
    directory, not from the data root, as a shell user would expect.
    """
    root_path = data_root(root)
    if name.startswith(IMAGEFOLDER_PREFIX):
        folder = _imagefolder_path(name)
        return _load(imagefolder_name(folder), _IMAGEFOLDER, folder, root_path)
    reader = _READERS.get(name.strip().lower())
    if reader is None:
        source = dataset_source(name)
        if source is None:
            raise DataError(f"unknown dataset {name!r}", f"known datasets: {', '.join(dataset_names())}, "
                            "a registered name (`landscape data list`) or package.module:factory")
        return read_custom(source, root_path)
    return _load(name.strip().lower(), reader, root_path, root_path)


def _imagefolder_path(name: str) -> Path:
    text = name[len(IMAGEFOLDER_PREFIX):]
    if not text.strip():
        raise DataError(f"dataset {name!r} names no folder", "write imagefolder:<path>, e.g. imagefolder:./my-images")
    folder = Path(text).expanduser().resolve()
    if not folder.is_dir():
        raise DataError(f"imagefolder {folder} does not exist or is not a folder",
                        "check the path after `imagefolder:`; a relative path is taken from the current directory")
    return folder


def _load(name: str, reader: _Reader, location: Path, root: Path) -> Dataset:
    if reader.sources is None:
        return reader.read(location)
    return cached(name, reader.sources(location), lambda: reader.read(location), cache_dir(root))
