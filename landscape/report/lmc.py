"""Report sections for linear mode connectivity: LMC runs (kind "lmc") and instability analyses
(kind "instability").

LMC runs, several pairs overlaid (each pair a colour; test solid, train dashed):
- error and loss against α, on the test set and the training set;
- a table of barriers and distances, one row per pair, and per-layer mask overlap where masked;
- a histogram of the per-example barriers (Paul et al. 2022), where they were measured.
Instability analyses:
- barrier against the step k the siblings were spawned at (mean over sibling pairs, with a band
  from the lowest to the highest pair), test and train, with the stability threshold drawn and
  the onset marked; loss barrier against k;
- the test-error interpolation curves at each k (mean over pairs);
- a table of the measured steps.
Everything is read from the store (the LMC runs an analysis links to are opened by ID).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go

from ..store import Store
from .framework import HTML, Run, Section, Table, escape, plotly_text, section_for
from .train import FONT, PALETTE

SPLIT_DASH = {"test": "solid", "train": "dash"}
STABILITY = 0.02
BINS = 40


def _layout(fig: go.Figure, title: str, xtitle: str, ytitle: str, height: int = 440) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0.0, xanchor="left", font=dict(size=16)),
                      font=dict(family=FONT, size=13), template="plotly_white", height=height,
                      margin=dict(l=70, r=20, t=56, b=56), hovermode="closest",
                      hoverlabel=dict(font=dict(family=FONT, size=12), align="left"),
                      legend=dict(groupclick="togglegroup", tracegroupgap=8, font=dict(size=12)))
    fig.update_xaxes(title_text=xtitle, showline=True, linecolor="#d1d9e0")
    fig.update_yaxes(title_text=ytitle, showline=True, linecolor="#d1d9e0")
    return fig


def _pct(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return f"{100 * value:.2f}%"


def _num(value: Any, digits: int = 4) -> str | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return f"{value:.{digits}g}"


def _short(text: str, limit: int = 48) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _endpoint(info: dict, side: str) -> str:
    """`name @STEPit` (or `IMP@L role rR @STEPit`) from an endpoint's stored label."""
    label = str(info.get(f"{side}_label", side.upper()))
    head = label.split(": ")[0] if ": " in label else label.split(" (")[0]
    return f"{head} @{info.get(f'{side}_step')}it"


def _pair_label(run: Run) -> str:
    info = run.section("lmc")
    return f"{_endpoint(info, 'a')} ~ {_endpoint(info, 'b')}"


# --------------------------------------------------------------------------------------------
# LMC runs
# --------------------------------------------------------------------------------------------

def curve_figure(runs: Sequence[Run], metric: str) -> go.Figure | None:
    """Error (in %) or loss against α for every pair, test solid and train dashed."""
    fig = go.Figure()
    scale, fmt, label = (100, ".2f", "error (%)") if metric == "error" else (1, ".4f", "loss")
    for i, run in enumerate(runs):
        alpha = np.asarray(run.curves.get("alpha", []), dtype=float)
        name = plotly_text(_short(_pair_label(run) if len(runs) > 1 else run.name, 60))
        first = True
        for split in ("test", "train"):
            values = run.curves.get(f"{split}/{metric}")
            if values is None or len(values) != len(alpha):
                continue
            y = np.asarray(values, dtype=float) * scale
            colour = PALETTE[i % len(PALETTE)]
            fig.add_trace(go.Scatter(
                x=alpha, y=y, mode="lines+markers", name=f"{split}", legendgroup=f"pair-{i}",
                legendgrouptitle_text=name if first else None,
                line=dict(color=colour, dash=SPLIT_DASH[split], width=2), marker=dict(size=5),
                hovertemplate=(f"<b>{name}</b><br>{split} {metric}: %{{y:{fmt}}}"
                               f"{'%' if metric == 'error' else ''}<br>α = %{{x:.3f}}<extra></extra>")))
            _references(fig, run, split, metric, alpha, y, colour, f"pair-{i}", fmt)
            first = False
    if not fig.data:
        return None
    title = "Error along the path θ(α) = (1 − α)·θA + α·θB" if metric == "error" else "Loss along the path"
    fig = _layout(fig, title, "α (0 = A, 1 = B)", label)
    # From 0, so that a rise of a fraction of a percent looks as small as it is.
    fig.update_yaxes(rangemode="tozero")
    return fig


