"""Report sections for data-diet pre-training (kind "diet"): does pre-training the dense network on
a subset of the training data give IMP a better rewind point?

Per diet run:
- a table of the subset (order, size, share of the training split, offset, class balance, scores,
  pre-training length, the pre-trained networks' final accuracy, the IMP run that followed);
- the per-class distribution of its scores run, all examples beside the subset, and the gallery of
  the easiest and hardest examples with the subset's members framed; for a random subset (no
  scores) the number of examples per class in the subset instead.
Across all the diet runs given, one comparison of pre-training variants (diet_variants.py):
- the ticket's test accuracy at early stopping (and, in a second figure, at the end of training)
  against the percent of weights remaining, a line per variant with a band from the lowest to the
  highest replicate. The variants are the IMP runs that rewind to these pre-trainings and every
  comparable IMP run in the same store (same training configuration up to its checkpoint list,
  same pruning, same number of replicates, no transferred ticket): θ0 (no pre-training), rewind to
  step k on the full data, or rewind to another diet pre-training;
- a table of the ticket's accuracy at a few densities, a row per variant;
- the share of linearly connected training examples (Paul et al. 2022) per variant, where LMC runs
  with per-example barriers were spawned from a variant's rewind point.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go

from ..errors import StoreError
from ..store import Run as StoredRun
from ..store import Store
from .framework import Run, Section, Table, plotly_text, section_for
from .scores import Scores, distribution_figure, gallery_figure, read_scores
from .train import FONT, PALETTE



@dataclass(eq=False)
class Diet:
    """A diet run: its subset and pre-training, read once."""

    run: Run
    subset: dict[str, Any]  # the "subset" section, falling back to the configuration
    index: np.ndarray  # positions in the training split
    pretrain_runs: list[str]
    pretrain_step: int
    pretrain_steps: str  # as configured, e.g. "500it"
    imp: str | None  # the IMP run recorded as following this pre-training, if one was run
    label: str
    # The IMP runs that rewind to this pre-training (see `link_imps`): the recorded one, else any
    # whose "pretrained" runs are this pre-training's.
    imps: list[Run] = field(default_factory=list)

    @property
    def scores_id(self) -> str | None:
        return self.subset.get("scores") or None


def read_diet(run: Run) -> Diet:
    config = run.config
    subset = {**(config.get("subset") or {}), **run.section("subset")}
    index = np.asarray(run.arrays("subset").get("index", []), dtype=np.int64)
    pretrain = run.section("pretrain")
    step = as_int(pretrain.get("step"), -1)
    steps = str(config.get("pretrain_steps") or f"{step}it")
    return Diet(run=run, subset=subset, index=index, pretrain_runs=list(pretrain.get("runs") or []),
                pretrain_step=step, pretrain_steps=steps, imp=run.section("imp").get("run") or None,
                label=diet_label(subset, steps, len(index)))


def as_int(value: Any, default: int) -> int:
    return default if value is None else int(value)


def _percent(fraction: Any) -> str:
    return f"{100 * float(fraction):.3g}%"


def diet_label(subset: dict[str, Any], steps: str, size: int | None = None) -> str:
    """E.g. "easy subset (5,000 = 10%), 500it"."""
    size = int(subset.get("size", size or 0))
    fraction = subset.get("fraction") or (size / subset["n_train"] if subset.get("n_train") else None)
    detail = f"{size:,}" + (f" = {_percent(fraction)}" if fraction else "")
    if int(subset.get("offset") or 0):
        detail += f", offset {int(subset['offset']):,}"
    return f"{subset.get('order', '?')} subset ({detail}), {steps}"


def _store(run: Run) -> Store | None:
    path = getattr(run, "path", None)
    return Store(Path(path).parent) if path is not None else None


def _open(store: Store | None, run_id: str | None) -> Run | None:
    # By exact ID, without Store.open's resolution (which lists the whole store every time).
    if store is None or not run_id or not store.exists(run_id):
        return None
    try:
        return StoredRun(store.path_for(run_id))
    except StoreError:
        return None


def stores_of(runs: Sequence[Run]) -> list[Store]:
    stores: dict[str, Store] = {}
    for run in runs:
        store = _store(run)
        if store is not None:
            stores.setdefault(str(store.root.resolve()), store)
    return list(stores.values())


def link_imps(diets: Sequence[Diet]) -> list[Run]:
    """Fill each diet's `imps`; return every IMP run in the diets' stores."""
    imps = [run for store in stores_of([d.run for d in diets]) for run in store.runs("imp")]
    for diet in diets:
        if diet.imp:
            diet.imps = [run for run in imps if run.id == diet.imp]
        elif diet.pretrain_runs:
            diet.imps = [run for run in imps if set(run.config.get("pretrained") or []) == set(diet.pretrain_runs)]
    return imps


def diet_scores(diet: Diet) -> Scores | None:
    """The scores run the subset was ordered by, when it is in the store."""
    run = _open(_store(diet.run), diet.scores_id)
    return read_scores(run) if run is not None else None


# --------------------------------------------------------------------------------------------
# One diet run
# --------------------------------------------------------------------------------------------

def _pretrain_metric(diet: Diet, key: str) -> float | None:
    """`pretrain/<key>` from the diet run's metrics, else the mean over its pre-training runs."""
    value = diet.run.metrics.get(f"pretrain/{key}")
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    store = _store(diet.run)
    values = [run.metrics.get(key) for run in (_open(store, i) for i in diet.pretrain_runs) if run is not None]
    values = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return float(np.mean(values)) if values else None


