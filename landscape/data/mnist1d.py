"""MNIST-1D (Greydanus & Kobak 2020, "Scaling down deep learning"): 5,000 one-dimensional signals
of length 40 in 10 classes, 4,000 train / 1,000 test, generated offline in about a second.

The generation procedure of the `mnist1d` package (mnist1d/data.py `make_dataset` and
mnist1d/transform.py, version 0.0.2), reimplemented here with its default arguments and seed 42:
each digit's 12-point template is padded with 36..60 zeros, stretched to 72 points, scaled by
1 ± 0.2, circularly shifted by 0..47, its zeros replaced by correlated noise (σ 0.25, Gaussian
filter σ 2), given i.i.d. noise (σ 0.02), sheared by ±0.375 and resampled to 40 points; the set is
shuffled, centred and scaled to unit std, and its first 80% is the training set.

Why not import the package: its modules import matplotlib and requests at load time, it seeds
numpy's and Python's global generators, and its `get_dataset` downloads by default. Here the same
draws come from a private `numpy.random.RandomState(42)` (the legacy generator that
`np.random.seed` drives, so the stream is the same), so the data is the package's bit for bit and
nothing global moves. Signals are kept as float32 `[N, 1, 1, 40]`.
"""
from __future__ import annotations

import functools

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from .dataset import Dataset

SEED = 42
NUM_SAMPLES = 5000
TRAIN_SPLIT = 0.8
TEMPLATE_LEN = 12
PADDING = (36, 60)
SCALE_COEFF = 0.4
MAX_TRANSLATION = 48
CORR_NOISE_SCALE = 0.25
IID_NOISE_SCALE = 2e-2
SHEAR_SCALE = 0.75
FINAL_SEQ_LENGTH = 40
CLASSES = tuple(str(d) for d in range(10))

_DIGITS = np.asarray([
    [5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5],
    [5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5],
    [5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5],
    [5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5],
    [5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5],
    [5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5],
    [5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5],
    [5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5],
    [5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5],
    [5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5],
])


def templates() -> np.ndarray:
    """The ten whitened digit templates, starting and ending at 0, scaled by 1/6."""
    x = _DIGITS.astype(np.float64).copy()
    x -= x.mean(1, keepdims=True)
    x /= x.std(1, keepdims=True)
    x -= x[:, :1]
    return x / 6.0


def _interpolate(x: np.ndarray, n: int) -> np.ndarray:
    # scipy's linear interp1d (the package's call) gives these values bit for bit; np.interp
    # with cached grids is several times faster.
    return np.interp(_grid(n), _grid(len(x)), x)


@functools.lru_cache(maxsize=None)
def _grid(n: int) -> np.ndarray:
    return np.linspace(0, 1, n)


def _transform(x: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    # The order of the draws is the package's: pad, scale, translate, correlated noise, iid noise, shear.
    p = PADDING[0] + int(rng.rand() * (PADDING[1] - PADDING[0] + 1))
    x = np.concatenate([x + 1e-8, np.zeros(p)])
    x = _interpolate(x, TEMPLATE_LEN + PADDING[-1])
    x *= 1 + SCALE_COEFF * (rng.rand() - 0.5)
    k = rng.choice(MAX_TRANSLATION)
    x = np.concatenate([x[-k:], x[:-k]])  # k = 0 leaves x as it is, as in the package
    mask = x != 0
    x = mask * x + (1 - mask) * gaussian_filter(CORR_NOISE_SCALE * rng.randn(*x.shape), 2)
    x = x + IID_NOISE_SCALE * rng.randn(*x.shape)
    x = x - SHEAR_SCALE * (rng.rand() - 0.5) * (_grid(len(x)) - 0.5)
    return _interpolate(x, FINAL_SEQ_LENGTH)


def make_mnist1d_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train_x [4000, 40] float64, train_y, test_x [1000, 40], test_y), as the package makes them."""
    rng = np.random.RandomState(SEED)
    t = templates()
    per_class = NUM_SAMPLES // len(t)
    xs, ys = [], []
    for label in range(len(t)):
        for _ in range(per_class):
            xs.append(_transform(t[label], rng))
            ys.append(label)
    order = rng.permutation(len(ys))
    x, y = np.stack(xs)[order], np.asarray(ys, dtype=np.int64)[order]
    x = (x - x.mean()) / x.std()
    split = int(len(y) * TRAIN_SPLIT)
    return x[:split], y[:split], x[split:], y[split:]


def make_mnist1d() -> Dataset:
    train_x, train_y, test_x, test_y = make_mnist1d_arrays()

    def signals(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x.astype(np.float32)).view(len(x), 1, 1, FINAL_SEQ_LENGTH)

    return Dataset("mnist1d", signals(train_x), torch.from_numpy(train_y),
                   signals(test_x), torch.from_numpy(test_y), CLASSES)