def _references(fig: go.Figure, run: Run, split: str, metric: str, alpha: np.ndarray, y: np.ndarray, colour: str,
                group: str, fmt: str) -> None:
    """The barrier's two references (the endpoint mean: Frankle et al.'s barrier is measured from it;
    the straight line between the endpoints: the straight-line barrier is measured from it) and a
    star at the α of the maximum. The training split's references start hidden (legend to show)."""
    if len(alpha) < 2:
        return
    a0, a1 = int(np.argmin(alpha)), int(np.argmax(alpha))
    unit = "%" if metric == "error" else ""
    visible = True if split == "test" else "legendonly"
    mean = (y[a0] + y[a1]) / 2
    fig.add_trace(go.Scatter(x=[alpha[a0], alpha[a1]], y=[mean, mean], mode="lines", name=f"{split}: endpoint mean",
                             legendgroup=group, visible=visible, line=dict(color=colour, dash="dot", width=1),
                             hovertemplate=f"endpoint mean %{{y:{fmt}}}{unit}<extra></extra>"))
    fig.add_trace(go.Scatter(x=[alpha[a0], alpha[a1]], y=[y[a0], y[a1]], mode="lines", name=f"{split}: straight line",
                             legendgroup=group, visible=visible, line=dict(color=colour, dash="dashdot", width=1),
                             hovertemplate="straight line between the endpoints<extra></extra>"))
    m = run.metrics
    top = m.get(f"{split}/{metric}_barrier_alpha")
    if top is None:
        return
    row = int(np.argmin(np.abs(alpha - float(top))))
    at_end = bool(m.get(f"{split}/{metric}_barrier_at_endpoint"))
    barrier, straight = m.get(f"{split}/{metric}_barrier"), m.get(f"{split}/{metric}_barrier_straight")
    scale = 100 if metric == "error" else 1
    note = " (at an endpoint: the endpoint gap, not a barrier)" if at_end else ""
    text = (f"max at α={alpha[row]:.3f}{note}<br>barrier {_fmt(barrier, scale, fmt)}{unit} above the endpoint mean, "
            f"{_fmt(straight, scale, fmt)}{unit} above the straight line")
    fig.add_trace(go.Scatter(x=[alpha[row]], y=[y[row]], mode="markers", name=f"{split}: max at α={alpha[row]:.2f}",
                             legendgroup=group, visible=visible,
                             marker=dict(symbol="star", size=13, color=colour, line=dict(color="#222", width=1)),
                             hovertemplate=text + "<extra></extra>"))