def _order_text(diet: Diet, method: str) -> str:
    order = diet.subset.get("order", "?")
    if order == "random":
        return f"random (seed {diet.subset.get('seed', 0)})"
    return f"{order}: {'lowest' if order == 'easy' else 'highest'} {method or 'difficulty'} scores first"


def subset_table(diet: Diet, scores: Scores | None) -> Table:
    s = diet.subset
    method = str(s.get("method") or (scores.method if scores else ""))
    n_train = s.get("n_train") or (scores.n_train if scores else None)
    size = int(s.get("size", len(diet.index)))
    share = f" ({_percent(s['fraction'])} of {int(n_train):,})" if s.get("fraction") and n_train else ""
    if not diet.scores_id:
        source = "none (random order)"
    elif scores is not None:
        source = f"{method or '?'}: {scores.run.name} ({diet.scores_id})"
    else:
        source = f"{method or '?'}: {diet.scores_id} (not in the store)"
    val, test = _pretrain_metric(diet, "final/val/acc"), _pretrain_metric(diet, "final/test/acc")
    rows = [
        ["order", _order_text(diet, method)],
        ["size", f"{size:,}{share}"],
        ["offset", f"{int(s.get('offset') or 0):,}"],
        ["balanced", "yes: each class in proportion to its frequency" if s.get("balanced") else "no"],
        ["scores", source],
        ["pre-training", (f"{diet.pretrain_steps} ({diet.pretrain_step:,} iterations), "
                         f"{len(diet.pretrain_runs)} replicate{'s' if len(diet.pretrain_runs) != 1 else ''}")],
        ["pre-training runs", ", ".join(diet.pretrain_runs) or None],
        ["final val / test acc", f"{_pct(val)} / {_pct(test)}" if val is not None or test is not None else None],
        ["IMP after it", ", ".join(f"{imp.name} ({imp.id})" for imp in diet.imps) or diet.imp or "not run"],
    ]
    return Table(rows, caption=f"{diet.run.name} ({diet.run.id}): {diet.label}", row_headers=True)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def class_count_figure(diet: Diet, scores: Scores | None = None) -> go.Figure:
    """The number of subset examples in each class (from the stored class counts)."""
    counts = [int(c) for c in diet.subset.get("class_counts") or []]
    names = [plotly_text(scores.class_name(k) if scores else f"class {k}") for k in range(len(counts))]
    fig = go.Figure(go.Bar(x=names, y=counts, marker={"color": PALETTE[0]},
                           hovertemplate="%{x}<br>%{y:,} examples in the subset<extra></extra>"))
    fig.update_layout(title={"text": plotly_text(f"Examples per class in the subset: {diet.run.name}"),
                             "x": 0.0, "xanchor": "left", "font": {"size": 15}},
                      font={"family": FONT, "size": 12}, template="plotly_white", height=360,
                      margin={"l": 70, "r": 20, "t": 56, "b": 56})
    fig.update_xaxes(type="category", title_text="class")
    fig.update_yaxes(title_text="examples")
    return fig


def diet_section(diet: Diet) -> Section:
    scores = diet_scores(diet)
    s = diet.subset
    size = int(s.get("size", len(diet.index)))
    if scores is not None:
        what = (f"the {size:,} {'easiest' if s.get('order') == 'easy' else 'hardest'} training examples by "
                f"{scores.method} score" if s.get("order") in ("easy", "hard") else f"{size:,} training examples")
        if int(s.get("offset") or 0):
            what += f" after skipping the first {int(s['offset']):,}"
    else:
        what = f"{size:,} training examples " + ("in a random order" if s.get("order") == "random"
                                                  else "(their scores run is not in the store)")
    intro = (f"The dense network was pre-trained for {diet.pretrain_steps} on {what}"
             + (", balanced across classes" if s.get("balanced") else "")
             + "; its final weights are the rewind point for IMP.")
    items: list[Any] = [subset_table(diet, scores)]
    valid = scores is not None and (len(diet.index) == 0 or int(diet.index.max()) < scores.n_train)
    if valid:
        intro += (" Boxes: quartiles, whiskers at 1.5 IQR, dashed line the mean; grey all training examples, "
                  "coloured the subset. Framed gallery tiles are in the subset.")
        items.append(distribution_figure(scores, diet.index, "subset",
                                         title=f"{scores.method} scores per class, subset vs all: {diet.run.name}"))
        gallery = gallery_figure(scores, diet.index)
        if gallery is not None:
            items.append(gallery)
    else:
        items.append(class_count_figure(diet, scores))
    return Section(f"Data diet: {diet.run.name}", intro=intro, items=items)


@section_for("diet")
def diet_sections(runs: list[Run]) -> list[Section]:
    from .diet_variants import comparison_section   # it reads diet runs through this module

    diets = [read_diet(run) for run in runs]
    store_imps = link_imps(diets)
    return [diet_section(diet) for diet in diets] + [comparison_section(diets, store_imps)]


def __getattr__(name: str):
    # The comparison of variants moved to diet_variants.py; its names stay importable from here.
    from . import diet_variants

    if hasattr(diet_variants, name):
        return getattr(diet_variants, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
