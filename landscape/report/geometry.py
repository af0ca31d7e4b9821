"""Report sections for loss-landscape geometry: Hessian runs (kind "hessian") and surfaces (kind
"surface"), and the IMP report's "top eigenvalue and trace vs weights remaining".

Hessian runs:
- a table of every measured network: weights remaining, loss, top eigenvalues, trace ± its
  standard error;
- for IMP runs (or several networks of known sparsity): top eigenvalue and trace against weights
  remaining for the ticket and each control (mean over replicates, band from lowest to highest);
- the spectral density (SLQ, Gaussian-smoothed, log scale) where measured, and per-layer top
  eigenvalue and trace where measured.
Surfaces:
- 2-D: contour maps of the test and training loss, and a 3-D surface of the training loss, with
  the marked networks (centre, or the three networks of a plane) and a trajectory's path drawn;
- 1-D: loss and error against the coordinate, test solid, train dashed.
The IMP report finds the hessian runs made of it in the same store and adds the curvature figure.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go

from ..store import Store
from ..store.networks import read_networks
from .framework import Run, Section, Table, plotly_text, section_for
# Importing .imp registers the IMP report's own sections before ours, so they come first in it.
from .imp import LABEL, ROLES, accuracy_layout, band_traces
from .train import FONT, PALETTE


def _layout(fig: go.Figure, title: str, xtitle: str, ytitle: str, height: int = 460) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0.0, xanchor="left", font=dict(size=15)), font=dict(family=FONT, size=12),
                      template="plotly_white", height=height, margin=dict(l=60, r=20, t=50, b=50), hovermode="closest")
    fig.update_xaxes(title_text=xtitle)
    fig.update_yaxes(title_text=ytitle)
    return fig


def _short(record: dict) -> str:
    label = str(record.get("label", record.get("ref", "")))
    return label.split(": ")[0] if record.get("level", -1) >= 0 else label.split(" (")[0] + f" @{record.get('step')}it"


# --------------------------------------------------------------------------------------------
# Hessian runs
# --------------------------------------------------------------------------------------------

def hessian_table(run: Run, networks: list[dict]) -> Table:
    rows = []
    for n in networks:
        rows.append([_short(n), f"{100 * n['weights_remaining']:.1f}%", n["dim"], f"{n['loss']:.4f}",
                     ", ".join(f"{v:.4g}" for v in n["eigenvalues"]), f"{n['trace']:.4g}", f"{n['trace_stderr']:.2g}",
                     f"{n['trace'] / n['dim']:.3g}"])
    return Table(rows, header=["network", "weights remaining", "weights measured", "loss", "top eigenvalues",
                               "trace", "± SE", "mean eigenvalue"], align=["left"] + ["right"] * 7,
                 caption=f"{run.name} ({run.id})")


def _by_role(networks: list[dict]) -> dict[str, dict[int, list[dict]]]:
    """role → level → replicates (level 0, the dense network, counts for every role)."""
    out: dict[str, dict[int, list[dict]]] = {}
    dense = [n for n in networks if n.get("level") == 0]
    for n in networks:
        if n.get("level", -1) > 0:
            out.setdefault(n["role"], {}).setdefault(n["level"], []).append(n)
    for role in out:
        if dense:
            out[role][0] = dense
    if not out and dense:
        out["ticket"] = {0: dense}
    return out


def curvature_figures(runs: Sequence[Run]) -> list[go.Figure]:
    """Top eigenvalue and trace vs weights remaining, ticket and controls, one line per role (per run)."""
    figures = []
    for key, title, ytitle in (("top", "Top Hessian eigenvalue vs weights remaining", "top eigenvalue λ1"),
                               ("trace", "Hessian trace vs weights remaining", "trace (Hutchinson)")):
        fig = go.Figure()
        drawn = False
        for i, run in enumerate(runs):
            roles = _by_role(read_networks(run))
            prefix = f"{run.name}: " if len(runs) > 1 else ""
            for role in ROLES:
                if role not in roles or len(roles[role]) < 2:
                    continue
                levels = sorted(roles[role])
                x = [100 * roles[role][lv][0]["weights_remaining"] for lv in levels]
                width = max(len(roles[role][lv]) for lv in levels)
                values = [[(n["eigenvalues"][0] if key == "top" else n["trace"]) for n in roles[role][lv]]
                          + [math.nan] * (width - len(roles[role][lv])) for lv in levels]
                colour = PALETTE[(ROLES.index(role) if len(runs) == 1 else i) % len(PALETTE)]
                band_traces(fig, x, values, prefix + LABEL[role], colour, role, f"{run.id}-{role}", percent=False)
                drawn = True
        if drawn:
            figures.append(accuracy_layout(fig, title, ytitle))
    return figures


def density_figure(runs: Sequence[Run]) -> go.Figure | None:
    fig = go.Figure()
    k = 0
    for run in runs:
        for n in read_networks(run):
            a = n["arrays"]
            if "density" not in a:
                continue
            fig.add_trace(go.Scatter(x=a["density_grid"], y=np.maximum(a["density"], 1e-12), mode="lines",
                                     name=plotly_text(_short(n)), line=dict(color=PALETTE[k % len(PALETTE)])))
            k += 1
    if not k:
        return None
    fig.update_yaxes(type="log")
    return _layout(fig, "Hessian spectral density (stochastic Lanczos quadrature, Gaussian-smoothed)",
                   "eigenvalue", "density (log scale)")


def layer_figure(run: Run) -> go.Figure | None:
    networks = [n for n in read_networks(run) if "layers" in n]
    if not networks:
        return None
    fig = go.Figure()
    for k, n in enumerate(networks):
        layers = n["layers"]
        fig.add_trace(go.Bar(x=layers["names"], y=layers["top_eigenvalue"], name=plotly_text(f"{_short(n)} λ1"),
                             marker_color=PALETTE[k % len(PALETTE)]))
        fig.add_trace(go.Bar(x=layers["names"], y=layers["trace"], name=plotly_text(f"{_short(n)} trace"),
                             marker_color=PALETTE[k % len(PALETTE)], opacity=0.45,
                             error_y=dict(type="data", array=layers["trace_stderr"])))
    fig.update_layout(barmode="group")
    fig.update_yaxes(type="log")
    return _layout(fig, f"Per-layer curvature (diagonal blocks of the Hessian): {run.name}", "layer",
                   "top eigenvalue / trace (log scale)")


@section_for("hessian")
def hessian_sections(runs: list[Run]) -> list[Section]:
    info = runs[0].section("hessian")
    intro = (f"Curvature of the training loss (mean cross-entropy on a seeded sample of {info.get('examples')} "
             f"training examples; {info.get('bn_note', '')}). Top eigenvalues by {info.get('method')}, the trace by "
             "Hutchinson's estimator with Rademacher probes (± its standard error). "
             + str(info.get("mask_note", "")) + ".")
    items: list[Any] = [hessian_table(run, read_networks(run)) for run in runs]
    items += curvature_figures(runs)
    density = density_figure(runs)
    if density is not None:
        items.append(density)
    items += [f for f in (layer_figure(run) for run in runs) if f is not None]
    return [Section("Hessian spectra", intro=intro, items=items)]


@section_for("imp")
def imp_curvature_sections(runs: list[Run]) -> list[Section]:
    """The IMP report's curvature figure, from the hessian runs of these IMP runs in the same store."""
    found = []
    for run in runs:
        for h in Store(run.path.parent).runs("hessian"):
            if h.complete and h.section("hessian").get("imp") == run.id:
                found.append(h)
    figures = curvature_figures(found) if found else []
    if not figures:
        return []
    return [Section("Curvature of tickets and controls", intro=(
        "Top Hessian eigenvalue and trace of the training loss against weights remaining, for the ticket and "
        "each control, from `landscape hessian` runs on these IMP runs. Each network's Hessian is restricted to "
        "its own mask. Lower is flatter."), items=figures)]


