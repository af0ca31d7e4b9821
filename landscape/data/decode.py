"""Decoding many small image files into one uint8 array, in worker processes.

Decoding a 32×32 JPEG costs tens of microseconds, most of it Python-level per-file work in Pillow
that holds the GIL, so threads barely help and worker processes do. Files go to the workers in
chunks: each chunk comes back as one `[k, C, H, W]` array, so what crosses the process boundary is a
few large buffers rather than tens of thousands of tiny ones.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from itertools import repeat
from pathlib import Path

import numpy as np

from ..errors import DataError
from .progress import progress_bar

CHUNK_FILES = 1000
# Below this many files a pool costs more to start than it saves.
PARALLEL_MIN_FILES = 4000
MAX_WORKERS = 8

_GRAY_MODES = frozenset({"1", "L", "LA", "La"})
# High-bit-depth modes: converting them to 8 bits clips rather than scales, silently.
_UNSUPPORTED_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


class ImageProblem(Exception):
    """One file that cannot be decoded as the dataset needs. Plain args, so it pickles across processes."""

    def __init__(self, path: str, problem: str, fix: str):
        super().__init__(path, problem, fix)
        self.path, self.problem, self.fix = path, problem, fix


def decode_groups(groups: Sequence[Sequence[str | Path]], description: str) -> list[np.ndarray]:
    """Decode each group of files into one uint8 `[n, C, H, W]` array (one array per group).

    All images must have the size of the first one. C is 1 when every image is grayscale and 3
    otherwise; grayscale images in a colour dataset get their one channel repeated.
    """
    all_files = [str(p) for group in groups for p in group]
    if not all_files:
        return [np.zeros((0, 1, 0, 0), np.uint8) for _ in groups]
    # Chunks never straddle groups, so each group is a concatenation of its own chunks.
    chunks = [(g, [str(p) for p in group[start : start + CHUNK_FILES]])
              for g, group in enumerate(groups) for start in range(0, len(group), CHUNK_FILES)]
    try:
        reference = (all_files[0], _image_size(all_files[0]))
        arrays = _decode_chunks([paths for _, paths in chunks], reference, description)
    except ImageProblem as err:
        raise DataError(f"image {err.path} {err.problem}", err.fix) from None
    per_group: list[list[np.ndarray]] = [[] for _ in groups]
    for (g, _), array in zip(chunks, arrays):
        per_group[g].append(array)
    channels = max(a.shape[1] for a in arrays)
    return [_join(parts, channels, reference) for parts in per_group]


def _decode_chunks(chunks: list[list[str]], reference: tuple[str, tuple[int, int]],
                   description: str) -> list[np.ndarray]:
    total = sum(map(len, chunks))
    arrays = []
    with progress_bar(description, total, min_total=PARALLEL_MIN_FILES) as advance, _pool(total) as pool:
        for paths, array in zip(chunks, pool.map(decode_chunk, chunks, repeat(reference))):
            arrays.append(array)
            advance(len(paths))
    return arrays


def decode_chunk(paths: list[str], reference: tuple[str, tuple[int, int]]) -> np.ndarray:
    """uint8 `[k, C, H, W]` for `paths`, each checked to have the reference image's size."""
    ref_path, (width, height) = reference
    out = np.empty((len(paths), 3, height, width), np.uint8)
    gray = np.zeros(len(paths), bool)
    for i, path in enumerate(paths):
        pixels = _decode(path)
        if pixels.shape[:2] != (height, width):
            raise ImageProblem(path, f"is {pixels.shape[1]}×{pixels.shape[0]} but {ref_path} is {width}×{height}",
                               "all images of a dataset must share one size: resize them first")
        if pixels.ndim == 2:
            out[i, 0] = pixels
            gray[i] = True
        else:
            out[i] = pixels.transpose(2, 0, 1)
    if gray.all():
        return np.ascontiguousarray(out[:, :1])
    out[gray, 1:] = out[gray, :1]
    return out


def _decode(path: str) -> np.ndarray:
    """`[H, W]` for a grayscale image, `[H, W, 3]` for anything else."""
    from PIL import Image  # deferred: only imagefolder datasets need Pillow

    try:
        with Image.open(path) as image:
            if image.mode in _UNSUPPORTED_MODES:
                raise ImageProblem(path, f"has {image.mode} pixels, but only 8-bit grayscale or colour images "
                                         "are supported", "convert it to an 8-bit PNG or JPEG")
            target = "L" if image.mode in _GRAY_MODES else "RGB"
            return np.asarray(image if image.mode == target else image.convert(target))
    except ImageProblem:
        raise
    except (OSError, SyntaxError, ValueError) as err:
        # Pillow raises UnidentifiedImageError (an OSError) for non-images, OSError for truncated
        # files and SyntaxError or ValueError for some malformed headers.
        raise ImageProblem(path, f"cannot be decoded ({err})", "delete or replace the file") from None


def _image_size(path: str) -> tuple[int, int]:
    """(width, height) from the header alone. Runs first, in this process, so it also checks for Pillow."""
    try:
        from PIL import Image
    except ImportError:
        raise DataError("imagefolder datasets need Pillow to decode images, and it is not installed",
                        "pip install pillow") from None
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageProblem(path, f"cannot be decoded ({err})", "delete or replace the file") from None


def _join(parts: list[np.ndarray], channels: int, reference: tuple[str, tuple[int, int]]) -> np.ndarray:
    if not parts:
        width, height = reference[1]
        return np.zeros((0, channels, height, width), np.uint8)
    if channels == 3:
        parts = [np.repeat(p, 3, axis=1) if p.shape[1] == 1 else p for p in parts]
    return np.concatenate(parts)


@contextmanager
def _pool(n_files: int) -> Iterator[Executor]:
    workers = min(_available_cpus(), MAX_WORKERS)
    # fork, and only on Linux: the workers run Pillow and numpy only, never torch, so inheriting
    # the parent's state is safe, and unlike spawn they need not re-import torch (seconds each).
    # macOS and Windows decode in-process rather than risk fork there.
    if n_files < PARALLEL_MIN_FILES or workers < 2 or not sys.platform.startswith("linux"):
        pool: Executor = _InlineExecutor()
    else:
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    try:
        yield pool
    finally:
        # On a bad file, drop the chunks not yet started instead of decoding them for nothing.
        pool.shutdown(wait=True, cancel_futures=True)


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # honours CPU pinning and container limits
    except AttributeError:
        return os.cpu_count() or 1


class _InlineExecutor(Executor):
    """An executor that maps in the calling process, lazily, so progress still advances per chunk."""

    def map(self, fn, *iterables, timeout=None, chunksize=1):  # noqa: ARG002 - Executor's signature
        return map(fn, *iterables)
