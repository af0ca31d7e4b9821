"""The decoded-dataset cache: hits, invalidation, and surviving corrupt entries and killed writers."""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from landscape.data import cache, imagefolder, load_dataset

Image = pytest.importorskip("PIL.Image")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def cache_root(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("LANDSCAPE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def folder(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("test", 2)):
        for c in ("a", "b"):
            (tmp_path / "imgs" / split / c).mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(tmp_path / "imgs" / split / c / f"{i}.png")
    return tmp_path / "imgs"


@pytest.fixture
def decode_calls(monkeypatch) -> list:
    """Counts real decodes: every cache miss decodes once."""
    calls = []
    real = imagefolder.decode_groups

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(imagefolder, "decode_groups", counting)
    return calls


def entries(cache_root: Path) -> list[Path]:
    return sorted(cache_root.glob("*.pt"))


def test_second_load_hits_the_cache(cache_root, folder, decode_calls):
    first = load_dataset(f"imagefolder:{folder}")
    second = load_dataset(f"imagefolder:{folder}")
    assert len(decode_calls) == 1
    assert len(entries(cache_root)) == 1
    assert torch.equal(first.train_x, second.train_x) and torch.equal(first.test_y, second.test_y)
    assert second.classes == first.classes and second.name == first.name


def test_changed_source_rebuilds_and_replaces_the_old_entry(cache_root, folder, decode_calls):
    load_dataset(f"imagefolder:{folder}")
    old = entries(cache_root)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(folder / "train/a/0.png")
    os.utime(folder / "train/a/0.png", ns=(1, 1))  # a new mtime even on coarse-clock file systems
    ds = load_dataset(f"imagefolder:{folder}")
    assert len(decode_calls) == 2 and int(ds.train_x[0].max()) == 0
    assert len(entries(cache_root)) == 1 and entries(cache_root) != old


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "wrong payload"])
def test_corrupt_entry_is_rebuilt(cache_root, folder, decode_calls, damage):
    expected = load_dataset(f"imagefolder:{folder}")
    (entry,) = entries(cache_root)
    if damage == "garbage":
        entry.write_bytes(b"\x00not a torch file" * 10)
    elif damage == "truncated":
        entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    elif damage == "empty":
        entry.write_bytes(b"")
    else:
        torch.save({"format": cache.FORMAT_VERSION, "name": expected.name, "train_x": torch.zeros(3)}, entry)
    ds = load_dataset(f"imagefolder:{folder}")
    assert len(decode_calls) == 2 and torch.equal(ds.train_x, expected.train_x)
    load_dataset(f"imagefolder:{folder}")
    assert len(decode_calls) == 2  # the rebuilt entry is good again


def test_stray_temp_files_are_ignored_and_old_ones_removed(cache_root, folder, decode_calls):
    load_dataset(f"imagefolder:{folder}")
    (entry,) = entries(cache_root)
    entry.unlink()
    fresh = cache_root / f".{entry.name}.999-dead.tmp"
    old = cache_root / f".{entry.name}.998-dead.tmp"
    for stray in (fresh, old):
        stray.write_bytes(b"half a file")
    os.utime(old, (time.time() - 2 * cache.STALE_TEMP_SECONDS,) * 2)
    load_dataset(f"imagefolder:{folder}")
    assert len(decode_calls) == 2 and entries(cache_root) == [entry]
    assert fresh.exists() and not old.exists()  # a recent one may belong to a live writer


def test_unwritable_cache_warns_and_still_loads(tmp_path, folder, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("LANDSCAPE_CACHE", str(blocker / "cache"))
    with pytest.warns(RuntimeWarning, match="could not cache"):
        ds = load_dataset(f"imagefolder:{folder}")
    assert len(ds.train_y) == 6


def test_cache_dir_choice(tmp_path, monkeypatch):
    monkeypatch.setenv("LANDSCAPE_CACHE", str(tmp_path / "override"))
    assert cache.cache_dir(tmp_path) == tmp_path / "override"
    monkeypatch.delenv("LANDSCAPE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    # Never the data folder, even a writable one: the platform's user cache folder.
    (tmp_path / "data").mkdir()
    assert cache.cache_dir(tmp_path / "data") == tmp_path / "xdg" / "landscape"
    assert not (tmp_path / "data" / ".landscape-cache").exists()


def test_entry_names_keep_datasets_apart(tmp_path):
    a = cache._entry_prefix("imagefolder:/x/data")
    b = cache._entry_prefix("imagefolder:/y/data")
    assert a != b and a.startswith("imagefolder-x-data-")


_KILLED_WRITER = r"""
import io, sys, time, torch
from landscape.data import load_dataset

real_save = torch.save

def half_then_hang(obj, f):
    buffer = io.BytesIO()
    real_save(obj, buffer)
    f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    f.flush()
    print("writing", flush=True)
    time.sleep(60)

torch.save = half_then_hang
load_dataset("imagefolder:" + sys.argv[1])
"""


def test_writer_killed_mid_write_leaves_a_usable_cache(cache_root, folder, decode_calls):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    with subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(folder)], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as writer:
        try:
            ready, _, _ = select.select([writer.stdout], [], [], 60)
            assert ready, "the writer never started writing"
            assert writer.stdout.readline().strip() == "writing", writer.stderr.read()
            writer.send_signal(signal.SIGKILL)
        finally:
            writer.kill()  # no-op once killed; stops it if an assertion failed first
    assert list(cache_root.glob(".*.tmp")) and not entries(cache_root)
    ds = load_dataset(f"imagefolder:{folder}")
    assert len(ds.train_y) == 6 and len(decode_calls) == 1 and len(entries(cache_root)) == 1
    load_dataset(f"imagefolder:{folder}")
    assert len(decode_calls) == 1


def test_gc_removes_decoded_datasets_whose_files_are_gone(cache_root, folder, tmp_path, capsys):
    """`landscape gc`: an entry whose source images were deleted serves nothing and goes; one whose
    sources are still there stays, and a dry run removes nothing."""
    import shutil

    import typer

    from landscape.cli.errors import run_guarded
    from landscape.cli.main import app

    other = tmp_path / "other"
    shutil.copytree(folder, other)
    load_dataset(f"imagefolder:{folder}")
    load_dataset(f"imagefolder:{other}")
    assert len(entries(cache_root)) == 2 and len(list(cache_root.glob("*.pt.sources"))) == 2
    shutil.rmtree(other)

    def gc(*flags):
        capsys.readouterr()
        code = run_guarded(typer.main.get_command(app), ["gc", "--store", str(tmp_path / "store"), *flags])
        return code, capsys.readouterr().out

    code, out = gc("--dry-run")
    assert code == 0 and "1 decoded dataset(s) whose files are gone" in out and len(entries(cache_root)) == 2
    code, out = gc()
    assert code == 0 and "1 decoded dataset(s)" in out
    [kept] = entries(cache_root)
    assert kept.with_name(kept.name + ".sources").exists()
    assert str(folder) in kept.with_name(kept.name + ".sources").read_text()
    load_dataset(f"imagefolder:{folder}")   # still served from the cache