# --------------------------------------------------------------------------------------------
# Surfaces
# --------------------------------------------------------------------------------------------

def _marked(run: Run) -> list[dict]:
    info = run.section("surface")
    return [run.section(f"surface/marked/{i}") for i in range(len(info.get("marked_labels", [])))]


def _overlay(fig: go.Figure, run: Run, z: str | None = None, surface_z=None) -> None:
    """The marked networks (and a trajectory's path) over a contour or 3-D surface."""
    a = run.arrays("surface")
    for k, m in enumerate(_marked(run)):
        x, y = m["coords"][0], m["coords"][1]
        kw = dict(x=[x], y=[y], mode="markers+text", text=[plotly_text(m["label"])], textposition="top center",
                  name=plotly_text(m["label"]), marker=dict(size=10, color="#111", symbol=["circle", "diamond", "square"][k % 3]),
                  hovertemplate=(f"{plotly_text(m['label'])}<br>train loss {m['train_loss']:.4f}, test loss "
                                 f"{m['test_loss']:.4f}<extra></extra>"))
        if surface_z is None:
            fig.add_trace(go.Scatter(**kw))
        else:
            fig.add_trace(go.Scatter3d(z=[m["train_loss"]], **{k2: v for k2, v in kw.items() if k2 != "textposition"}))
    if "path" in a:
        path, steps = a["path"], a.get("path_steps", np.arange(len(a["path"])))
        text = [f"{int(s)}it" for s in steps]
        if surface_z is None:
            fig.add_trace(go.Scatter(x=path[:, 0], y=path[:, 1], mode="lines+markers", name="training path",
                                     line=dict(color="#d62728", width=2), text=text,
                                     hovertemplate="%{text}<br>(%{x:.3f}, %{y:.3f})<extra></extra>"))


