"""Report sections for IMP runs (kind "imp"): do the tickets win, and do the controls lose?

- Test accuracy against the percent of weights remaining (log axis, sparser to the right, as in
  the papers), for the ticket and every control: the mean over replicates with a band from the
  lowest to the highest replicate. Accuracy is taken at the early-stopping iteration (minimum
  validation loss, Frankle & Carbin 2019) and, in a second figure, at the end of training.
- The early-stopping iteration against weights remaining.
- The percent of weights remaining in each layer at each level.
- The ticket's test-accuracy curve during training at each level (replicate 0).
Several IMP runs overlay: each run has a colour, each role a dash style and marker.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go

from ..store import Store
from .framework import Run, Section, Table, plotly_text, section_for
from .train import FONT, PALETTE

ROLES = ("ticket", "reinit", "random-prune", "rescaled-reinit")
ROLE_STYLE = {"ticket": ("solid", "circle"), "reinit": ("dash", "x"), "random-prune": ("dot", "triangle-up"),
              "rescaled-reinit": ("dashdot", "square")}
LABEL = {"ticket": "ticket", "reinit": "reinit control", "random-prune": "random-pruning control",
         "rescaled-reinit": "rescaled-reinit control"}


@dataclass
class ImpTable:
    """An IMP run's results, level by level, read from its member runs."""

    run: Run
    levels: list[int] = field(default_factory=list)
    density: list[float] = field(default_factory=list)
    # role -> metric -> [level][replicate]
    values: dict[str, dict[str, list[list[float]]]] = field(default_factory=dict)
    layers: dict[str, list[float]] = field(default_factory=dict)  # layer -> percent remaining per level
    curves: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # level -> (step, test acc)


METRICS = {"early": "min_val_loss/test/acc", "final": "final/test/acc", "stop": "min_val_loss/step"}


def read_imp(run: Run) -> ImpTable:
    store = Store(run.path.parent)
    table = ImpTable(run)
    for name in run.sections("levels"):
        record = run.section(f"levels/{name}")
        level = int(name)
        table.levels.append(level)
        table.density.append(float(record["density"]))
        for role in ROLES:
            ids = record.get(role) if level > 0 or role == "ticket" else None
            if not ids:
                continue
            members = [store.open(i) for i in ids]
            per_metric = table.values.setdefault(role, {k: [] for k in METRICS})
            for key, metric in METRICS.items():
                per_metric[key].append([float(m.metrics.get(metric, math.nan)) for m in members])
            if role == "ticket" and "test/acc" in members[0].curves:
                table.curves[level] = (members[0].curves["step"], members[0].curves["test/acc"])
            per_metric.setdefault("levels", []).append(level)
        if "layers" in record:
            for layer, kept, total in zip(record["layers"], record["kept"], record["total"]):
                table.layers.setdefault(layer, []).append(100 * kept / total)
    return table


def _role_density(table: ImpTable, role: str) -> list[float]:
    levels = table.values[role]["levels"]
    return [100 * table.density[table.levels.index(level)] for level in levels]


def band_traces(fig: go.Figure, x, rows, name: str, colour: str, role: str, group: str, percent: bool) -> None:
    scale = 100 if percent else 1
    arr = np.array(rows, dtype=float) * scale
    mean, low, high = np.nanmean(arr, 1), np.nanmin(arr, 1), np.nanmax(arr, 1)
    dash, marker = ROLE_STYLE[role]
    if arr.shape[1] > 1:
        fig.add_trace(go.Scatter(x=list(x) + list(x)[::-1], y=list(high) + list(low)[::-1], fill="toself",
                                 fillcolor=colour, opacity=0.15, line=dict(width=0), hoverinfo="skip",
                                 showlegend=False, legendgroup=group))
    fig.add_trace(go.Scatter(
        x=list(x), y=list(mean), mode="lines+markers", name=plotly_text(name), legendgroup=group,
        line=dict(color=colour, dash=dash), marker=dict(symbol=marker, size=7),
        customdata=np.stack([low, high], 1),
        hovertemplate=(f"{plotly_text(name)}<br>%{{x:.2f}}% remaining<br>mean %{{y:.2f}}"
                       + (" (min %{customdata[0]:.2f}, max %{customdata[1]:.2f})" if arr.shape[1] > 1 else "")
                       + "<extra></extra>")))


def level_ticks(tables: list[ImpTable]) -> list[float]:
    """A tick at every level's percent of weights remaining (80, 64, 51.2, ... for 20% a level)."""
    return sorted({round(100 * d, 6) for t in tables for d in t.density}, reverse=True)


