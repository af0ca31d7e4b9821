"""Report sections for difficulty scores (kind "scores"): which training examples are hard?

- An overview table, one row per scores run: the method, when it was measured, how many runs it
  averages, the training-split size, the mean / median / range of the scores, how well the runs
  agree with each other (mean pairwise Spearman rank correlation) and the time it took.
- Per run, the distribution of the scores in each class (a box per class: quartiles, whiskers at
  1.5 IQR, dashed mean), and a gallery of the easiest and hardest training images stored with the
  run, one row per class (hover a tile for its class, score and position in the training split).

`read_scores`, `distribution_figure` and `gallery_figure` are reused by the data-diet report
(`landscape.report.diet`), which highlights the subset it trained on.
"""
from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.subplots import make_subplots
from scipy.stats import rankdata

from .framework import Run, Section, Table, plotly_text, section_for
from .train import FONT, PALETTE

ALL_COLOUR = "#8c959f"
SUBSET_COLOUR = PALETTE[0]
FRAME_COLOUR = (230, 120, 0)  # the frame around gallery tiles that are in a highlighted subset
TILE_PIXELS = 32  # small images are enlarged (nearest neighbour) to at least this many pixels
GAP = 3  # pixels between gallery tiles; a highlighted tile's frame is drawn in them


@dataclass(eq=False)
class Scores:
    """A scores run's arrays and attributes, read once."""

    run: Run
    method: str
    description: str
    classes: list[str]
    score: np.ndarray  # [n] mean over runs
    per_run: np.ndarray  # [S, n]
    label: np.ndarray  # [n]
    gallery: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_train(self) -> int:
        return len(self.score)

    def class_name(self, k: int) -> str:
        return str(self.classes[k]) if 0 <= k < len(self.classes) else f"class {k}"


def read_scores(run: Run) -> Scores:
    info = run.section("scores")
    arrays = run.arrays("scores")
    score = np.asarray(arrays.get("score", []), dtype=float)
    per_run = np.asarray(arrays.get("per_run", score[None]), dtype=float).reshape(-1, len(score))
    return Scores(run=run, method=str(info.get("method") or run.config.get("method", "?")),
                  description=str(info.get("description") or ""), classes=list(info.get("classes") or []),
                  score=score, per_run=per_run, label=np.asarray(arrays.get("label", []), dtype=np.int64),
                  gallery=run.arrays("gallery"))


def rank_agreement(per_run: np.ndarray) -> float | None:
    """Mean pairwise Spearman correlation between the runs' scores (None for a single run)."""
    if per_run.shape[0] < 2:
        return None
    ranks = np.stack([rankdata(row) for row in per_run])
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(ranks)
    pairs = corr[np.triu_indices(len(ranks), k=1)]
    return float(np.nanmean(pairs)) if np.isfinite(pairs).any() else None


# --------------------------------------------------------------------------------------------
# Distribution per class
# --------------------------------------------------------------------------------------------

def _box_stats(values: np.ndarray) -> dict[str, float]:
    """Tukey's box of `values`, computed here so the page carries 6 numbers per box, not n."""
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    iqr = q3 - q1
    inside = values[(values >= q1 - 1.5 * iqr) & (values <= q3 + 1.5 * iqr)]
    return {"q1": q1, "median": median, "q3": q3, "lowerfence": inside.min(), "upperfence": inside.max(),
            "mean": values.mean()}


def _box_trace(scores: Scores, members: np.ndarray, name: str, colour: str) -> tuple[go.Box, list[int]]:
    """One box per class over the examples at positions `members`; also the count per class."""
    labels, values = scores.label[members], scores.score[members]
    classes = np.unique(scores.label)
    stats: dict[str, list[float]] = {k: [] for k in ("q1", "median", "q3", "lowerfence", "upperfence", "mean")}
    x, counts = [], []
    for k in classes:
        in_class = values[labels == k]
        counts.append(len(in_class))
        in_class = in_class[np.isfinite(in_class)]
        if len(in_class) == 0:
            continue
        x.append(plotly_text(scores.class_name(int(k))))
        for key, value in _box_stats(in_class).items():
            stats[key].append(float(value))
    trace = go.Box(x=x, **stats, name=plotly_text(name), marker={"color": colour}, line={"color": colour},
                   boxpoints=False, boxmean=True, customdata=counts)
    return trace, counts


