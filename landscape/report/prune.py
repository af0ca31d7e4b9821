"""Report section: every pruning method on one accuracy-vs-weights-remaining figure, with its cost.

Given prune runs (kind "prune"), IMP runs or GMP training runs, the section gathers every run of
the store that trains the same model (name and width) on the same dataset: IMP tickets and their
controls (one family per retraining mode: weight rewinding, LR rewinding, fine-tuning), each
pruning-at-init method with its ablations (shuffle, reinit), and gradual magnitude pruning. Each
is drawn as the mean final test accuracy over replicates with a band from the lowest to the
highest replicate, against the percent of weights remaining (log axis, sparser to the right).

The cost table counts training iterations spent to produce each network: IMP at level L pays the
dense run and L retrainings (T + L x R, R = T - k when rewinding weights); pruning at init and GMP
pay one training T (plus the scoring passes, listed, which are a few forward-backward passes).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go

from ..store import Store
from . import imp as _imp  # registers the IMP sections first, so they come before this comparison
from .framework import Run, Section, Table, plotly_text, section_for
from .train import PALETTE

METRIC = "final/test/acc"
IMP_LABEL = {"weight-rewind": "IMP, weight rewinding", "lr-rewind": "IMP, LR rewinding",
             "finetune": "IMP, fine-tuning"}
CONTROL_LABEL = {"reinit": "reinit", "random-prune": "random pruning", "rescaled-reinit": "rescaled reinit",
                 "shuffle": "shuffled mask"}
SCORING = {"random": "none", "magnitude": "none", "snip": "1 gradient pass over the pruning examples",
           "grasp": "2 passes (gradient, Hessian-gradient)", "grasp-abs": "2 passes (gradient, Hessian-gradient)",
           "synflow": "{iterations} forward-backward passes of one all-ones input"}


@dataclass
class Curve:
    """One line of the figure: a method (or control) at several densities, values per replicate."""

    label: str
    family: str  # "imp", "imp-control", "prune", "prune-control", "gmp"
    points: dict[float, list[float]] = field(default_factory=dict)  # density -> accuracies
    cost: dict[float, int] = field(default_factory=dict)  # density -> training iterations
    scoring: str = "none"

    def add(self, density: float, values: list[float], iterations: int | None) -> None:
        self.points.setdefault(density, []).extend(values)
        if iterations is not None:
            self.cost[density] = iterations


def comparable_key(config: dict) -> tuple | None:
    """(model, width, dataset) of a run of any kind, or None for runs that are not comparable."""
    train = config.get("train", config)
    try:
        return train["model"]["name"], float(train["model"]["width"]), train["data"]["dataset"]
    except (KeyError, TypeError):
        return None


def _accuracies(store: Store, ids) -> list[float]:
    return [float(store.open(i).metrics.get(METRIC, math.nan)) for i in ids]


def _total_steps(store: Store, run_id: str) -> int:
    return int(store.open(run_id).plan.get("total_steps", 0))


def imp_curves(run, store: Store) -> list[Curve]:
    c = run.config
    mode = c.get("retrain", "weight-rewind")
    ticket = Curve(f"{IMP_LABEL[mode]} ({run.name})", "imp")
    controls: dict[str, Curve] = {}
    dense = run.section("levels/000").get("dense") or []
    total = _total_steps(store, dense[0]) if dense else 0
    rewind = int(run.plan.get("rewind_step", 0))
    for name in run.sections("levels"):
        level, record = int(name), run.section(f"levels/{name}")
        density = float(record["density"])
        iterations = record.get("iterations", total + level * (total - rewind))
        ticket.add(density, _accuracies(store, record["ticket"]), int(iterations))
        for role in ("reinit", "random-prune", "rescaled-reinit"):
            if level > 0 and record.get(role):
                curve = controls.setdefault(role, Curve(f"IMP {CONTROL_LABEL[role]} control ({run.name})",
                                                        "imp-control"))
                curve.add(density, _accuracies(store, record[role]), int(iterations))
    return [ticket, *controls.values()]


def prune_curves(run, store: Store) -> list[Curve]:
    c = run.config
    method = c["method"]
    scoring = SCORING[method].format(iterations=c.get("iterations", 100))
    curves: dict[str, Curve] = {}
    for key in run.sections("densities"):
        record = run.section(f"densities/{key}")
        density = float(record["density"])
        for role in ("ticket", "shuffle", "reinit"):
            if not record.get(role):
                continue
            label = f"{method} ({c['scope']})" if role == "ticket" else f"{method} {CONTROL_LABEL[role]}"
            curve = curves.setdefault(role, Curve(label, "prune" if role == "ticket" else "prune-control",
                                                  scoring=scoring))
            curve.add(density, _accuracies(store, record[role]), _total_steps(store, record[role][0]))
    return list(curves.values())


def gmp_curves(runs, store: Store) -> list[Curve]:
    """GMP runs grouped by everything but their final density and seeds: one curve per group."""
    groups: dict[tuple, Curve] = {}
    for run in runs:
        spec = run.config["gmp"]
        key = (spec["start"], spec["end"], spec["every"], spec["scope"], spec["initial_density"], run.config["steps"])
        label = f"GMP ({spec['scope']}, prune {spec['start']}-{spec['end']} every {spec['every']})"
        curve = groups.setdefault(key, Curve(label, "gmp"))
        mask = run.checkpoint(run.checkpoint_steps[-1]).mask
        kept = sum(int(m.sum()) for m in mask.values())
        density = round(kept / sum(m.numel() for m in mask.values()), 6)
        curve.add(density, [float(run.metrics.get(METRIC, math.nan))], int(run.plan.get("total_steps", 0)))
    return list(groups.values())


def gather(runs: list[Run]) -> tuple[list[Curve], list[tuple]]:
    """Every comparable run of the stores these runs live in, as curves."""
    keys = {k for k in (comparable_key(r.config) for r in runs) if k is not None}
    curves: list[Curve] = []
    stores = {str(r.path.parent): Store(r.path.parent) for r in runs}
    for store in stores.values():
        gmps = []
        for run in sorted(store.runs(), key=lambda r: r.name):
            if not run.complete and run.kind != "prune":
                continue
            if comparable_key(run.config) not in keys:
                continue
            if run.kind == "imp" and not run.config.get("ticket_from") and not run.config.get("pretrained"):
                curves += imp_curves(run, store)
            elif run.kind == "prune":
                curves += prune_curves(run, store)
            elif run.kind == "train" and run.config.get("gmp"):
                gmps.append(run)
        curves += gmp_curves(gmps, store)
    order = {"imp": 0, "imp-control": 0, "prune": 1, "prune-control": 1, "gmp": 2}
    curves.sort(key=lambda c: (order[c.family], c.label))  # IMP, then each method beside its controls, GMP
    return [c for c in curves if c.points], sorted(keys)


STYLE = {"imp": ("solid", "circle"), "imp-control": ("dot", "x"), "prune": ("dash", "diamond"),
         "prune-control": ("dot", "triangle-up"), "gmp": ("dashdot", "square")}


def comparison_figure(curves: list[Curve]) -> go.Figure:
    fig = go.Figure()
    for i, curve in enumerate(curves):
        colour = PALETTE[i % len(PALETTE)]
        x = sorted(curve.points, reverse=True)
        arr = [100 * np.array(curve.points[d], dtype=float) for d in x]
        mean = [float(np.nanmean(a)) for a in arr]
        low, high = [float(np.nanmin(a)) for a in arr], [float(np.nanmax(a)) for a in arr]
        xs = [100 * d for d in x]
        if any(len(a) > 1 for a in arr):
            fig.add_trace(go.Scatter(x=xs + xs[::-1], y=high + low[::-1], fill="toself", fillcolor=colour,
                                     opacity=0.15, line=dict(width=0), hoverinfo="skip", showlegend=False,
                                     legendgroup=str(i)))
        dash, marker = STYLE[curve.family]
        name = plotly_text(curve.label)
        fig.add_trace(go.Scatter(x=xs, y=mean, mode="lines+markers", name=name, legendgroup=str(i),
                                 line=dict(color=colour, dash=dash), marker=dict(symbol=marker, size=7),
                                 customdata=np.stack([low, high, [len(a) for a in arr]], 1),
                                 hovertemplate=(f"{name}<br>%{{x:.3g}}% remaining<br>mean %{{y:.2f}}% over "
                                                "%{customdata[2]} (min %{customdata[0]:.2f}, max %{customdata[1]:.2f})"
                                                "<extra></extra>")))
    fig = _imp.accuracy_layout(fig, "Every pruning method: final test accuracy vs weights remaining",
                               "test accuracy (%)")
    ticks = [100, 50, 25, 20, 10, 5, 2, 1, 0.5, 0.2, 0.1, 0.05]
    fig.update_xaxes(tickvals=ticks, ticktext=[f"{t:g}" for t in ticks])
    fig.update_layout(height=560)
    return fig


def cost_table(curves: list[Curve]) -> Table:
    rows = []
    for curve in curves:
        for d in sorted(curve.points, reverse=True):
            values = 100 * np.array(curve.points[d], dtype=float)
            spread = f" ({np.nanmin(values):.2f}-{np.nanmax(values):.2f})" if len(values) > 1 else ""
            rows.append([curve.label, f"{100 * d:.3g}%", f"{np.nanmean(values):.2f}%{spread}", len(values),
                         f"{curve.cost[d]:,}" if d in curve.cost else None, curve.scoring])
    return Table(rows, header=["method", "remaining", "test acc (range)", "replicates", "training iterations",
                               "scoring passes"], align=["left", "right", "right", "right", "right", "left"],
                 caption="Final test accuracy (mean over replicates) and the training iterations spent to produce "
                         "each network, the dense run included for IMP.")


def comparison_sections(runs: list[Run]) -> list[Section]:
    curves, keys = gather(runs)
    if not curves or not any(c.family in ("prune", "prune-control", "gmp") for c in curves) and \
            not any(c.label.startswith(("IMP, LR", "IMP, fine")) for c in curves):
        return []  # IMP alone: its own sections say it all
    what = "; ".join(f"{m} (width {w:g}) on {d}" for m, w, d in keys)
    intro = ("All comparable runs in the store (" + what + "): IMP tickets and controls (solid, dotted), "
             "pruning at initialisation and its Frankle et al. (2021) ablations (dashed, dotted), gradual "
             "magnitude pruning (dash-dot). Bands span the lowest to the highest replicate. The table gives each "
             "network's cost in training iterations: IMP pays the dense training and one retraining per level, "
             "pruning at init and GMP pay one training.")
    return [Section(title="Pruning methods compared", intro=intro,
                    items=[comparison_figure(curves), cost_table(curves)])]


@section_for("prune")
def prune_sections(runs: list[Run]) -> list[Section]:
    return comparison_sections(runs)


@section_for("imp")
def imp_comparison(runs: list[Run]) -> list[Section]:
    return comparison_sections(runs)


def gmp_sections(runs: list[Run]) -> list[Section]:
    gmps = [r for r in runs if r.config.get("gmp")]
    return comparison_sections(gmps) if gmps else []


section_for("train")(gmp_sections)
