"""The file-format readers (IDX, CIFAR pickles, SVHN .mat), on small files written in the official formats."""
from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from landscape.data import load_dataset
from landscape.errors import DataError


# --- writers for the official formats ---------------------------------------------------------

def write_idx_images(path: Path, images: np.ndarray, magic: int = 2051) -> None:
    n, rows, cols = images.shape
    _write(path, struct.pack(">4I", magic, n, rows, cols) + images.astype(np.uint8).tobytes())


def write_idx_labels(path: Path, labels: np.ndarray, magic: int = 2049) -> None:
    _write(path, struct.pack(">2I", magic, len(labels)) + labels.astype(np.uint8).tobytes())


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def make_mnist(root: Path, folder: str = "MNIST", gz: bool = True, n_train: int = 12, n_test: int = 5):
    """Random MNIST-format files under `root/folder/raw`; returns the arrays written."""
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    raw = root / folder / "raw"
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        write_idx_images(raw / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
        arrays[prefix] = (images, labels)
    return arrays


def write_pickle(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)  # the official batches are protocol-2 (Python 2) pickles


def cifar_batch(rng, n: int, label_key: bytes, num_classes: int) -> dict:
    return {b"batch_label": b"testing batch", label_key: rng.integers(0, num_classes, n).tolist(),
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"filenames": [b"x.png"] * n}


def make_cifar10(root: Path) -> dict:
    rng = np.random.default_rng(1)
    folder = root / "cifar-10-batches-py"
    batches = {f"data_batch_{i}": cifar_batch(rng, 3, b"labels", 10) for i in range(1, 6)}
    batches["test_batch"] = cifar_batch(rng, 4, b"labels", 10)
    for name, batch in batches.items():
        write_pickle(folder / name, batch)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    write_pickle(folder / "batches.meta", {b"label_names": names, b"num_cases_per_batch": 3, b"num_vis": 3072})
    return batches


def make_cifar100(root: Path) -> dict:
    rng = np.random.default_rng(2)
    folder = root / "cifar-100-python"
    batches = {"train": cifar_batch(rng, 6, b"fine_labels", 100), "test": cifar_batch(rng, 4, b"fine_labels", 100)}
    for name, batch in batches.items():
        batch[b"coarse_labels"] = [0] * len(batch[b"fine_labels"])
        write_pickle(folder / name, batch)
    write_pickle(folder / "meta", {b"fine_label_names": [f"c{i}".encode() for i in range(100)],
                                   b"coarse_label_names": [f"s{i}".encode() for i in range(20)]})
    return batches


def make_svhn(root: Path) -> dict:
    import scipy.io

    rng = np.random.default_rng(3)
    mats = {}
    for name, n in (("train_32x32.mat", 7), ("test_32x32.mat", 3)):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = np.array([[10], [1], [2], [3], [9], [10], [5]][:n], dtype=np.uint8)
        (root / "svhn").mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(root / "svhn" / name, {"X": x, "y": y}, do_compression=True)
        mats[name] = (x, y)
    return mats


def assert_data_error(excinfo, *fragments: str) -> None:
    message = str(excinfo.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


# --- MNIST / Fashion-MNIST ---------------------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False])
def test_mnist_reads_idx_files_plain_or_gzipped(tmp_path, gz):
    arrays = make_mnist(tmp_path, gz=gz)
    ds = load_dataset("mnist", tmp_path)
    assert ds.train_x.shape == (12, 1, 28, 28) and ds.test_x.shape == (5, 1, 28, 28)
    assert ds.train_x.dtype == torch.uint8 and ds.train_y.dtype == torch.int64
    assert np.array_equal(ds.train_x[:, 0].numpy(), arrays["train"][0])
    assert np.array_equal(ds.test_y.numpy(), arrays["t10k"][1])
    assert ds.input_shape == (1, 28, 28) and ds.num_classes == 10 and ds.name == "mnist"


def test_fashion_mnist_reads_its_own_folder(tmp_path):
    arrays = make_mnist(tmp_path, folder="FashionMNIST")
    ds = load_dataset("fashion-mnist", tmp_path)
    assert np.array_equal(ds.train_y.numpy(), arrays["train"][1])
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"


def test_plain_file_is_preferred_over_gz(tmp_path):
    make_mnist(tmp_path, gz=False)
    (tmp_path / "MNIST/raw/train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    assert len(load_dataset("mnist", tmp_path).train_y) == 12


def test_missing_mnist_file_names_it_and_says_how_to_fetch(tmp_path):
    make_mnist(tmp_path)
    (tmp_path / "MNIST/raw/t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError) as excinfo:
        load_dataset("mnist", tmp_path)
    assert_data_error(excinfo, "t10k-labels-idx1-ubyte", str(tmp_path / "MNIST" / "raw"),
                      "landscape data fetch mnist", "--data-dir", "LANDSCAPE_DATA")


def test_missing_dataset_under_empty_root(tmp_path):
    with pytest.raises(DataError) as excinfo:
        load_dataset("fashion-mnist", tmp_path)
    assert_data_error(excinfo, "missing", "FashionMNIST", "landscape data fetch fashion-mnist")


@pytest.mark.parametrize("gz", [True, False])
def test_bad_magic(tmp_path, gz):
    make_mnist(tmp_path, gz=gz)
    suffix = ".gz" if gz else ""
    path = tmp_path / f"MNIST/raw/train-images-idx3-ubyte{suffix}"
    write_idx_images(path, np.zeros((12, 28, 28), np.uint8), magic=2049)
    with pytest.raises(DataError) as excinfo:
        load_dataset("mnist", tmp_path)
    assert_data_error(excinfo, str(path), "magic number 2049, expected 2051",
                      "delete it", "landscape data fetch mnist")


def test_count_mismatch_between_images_and_labels(tmp_path):
    make_mnist(tmp_path)
    write_idx_labels(tmp_path / "MNIST/raw/train-labels-idx1-ubyte.gz", np.zeros(11, np.uint8))
    with pytest.raises(DataError) as excinfo:
        load_dataset("mnist", tmp_path)
    assert_data_error(excinfo, "train-images-idx3-ubyte.gz", "12 images", "11 labels")


def test_truncated_raw_file(tmp_path):
    make_mnist(tmp_path, gz=False)
    path = tmp_path / "MNIST/raw/t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError) as excinfo:
        load_dataset("mnist", tmp_path)
    assert_data_error(excinfo, str(path), "truncated")


def test_truncated_gzip_file(tmp_path):
    make_mnist(tmp_path)
    path = tmp_path / "MNIST/raw/train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DataError) as excinfo:
        load_dataset("mnist", tmp_path)
    assert_data_error(excinfo, str(path), "gzip")


def test_header_shorter_than_header(tmp_path):
    make_mnist(tmp_path, gz=False)
    path = tmp_path / "MNIST/raw/train-labels-idx1-ubyte"
    path.write_bytes(b"\x00\x00")
    with pytest.raises(DataError) as excinfo:
        load_dataset("mnist", tmp_path)
    assert_data_error(excinfo, str(path), "truncated")


def test_trailing_bytes(tmp_path):
    make_mnist(tmp_path, gz=False)
    path = tmp_path / "MNIST/raw/train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes() + b"\x00" * 3)
    with pytest.raises(DataError) as excinfo:
        load_dataset("mnist", tmp_path)
    assert_data_error(excinfo, str(path), "3 bytes beyond")


def test_wrong_image_size(tmp_path):
    make_mnist(tmp_path)
    path = tmp_path / "MNIST/raw/train-images-idx3-ubyte.gz"
    write_idx_images(path, np.zeros((12, 27, 27), np.uint8))
    with pytest.raises(DataError) as excinfo:
        load_dataset("mnist", tmp_path)
    assert_data_error(excinfo, str(path), "27×27", "28×28")


def test_label_out_of_range(tmp_path):
    make_mnist(tmp_path)
    path = tmp_path / "MNIST/raw/t10k-labels-idx1-ubyte.gz"
    write_idx_labels(path, np.array([0, 1, 2, 3, 10], np.uint8))
    with pytest.raises(DataError) as excinfo:
        load_dataset("mnist", tmp_path)
    assert_data_error(excinfo, str(path), "label 10")


# --- CIFAR ---------------------------------------------------------------------------------------

def test_cifar10_reads_python_batches(tmp_path):
    batches = make_cifar10(tmp_path)
    ds = load_dataset("cifar10", tmp_path)
    assert ds.train_x.shape == (15, 3, 32, 32) and ds.test_x.shape == (4, 3, 32, 32)
    assert ds.classes[0] == "airplane" and ds.classes[9] == "truck"
    first = batches["data_batch_1"]
    # Row layout: 1024 red, 1024 green, 1024 blue, each row-major.
    assert ds.train_x[0, 1, 2, 3] == first[b"data"][0, 1024 + 2 * 32 + 3]
    expected_labels = [y for i in range(1, 6) for y in batches[f"data_batch_{i}"][b"labels"]]
    assert ds.train_y.tolist() == expected_labels
    assert ds.test_y.tolist() == batches["test_batch"][b"labels"]


def test_cifar100_uses_fine_labels(tmp_path):
    batches = make_cifar100(tmp_path)
    ds = load_dataset("cifar100", tmp_path)
    assert ds.num_classes == 100 and ds.train_x.shape == (6, 3, 32, 32)
    assert ds.train_y.tolist() == batches["train"][b"fine_labels"]
    assert np.array_equal(ds.test_x.reshape(4, -1).numpy(), batches["test"][b"data"])


def test_cifar_missing_batch(tmp_path):
    make_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py/data_batch_3").unlink()
    with pytest.raises(DataError) as excinfo:
        load_dataset("cifar10", tmp_path)
    assert_data_error(excinfo, "data_batch_3", "missing", "landscape data fetch cifar10")


def test_cifar_truncated_pickle(tmp_path):
    make_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py/test_batch"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataError) as excinfo:
        load_dataset("cifar10", tmp_path)
    assert_data_error(excinfo, str(path), "delete it")


def test_cifar_missing_key_and_wrong_shape(tmp_path):
    make_cifar100(tmp_path)
    path = tmp_path / "cifar-100-python/train"
    write_pickle(path, {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]})
    with pytest.raises(DataError) as excinfo:
        load_dataset("cifar100", tmp_path)
    assert_data_error(excinfo, str(path), "fine_labels")
    write_pickle(path, {b"data": np.zeros((2, 1024), np.uint8), b"fine_labels": [0, 1]})
    with pytest.raises(DataError) as excinfo:
        load_dataset("cifar100", tmp_path)
    assert_data_error(excinfo, str(path), "(2, 1024)")


class _Exploit:
    def __reduce__(self):
        return (print, ("a pickle ran code",))


def test_cifar_pickle_cannot_run_code(tmp_path, capsys):
    make_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py/batches.meta"
    write_pickle(path, {b"label_names": [_Exploit()]})
    with pytest.raises(DataError) as excinfo:
        load_dataset("cifar10", tmp_path)
    assert_data_error(excinfo, str(path), "print, which a CIFAR batch never does")
    assert "a pickle ran code" not in capsys.readouterr().out


def test_cifar_pickles_written_by_modern_numpy_protocols(tmp_path):
    batches = make_cifar10(tmp_path)
    for protocol in (4, 5):
        with open(tmp_path / "cifar-10-batches-py/test_batch", "wb") as f:
            pickle.dump(batches["test_batch"], f, protocol=protocol)
        assert load_dataset("cifar10", tmp_path).test_y.tolist() == batches["test_batch"][b"labels"]


# --- SVHN ----------------------------------------------------------------------------------------

def test_svhn_reads_mat_files_and_maps_10_to_0(tmp_path):
    mats = make_svhn(tmp_path)
    ds = load_dataset("svhn", tmp_path)
    x, y = mats["train_32x32.mat"]
    assert ds.train_x.shape == (7, 3, 32, 32) and ds.test_x.shape == (3, 3, 32, 32)
    assert ds.train_y.tolist() == [0, 1, 2, 3, 9, 0, 5]
    assert np.array_equal(ds.train_x.numpy(), x.transpose(3, 2, 0, 1))


def test_svhn_garbage_and_bad_labels(tmp_path):
    import scipy.io

    make_svhn(tmp_path)
    path = tmp_path / "svhn/test_32x32.mat"
    path.write_bytes(b"MATLAB? no." * 20)
    with pytest.raises(DataError) as excinfo:
        load_dataset("svhn", tmp_path)
    assert_data_error(excinfo, str(path), "not a readable MATLAB file")
    scipy.io.savemat(path, {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.array([[0], [1]], np.uint8)})
    with pytest.raises(DataError) as excinfo:
        load_dataset("svhn", tmp_path)
    assert_data_error(excinfo, str(path), "1..10")
    scipy.io.savemat(path, {"X": np.zeros((32, 32, 3, 2), np.uint8)})
    with pytest.raises(DataError) as excinfo:
        load_dataset("svhn", tmp_path)
    assert_data_error(excinfo, str(path), "lacks the variable(s) y")


def test_svhn_missing(tmp_path):
    with pytest.raises(DataError) as excinfo:
        load_dataset("svhn", tmp_path)
    assert_data_error(excinfo, "train_32x32.mat", "landscape data fetch svhn")
