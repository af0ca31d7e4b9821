"""Report sections for training runs (kind "train").

Sections: an overview table (one row per run), learning curves (loss, accuracy and learning rate
against the iteration, every run overlaid; see curves.py) and a detailed summary table per run
(configuration, results, checkpoints, environment).
"""
from __future__ import annotations

import json
import math
from typing import Any, Sequence

import numpy as np

# The figures live in curves.py; their names stay importable from here (FONT and PALETTE are shared).
from .curves import (FONT, MARKERS_UP_TO, MAX_POINTS, PALETTE, SPLIT_DASH, SPLIT_LABEL, SPLITS,  # noqa: F401
                     accuracy_figure, loss_figure, lr_figure)
from .framework import HTML, Run, Section, Table, details, escape, section_for
from .training_metrics import honest_curves, honest_metrics  # noqa: F401  (honest_curves: importable here as before)



@section_for("train")
def train_sections(runs: list[Run]) -> list[Section]:
    """Overview, learning curves and per-run details for training runs."""
    plural = len(runs) != 1
    overview = Section(
        title="Training runs",
        intro=(f"{len(runs)} training run{'s' if plural else ''}. Accuracies and losses are the "
               "final ones unless the column says otherwise; details per run are further down."),
        items=[overview_table(runs)],
    )
    figures = [fig for fig in (loss_figure(runs), accuracy_figure(runs), lr_figure(runs))
               if fig is not None]
    curves_intro = ("Loss and accuracy against the iteration. "
                    + ("Each run has a colour; " if plural else "")
                    + "solid lines (points) are the network evaluated on the un-augmented training split (at the "
                    "end, or at every evaluation with --eval-train), dash-dotted the running average over the "
                    "training minibatches since the previous evaluation (augmented, under changing weights: not "
                    "the network's accuracy on the training split), dashed validation, dotted test. "
                    "Points that were not measured are skipped, so a line joins the measured "
                    "points. Hover for the run, iteration, epoch and value; click a legend entry "
                    "to hide it, double-click to show it alone.")
    if not figures:
        curves_intro = "None of these runs recorded any curves."
    curves = Section(title="Learning curves", intro=curves_intro, items=figures)
    detail_items: list[Any] = []
    for run in runs:
        detail_items.append(summary_table(run))
        detail_items.append(details(f"Full configuration and environment of {run.name}",
                                    _raw_json(run)))
    run_details = Section(title="Run details", items=detail_items)
    return [overview, curves, run_details]


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------

def overview_table(runs: Sequence[Run]) -> Table:
    rows = []
    for run in runs:
        m = _metrics(run)
        rows.append([
            run.name, HTML(f"<code>{escape(run.id)}</code>"), _status(run),
            _model(run, short=True), _dataset(run, short=True), _optimizer(run, short=True),
            _pct(m.get("final/test/acc")), _loss(m.get("final/test/loss")),
            _pct(m.get("final/val/acc")), _pct(m.get("best/val/acc")),
            _duration(m.get("train_time_s")),
        ])
    return Table(
        rows=rows,
        header=["run", "id", "status", "model", "dataset", "optimizer",
                "test acc", "test loss", "val acc", "best val acc", "time"],
        align=["left"] * 6 + ["right"] * 5,
    )


def summary_table(run: Run) -> Table:
    config = _config(run)
    m = _metrics(run)
    env = getattr(run, "environment", None) or {}
    rows: list[list[Any]] = [
        ["id", HTML(f"<code>{escape(run.id)}</code>")],
        ["name", run.name],
        ["status", _status(run)],
    ]
    if getattr(run, "parent", None):
        rows.append(["parent", HTML(f"<code>{escape(run.parent)}</code>")])
    rows += [
        ["model", _model(run)],
        ["dataset", _dataset(run)],
        ["optimizer", _optimizer(run)],
        ["batch size", _value(config.get("batch_size"))],
        ["steps", _steps(run)],
        ["seeds", _seeds(config.get("seeds"))],
    ]
    if config.get("mask") is not None:
        rows.append(["mask", _value(config.get("mask"))])
    rows += [
        ["final test accuracy / loss",
         f"{_pct(m.get('final/test/acc'))} / {_loss(m.get('final/test/loss'))}"],
        ["final val accuracy / loss",
         f"{_pct(m.get('final/val/acc'))} / {_loss(m.get('final/val/loss'))}"],
        ["final train accuracy / loss (the network on the un-augmented training split)",
         f"{_pct(m.get('final/train/acc'))} / {_loss(m.get('final/train/loss'))}"],
        ["running train accuracy / loss (mean over the last interval's augmented minibatches)",
         f"{_pct(m.get('final/train_running/acc'))} / {_loss(m.get('final/train_running/loss'))}"],
        ["best val accuracy", _pct(m.get("best/val/acc"))],
        ["minimum val loss", _min_val_loss(m)],
        ["training time", _duration(m.get("train_time_s"))],
        ["checkpoints", _checkpoints(getattr(run, "checkpoint_steps", None))],
        ["environment", _environment(env)],
    ]
    return Table(rows=rows, caption=run.name, row_headers=True)


