"""imagefolder:<path> datasets: layout, label order, channels, pixel values, bad files, parallel decoding."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from landscape.data import decode, load_dataset
from landscape.data.progress import progress_bar
from landscape.errors import DataError

Image = pytest.importorskip("PIL.Image")


def save(path: Path, pixels: np.ndarray, mode: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, mode).save(path) if mode else Image.fromarray(pixels).save(path)


def make_folder(root: Path, classes=("cat", "ant", "bee"), per_class=(2, 1), size=(6, 5), rgb=True) -> dict:
    """PNG images (lossless, so pixel values can be checked) under root/{train,test}/<class>/."""
    rng = np.random.default_rng(0)
    written = {}
    for split, count in zip(("train", "test"), per_class):
        for c in classes:
            for i in range(count):
                shape = (size[1], size[0], 3) if rgb else (size[1], size[0])
                pixels = rng.integers(0, 256, shape, dtype=np.uint8)
                path = root / split / c / f"{i:04d}.png"
                save(path, pixels)
                written[path] = pixels
    return written


def test_rgb_folder_shapes_labels_and_pixels(tmp_path):
    written = make_folder(tmp_path / "pets")
    ds = load_dataset(f"imagefolder:{tmp_path / 'pets'}")
    assert ds.classes == ("ant", "bee", "cat")  # sorted, whatever order they were made in
    assert ds.name == f"imagefolder:{tmp_path / 'pets'}"
    assert ds.train_x.shape == (6, 3, 5, 6) and ds.test_x.shape == (3, 3, 5, 6)
    assert ds.train_x.dtype == torch.uint8 and ds.train_y.dtype == torch.int64
    assert ds.train_y.tolist() == [0, 0, 1, 1, 2, 2] and ds.test_y.tolist() == [0, 1, 2]
    expected = written[tmp_path / "pets/train/bee/0001.png"]
    assert np.array_equal(ds.train_x[3].permute(1, 2, 0).numpy(), expected)


def test_grayscale_folder_has_one_channel(tmp_path):
    written = make_folder(tmp_path / "g", rgb=False)
    ds = load_dataset(f"imagefolder:{tmp_path / 'g'}")
    assert ds.input_shape == (1, 5, 6)
    assert np.array_equal(ds.test_x[2, 0].numpy(), written[tmp_path / "g/test/cat/0000.png"])


def test_mixed_grayscale_and_colour_becomes_rgb(tmp_path):
    gray = np.arange(30, dtype=np.uint8).reshape(5, 6)
    save(tmp_path / "m/train/a/0.png", gray)
    save(tmp_path / "m/train/b/0.png", np.zeros((5, 6, 3), np.uint8))
    save(tmp_path / "m/test/a/0.png", gray)
    ds = load_dataset(f"imagefolder:{tmp_path / 'm'}")
    assert ds.input_shape == (3, 5, 6)
    for c in range(3):
        assert np.array_equal(ds.train_x[0, c].numpy(), gray)
        assert np.array_equal(ds.test_x[0, c].numpy(), gray)


def test_palette_rgba_and_jpeg_images_decode_as_rgb(tmp_path):
    rgba = np.full((4, 4, 4), 200, np.uint8)
    save(tmp_path / "f/train/a/0.png", rgba)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).convert("P").save(tmp_path / "f/train/a/1.png")
    (tmp_path / "f/test/a").mkdir(parents=True)
    Image.fromarray(np.full((4, 4, 3), 128, np.uint8)).save(tmp_path / "f/test/a/0.jpg", quality=95)
    ds = load_dataset(f"imagefolder:{tmp_path / 'f'}")
    assert ds.input_shape == (3, 4, 4)
    assert int(ds.train_x[0].min()) == 200
    assert abs(int(ds.test_x[0].float().mean()) - 128) <= 2  # JPEG is lossy


def test_non_image_and_hidden_files_are_ignored(tmp_path):
    make_folder(tmp_path / "p")
    (tmp_path / "p/train/ant/README.txt").write_text("not an image")
    (tmp_path / "p/train/ant/.hidden.png").write_bytes(b"junk")
    (tmp_path / "p/train/.git").mkdir()
    assert len(load_dataset(f"imagefolder:{tmp_path / 'p'}").train_y) == 6


def test_size_mismatch_names_the_odd_file(tmp_path):
    make_folder(tmp_path / "p")
    odd = tmp_path / "p/test/bee/0000.png"
    save(odd, np.zeros((7, 7, 3), np.uint8))
    with pytest.raises(DataError) as excinfo:
        load_dataset(f"imagefolder:{tmp_path / 'p'}")
    message = str(excinfo.value)
    assert str(odd) in message and "7×7" in message and "6×5" in message and "resize" in message


def test_undecodable_image_is_named(tmp_path):
    make_folder(tmp_path / "p")
    bad = tmp_path / "p/train/cat/0001.png"
    bad.write_bytes(b"\x89PNG but not really")
    with pytest.raises(DataError) as excinfo:
        load_dataset(f"imagefolder:{tmp_path / 'p'}")
    assert str(bad) in str(excinfo.value) and "cannot be decoded" in str(excinfo.value)


def test_sixteen_bit_images_are_refused(tmp_path):
    (tmp_path / "d/train/a").mkdir(parents=True)
    (tmp_path / "d/test").mkdir(parents=True)
    path = tmp_path / "d/train/a/0.png"
    Image.fromarray(np.full((4, 4), 1000, np.uint16)).save(path)
    with pytest.raises(DataError) as excinfo:
        load_dataset(f"imagefolder:{tmp_path / 'd'}")
    assert str(path) in str(excinfo.value) and "8-bit" in str(excinfo.value)


@pytest.mark.parametrize("problem, fragment", [
    ("no test", "has no test/ folder"),
    ("no classes", "holds no class folders"),
    ("empty class", "holds no images"),
    ("stray test class", "wasp"),
])
def test_layout_errors(tmp_path, problem, fragment):
    root = tmp_path / "p"
    make_folder(root)
    if problem == "no test":
        shutil.rmtree(root / "test")
    elif problem == "no classes":
        shutil.rmtree(root / "train")
        (root / "train").mkdir()
    elif problem == "empty class":
        (root / "train/zebra").mkdir()
    else:
        save(root / "test/wasp/0.png", np.zeros((5, 6, 3), np.uint8))
    with pytest.raises(DataError) as excinfo:
        load_dataset(f"imagefolder:{root}")
    assert fragment in str(excinfo.value) and str(root) in str(excinfo.value)


def test_missing_folder_and_empty_name(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(f"imagefolder:{tmp_path / 'nope'}")
    with pytest.raises(DataError, match="names no folder"):
        load_dataset("imagefolder:")


def test_relative_path_is_taken_from_cwd_not_root(tmp_path, monkeypatch):
    make_folder(tmp_path / "work" / "imgs")
    monkeypatch.chdir(tmp_path / "work")
    ds = load_dataset("imagefolder:imgs", root=tmp_path / "elsewhere")
    assert ds.name == f"imagefolder:{(tmp_path / 'work' / 'imgs').resolve()}"


def test_test_split_may_lack_a_class(tmp_path):
    make_folder(tmp_path / "p")
    shutil.rmtree(tmp_path / "p/test/bee")
    ds = load_dataset(f"imagefolder:{tmp_path / 'p'}")
    assert ds.test_y.tolist() == [0, 2] and ds.num_classes == 3


def test_parallel_decoding_matches_inline(tmp_path, monkeypatch):
    make_folder(tmp_path / "p", per_class=(5, 3))
    inline = load_dataset(f"imagefolder:{tmp_path / 'p'}")
    monkeypatch.setenv("LANDSCAPE_CACHE", str(tmp_path / "cache2"))
    monkeypatch.setattr(decode, "PARALLEL_MIN_FILES", 0)
    monkeypatch.setattr(decode, "CHUNK_FILES", 4)
    parallel = load_dataset(f"imagefolder:{tmp_path / 'p'}")
    assert torch.equal(inline.train_x, parallel.train_x) and torch.equal(inline.test_x, parallel.test_x)


def test_parallel_decoding_reports_a_bad_file_from_a_worker(tmp_path, monkeypatch):
    make_folder(tmp_path / "p", per_class=(5, 3))
    bad = tmp_path / "p/train/cat/0003.png"
    save(bad, np.zeros((9, 9, 3), np.uint8))
    monkeypatch.setattr(decode, "PARALLEL_MIN_FILES", 0)
    monkeypatch.setattr(decode, "CHUNK_FILES", 2)
    with pytest.raises(DataError) as excinfo:
        load_dataset(f"imagefolder:{tmp_path / 'p'}")
    assert str(bad) in str(excinfo.value)


def test_progress_bar_draws_only_on_a_terminal(monkeypatch, capsys):
    with progress_bar("decoding", 10) as advance:
        advance(10)
    assert capsys.readouterr().err == ""
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    with progress_bar("decoding", 10) as advance:
        advance(10)
    with progress_bar("decoding", 10, min_total=11) as advance:  # too small to bother
        advance(10)
