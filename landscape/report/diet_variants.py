"""The data-diet report's comparison of pre-training variants: which rewind point gives IMP the best
tickets? (Its sections are registered by diet.py, whose runs it reads.)

- the ticket's test accuracy at early stopping (and, in a second figure, at the end of training)
  against the percent of weights remaining, a line per variant with a band from the lowest to the
  highest replicate. The variants are the IMP runs that rewind to the diet pre-trainings and every
  comparable IMP run in the same store: θ0 (no pre-training), rewind to step k on the full data,
  or rewind to another diet pre-training;
- a table of the ticket's accuracy at a few densities, a row per variant;
- the share of linearly connected training examples (Paul et al. 2022) per variant, where LMC runs
  with per-example barriers were spawned from a variant's rewind point.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import plotly.graph_objects as go

from ..store import Store
from .diet import Diet, as_int, read_diet, stores_of
from .framework import Run, Section, Table, plotly_text
from .imp import ImpTable, accuracy_layout, band_traces, read_imp
from .curves import FONT, PALETTE

THETA0 = "θ0 (no pre-training)"
THETA0_COLOUR = "#57606a"
TABLE_LEVELS = 6  # the comparison table shows at most this many density levels (the sparsest always)


# --------------------------------------------------------------------------------------------
# Pre-training variants compared
# --------------------------------------------------------------------------------------------

@dataclass(eq=False)
class Variant:
    """One way to reach the rewind point, and the IMP run (if any) that rewound to it."""

    label: str
    imp: Run | None
    diet: Diet | None
    rank: tuple  # θ0 first, then full-data rewinds by step, then pre-trainings
    table: ImpTable | None = None
    points: set[tuple[str, int]] = field(default_factory=set)  # (run, step) rewind points
    colour: str = ""


def comparable_key(config: dict[str, Any]) -> str:
    """IMP runs with equal keys differ only in where they rewind to."""
    train = {k: v for k, v in (config.get("train") or {}).items() if k != "checkpoint_at"}
    return json.dumps([train, config.get("prune"), config.get("replicates")], sort_keys=True)


def _matching_diet(imp: Run, diets: Sequence[Diet], stores: Sequence[Store]) -> Diet | None:
    """The diet run whose pre-training runs are the IMP run's "pretrained" ones."""
    wanted = set(imp.config.get("pretrained") or [])
    if not wanted:
        return None
    for diet in diets:
        if set(diet.pretrain_runs) == wanted:
            return diet
    given = {d.run.id for d in diets}
    for store in stores:
        for run in store.runs("diet"):
            if run.id not in given and set(run.section("pretrain").get("runs") or []) == wanted:
                return read_diet(run)
    return None


def _variant(imp: Run, diet: Diet | None, position: int) -> Variant:
    config = imp.config
    rewind = str(config.get("rewind", "?"))
    step = int(imp.plan.get("rewind_step", -1))
    if diet is not None:
        label, rank = diet.label, (2, position, "")
    elif config.get("pretrained"):
        label, rank = f"pre-trained ({imp.name}), rewind to {rewind}", (3, 0, imp.name)
    elif step == 0 or rewind == "0it":
        label, rank = THETA0, (0, 0, "")
    else:
        label, rank = f"rewind to {rewind}, full data", (1, step, "")
    variant = Variant(label, imp, diet, rank, table=read_imp(imp))
    variant.points = {(str(d), step) for d in imp.section("levels/000").get("dense") or []}
    if diet is not None:
        variant.points |= {(p, diet.pretrain_step) for p in diet.pretrain_runs}
    return variant


