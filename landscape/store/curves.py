"""A stored curve that knows where it was measured: `run.curves["val/loss"].steps`.

A `Curve` is still the numpy array it always was (indexing, arithmetic, `.tolist()`, plotting), with
the x axis it was measured at (the `step` column of a training run, the `alpha` column of an LMC
path) alongside, and `.to_pandas()` for a Series indexed by it.
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np

AXES = ("step", "alpha")   # the x axis of a run's curves: the first of these columns it has


class Curve(np.ndarray):
    """One column of a run's curves, with `.steps` (its x values) and `.axis` (their name)."""

    def __new__(cls, values: Any, steps: Any = None, axis: str = "step", name: str = "") -> "Curve":
        obj = np.asarray(values).view(cls)
        obj.steps = None if steps is None else np.asarray(steps)
        obj.axis, obj.name = axis, name
        return obj

    def __array_finalize__(self, obj) -> None:
        if obj is None:
            return
        steps = getattr(obj, "steps", None)
        # Elementwise results keep the steps; anything of another shape has none to keep.
        self.steps = steps if steps is not None and getattr(obj, "shape", None) == self.shape else None
        self.axis, self.name = getattr(obj, "axis", "step"), getattr(obj, "name", "")

    def __array_wrap__(self, array, context=None, return_scalar=False):
        # Reductions (mean, max...) give plain numbers, as they do on a plain array.
        if array.ndim == 0:
            return array[()]
        return super().__array_wrap__(array, context, return_scalar)

    def __getitem__(self, key):
        item = super().__getitem__(key)
        if isinstance(item, Curve) and self.steps is not None and self.ndim == 1 and item.ndim == 1:
            item.steps = self.steps[key]
        return item

    @property
    def values(self) -> np.ndarray:
        """The values as a plain array."""
        return self.view(np.ndarray)

    def items(self) -> Iterator[tuple[float, float]]:
        """(step, value) pairs."""
        steps = self.steps if self.steps is not None else np.arange(len(self))
        return zip(steps.tolist(), self.values.tolist())

    def to_pandas(self):
        """A pandas Series indexed by the steps (pandas is an optional extra)."""
        import pandas as pd

        index = pd.Index(self.steps if self.steps is not None else np.arange(len(self)), name=self.axis)
        return pd.Series(self.values, index=index, name=self.name or None)

    def __repr__(self) -> str:
        if self.steps is None or self.ndim != 1:
            return f"Curve({self.values!r})"
        return f"Curve({self.name!r}, {self.axis}={self.steps.tolist()!r}, values={self.values.tolist()!r})"


def with_steps(columns: dict[str, np.ndarray]) -> dict[str, Curve]:
    """A run's curve columns as Curves carrying the run's x axis (when it has one of equal length)."""
    axis = next((a for a in AXES if a in columns), None)
    steps = columns[axis] if axis else None
    out = {}
    for name, values in columns.items():
        same = steps is not None and np.shape(values)[:1] == np.shape(steps)
        out[name] = Curve(values, steps if same else None, axis or "step", name)
    return out