def tick_text(value: float) -> str:
    return f"{value:.3g}" if value >= 1 else f"{value:.2g}"


def accuracy_layout(fig: go.Figure, title: str, ytitle: str, ticks: list[float] | None = None) -> go.Figure:
    fig.update_layout(title=dict(text=title, font=dict(size=15)), font=dict(family=FONT, size=12),
                      template="plotly_white", height=460, margin=dict(l=60, r=20, t=50, b=50),
                      legend=dict(groupclick="toggleitem"), hovermode="closest")
    fig.update_xaxes(title_text="weights remaining (%)", type="log", autorange="reversed")
    if ticks:
        fig.update_xaxes(tickvals=ticks, ticktext=[tick_text(t) for t in ticks], tickangle=0)
    fig.update_yaxes(title_text=ytitle)
    return fig


def _colour(tables: list[ImpTable], i: int, role: str) -> str:
    """One run: a colour per role. Several: a colour per run (roles keep their dash and marker)."""
    return PALETTE[(ROLES.index(role) if len(tables) == 1 else i) % len(PALETTE)]


def short_name(table: ImpTable, tables: list[ImpTable], limit: int = 24) -> str:
    """A legend's name for a run: short, and distinct among the runs shown."""
    name = table.run.name
    short = name if len(name) <= limit else name[: limit - 1] + "…"
    if sum(1 for t in tables if (t.run.name[: limit - 1] if len(t.run.name) > limit else t.run.name)
           == (name[: limit - 1] if len(name) > limit else name)) > 1:
        short = f"{short[: limit - 8]}… {table.run.id[:6]}"
    return short


def _role_figure(tables: list[ImpTable], key: str, title: str, ytitle: str, percent: bool) -> go.Figure:
    fig = go.Figure()
    for i, table in enumerate(tables):
        prefix = f"{short_name(table, tables)}: " if len(tables) > 1 else ""
        for role in ROLES:
            if role in table.values:
                band_traces(fig, _role_density(table, role), table.values[role][key], prefix + LABEL[role],
                             _colour(tables, i, role), role, f"{table.run.id}-{role}", percent=percent)
    return accuracy_layout(fig, title, ytitle, level_ticks(tables))


def accuracy_figure(tables: list[ImpTable], key: str, title: str) -> go.Figure:
    fig = _role_figure(tables, key, title, "test accuracy (%)", percent=True)
    for i, table in enumerate(tables):
        dense = dense_accuracy(table, key)
        if dense is not None:
            # The dense network (level 0) as a reference: a ticket "wins" at or above this line.
            who = f" ({short_name(table, tables)})" if len(tables) > 1 else ""
            fig.add_hline(y=100 * dense, line=dict(color=_colour(tables, i, "ticket"), dash="longdash", width=1),
                          opacity=0.7, annotation_text=f"dense network{who}: {100 * dense:.2f}%",
                          annotation_position="bottom left")
    return fig


def dense_accuracy(table: ImpTable, key: str) -> float | None:
    ticket = table.values.get("ticket", {})
    if 0 not in ticket.get("levels", []):
        return None
    value = float(np.nanmean(ticket[key][ticket["levels"].index(0)]))
    return None if math.isnan(value) else value


def stop_figure(tables: list[ImpTable]) -> go.Figure:
    return _role_figure(tables, "stop", "Early-stopping iteration (minimum validation loss)", "iteration",
                        percent=False)


def layer_figure(table: ImpTable) -> go.Figure:
    fig = go.Figure()
    # Level 0 is the dense network: every layer at 100%.
    levels = ([0] if 0 in table.levels else []) + table.levels[1:]
    dashes = ("solid", "dash", "dot", "dashdot", "longdash")
    symbols = ("circle", "square", "diamond", "triangle-up", "x", "cross")
    for j, (layer, remaining) in enumerate(table.layers.items()):
        remaining = ([100.0] if 0 in table.levels else []) + list(remaining)
        # Layers pruned at the same rate lie on one another: dashes and markers keep each visible.
        fig.add_trace(go.Scatter(x=levels, y=remaining, mode="lines+markers", name=plotly_text(layer),
                                 line=dict(color=PALETTE[j % len(PALETTE)], dash=dashes[j % len(dashes)]),
                                 marker=dict(symbol=symbols[j % len(symbols)], size=9 - 1.5 * (j % 3)),
                                 hovertemplate=f"{plotly_text(layer)}<br>level %{{x}}<br>%{{y:.2f}}% remaining<extra></extra>"))
    fig.update_layout(title=dict(text=f"Weights remaining per layer: {plotly_text(table.run.name)}", font=dict(size=15)),
                      font=dict(family=FONT, size=12), template="plotly_white", height=400,
                      margin=dict(l=60, r=20, t=50, b=50))
    fig.update_xaxes(title_text="level", dtick=1)
    fig.update_yaxes(title_text="weights remaining (%)", type="log")
    return fig