def _fmt(value: Any, scale: float, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(float(value) * scale, fmt)


def pair_table(runs: Sequence[Run]) -> Table:
    rows = []
    for number, run in enumerate(runs, start=1):
        m, info = run.metrics, run.section("lmc")
        stable = m.get("test/error_barrier", math.inf) < STABILITY
        badge = HTML(f'<span class="badge {"ok" if stable else "warn"}">{"stable" if stable else "unstable"}</span>')
        bn = ("recomputed" if info.get("bn_recompute") else
              "none" if info.get("bn_recompute_requested") else "interpolated")
        travel = _num(m.get("distance/l2_normalized"), 3)
        rows.append([
            number,
            HTML(f"<span title=\"{escape(info.get('a_label', ''))}\">{escape(_short(_endpoint(info, 'a'), 50))}</span>"),
            HTML(f"<span title=\"{escape(info.get('b_label', ''))}\">{escape(_short(_endpoint(info, 'b'), 50))}</span>"),
            _barrier_cell(m, "error", _pct),
            _barrier_cell(m, "loss", lambda v: _num(v, 3)), badge,
            f"{_num(m.get('distance/l2'))}" + (f" ({travel})" if travel else ""),
            _num(m.get("distance/angular"), 3), _pct(m.get("distance/disagreement")),
            None if m.get("distance/mask_jaccard") is None else f"{m['distance/mask_jaccard']:.3f}",
            info.get("mask_mode"), bn,
        ])
    return Table(rows, header=["#", "A (α = 0)", "B (α = 1)", "error barrier (straight line) @α",
                               "loss barrier (straight line) @α", "< 2%", "L2 (normalised)",
                               "angular", "disagree", "Jaccard", "masks", "BN"],
                 caption="Barriers (test / train) and distances", row_headers=True,
                 align=["left", "left", "left", "right", "right", "left", "right", "right", "right", "right", "left",
                        "left"])


def _barrier_cell(m: dict, key: str, fmt) -> str:
    """`test / train` barriers, each with its straight-line value and the α of its maximum; a
    maximum at an endpoint is flagged (the barrier is then half the endpoint gap)."""
    parts = []
    for split in ("test", "train"):
        alpha = m.get(f"{split}/{key}_barrier_alpha")
        where = "" if alpha is None else f" @{alpha:.2f}" + (" (endpoint gap)" if m.get(f"{split}/{key}_barrier_at_endpoint")
                                                              and (m.get(f"{split}/{key}_barrier") or 0) > 0 else "")
        straight = m.get(f"{split}/{key}_barrier_straight")
        parts.append(f"{fmt(m.get(f'{split}/{key}_barrier'))}" + (f" ({fmt(straight)})" if straight is not None else "")
                     + where)
    return " / ".join(parts)


PAIR_NOTES = HTML(
    '<p class="intro"><b>Barrier</b>: max over α minus the mean of the two endpoints (Frankle et al.), on the test / '
    "training set; in brackets the straight-line barrier (max over α minus the line between the endpoint values); "
    "@α: where the maximum lies. A maximum at an endpoint is flagged \"endpoint gap\": the barrier is then half the "
    "difference between the endpoints, not a rise along the path. "
    "<b>L2</b>: over the conv/linear weights; in brackets normalised, ‖(θA − PA) − (θB − PB)‖ / mean(‖θA − PA‖, "
    "‖θB − PB‖), with PA and PB their common parent under each one's mask (siblings: the spawn point; a ticket and "
    "its dense run: the rewind point): 0 moved alike, about √2 independent, at most 2. <b>Angular</b>: 2·angle/π on "
    "the weights both keep (0 same direction, 1 orthogonal, 2 opposite). <b>Disagree</b>: share of test examples on "
    "which their predictions differ. <b>Jaccard</b>: overlap of the masks. <b>Masks</b>: shared (the whole path stays "
    "in one subnetwork) or union (different masks: each endpoint keeps its own, so interior points keep the union "
    "of the supports and are denser than either). <b>BN</b>: BatchNorm statistics recomputed at each α, "
    "interpolated, or none in the network.</p>")


def mask_table(runs: Sequence[Run]) -> Table | None:
    """Per-layer Jaccard overlap of the masks, one column per masked pair."""
    masked = [(number, run, run.section("masks")) for number, run in enumerate(runs, start=1)]
    masked = [(number, run, layers) for number, run, layers in masked if layers.get("layers")]
    if not masked:
        return None
    names = list(dict.fromkeys(n for _, _, layers in masked for n in layers["layers"]))
    rows = []
    for name in names + ["overall"]:
        row: list[Any] = [name]
        for _, run, layers in masked:
            values = dict(zip(layers["layers"], layers["jaccard"]))
            value = run.metrics.get("distance/mask_jaccard") if name == "overall" else values.get(name)
            row.append(_num(value, 3) if value is None else f"{value:.3f}")
        rows.append(row)
    header = ["layer"] + [f"pair #{number}" for number, _, _ in masked]
    return Table(rows, header=header, row_headers=True, align=["left"] + ["right"] * len(masked),
                 caption="Mask overlap (Jaccard: kept by both / kept by either), per layer and over all masked weights")


def per_example_figure(runs: Sequence[Run]) -> go.Figure | None:
    """Histogram of the per-example loss barriers (share of examples per bin), pairs overlaid."""
    vectors = [(run, run.arrays("per_example").get("barrier")) for run in runs if run.section("per_example")]
    vectors = [(run, np.asarray(v, dtype=float)) for run, v in vectors if v is not None and len(v)]
    if not vectors:
        return None
    top = max(float(v.max()) for _, v in vectors)
    edges = np.linspace(0.0, top if top > 0 else 1.0, BINS + 1)
    fig = go.Figure()
    for i, (run, values) in enumerate(vectors):
        counts, _ = np.histogram(values, bins=edges)
        threshold = float(run.section("per_example").get("threshold", 0.0))
        connected = float((values <= threshold).mean())
        name = plotly_text(_short(_pair_label(run) if len(vectors) > 1 else run.name, 60))
        fig.add_trace(go.Bar(
            x=(edges[:-1] + edges[1:]) / 2, y=100 * counts / len(values), width=np.diff(edges),
            name=f"{name}: {100 * connected:.1f}% connected (≤ {threshold:g})", opacity=0.6 if len(vectors) > 1 else 0.9,
            marker=dict(color=PALETTE[i % len(PALETTE)]),
            customdata=np.stack([edges[:-1], edges[1:], counts], 1),
            hovertemplate=(f"<b>{name}</b><br>barrier %{{customdata[0]:.4f}} to %{{customdata[1]:.4f}}<br>"
                           "%{customdata[2]} examples (%{y:.2f}%)<extra></extra>")))
    fig.update_layout(barmode="overlay", bargap=0, showlegend=True,
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0))
    fig.update_yaxes(type="log")
    return _layout(fig, "Per-example straight-line loss barriers on the training set (Paul et al. 2022)",
                   "loss barrier above the straight line between the endpoint losses", "examples (%, log scale)")


