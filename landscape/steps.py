"""Training lengths and points in training, written as `500it`, `2ep` or `50k`.

A `Step` stays symbolic until the number of iterations per epoch is known (it depends on the
dataset's size and the batch size); `Step.resolve(iters_per_epoch)` turns it into an iteration
count. Plain integers and the `k` suffix (thousands of iterations) are accepted for convenience.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ConfigError

_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(it|ep|k|)\s*$")


@dataclass(frozen=True, order=True)
class Step:
    """A point in training: `value` iterations (`unit='it'`) or epochs (`unit='ep'`)."""

    value: float
    unit: str = "it"

    @classmethod
    def parse(cls, text: "str | int | Step") -> "Step":
        if isinstance(text, Step):
            return text
        if isinstance(text, int) and not isinstance(text, bool):
            if text < 0:
                raise ConfigError(f"step {text} is negative", "steps count from 0")
            return cls(float(text), "it")
        if not isinstance(text, str):
            raise ConfigError(f"cannot read {text!r} as a step", "write e.g. 500it, 2ep or 50k")
        match = _PATTERN.match(text.lower())
        if not match:
            raise ConfigError(f"cannot read {text!r} as a step", "write e.g. 500it, 2ep or 50k")
        number, unit = float(match.group(1)), match.group(2)
        if unit == "k":
            number, unit = number * 1000, "it"
        unit = unit or "it"
        if unit == "it" and number != int(number):
            raise ConfigError(f"step {text!r} is a fraction of an iteration", "use whole iterations")
        return cls(number, unit)

    def resolve(self, iters_per_epoch: int) -> int:
        """The step as an iteration count. Fractional epochs round down to a whole iteration."""
        if self.unit == "it":
            return int(self.value)
        return int(self.value * iters_per_epoch)

    def __str__(self) -> str:
        value = int(self.value) if self.value == int(self.value) else self.value
        return f"{value}{self.unit}"


def parse_step_list(text: str) -> tuple[str, ...]:
    """Parse `0,100it,2ep,end` into canonical strings; `end` stays symbolic."""
    items: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        items.append("end" if part.lower() == "end" else str(Step.parse(part)))
    return tuple(items)


def resolve_step_list(items: tuple[str, ...], iters_per_epoch: int, total: int) -> list[int]:
    """Iteration numbers for a list of step strings, sorted and de-duplicated."""
    out = set()
    for item in items:
        step = total if item == "end" else Step.parse(item).resolve(iters_per_epoch)
        if step > total:
            raise ConfigError(
                f"checkpoint step {item} ({step} iterations) is beyond the end of training "
                f"({total} iterations)", "choose a step within the run")
        out.add(step)
    return sorted(out)
