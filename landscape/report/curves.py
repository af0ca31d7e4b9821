"""Learning-curve figures of training runs: loss, accuracy and learning rate against the iteration.

Every run overlaid: each run a colour, each split a dash style. Curves hold NaN where a quantity
was not measured (validation only at evaluation points, say); each trace keeps only its finite
points, so lines join the measured points and never break. A curve with more than MAX_POINTS
points (logged every iteration of a long run) is thinned evenly to about that many, so the page
stays small and quick to draw. The palette and font are shared by every report module.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

from .framework import Run, plotly_text
from .training_metrics import honest_curves

SPLITS = ("train", "train_running", "val", "test")
SPLIT_DASH = {"train": "solid", "train_running": "longdashdot", "val": "dash", "test": "dot"}
SPLIT_LABEL = {"train": "training split", "train_running": "train (running avg)", "val": "validation",
               "test": "test"}
PALETTE = qualitative.Plotly + qualitative.D3
FONT = ('system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, '
        '"Liberation Sans", sans-serif')
MARKERS_UP_TO = 30  # a curve with at most this many points also shows its points
MAX_POINTS = 5000  # a longer curve is thinned to about this many points (page size, speed)


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------

def loss_figure(runs: Sequence[Run]) -> go.Figure | None:
    fig = _split_figure(runs, "loss", value_format=".4f")
    if fig is None:
        return None
    fig.update_layout(
        title_text="Loss", yaxis_title="loss", margin_t=72,
        # A linear/log switch for the y axis, beside the title (clear of the legend and the
        # plotly toolbar at the top right).
        updatemenus=[dict(
            type="buttons", direction="right", showactive=True, active=0,
            x=0.0, xanchor="left", y=1.02, yanchor="bottom", pad=dict(l=0, r=0, t=0, b=0),
            font=dict(size=11), bgcolor="#f6f8fa", bordercolor="#d1d9e0",
            buttons=[dict(label="linear y", method="relayout", args=[{"yaxis.type": "linear"}]),
                     dict(label="log y", method="relayout", args=[{"yaxis.type": "log"}])],
        )],
    )
    return fig


def accuracy_figure(runs: Sequence[Run]) -> go.Figure | None:
    fig = _split_figure(runs, "acc", value_format=".2%")
    if fig is None:
        return None
    fig.update_layout(title_text="Accuracy", yaxis_title="accuracy", yaxis_tickformat=".0%")
    return fig


def lr_figure(runs: Sequence[Run]) -> go.Figure | None:
    fig = _base_figure()
    for index, run in enumerate(runs):
        step, epoch = _axis(run)
        lr = _curve(run, "lr", len(step))
        trace = _trace(run, step, epoch, lr, color=_colour(index), dash="solid",
                       name=plotly_text(_short(run.name, 40)), label="learning rate",
                       value_format=".4~g", markers=False)
        if trace is not None:
            fig.add_trace(trace)
    if not fig.data:
        return None
    fig.update_layout(title_text="Learning rate", yaxis_title="learning rate",
                      yaxis_exponentformat="power", height=320)
    # From 0 to a little above the largest rate, so that a constant rate shows at its value (plotly
    # centres a constant series on a range of its own, which reads as a flat line at 0).
    values = [np.asarray(t.y, dtype=float) for t in fig.data if t.y is not None and len(t.y)]
    top = max((float(np.nanmax(v)) for v in values if np.isfinite(v).any()), default=0.0)
    if top > 0:
        fig.update_yaxes(range=[0, 1.15 * top])
    return fig


def _split_figure(runs: Sequence[Run], metric: str, value_format: str) -> go.Figure | None:
    fig = _base_figure()
    for index, run in enumerate(runs):
        step, epoch = _axis(run)
        first = True
        for split in SPLITS:
            values = _curve(run, f"{split}/{metric}", len(step))
            trace = _trace(run, step, epoch, values, color=_colour(index),
                           dash=SPLIT_DASH[split], name=SPLIT_LABEL[split],
                           label=f"{SPLIT_LABEL[split]} {'loss' if metric == 'loss' else 'accuracy'}",
                           value_format=value_format)
            if trace is None:
                continue
            # The legend groups a run's splits under its name; clicking the name toggles the run.
            trace.update(legendgroup=f"run-{index}")
            if first:
                trace.update(legendgrouptitle_text=plotly_text(_short(run.name, 40)))
                first = False
            fig.add_trace(trace)
    return fig if fig.data else None


def _base_figure() -> go.Figure:
    fig = go.Figure()
    fig.update_layout(
        template="plotly_white",
        font=dict(family=FONT, size=13),
        height=440,
        margin=dict(l=70, r=20, t=56, b=56),
        title=dict(x=0.0, xanchor="left", font=dict(size=16)),
        xaxis=dict(title_text="iteration", rangemode="tozero", showline=True, linecolor="#d1d9e0"),
        yaxis=dict(showline=True, linecolor="#d1d9e0"),
        hovermode="closest",
        hoverlabel=dict(font=dict(family=FONT, size=12), align="left"),
        legend=dict(groupclick="togglegroup", tracegroupgap=8, font=dict(size=12),
                    itemwidth=40),
    )
    return fig


def _trace(run: Run, step: np.ndarray, epoch: np.ndarray, values: np.ndarray | None, *,
           color: str, dash: str, name: str, label: str, value_format: str,
           markers: bool | None = None) -> go.Scatter | None:
    """One run's curve with its unmeasured (NaN) points dropped; None if nothing is left.

    By default a curve shows its points as markers when it is sparse (measured at few points,
    or at fewer than half of the run's logged steps, as evaluations usually are).
    """
    if values is None:
        return None
    keep = np.isfinite(step) & np.isfinite(values)
    if not keep.any():
        return None
    x, y, e = step[keep], values[keep], epoch[keep]
    if len(x) > MAX_POINTS:  # thin evenly, keeping the first and the last point
        pick = np.unique(np.linspace(0, len(x) - 1, MAX_POINTS).round().astype(int))
        x, y, e = x[pick], y[pick], e[pick]
    if markers is None:
        markers = len(x) <= MARKERS_UP_TO or len(x) < 0.5 * len(step)
    hover = (f"<b>{plotly_text(run.name)}</b><br>"
             f"{label}: %{{y:{value_format}}}<br>"
             "iteration %{x:,d}<br>"
             "epoch %{customdata:.2f}<extra></extra>")
    return go.Scatter(
        x=x.astype(np.int64) if np.all(x == np.round(x)) else x, y=y, customdata=e,
        mode="lines+markers" if markers else "lines",
        name=name, line=dict(color=color, dash=dash, width=2), marker=dict(size=5),
        hovertemplate=hover,
    )


def _axis(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """The iteration of every curve point, and its epoch (NaN if the run did not record it)."""
    curves = _curves(run)
    step = curves.get("step")
    if step is None:
        lengths = [len(np.ravel(v)) for v in curves.values()]
        step = np.arange(max(lengths, default=0), dtype=float)
    step = np.asarray(step, dtype=float).ravel()
    epoch = _curve(run, "epoch", len(step))
    if epoch is None:
        epoch = np.full(len(step), np.nan)
    return step, epoch


def _curve(run: Run, key: str, length: int) -> np.ndarray | None:
    """A curve as floats, or None when absent or not as long as the step axis."""
    values = _curves(run).get(key)
    if values is None:
        return None
    try:
        values = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError):
        return None
    return values if len(values) == length else None


def _curves(run: Run) -> dict:
    return honest_curves(getattr(run, "curves", None) or {})


def _colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