def find_variants(diets: Sequence[Diet], store_imps: Sequence[Run]) -> list[Variant]:
    """The IMP runs after these pre-trainings (linked with `link_imps`), every comparable one of
    `store_imps`, and the pre-trainings not followed by IMP (they can still have LMC measurements),
    in display order."""
    stores = stores_of([d.run for d in diets])
    imps: dict[str, tuple[Run, Diet | None]] = {}
    for diet in diets:
        for imp in diet.imps:
            imps.setdefault(imp.id, (imp, diet))
    keys = {comparable_key(imp.config) for imp, _ in imps.values()}
    for run in store_imps:
        if run.id not in imps and not run.config.get("ticket_from") and comparable_key(run.config) in keys:
            imps[run.id] = (run, _matching_diet(run, diets, stores))
    position = {d.run.id: i for i, d in enumerate(diets)}
    variants = [_variant(imp, diet, position.get(diet.run.id, len(diets)) if diet else 0)
                for imp, diet in imps.values()]
    linked = {v.diet.run.id for v in variants if v.diet is not None}
    for diet in diets:
        if diet.run.id not in linked:
            variants.append(Variant(diet.label, None, diet, (2, position[diet.run.id], ""),
                                    points={(p, diet.pretrain_step) for p in diet.pretrain_runs}))
    variants.sort(key=lambda v: v.rank)
    _unique_labels(variants)
    for i, v in enumerate(variants):
        v.colour = THETA0_COLOUR if v.label == THETA0 else PALETTE[i % len(PALETTE)]
    return variants


def _unique_labels(variants: list[Variant]) -> None:
    counts: dict[str, int] = {}
    for v in variants:
        counts[v.label] = counts.get(v.label, 0) + 1
    for v in variants:
        if counts[v.label] > 1:
            v.label = f"{v.label} [{(v.imp or v.diet.run).name}]"


def _ticket_density(table: ImpTable) -> list[float]:
    return [100 * table.density[table.levels.index(level)] for level in table.values["ticket"]["levels"]]


def _has_ticket(variant: Variant) -> bool:
    return variant.table is not None and "ticket" in variant.table.values


def _with_ticket(variants: Sequence[Variant]) -> list[Variant]:
    return [v for v in variants if _has_ticket(v)]


def comparison_figure(variants: Sequence[Variant], key: str, title: str) -> go.Figure:
    """Ticket test accuracy against weights remaining, a line (legend group `variant-i`) per variant."""
    fig = go.Figure()
    for i, v in enumerate(variants):
        if _has_ticket(v):
            band_traces(fig, _ticket_density(v.table), v.table.values["ticket"][key], v.label, v.colour,
                         "ticket", f"variant-{i}", percent=True)
    return accuracy_layout(fig, title, "test accuracy (%)")


def _table_levels(tables: Sequence[ImpTable]) -> list[tuple[int, float]]:
    density: dict[int, float] = {}
    for table in tables:
        for level in table.values["ticket"]["levels"]:
            density.setdefault(level, table.density[table.levels.index(level)])
    levels = sorted(density)
    if len(levels) > TABLE_LEVELS:
        picks = np.unique(np.round(np.linspace(0, len(levels) - 1, TABLE_LEVELS)).astype(int))
        levels = [levels[i] for i in picks]
    return [(level, density[level]) for level in levels]


def comparison_table(variants: Sequence[Variant]) -> Table:
    rows_of = _with_ticket(variants)
    columns = _table_levels([v.table for v in rows_of])
    rows = []
    for v in rows_of:
        ticket = v.table.values["ticket"]
        row: list[Any] = [v.label, v.imp.id, v.imp.config.get("replicates")]
        for level, _ in columns:
            if level in ticket["levels"]:
                row.append(f"{100 * float(np.nanmean(ticket['early'][ticket['levels'].index(level)])):.2f}%")
            else:
                row.append(None)
        rows.append(row)
    header = ["variant", "IMP run", "replicates"] + [f"{100 * d:.3g}%" for _, d in columns]
    return Table(rows, header=header, row_headers=True, align=["left", "left", "right"] + ["right"] * len(columns),
                 caption="Ticket test accuracy at early stopping, mean over replicates; columns: weights remaining")


def connected_runs(variants: Sequence[Variant], stores: Sequence[Store]) -> dict[int, list[tuple[float, float, Run]]]:
    """Per variant (by position), the LMC runs with per-example barriers spawned from one of its
    rewind points: (connected fraction, threshold, run)."""
    by_point: dict[tuple[str, int], list[tuple[float, float, Run]]] = {}
    for store in stores:
        for run in store.runs("lmc"):
            info = run.section("per_example")
            if "connected_fraction" not in info:
                continue
            lmc = run.section("lmc")
            point = (str(lmc.get("parent_run") or ""), as_int(lmc.get("parent_step"), -1))
            by_point.setdefault(point, []).append(
                (float(info["connected_fraction"]), float(info.get("threshold", 0.0)), run))
    found = {i: [m for p in sorted(v.points) for m in by_point.get(p, [])] for i, v in enumerate(variants)}
    return {i: m for i, m in found.items() if m}


