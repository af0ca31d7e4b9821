"""How many weights a pruning step removes: the one counting rule, and its schedules.

The rule (open_lth's `sparse_global`): a step at rate f over n weights still alive removes

    pruned(f, n) = ceil(f * n),    so it keeps    n - ceil(f * n) = floor((1 - f) * n).

The product is computed exactly, in rationals, with f read as the shortest decimal that prints
as the float (0.2 means 1/5, not the binary 0.2000000000000000111...). So "20% of 100" is 20
whatever the floating-point error, and 1 - 0.8 is exactly 1/5. open_lth multiplies in floating
point; for the usual rates the two agree, and where a float product lands one ulp past an
integer, this rule is the one that prunes what the decimal rate says.

One-shot pruning to a target density d of n weights keeps floor(d * n): the same rule as one
step at rate 1 - d, so one-shot and one round of iterative pruning agree at equal density.

Densities compound: L rounds at rate f leave about (1 - f)^L of a layer (`level_density`), but
the ceil makes the exact count a little lower; `kept_schedule` and `layerwise_schedule` simulate
the rule to give the exact counts a pruning run will store.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Collection, Mapping
from fractions import Fraction

from ..errors import ConfigError


def exact_rate(x, what: str = "fraction") -> Fraction:
    """`x` as an exact rational strictly between 0 and 1 (see the module docstring).

    Ints and Fractions are taken as they are; any other real number (float, numpy scalar) is read
    through its shortest round-trip decimal. Raises ConfigError outside (0, 1) or for a non-number.
    """
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise ConfigError(f"{what} {x!r} is not a number", "use a number strictly between 0 and 1")
    if isinstance(x, numbers.Rational):
        rate = Fraction(x)
    else:
        value = float(x)
        if not math.isfinite(value):
            raise ConfigError(f"{what} {x!r} is not finite",
                              "use a number strictly between 0 and 1")
        rate = Fraction(repr(value))
    if not 0 < rate < 1:
        raise ConfigError(f"{what} {x!r} is outside (0, 1)",
                          "use a number strictly between 0 and 1, e.g. 0.2 to prune 20%")
    return rate


def pruned_count(fraction, alive: int) -> int:
    """Weights a step at rate `fraction` removes from `alive` live ones: ceil(fraction * alive)."""
    return math.ceil(exact_rate(fraction) * _count(alive))


def kept_at_density(density, total: int) -> int:
    """Weights that pruning `total` weights to `density` keeps: floor(density * total)."""
    return math.floor(exact_rate(density, "target density") * _count(total))


def level_density(fraction, level: int) -> float:
    """The nominal density after `level` rounds at rate `fraction`: (1 - fraction) ** level.

    Nominal only: exact counts are a little lower because every round rounds its pruned count
    up; use `kept_schedule` for the exact numbers.
    """
    return float((1 - exact_rate(fraction)) ** _count(level, "level"))


def kept_schedule(total: int, fraction, levels: int) -> list[int]:
    """Exact live weights of one pool of `total` weights at levels 0..`levels` of pruning at rate
    `fraction` per level. A global pool (scope "global") follows this as a whole."""
    kept = [_count(total)]
    for _ in range(_count(levels, "levels")):
        kept.append(kept[-1] - pruned_count(fraction, kept[-1]))
    return kept


def layerwise_schedule(sizes: Mapping[str, int], fraction, levels: int, *,
                       overrides: Mapping[str, float] | None = None,
                       exclude: Collection[str] = ()) -> list[dict[str, int]]:
    """Exact live weights per tensor at levels 0..`levels` of layerwise pruning.

    `sizes` maps tensor name to weight count (e.g. `{n: m.numel() for n, m in mask.items()}`);
    `overrides` gives a tensor its own rate; `exclude`d tensors keep every weight.
    """
    levels = _count(levels, "levels")
    overrides = dict(overrides or {})
    unknown = [n for n in [*overrides, *exclude] if n not in sizes]
    if unknown:
        raise ConfigError(f"unknown tensor {unknown[0]!r}", f"tensors are: {', '.join(sizes)}")
    per_tensor = {
        name: [_count(size)] * (levels + 1) if name in exclude
        else kept_schedule(size, overrides.get(name, fraction), levels)
        for name, size in sizes.items()
    }
    return [{name: counts[level] for name, counts in per_tensor.items()}
            for level in range(levels + 1)]


def _count(n, what: str = "weight count") -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ConfigError(f"{what} {n!r} is not a non-negative integer")
    return int(n)