@section_for("lmc")
def lmc_sections(runs: list[Run]) -> list[Section]:
    plural = len(runs) > 1
    intro = ("Each network on the straight line between A and B, θ(α) = (1 − α)·θA + α·θB, evaluated on the "
             "test set and the training set. The error barrier is the highest error along the path minus the "
             "mean of the two endpoint errors (Frankle et al. 2020): below 2%, A and B are linearly mode "
             "connected (\"stable\"). " + ("Each pair has a colour; solid" if plural else "Solid")
             + " lines are the test set, dashed the training set.")
    sizes = {(r.section("lmc").get("num_test"), r.section("lmc").get("num_train"), r.section("lmc").get("train_total"))
             for r in runs}
    if len(sizes) == 1:
        test, train, total = next(iter(sizes))
        intro += (f" Test set: {test} examples; training set: " + (f"all {total} examples." if train == total
                  else f"a seeded sample of {train} of its {total} examples."))
    items: list[Any] = [fig for fig in (curve_figure(runs, "error"), curve_figure(runs, "loss")) if fig is not None]
    items += [pair_table(runs), PAIR_NOTES]
    masks = mask_table(runs)
    if masks is not None:
        items.append(masks)
    sections = [Section("Linear mode connectivity", intro=intro, items=items)]
    histogram = per_example_figure(runs)
    if histogram is not None:
        sections.append(Section(
            "Per-example barriers",
            intro=("Each training example's straight-line loss barrier: its loss along the path minus the straight "
                   "line between its losses at A and B, maximum over α (Paul et al. 2022). An example is linearly connected when its barrier is at "
                   "most the threshold; the legend gives the share that is."),
            items=[histogram]))
    return sections


