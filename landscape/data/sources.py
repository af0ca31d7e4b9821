"""Where the fetchable datasets come from: official URLs, md5s and torchvision's on-disk layouts.

This module is data only. `landscape.data.fetch.fetch_dataset` reads it; tests (or an offline user)
replace it with their own `Source` table or point every file at another base URL (`mirror=` /
the LANDSCAPE_MIRROR environment variable).

On-disk layouts are torchvision's, so a data root filled here is also a valid torchvision `root`:

    mnist          <root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
    fashion-mnist  <root>/FashionMNIST/raw/  (same four names)
    cifar10        <root>/cifar-10-python.tar.gz   extracted to  <root>/cifar-10-batches-py/
    cifar100       <root>/cifar-100-python.tar.gz  extracted to  <root>/cifar-100-python/
    svhn           <root>/svhn/{train_32x32.mat, test_32x32.mat}
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping


@dataclass(frozen=True)
class RemoteFile:
    """One file to download.

    `urls` are full URLs tried in order (primary first, then mirrors); each ends with `filename`.
    `dest` is the file's path relative to the data root, with forward slashes. When `extract_to` is
    set the file is a tar archive whose single top-level directory `extract_to` (relative to the
    data root) is what the dataset loaders read.
    """

    filename: str
    md5: str
    urls: tuple[str, ...]
    dest: str
    extract_to: str | None = None


@dataclass(frozen=True)
class Source:
    """A fetchable dataset: its name on the command line, a one-line description, its files."""

    name: str
    description: str
    files: tuple[RemoteFile, ...]


def _files(
    base_urls: tuple[str, ...], folder: str, entries: tuple[tuple[str, str], ...]
) -> tuple[RemoteFile, ...]:
    return tuple(
        RemoteFile(
            filename=name,
            md5=md5,
            urls=tuple(base.rstrip("/") + "/" + name for base in base_urls),
            dest=f"{folder}/{name}" if folder else name,
        )
        for name, md5 in entries
    )


# MNIST: the S3 copy that torchvision uses comes first because yann.lecun.com, the original home,
# now often answers 403 or stalls; the original stays as the second choice.
_MNIST_URLS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
# Fashion-MNIST: Zalando's S3 bucket (the one torchvision uses), then the same files as committed in
# Zalando's GitHub repository.
_FASHION_URLS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
_CIFAR_URLS = ("https://www.cs.toronto.edu/~kriz/",)
_SVHN_URLS = ("http://ufldl.stanford.edu/housenumbers/",)


SOURCES: Mapping[str, Source] = MappingProxyType({
    "mnist": Source(
        name="mnist",
        description="MNIST handwritten digits, 60k train / 10k test, 28x28 grey",
        files=_files(_MNIST_URLS, "MNIST/raw", (
            ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
            ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
            ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
            ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
        )),
    ),
    "fashion-mnist": Source(
        name="fashion-mnist",
        description="Fashion-MNIST clothing images, 60k train / 10k test, 28x28 grey",
        files=_files(_FASHION_URLS, "FashionMNIST/raw", (
            ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
            ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
            ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
        )),
    ),
    "cifar10": Source(
        name="cifar10",
        description="CIFAR-10, 50k train / 10k test, 32x32 colour, 10 classes",
        files=(
            RemoteFile(
                filename="cifar-10-python.tar.gz",
                md5="c58f30108f718f92721af3b95e74349a",
                urls=tuple(u + "cifar-10-python.tar.gz" for u in _CIFAR_URLS),
                dest="cifar-10-python.tar.gz",
                extract_to="cifar-10-batches-py",
            ),
        ),
    ),
    "cifar100": Source(
        name="cifar100",
        description="CIFAR-100, 50k train / 10k test, 32x32 colour, 100 classes",
        files=(
            RemoteFile(
                filename="cifar-100-python.tar.gz",
                md5="eb9058c3a382ffc7106e4002c42a8d85",
                urls=tuple(u + "cifar-100-python.tar.gz" for u in _CIFAR_URLS),
                dest="cifar-100-python.tar.gz",
                extract_to="cifar-100-python",
            ),
        ),
    ),
    "svhn": Source(
        name="svhn",
        description="SVHN street-view house numbers (cropped digits), 73k train / 26k test, 32x32",
        files=_files(_SVHN_URLS, "svhn", (
            ("train_32x32.mat", "e26dedcc434d2e4c54c9b2d4a06d8373"),
            ("test_32x32.mat", "eb5a983be6a315427106f1b164d9cef3"),
        )),
    ),
})

# Datasets that the rest of landscape knows but that there is nothing to download for.
NOT_FETCHABLE: Mapping[str, str] = MappingProxyType({
    "digits": "it ships with scikit-learn (sklearn.datasets.load_digits); nothing to download",
    "synthetic": "it is generated on the fly from a seed; nothing to download",
    "mnist1d": "it is generated offline from a seed (the mnist1d procedure); nothing to download",
    "imagefolder": "it is your own data: put class sub-folders of images under a folder and "
                   "point the imagefolder dataset at it",
})

# Spellings accepted besides the canonical names.
ALIASES: Mapping[str, str] = MappingProxyType({
    "fashionmnist": "fashion-mnist",
    "fmnist": "fashion-mnist",
    "cifar-10": "cifar10",
    "cifar-100": "cifar100",
})


def canonical_name(name: str) -> str:
    """Lower-case, '_' -> '-', aliases resolved. Does not check that the name exists."""
    key = name.strip().lower().replace("_", "-")
    return ALIASES.get(key, key)


def fetchable() -> list[str]:
    """Names `fetch_dataset` accepts, sorted."""
    return sorted(SOURCES)