def curves_figure(table: ImpTable) -> go.Figure:
    fig = go.Figure()
    n = max(len(table.curves) - 1, 1)
    for k, (level, (steps, acc)) in enumerate(sorted(table.curves.items())):
        keep = np.isfinite(acc)
        density = 100 * table.density[table.levels.index(level)]
        shade = int(40 + 180 * k / n)
        fig.add_trace(go.Scatter(
            x=steps[keep], y=100 * acc[keep], mode="lines+markers", name=f"level {level} ({density:.3g}%)",
            line=dict(color=f"rgb({shade // 3},{shade // 2},{shade})", dash=("solid", "dash", "dot")[k % 3]),
            marker=dict(size=5),
            hovertemplate=f"level {level}, {density:.2f}% remaining<br>iteration %{{x}}<br>test acc %{{y:.2f}}%<extra></extra>"))
    fig.update_layout(title=dict(text=f"Ticket learning curves per level: {plotly_text(table.run.name)} (replicate 0)",
                                 font=dict(size=15)), font=dict(family=FONT, size=12), template="plotly_white",
                      height=420, margin=dict(l=60, r=20, t=50, b=50))
    fig.update_xaxes(title_text="iteration")
    fig.update_yaxes(title_text="test accuracy (%)")
    return fig


def level_table(table: ImpTable) -> Table:
    roles = [r for r in ROLES if r in table.values]
    header = (["level", "weights remaining"] + [f"{LABEL[r]} test acc at early stop" for r in roles]
              + ["ticket early-stop iteration"])
    rows = []
    for level, density in zip(table.levels, table.density):
        row = [level, f"{100 * density:.2f}%"]
        for role in roles:
            levels = table.values[role]["levels"]
            if level in levels:
                vals = table.values[role]["early"][levels.index(level)]
                row.append(f"{100 * float(np.nanmean(vals)):.2f}%")
            else:
                row.append(None)
        levels = table.values["ticket"]["levels"]
        stops = table.values["ticket"]["stop"][levels.index(level)] if level in levels else [math.nan]
        row.append(f"{np.nanmean(stops):.0f}")
        rows.append(row)
    return Table(rows, header=header, caption=f"{table.run.name} ({table.run.id}): test accuracy at the "
                 "early-stopping iteration, mean over replicates")


@section_for("imp")
def imp_sections(runs: list[Run]) -> list[Section]:
    tables = [read_imp(run) for run in runs]
    config_lines = []
    for t in tables:
        c = t.run.config
        p = c["prune"]
        source = c.get("ticket_from")
        config_lines.append(
            f"{t.run.name}: {c['train']['model']['name']} on {c['train']['data']['dataset']}, "
            f"{p['scope']} {p['criterion']} pruning of {100 * p['fraction']:.0f}% per level"
            + (f" (overrides {', '.join(f'{n}={f}' for n, f in p['overrides'])})" if p["overrides"] else "")
            + f", rewind to {c['rewind']}, {c['replicates']} replicate(s)"
            + (f", ticket transferred from {source['run']}@{source['level']}" if source else "")
            + (" (its trained weights, fine-tuned)" if source and source.get("init") == "trained" else "")
            + (f", retraining by {c['retrain']}" if c.get("retrain") else ""))
    intro = ("Each level prunes the ticket, rewinds its surviving weights and retrains them; the controls "
             "train beside it. Bands span the lowest to the highest replicate.\n\n" + ".\n\n".join(config_lines) + ".")
    items = [accuracy_figure(tables, "early", "Test accuracy at early stopping vs weights remaining"),
             accuracy_figure(tables, "final", "Final test accuracy vs weights remaining"),
             stop_figure(tables)]
    sections = [Section(title="Winning tickets", intro=intro, items=items)]
    per_run = []
    for t in tables:
        per_run += [level_table(t), layer_figure(t), curves_figure(t)]
    sections.append(Section(title="IMP levels", items=per_run))
    return sections

from . import geometry as _geometry  # noqa: E402,F401  (adds curvature vs weights remaining from hessian runs)