# --------------------------------------------------------------------------------------------
# Instability analyses
# --------------------------------------------------------------------------------------------

def _points(run: Run) -> list[dict]:
    points = [run.section(f"points/{name}") for name in run.sections("points")]
    return sorted(points, key=lambda p: int(p["step"]))


def _category_order(runs: Sequence[Run]) -> list[str]:
    steps = sorted({int(p["step"]) for run in runs for p in _points(run)})
    return [f"{s}it" for s in steps]


def barrier_figure(runs: Sequence[Run], metric: str) -> go.Figure | None:
    """Barrier against the spawn step k: mean over pairs, min-max band, test solid and train dashed."""
    fig = go.Figure()
    percent = metric == "error"
    scale = 100 if percent else 1
    for i, run in enumerate(runs):
        points = _points(run)
        if not points:
            continue
        colour = PALETTE[i % len(PALETTE)]
        x = [f"{int(p['step'])}it" for p in points]
        first = True
        for split in ("test", "train"):
            rows = [np.asarray(p[f"{split}/{metric}"], dtype=float) * scale for p in points]
            mean = np.array([r.mean() for r in rows])
            low, high = np.array([r.min() for r in rows]), np.array([r.max() for r in rows])
            group = f"run-{i}"
            if any(len(r) > 1 for r in rows):
                fig.add_trace(go.Scatter(x=x + x[::-1], y=list(high) + list(low[::-1]), fill="toself",
                                         fillcolor=colour, opacity=0.15, line=dict(width=0), hoverinfo="skip",
                                         showlegend=False, legendgroup=group))
            name = plotly_text(_short(run.name, 50))
            fig.add_trace(go.Scatter(
                x=x, y=mean, mode="lines+markers", name=f"{split} (mean of {len(rows[0])} pair{'s' if len(rows[0]) > 1 else ''})",
                legendgroup=group, legendgrouptitle_text=name if first else None,
                line=dict(color=colour, dash=SPLIT_DASH[split], width=2), marker=dict(size=7),
                customdata=np.stack([low, high], 1),
                hovertemplate=(f"<b>{name}</b><br>spawned at %{{x}}<br>{split} {metric} barrier "
                               f"%{{y:.{2 if percent else 4}f}}{'%' if percent else ''} (pairs: "
                               f"%{{customdata[0]:.{2 if percent else 4}f}} to %{{customdata[1]:.{2 if percent else 4}f}})"
                               "<extra></extra>")))
            first = False
        if percent:
            onset = int(run.section("summary").get("onset", -1))
            if onset >= 0:
                fig.add_trace(go.Scatter(
                    x=[f"{onset}it"], y=[0], mode="markers", name="onset of stability",
                    legendgroup=f"run-{i}", marker=dict(symbol="star", size=14, color=colour),
                    hovertemplate=f"<b>{name}</b><br>stable from %{{x}}<extra></extra>"))
    if not fig.data:
        return None
    order = _category_order(runs)
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=order)
    if percent:
        thresholds = {float(run.section("summary").get("threshold", STABILITY)) for run in runs}
        for t in sorted(thresholds):
            fig.add_hline(y=100 * t, line=dict(color="#b42318", dash="dot", width=1.5),
                          annotation_text=plotly_text(f"stability threshold {100 * t:g}%"),
                          annotation_position="top right", annotation_font=dict(size=11, color="#b42318"))
    title = ("Error barrier between siblings vs the step k they were spawned at" if percent
             else "Loss barrier between siblings vs the step k they were spawned at")
    return _layout(fig, title, "k: iteration the siblings were spawned at",
                   "error barrier (%)" if percent else "loss barrier")


