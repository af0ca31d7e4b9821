"""Benchmark figures as data, so one GPU run gives a closing note all its numbers.

Each benchmark prints its figures for a person and, with `--json PATH`, also writes them as rows
of (figure, value, unit, baseline, ratio); experiments/gpu_check.py gathers the rows of every step
into one JSON file and one table.

    figures = Figures()
    figures.add("LeNet epoch: engine", engine_s, "s", baseline=bare_s, baseline_label="bare loop")
    figures.write(args.json)          # no-op when args.json is None
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Figure:
    figure: str
    value: float
    unit: str = "s"
    baseline: float | None = None
    baseline_label: str = ""
    ratio: float | None = None   # value / baseline: below 1 is faster (for times) than the baseline
    text: str = ""               # a finding that is not a number (a chosen layout, a data source)


class Figures:
    def __init__(self) -> None:
        self.rows: list[Figure] = []

    def add(self, figure: str, value: float, unit: str = "s", *, baseline: float | None = None,
            baseline_label: str = "") -> Figure:
        ratio = value / baseline if baseline not in (None, 0) and math.isfinite(value) else None
        row = Figure(figure, float(value), unit, None if baseline is None else float(baseline), baseline_label, ratio)
        self.rows.append(row)
        return row

    def note(self, figure: str, text: str) -> None:
        """A non-numeric finding (a chosen layout, a data source), kept beside the numbers."""
        self.rows.append(Figure(figure, math.nan, "", text=text))

    def write(self, path: str | Path | None, **context) -> None:
        if path is None:
            return
        rows = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(r).items()}
                for r in self.rows]
        Path(path).write_text(json.dumps({"context": context, "figures": rows}, indent=1, ensure_ascii=False))
