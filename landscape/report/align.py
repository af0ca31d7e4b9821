"""Report sections for alignment: networks aligned by permutation (kind "aligned") and LMC before
and after alignment (kind "lmc_align", from `landscape lmc --align`).

lmc_align: for each pair, error and loss along the path before alignment, after it and (where
measured) after REPAIR, on one figure (stage by colour, test solid, train dashed); and one table
of barriers and distances before/after, a row per pair. aligned: what each search found.
Everything is read from the store (the LMC runs a comparison links to are opened by ID).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go

from ..store import Store
from .framework import Run, Section, Table, plotly_text, section_for
from .lmc import SPLIT_DASH, _layout, _num, _pct, _short

STAGES = {"before": ("before alignment", "#8c959f"), "after": ("after alignment", "#0969da"),
          "repaired": ("after alignment + REPAIR", "#1a7f37")}


def _linked(run: Run) -> dict[str, Any]:
    store = Store(run.path.parent)
    return {k: store.open(run.config[k]) for k in STAGES if run.config.get(k)}


def curves_figure(run: Run, linked: dict[str, Any], metric: str) -> go.Figure | None:
    fig = go.Figure()
    scale, fmt, label = (100, ".2f", "error (%)") if metric == "error" else (1, ".4f", "loss")
    for stage, lmc in linked.items():
        name, colour = STAGES[stage]
        alpha = np.asarray(lmc.curves.get("alpha", []), dtype=float)
        for split in ("test", "train"):
            values = lmc.curves.get(f"{split}/{metric}")
            if values is None or len(values) != len(alpha):
                continue
            fig.add_trace(go.Scatter(
                x=alpha, y=np.asarray(values, dtype=float) * scale, mode="lines+markers", name=f"{name}, {split}",
                line=dict(color=colour, dash=SPLIT_DASH[split], width=2), marker=dict(size=5),
                hovertemplate=(f"<b>{plotly_text(name)}</b><br>{split} {metric}: %{{y:{fmt}}}"
                               f"{'%' if metric == 'error' else ''}<br>α = %{{x:.3f}}<extra></extra>")))
    if not fig.data:
        return None
    info = run.section("comparison")
    title = (f"{'Error' if metric == 'error' else 'Loss'} along the path, before and after aligning B to A "
             f"({info.get('method')}): {_short(run.name, 60)}")
    return _layout(fig, plotly_text(title), "α (0 = A, 1 = π(B) after alignment, B before)", label)


def comparison_table(runs: Sequence[Run]) -> Table:
    rows = []
    for number, run in enumerate(runs, start=1):
        m, info = run.metrics, run.section("comparison")
        stages = [s for s in STAGES if f"{s}/test/loss_barrier" in m]

        def values(key: str, fmt) -> str | None:
            if all(m.get(f"{s}/{key}") is None for s in stages):
                return None
            return " → ".join(fmt(m.get(f"{s}/{key}")) or "—" for s in stages)

        rows.append([number, _short(str(info.get("a_label", "")).split(" (")[0], 40),
                     _short(str(info.get("b_label", "")).split(" (")[0], 40), info.get("method"),
                     values("test/loss_barrier", lambda v: _num(v, 3)),
                     values("train/loss_barrier", lambda v: _num(v, 3)),
                     values("test/error_barrier", _pct), values("distance/l2", lambda v: _num(v, 4)),
                     values("distance/mask_jaccard", lambda v: None if v is None else f"{v:.3f}"),
                     info.get("correction")])
    return Table(rows, header=["#", "A", "B", "method", "test loss barrier", "train loss barrier",
                               "test error barrier", "L2", "mask Jaccard", "correction along the path"],
                 caption="Before → after alignment (→ after REPAIR where measured), one row per pair",
                 row_headers=True, align=["left", "left", "left", "left", "right", "right", "right", "right",
                                          "right", "left"])


@section_for("lmc_align")
def lmc_align_sections(runs: list[Run]) -> list[Section]:
    items: list[Any] = []
    for run in runs:
        linked = _linked(run)
        items += [f for f in (curves_figure(run, linked, "loss"), curves_figure(run, linked, "error")) if f]
    items.append(comparison_table(runs))
    intro = ("Each pair is interpolated twice: between A and B as trained, and between A and π(B), B with its hidden "
             "units permuted to match A (π(B) computes exactly B's function). A barrier that vanishes after "
             "alignment puts A and B in one basin up to a permutation; one that stays puts them in the same region "
             "at most. REPAIR (Jordan et al. 2022) rescales each unit along the path to the interpolation of the "
             "endpoints' statistics; in BatchNorm networks recomputing the statistics at each α does that, and is "
             "used before and after alignment alike.")
    return [Section("Linear mode connectivity before and after alignment", intro=intro, items=items)]


@section_for("aligned")
def aligned_sections(runs: list[Run]) -> list[Section]:
    rows = []
    for run in runs:
        m, info = run.metrics, run.section("alignment")
        found = (f"{int(m['passes'])} passes; objective {_num(m['objective_before'], 5)} → {_num(m['objective_after'], 5)}"
                 if info.get("method") == "weights" else
                 f"{int(m['examples'])} examples; correlation {m['correlation_before']:.3f} → {m['correlation_after']:.3f}")
        jaccard = f"{m['jaccard_before']:.3f} → {m['jaccard_after']:.3f}" if "jaccard_before" in m else None
        rows.append([run.name, _short(str(info.get("a_label", "")), 50), info.get("method"), found,
                     f"{_num(m['l2_before'])} → {_num(m['l2_after'])}", jaccard, f"{m['seconds']:.2f}s"])
    table = Table(rows, header=["aligned network", "aligned to (A)", "method", "search", "L2 to A", "mask Jaccard",
                                "time"], row_headers=True,
                  align=["left", "left", "left", "left", "right", "right", "right"])
    return [Section("Aligned networks", intro=("B with its hidden units permuted towards A (weights, biases, "
                                                "BatchNorm parameters and statistics, and the mask together)."),
                    items=[table])]


@section_for("instability_align")
def instability_align_sections(runs: list[Run]) -> list[Section]:
    items: list[Any] = []
    for metric, scale, label in (("error", 100, "error barrier (%)"), ("loss", 1, "loss barrier")):
        fig = go.Figure()
        for run in runs:
            x = [f"{int(s)}it" for s in run.curves.get("step", [])]
            for stage in ("before", "after"):
                name, colour = STAGES[stage]
                for split in ("test", "train"):
                    y = np.asarray(run.curves.get(f"{stage}/{split}/{metric}_barrier/mean", []), dtype=float)
                    fig.add_trace(go.Scatter(x=x, y=y * scale, mode="lines+markers", name=f"{name}, {split}",
                                             line=dict(color=colour, dash=SPLIT_DASH[split], width=2)))
        _layout(fig, f"{'Error' if metric == 'error' else 'Loss'} barrier between siblings vs k, before and after "
                "alignment (mean over pairs)", "k: iteration the siblings were spawned at", label)
        fig.update_xaxes(type="category")
        items.append(fig)
    return [Section("Instability before and after alignment", intro=(
        "At each spawn step k, every pair of siblings interpolated as trained and after permuting one to match the "
        "other. Alignment can only remove barriers that come from permuted units; what remains is a genuine "
        "barrier between the two solutions."), items=items)]


__all__ = ["instability_align_sections", "lmc_align_sections", "aligned_sections", "comparison_table", "curves_figure"]