def _status(run: Run) -> HTML:
    if run.complete:
        return HTML('<span class="badge ok">complete</span>')
    return HTML('<span class="badge warn">interrupted</span>')


def _config(run: Run) -> dict:
    config = getattr(run, "config", None)
    return config if isinstance(config, dict) else {}


def _metrics(run: Run) -> dict:
    return honest_metrics(run)


def _section(config: dict, key: str) -> dict:
    value = config.get(key)
    return value if isinstance(value, dict) else {}


def _model(run: Run, short: bool = False) -> str:
    model = _section(_config(run), "model")
    name = model.get("name")
    if name is None or short:
        return "—" if name is None else str(name)
    extras = []
    if model.get("init") is not None:
        extras.append(f"init {_value(model['init'])}")
    width = model.get("width")
    if width is not None and width != 1:
        extras.append(f"width ×{_value(width)}")
    return f"{name} ({', '.join(extras)})" if extras else str(name)


def _dataset(run: Run, short: bool = False) -> str:
    data = _section(_config(run), "data")
    name = data.get("dataset")
    if name is None or short:
        return "—" if name is None else str(name)
    extras = []
    if data.get("val_size") is not None:
        extras.append(f"val {_value(data['val_size'])}")
    if data.get("augment") not in (None, "none"):
        extras.append(f"augment {_value(data['augment'])}")
    if data.get("split_seed") is not None:
        extras.append(f"split seed {_value(data['split_seed'])}")
    return f"{name} ({', '.join(extras)})" if extras else str(name)


def _optimizer(run: Run, short: bool = False) -> str:
    optim = _section(_config(run), "optim")
    name = optim.get("optimizer")
    if name is None:
        return "—"
    parts = [str(name)]
    if optim.get("lr") is not None:
        parts.append(f"lr {_value(optim['lr'])}")
    if short:
        return " ".join(parts)
    if optim.get("momentum"):
        parts.append(f"momentum {_value(optim['momentum'])}" + (" nesterov" if optim.get("nesterov") else ""))
    if optim.get("weight_decay"):
        parts.append(f"wd {_value(optim['weight_decay'])}")
    if optim.get("schedule") not in (None, "constant"):
        parts.append(f"{_value(optim['schedule'])} schedule")
    if optim.get("warmup") not in (None, "0", "0it", "0ep", 0):
        parts.append(f"warmup {_value(optim['warmup'])}")
    return ", ".join(parts)


def _steps(run: Run) -> str:
    planned = _config(run).get("steps")
    done = _metrics(run).get("steps")
    done_text = f"{int(done):,} iterations" if _finite(done) else None
    if planned is None:
        return done_text or "—"
    planned = _value(planned)
    if done_text is None:
        return planned
    # `planned` may be "10ep"; the iterations done make it concrete (and show a short run).
    return f"{planned} ({done_text} done)" if not run.complete else f"{planned} ({done_text})"


def _seeds(seeds: Any) -> str:
    if isinstance(seeds, dict):
        return ", ".join(f"{str(k).replace('_', ' ')} {_value(v)}" for k, v in seeds.items()) or "—"
    return _value(seeds)


def _min_val_loss(m: dict) -> str:
    step = m.get("min_val_loss/step")
    if not _finite(step):
        return "—"
    text = f"at iteration {int(step):,}"
    acc = m.get("min_val_loss/test/acc")
    if _finite(acc):
        text += f" (test accuracy there {_pct(acc)})"
    return text


def _checkpoints(steps: Any) -> str:
    if not steps:
        return "none"
    steps = [int(s) for s in steps]
    shown = [f"{s:,}" for s in steps]
    if len(shown) > 12:
        shown = shown[:5] + ["…"] + shown[-5:]
    return f"{len(steps)}: " + ", ".join(shown) if len(steps) > 1 else f"1: {shown[0]}"


def _environment(env: dict) -> str:
    parts = []
    for key, label in (("torch", "torch"), ("device", "device"), ("git", "git"),
                       ("python", "python"), ("landscape", "landscape"), ("host", "host"),
                       ("created", "created")):
        if env.get(key) not in (None, ""):
            parts.append(f"{label} {_value(env[key])}")
    return ", ".join(parts) or "—"


def _raw_json(run: Run) -> str:
    document = {"config": _config(run), "environment": getattr(run, "environment", None) or {},
                "metrics": _metrics(run)}
    return json.dumps(document, indent=2, default=_jsonable, allow_nan=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _pct(value: Any) -> str:
    return f"{100 * float(value):.2f}%" if _finite(value) else "—"


def _loss(value: Any) -> str:
    return f"{float(value):.4f}" if _finite(value) else "—"


def _value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (np.floating,)):
        return f"{float(value):g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_value(v) for v in value)
    return str(value)


def _duration(seconds: Any) -> str:
    if not _finite(seconds):
        return "—"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        minutes, secs = divmod(int(round(seconds)), 60)
        return f"{minutes} min {secs:02d} s"
    hours, rest = divmod(int(round(seconds)), 3600)
    return f"{hours} h {rest // 60:02d} min"