def distribution_figure(scores: Scores, highlight: np.ndarray | None = None, highlight_name: str = "subset",
                        title: str | None = None) -> go.Figure:
    """The scores of each class as a box; with `highlight` (positions in the training split) a
    second, coloured box per class for those examples beside the box of all examples.

    Each box trace's `customdata` is its count per class (every class, in class order); the axis
    labels show them too.
    """
    fig = go.Figure()
    everyone = np.arange(scores.n_train)
    trace, all_counts = _box_trace(scores, everyone, f"all {scores.n_train:,} training examples",
                                   ALL_COLOUR if highlight is not None else SUBSET_COLOUR)
    fig.add_trace(trace)
    classes = [int(k) for k in np.unique(scores.label)]
    ticks = [f"{scores.class_name(k)} ({n:,})" for k, n in zip(classes, all_counts)]
    if highlight is not None:
        index = np.asarray(highlight, dtype=np.int64)
        trace, counts = _box_trace(scores, index, f"{highlight_name} ({len(index):,})", SUBSET_COLOUR)
        fig.add_trace(trace)
        ticks = [f"{scores.class_name(k)} ({m:,} of {n:,})" for k, m, n in zip(classes, counts, all_counts)]
        fig.update_layout(boxmode="group")
    fig.update_xaxes(type="category", tickvals=[plotly_text(scores.class_name(k)) for k in classes],
                     ticktext=[plotly_text(t) for t in ticks], title_text="class (examples)")
    fig.update_yaxes(title_text=f"{plotly_text(scores.method)} score (higher is harder)")
    title = title or f"{scores.method} scores per class: {scores.run.name}"
    return _layout(fig, plotly_text(title), height=440)


def _layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    fig.update_layout(title={"text": title, "x": 0.0, "xanchor": "left", "font": {"size": 15}},
                      font={"family": FONT, "size": 12}, template="plotly_white", height=height,
                      margin={"l": 70, "r": 20, "t": 56, "b": 60}, hovermode="closest",
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0})
    return fig


# --------------------------------------------------------------------------------------------
# Gallery
# --------------------------------------------------------------------------------------------