def connected_figure(variants: Sequence[Variant], measured: dict[int, list[tuple[float, float, Run]]]) -> go.Figure:
    """A bar per measured variant: the mean share of linearly connected training examples over
    its LMC runs, with the lowest and highest as an error bar."""
    shown = [i for i in range(len(variants)) if i in measured]
    fractions = [100 * np.array([f for f, _, _ in measured[i]]) for i in shown]
    mean = np.array([f.mean() for f in fractions])
    low, high = np.array([f.min() for f in fractions]), np.array([f.max() for f in fractions])
    thresholds = [", ".join(f"{t:g}" for t in sorted({t for _, t, _ in measured[i]})) for i in shown]
    custom = np.array([[len(f), lo, hi, t] for f, lo, hi, t in zip(fractions, low, high, thresholds)], dtype=object)
    # Horizontal bars: variant labels are long, and read best unrotated on the y axis.
    fig = go.Figure(go.Bar(
        y=[plotly_text(variants[i].label) for i in shown], x=mean, orientation="h",
        marker={"color": [variants[i].colour for i in shown]},
        error_x={"type": "data", "symmetric": False, "array": high - mean, "arrayminus": mean - low,
                 "visible": any(len(f) > 1 for f in fractions), "color": "#59636e"},
        text=[f"{m:.1f}%" for m in mean], textposition="outside", cliponaxis=False,
        customdata=custom,
        hovertemplate=("%{y}<br>%{x:.1f}% of training examples linearly connected<br>%{customdata[0]} LMC "
                       "run(s), from %{customdata[1]:.1f}% to %{customdata[2]:.1f}%<br>barrier threshold "
                       "%{customdata[3]}<extra></extra>")))
    fig.update_layout(title={"text": "Linearly connected training examples, spawned from each rewind point",
                             "x": 0.0, "xanchor": "left", "font": {"size": 15}}, bargap=0.35,
                      font={"family": FONT, "size": 12}, template="plotly_white", height=max(300, 140 + 48 * len(shown)),
                      margin={"l": 20, "r": 40, "t": 56, "b": 56}, showlegend=False)
    fig.update_yaxes(type="category", autorange="reversed", automargin=True)
    fig.update_xaxes(title_text="connected examples (%)", range=[0, 100])
    return fig


def comparison_section(diets: Sequence[Diet], store_imps: Sequence[Run]) -> Section:
    variants = find_variants(diets, store_imps)
    with_imp = _with_ticket(variants)
    stores = stores_of([d.run for d in diets])
    measured = connected_runs(variants, stores)
    items: list[Any] = []
    if with_imp:
        intro = ("Ticket test accuracy against weights remaining for each way of reaching the rewind point: the "
                 "IMP runs after these pre-trainings and every comparable IMP run in the store (same training and "
                 "pruning configuration and number of replicates). Lines are the mean over replicates, bands the "
                 "lowest to the highest replicate.")
        items += [comparison_figure(variants, "early", "Test accuracy at early stopping vs weights remaining"),
                  comparison_figure(variants, "final", "Final test accuracy vs weights remaining"),
                  comparison_table(variants)]
    else:
        intro = "None of these pre-trainings has been followed by IMP yet, so there is no accuracy to compare."
    if len({comparable_key(v.imp.config) for v in with_imp}) > 1:
        intro += (" Note: the IMP runs after these pre-trainings differ in their training or pruning "
                  "configuration, so not every pair of lines is a like-for-like comparison.")
    if measured:
        intro += ("\n\nThe share of training examples whose loss barrier between two siblings spawned from the "
                  "rewind point is at most the threshold (Paul et al. 2022): the mean over the LMC runs measured "
                  "there, with a bar from the lowest to the highest.")
        items.append(connected_figure(variants, measured))
    else:
        intro += ("\n\nNo LMC run with per-example barriers was spawned from any of these rewind points, so the "
                  "share of linearly connected examples is not shown.")
    return Section("Pre-training variants compared", intro=intro, items=items)
