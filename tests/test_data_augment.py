"""Whole-batch augmentation: shapes, determinism, and agreement with a per-sample reference."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from landscape.data import AUGMENT_KINDS, augment_batch, random_crop, random_flip
from landscape.data.augment import crop_offsets, crop_padding, flip_mask
from landscape.errors import ConfigError


def batch(n=6, c=3, h=8, w=10) -> torch.Tensor:
    return torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(0))


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("kind", AUGMENT_KINDS)
def test_every_kind_keeps_the_shape_and_is_deterministic(kind):
    x = batch()
    a, b = augment_batch(x, kind, gen(5)), augment_batch(x, kind, gen(5))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b)


def test_none_is_the_identity_and_different_seeds_differ():
    x = batch(n=32)
    assert torch.equal(augment_batch(x, "none", gen(0)), x)
    assert not torch.equal(augment_batch(x, "crop-flip", gen(0)), augment_batch(x, "crop-flip", gen(1)))


def test_crop_matches_a_per_sample_reference():
    x, padding = batch(), 2
    out = random_crop(x, padding, gen(3))
    rows, cols = crop_offsets(len(x), padding, gen(3), x.device)
    for i in range(len(x)):
        padded = F.pad(x[i], (padding,) * 4)
        r, c = int(rows[i]), int(cols[i])
        assert torch.equal(out[i], padded[:, r : r + x.shape[2], c : c + x.shape[3]])
    assert rows.min() >= 0 and rows.max() <= 2 * padding


def test_crop_offsets_cover_the_whole_range():
    rows, cols = crop_offsets(2000, 3, gen(0), torch.device("cpu"))
    assert set(rows.tolist()) == set(range(7)) and set(cols.tolist()) == set(range(7))


def test_flip_flips_exactly_the_chosen_samples():
    x = batch(n=16)
    out = random_flip(x, gen(9))
    mask = flip_mask(len(x), gen(9), x.device)
    assert 0 < int(mask.sum()) < len(x)
    for i in range(len(x)):
        assert torch.equal(out[i], x[i].flip(-1) if mask[i] else x[i])


def test_padding_rule():
    assert crop_padding(32, 32) == 4 and crop_padding(28, 28) == 3
    assert crop_padding(8, 8) == 1 and crop_padding(4, 4) == 1 and crop_padding(64, 16) == 2


def test_crop_kind_uses_the_padding_rule():
    x = batch(n=4, h=32, w=32)
    expected = random_crop(x, 4, gen(2))
    assert torch.equal(augment_batch(x, "crop", gen(2)), expected)


def test_unknown_kind_is_a_config_error():
    with pytest.raises(ConfigError, match="crop-flip"):
        augment_batch(batch(), "rotate", gen(0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_augment_on_cuda_matches_its_own_seed():
    x = batch().cuda()
    g = lambda: torch.Generator(device="cuda").manual_seed(1)  # noqa: E731
    assert torch.equal(augment_batch(x, "crop-flip", g()), augment_batch(x, "crop-flip", g()))