def to_rgb(images: np.ndarray) -> np.ndarray:
    """[G, C, H, W] uint8 (C = 1 or 3) as [G, H, W, 3]: greyscale repeated into grey RGB."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[:, None]
    if images.dtype != np.uint8:
        images = np.clip(images, 0, 255).astype(np.uint8)
    rgb = np.transpose(images, (0, 2, 3, 1))
    return np.repeat(rgb, 3, axis=3) if rgb.shape[3] == 1 else rgb[..., :3]


@dataclass(eq=False)
class Grid:
    """Images composed into one picture: a row per class, tiles left to right in stored order."""

    image: np.ndarray  # [H, W, 3] uint8
    centres: np.ndarray  # [G, 2] (x, y) of each tile's centre, in picture pixels
    rows: list[int]  # the class of each row
    row_centres: list[float]


def compose_grid(images: np.ndarray, labels: np.ndarray, framed: np.ndarray | None = None) -> Grid:
    """Tile `images` ([G, C, H, W]) into one RGB picture, one row per class in order of first
    appearance; tiles where `framed` is True get a coloured frame."""
    rgb = to_rgb(images)
    g, h, w, _ = rgb.shape
    scale = max(1, math.ceil(TILE_PIXELS / max(h, w, 1)))
    rgb = rgb.repeat(scale, axis=1).repeat(scale, axis=2)
    h, w = h * scale, w * scale
    rows = list(dict.fromkeys(int(k) for k in labels))
    slot = np.zeros(g, dtype=int)
    row_of = np.array([rows.index(int(k)) for k in labels], dtype=int)
    for r in range(len(rows)):
        slot[row_of == r] = np.arange(int((row_of == r).sum()))
    cols = int(slot.max()) + 1 if g else 1
    picture = np.full((GAP + len(rows) * (h + GAP), GAP + cols * (w + GAP), 3), 255, dtype=np.uint8)
    centres = np.zeros((g, 2))
    for i in range(g):
        top, left = GAP + row_of[i] * (h + GAP), GAP + slot[i] * (w + GAP)
        if framed is not None and framed[i]:
            picture[top - 2:top + h + 2, left - 2:left + w + 2] = FRAME_COLOUR
        picture[top:top + h, left:left + w] = rgb[i]
        centres[i] = (left + (w - 1) / 2, top + (h - 1) / 2)
    row_centres = [GAP + r * (h + GAP) + (h - 1) / 2 for r in range(len(rows))]
    return Grid(picture, centres, rows, row_centres)


def png_data_uri(picture: np.ndarray) -> str:
    """A PNG data URL (the page's policy allows data: images; nothing is fetched)."""
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


SIDES = (("easy", "easiest (lowest score)"), ("hard", "hardest (highest score)"))


def gallery_figure(scores: Scores, highlight: np.ndarray | None = None,
                   highlight_name: str = "subset") -> go.Figure | None:
    """The easiest and hardest stored training images side by side, a row per class; None when
    the run stored no gallery. With `highlight` (positions in the training split), tiles of
    examples in it are framed and their hover says so."""
    sides = [(key, title) for key, title in SIDES if len(scores.gallery.get(f"{key}_x", [])) > 0]
    if not sides:
        return None
    fig = make_subplots(rows=1, cols=len(sides), subplot_titles=[t for _, t in sides], horizontal_spacing=0.08)
    chosen = None if highlight is None else np.asarray(highlight, dtype=np.int64)
    height = 0
    for col, (key, _) in enumerate(sides, start=1):
        g = scores.gallery
        index = np.asarray(g[f"{key}_index"], dtype=np.int64)
        labels = np.asarray(g[f"{key}_label"], dtype=np.int64)
        values = np.asarray(g[f"{key}_score"], dtype=float)
        framed = None if chosen is None else np.isin(index, chosen)
        grid = compose_grid(g[f"{key}_x"], labels, framed)
        fig.add_trace(go.Image(source=png_data_uri(grid.image), x0=0, y0=0, dx=1, dy=1, hoverinfo="skip",
                               name=key), row=1, col=col)
        fig.add_trace(_hover_points(scores, grid, index, labels, values, framed, highlight_name), row=1, col=col)
        fig.update_xaxes(range=[-0.5, grid.image.shape[1] - 0.5], showticklabels=False, showgrid=False,
                         zeroline=False, row=1, col=col)
        fig.update_yaxes(range=[grid.image.shape[0] - 0.5, -0.5], tickvals=grid.row_centres,
                         ticktext=[plotly_text(scores.class_name(k)) for k in grid.rows], showgrid=False,
                         zeroline=False, scaleanchor=f"x{'' if col == 1 else col}", scaleratio=1,
                         constrain="domain", row=1, col=col)
        height = max(height, len(grid.rows))
    title = f"Easiest and hardest training examples by {scores.method}: {scores.run.name}"
    if chosen is not None:
        title += f" (framed: in the {highlight_name})"
    _layout(fig, plotly_text(title), height=int(min(max(150 + 52 * height, 300), 2400)))
    fig.update_layout(showlegend=False, margin={"t": 84})
    return fig


def _hover_points(scores: Scores, grid: Grid, index: np.ndarray, labels: np.ndarray, values: np.ndarray,
                  framed: np.ndarray | None, highlight_name: str) -> go.Scatter:
    """Invisible markers on the tile centres, which carry each tile's hover label."""
    names = [plotly_text(scores.class_name(int(k))) for k in labels]
    member = ([f"<br>in the {plotly_text(highlight_name)}" if f else f"<br>not in the {plotly_text(highlight_name)}"
               for f in framed] if framed is not None else [""] * len(index))
    custom = np.array([[n, float(v), int(i), m] for n, v, i, m in zip(names, values, index, member)], dtype=object)
    return go.Scatter(x=grid.centres[:, 0], y=grid.centres[:, 1], mode="markers",
                      marker={"size": 22, "color": "rgba(0,0,0,0)", "symbol": "square"}, customdata=custom,
                      hovertemplate=("%{customdata[0]}<br>score %{customdata[1]:.4~g}<br>training example "
                                     "#%{customdata[2]}%{customdata[3]}<extra></extra>"))


# --------------------------------------------------------------------------------------------
# Tables and the section
# --------------------------------------------------------------------------------------------

def duration(seconds: Any) -> str | None:
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return None
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        minutes, secs = divmod(round(seconds), 60)
        return f"{minutes} min {secs:02d} s"
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours} h {rest // 60:02d} min"


def _num(value: float | None) -> str | None:
    return None if value is None or not math.isfinite(value) else f"{value:.4g}"


def overview_table(all_scores: Sequence[Scores]) -> Table:
    rows = []
    for s in all_scores:
        finite = s.score[np.isfinite(s.score)]
        stats = ([f"{finite.mean():.4g}", f"{np.median(finite):.4g}", f"{finite.min():.4g} – {finite.max():.4g}"]
                 if len(finite) else [None, None, None])
        rows.append([s.run.name, s.method, s.run.config.get("at"), s.per_run.shape[0], f"{s.n_train:,}",
                     len(np.unique(s.label)), *stats, _num(rank_agreement(s.per_run)),
                     duration(s.run.metrics.get("time_s"))])
    return Table(rows, header=["run", "method", "at", "runs", "examples", "classes", "mean", "median", "range",
                               "pairwise ρ", "time"],
                 caption="Difficulty scores of the training split (pairwise ρ: Spearman rank correlation between "
                         "two scoring runs, averaged over every pair of runs)",
                 row_headers=True, align=["left", "left", "left"] + ["right"] * 8)


@section_for("scores")
def scores_sections(runs: list[Run]) -> list[Section]:
    all_scores = [read_scores(run) for run in runs]
    methods = list(dict.fromkeys((s.method, s.description) for s in all_scores))
    intro = ("Difficulty scores of every training example (the training set less the validation examples), each "
             "the mean over independent runs; higher is harder.\n\n"
             + "\n\n".join(f"{method}: {description}" for method, description in methods if description))
    sections = [Section("Example difficulty scores", intro=intro, items=[overview_table(all_scores)])]
    for s in all_scores:
        items: list[Any] = [distribution_figure(s)]
        gallery = gallery_figure(s)
        if gallery is not None:
            items.append(gallery)
        sections.append(Section(f"Scores: {s.run.name}", items=items))
    return sections