def contour_figure(run: Run, split: str) -> go.Figure:
    a, info = run.arrays("surface"), run.section("surface")
    fig = go.Figure(go.Contour(x=a["x"], y=a["y"], z=a[f"{split}_loss"], colorscale="Viridis", ncontours=30,
                               colorbar=dict(title="loss"), name=f"{split} loss",
                               customdata=100 * a[f"{split}_error"],
                               hovertemplate="(%{x:.3f}, %{y:.3f})<br>loss %{z:.4f}<br>error %{customdata:.2f}%<extra></extra>"))
    _overlay(fig, run)
    fig.update_layout(showlegend=False)
    axes = _axis_titles(info)
    return _layout(fig, f"{split.capitalize()} loss: {run.name}", axes[0], axes[1], height=520)


def surface3d_figure(run: Run) -> go.Figure:
    a, info = run.arrays("surface"), run.section("surface")
    z = np.log10(np.maximum(a["train_loss"], 1e-12))
    fig = go.Figure(go.Surface(x=a["x"], y=a["y"], z=a["train_loss"], surfacecolor=z, colorscale="Viridis",
                               colorbar=dict(title="log10 loss"), name="train loss"))
    _overlay(fig, run, surface_z=a["train_loss"])
    axes = _axis_titles(info)
    fig.update_layout(title=dict(text=plotly_text(f"Training loss surface: {run.name}"), font=dict(size=15)),
                      font=dict(family=FONT, size=12), height=600, margin=dict(l=0, r=0, t=50, b=0), showlegend=False,
                      scene=dict(xaxis_title=axes[0], yaxis_title=axes[1], zaxis_title="train loss"))
    return fig


def _axis_titles(info: dict) -> tuple[str, str]:
    mode = info.get("mode")
    if mode == "plane":
        return "coordinate along B − A (units of ‖B − A‖)", "orthogonal coordinate (same units)"
    if mode == "trajectory":
        ex = info.get("explained") or [math.nan, math.nan]
        return f"PC1 ({100 * ex[0]:.1f}% of variance)", f"PC2 ({100 * ex[1]:.1f}% of variance)"
    return f"direction 1 ({info.get('norm')}-normalised)", f"direction 2 ({info.get('norm')}-normalised)"


def line_figure(runs: Sequence[Run], metric: str) -> go.Figure:
    fig = go.Figure()
    scale = 100 if metric == "error" else 1
    for i, run in enumerate(runs):
        a = run.arrays("surface")
        for split, dash in (("test", "solid"), ("train", "dash")):
            fig.add_trace(go.Scatter(x=a["x"], y=scale * a[f"{split}_{metric}"], mode="lines",
                                     name=plotly_text(f"{run.name} {split}"), line=dict(color=PALETTE[i % len(PALETTE)], dash=dash)))
        for m in _marked(run):
            fig.add_trace(go.Scatter(x=[m["coords"][0]], y=[scale * m[f"test_{metric}"]], mode="markers",
                                     marker=dict(size=9, color="#111"), name=plotly_text(m["label"]), showlegend=False))
    return _layout(fig, f"{'Error' if metric == 'error' else 'Loss'} along a random direction",
                   f"coordinate ({runs[0].section('surface').get('norm')}-normalised direction)",
                   "error (%)" if metric == "error" else "loss")


def surface_table(runs: Sequence[Run]) -> Table:
    rows = []
    for run in runs:
        info = run.section("surface")
        for m in _marked(run):
            rows.append([run.name, info["mode"], m["label"], ", ".join(f"{c:.3f}" for c in m["coords"]),
                         f"{m['test_loss']:.4f}", f"{m['test_loss_surface']:.4f}", f"{m['train_loss']:.4f}",
                         f"{m['train_loss_surface']:.4f}"])
    return Table(rows, header=["surface", "mode", "network", "coordinates", "test loss", "(surface)", "train loss",
                               "(surface)"], align=["left"] * 4 + ["right"] * 4,
                 caption="Each marked network's own loss beside the surface's value at its coordinates: they agree.")


@section_for("surface")
def surface_sections(runs: list[Run]) -> list[Section]:
    info = runs[0].section("surface")
    bn = "BatchNorm statistics recomputed at every point" if info.get("bn_recompute") else \
        "each point keeps the statistics its directions carry (no recomputation)"
    intro = (f"Loss on the test set ({info.get('num_test')} examples) and a seeded training sample "
             f"({info.get('num_train')} of {info.get('train_total')}) at every point of the grid; {bn}. Random "
             "directions are filter-normalised (Li et al. 2018) and zero on pruned weights; a plane through three "
             "networks uses orthonormal coordinates in units of ‖B − A‖; a trajectory plane is spanned by the two "
             "leading PCA directions of the checkpoints' offsets from the last one.")
    items: list[Any] = [surface_table(runs)]
    lines = [r for r in runs if r.section("surface").get("dims") == 1]
    if lines:
        items += [line_figure(lines, "loss"), line_figure(lines, "error")]
    for run in runs:
        if run.section("surface").get("dims") == 2:
            items += [contour_figure(run, "test"), contour_figure(run, "train"), surface3d_figure(run)]
    return [Section("Loss surfaces", intro=intro, items=items)]