def curves_at_k_figure(run: Run) -> go.Figure | None:
    """The test-error interpolation curves at each k, the mean over that k's pairs."""
    store = Store(run.path.parent) if getattr(run, "path", None) is not None else None
    if store is None:
        return None
    fig = go.Figure()
    points = _points(run)
    for j, point in enumerate(points):
        curves = []
        for lmc_id in point.get("lmc") or []:
            if store.exists(lmc_id):
                pair = store.open(lmc_id)
                curves.append((np.asarray(pair.curves["alpha"]), 100 * np.asarray(pair.curves["test/error"])))
        if not curves:
            continue
        alpha = curves[0][0]
        mean = np.mean([c for _, c in curves if len(c) == len(alpha)], axis=0)
        shade = int(200 * j / max(len(points) - 1, 1))
        fig.add_trace(go.Scatter(
            x=alpha, y=mean, mode="lines+markers", name=f"k = {int(point['step'])}it",
            line=dict(color=f"rgb({shade // 2},{60 + shade // 3},{230 - shade})", width=2), marker=dict(size=4),
            hovertemplate=f"k = {int(point['step'])}it<br>α = %{{x:.3f}}<br>test error %{{y:.2f}}%<extra></extra>"))
    if not fig.data:
        return None
    return _layout(fig, f"Test error along the path between siblings, per spawn step: {plotly_text(_short(run.name, 50))}",
                   "α", "test error (%)", height=400)


def points_table(run: Run) -> Table:
    summary = run.section("summary")
    threshold = float(summary.get("threshold", STABILITY))
    rows = []
    for p in _points(run):
        test = np.asarray(p["test/error"], dtype=float)
        stable = test.mean() < threshold
        rows.append([f"{int(p['step'])}it", len(test), f"{100 * test.mean():.2f}% ± {100 * test.std():.2f}%",
                     f"{100 * np.mean(p['train/error']):.2f}%", f"{np.mean(p['test/loss']):.4f}",
                     f"{np.mean(p['train/loss']):.4f}",
                     HTML(f'<span class="badge {"ok" if stable else "warn"}">{"stable" if stable else "unstable"}</span>'),
                     HTML(" ".join(f"<code>{escape(s)}</code>" for s in p.get("siblings") or []))])
    onset = int(summary.get("onset", -1))
    method = summary.get("method", "scan")
    tested = summary.get("tested") or []
    candidates = summary.get("candidates") or []
    caption = (f"{run.name}: " + (f"stable from k = {onset}it" if onset >= 0 else "no measured step is stable")
               + f" (mean test error barrier below {100 * threshold:g}%); "
               + (f"bisection measured {len(set(tested))} of {len(candidates)} candidate steps"
                  if method == "bisection" else f"all {len(candidates)} steps measured"))
    return Table(rows, header=["k", "pairs", "test error barrier (mean ± sd)", "train error barrier",
                               "test loss barrier", "train loss barrier", f"< {100 * threshold:g}%", "siblings"],
                 caption=caption, align=["left", "right", "right", "right", "right", "right", "left", "left"])


@section_for("instability")
def instability_sections(runs: list[Run]) -> list[Section]:
    intro = ("Instability analysis (Frankle et al. 2020): at each step k, siblings are spawned from the run's "
             "checkpoint, trained to the end with different data order and augmentation, and interpolated. The "
             "network is stable at k when the error barrier between its siblings is below the threshold (2% in "
             "the paper). Lines are the mean over sibling pairs, bands the lowest to the highest pair; test solid, "
             "train dashed; the star marks the onset of stability.")
    items: list[Any] = [fig for fig in (barrier_figure(runs, "error"), barrier_figure(runs, "loss")) if fig is not None]
    for run in runs:
        items.append(points_table(run))
        fig = curves_at_k_figure(run)
        if fig is not None:
            items.append(fig)
    return [Section("Instability: barrier vs spawn step", intro=intro, items=items)]
