"""The report layer: framework (sections, registry, rendering, atomic write) and training figures.

Runs are stubs (a dataclass with the store's read API), so these tests do not need the store.
The browser tests load the report in headless chromium (tests/browser.py) and check that it
loads cleanly and offline and that every figure is drawn; set LANDSCAPE_REPORT_SHOT=/some.png to
also keep a screenshot there.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import browser  # noqa: E402  (tests/browser.py)

from landscape.errors import UserError  # noqa: E402
from landscape.report import (  # noqa: E402
    HTML, Report, Section, Table, build_report, section_for, write_report,
)
from landscape.report import framework, train  # noqa: E402

EVIL = "<script>alert(1)</script>"
PLOTLY_BANNER = "* plotly.js v"


# --------------------------------------------------------------------------------------------
# Stub runs
# --------------------------------------------------------------------------------------------

@dataclass
class StubRun:
    id: str
    name: str
    kind: str = "train"
    complete: bool = True
    config: dict = field(default_factory=dict)
    environment: dict = field(default_factory=dict)
    parent: str | None = None
    curves: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    checkpoint_steps: list = field(default_factory=list)


def _config(lr: float = 0.1, name: str = "lenet_300_100") -> dict:
    return {
        "model": {"name": name, "init": "kaiming_normal", "width": 1.0},
        "data": {"dataset": "mnist", "val_size": 5000, "augment": "none", "split_seed": 0},
        "optim": {"optimizer": "sgd", "lr": lr, "momentum": 0.9, "nesterov": False,
                  "weight_decay": 0.0, "schedule": "constant", "warmup": "0it"},
        "steps": "10ep", "batch_size": 60, "seeds": {"init": 0, "data_order": 0, "augment": 0},
        "checkpoint_at": ["0", "end"], "eval_every": "1ep", "mask": None,
    }


ENVIRONMENT = {"landscape": "0.1.0", "git": "abc123", "torch": "2.13.0", "python": "3.11.7",
               "device": "cpu", "host": "box", "created": "2026-11-22T04:00:00Z"}


def _curves(epochs: int, lr: float, seed: int, iters_per_epoch: int = 916, log_every: int = 100,
            test: bool = True) -> dict:
    """Curves as training writes them: train metrics every `log_every` iterations, evaluation
    (val/test) once per epoch, NaN wherever something was not measured."""
    rng = np.random.default_rng(seed)
    evals = [e * iters_per_epoch for e in range(epochs + 1)]
    step = np.array(sorted(set(range(0, epochs * iters_per_epoch + 1, log_every)) | set(evals)),
                    dtype=float)
    at_eval = np.isin(step, evals)
    train_loss = 2.3 * np.exp(-step / (300 / lr / 10)) + 0.04 + 0.02 * rng.random(len(step))
    train_loss[0] = np.nan  # no training batch has been seen at iteration 0
    val_loss = np.where(at_eval, 2.3 * np.exp(-step / 450) + 0.07, np.nan)
    nan = np.full(len(step), np.nan)
    return {
        "step": step, "epoch": step / iters_per_epoch, "lr": np.full(len(step), lr),
        "train/loss": train_loss, "train/acc": np.clip(1 - train_loss / 2.4, 0, 1),
        "val/loss": val_loss, "val/acc": 1 - val_loss / 2.45,
        "test/loss": val_loss + 0.01 if test else nan,
        "test/acc": 1 - val_loss / 2.45 - 0.003 if test else nan,
    }


def _runs() -> list[StubRun]:
    done = StubRun(
        id="3f9a1c2b7d4e", name="lenet_300_100-mnist-s0", config=_config(),
        environment=ENVIRONMENT, curves=_curves(epochs=10, lr=0.1, seed=0),
        metrics={"final/test/acc": 0.9812, "final/test/loss": 0.0623, "final/val/acc": 0.9830,
                 "final/val/loss": 0.0581, "best/val/acc": 0.9851, "min_val_loss/step": 7328,
                 "min_val_loss/test/acc": 0.9822, "train_time_s": 83.2, "steps": 9160},
        checkpoint_steps=[0, 9160],
    )
    interrupted = StubRun(
        id="77aa0d1e5c3b", name=EVIL, complete=False, config=_config(lr=0.05),
        environment=ENVIRONMENT, parent="3f9a1c2b7d4e",
        curves=_curves(epochs=4, lr=0.05, seed=1, test=False),  # test never measured
        metrics={"final/val/acc": float("nan"), "steps": 3664},
        checkpoint_steps=[0],
    )
    return [done, interrupted]


@pytest.fixture(scope="module")
def report_file(tmp_path_factory) -> tuple[Report, Path, str]:
    report = build_report(_runs())
    path = write_report(report, tmp_path_factory.mktemp("report") / "report.html")
    return report, path, path.read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------------

def test_one_self_contained_file_with_plotlyjs_once(report_file):
    report, path, page = report_file
    assert page.startswith("<!DOCTYPE html>")
    assert page.count(PLOTLY_BANNER) == 1  # the plotly.js bundle, inlined exactly once
    assert page.count("<script") == page.count("</script>")
    assert page.count("Plotly.newPlot(") == len(report.figures()) == 3
    # Nothing is loaded from anywhere: no src/href to a URL, no MathJax, no CDN, no web font.
    assert not re.search(r"""<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=\s*["']?(https?:)?//""",
                         page, re.I)
    assert not re.search(r"<script[^>]*\bsrc=", page, re.I)
    assert "cdn.plot.ly" not in page.split(PLOTLY_BANNER)[0]
    assert "MathJax.js" not in page and "@import" not in page and "@font-face" not in page
    assert list(path.parent.iterdir()) == [path]


def test_header_toc_and_sections(report_file):
    report, _, page = report_file
    assert [s.title for s in report.sections] == ["Training runs", "Learning curves", "Run details"]
    assert re.search(r"<h1>Report on 2 training runs</h1>", page)
    assert re.search(r"generated \d{4}-\d\d-\d\d \d\d:\d\d UTC &middot; landscape \S+", page)
    for anchor in ("s-training-runs", "s-learning-curves", "s-run-details"):
        assert f'href="#{anchor}"' in page and f'<section id="{anchor}">' in page
    assert "interrupted" in page and "complete" in page


def test_run_data_is_escaped(report_file):
    _, _, page = report_file
    assert EVIL not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # In the figures' JSON the name is escaped for plotly's label markup, and plotly writes
    # < > / as \\u escapes inside the script.
    assert "\\u003cscript" not in page
    assert "&lt;script&gt;alert(1)&lt;\\u002fscript&gt;" in page


def test_plotly_text_shows_markup_and_templates_literally():
    assert framework.plotly_text("<b>%{y}</b> & co") == "&lt;b&gt;&#37;{y}&lt;/b&gt; &amp; co"


def test_summary_table_contents():
    done, interrupted = _runs()
    page = Report("t", [Section("s", items=[train.summary_table(done),
                                            train.summary_table(interrupted)])]).to_html()
    for text in ("3f9a1c2b7d4e", "lenet_300_100 (init kaiming_normal)",
                 "mnist (val 5000, split seed 0)", "sgd, lr 0.1, momentum 0.9",
                 "init 0, data order 0, augment 0", "10ep (9,160 iterations)",
                 "98.12% / 0.0623", "98.30% / 0.0581", "98.51%",
                 "at iteration 7,328 (test accuracy there 98.22%)", "1 min 23 s", "2: 0, 9,160",
                 "torch 2.13.0, device cpu, git abc123", "10ep (3,664 iterations done)"):
        assert text in page, text
    assert page.count('class="badge warn">interrupted') == 1
    assert "parent" in page  # the interrupted run names its parent


def test_nan_points_are_dropped_per_trace():
    runs = _runs()
    loss = train.loss_figure(runs)
    by_name = {(t.legendgroup, t.name): t for t in loss.data}
    # the interrupted run never measured test: no trace for it; the others keep finite points
    assert ("run-1", "test") not in by_name and ("run-0", "test") in by_name
    for trace in loss.data:
        assert np.all(np.isfinite(np.asarray(trace.y, dtype=float)))
        assert len(trace.x) == len(trace.y) == len(trace.customdata)
    val = by_name[("run-0", "validation")]
    assert list(val.x[:3]) == [0, 916, 1832] and val.mode == "lines+markers"
    assert by_name[("run-0", "train (running avg)")].mode == "lines"
    assert by_name[("run-0", "train (running avg)")].line.dash == "longdashdot" and val.line.dash == "dash"
    assert by_name[("run-0", "train (running avg)")].line.color != by_name[("run-1", "train (running avg)")].line.color
    assert "iteration %{x:,d}" in val.hovertemplate and "epoch %{customdata:.2f}" in val.hovertemplate
    assert "lenet_300_100-mnist-s0" in val.hovertemplate


def test_long_curves_are_thinned():
    n = 3 * train.MAX_POINTS + 7
    step = np.arange(n, dtype=float)
    run = StubRun(id="l1", name="long", curves={"step": step, "epoch": step / 100,
                                                "train/loss": np.exp(-step / n), "lr": step * 0})
    (trace,) = train.loss_figure([run]).data
    assert len(trace.x) <= train.MAX_POINTS and trace.x[0] == 0 and trace.x[-1] == n - 1
    assert train.lr_figure([run]).data[0].mode == "lines"


def test_runs_without_curves_still_report():
    bare = StubRun(id="000000000001", name="bare", complete=False)
    report = build_report([bare])
    assert report.title == "Report on a training run: bare"
    assert report.figures() == []
    assert "None of these runs recorded any curves." in report.to_html()


def test_no_runs_is_a_user_error():
    with pytest.raises(UserError, match="no runs"):
        build_report([])


def test_registry_builders_by_kind(monkeypatch):
    # A kind no real builder claims: the real ones (imp, ...) may already be registered by other tests.
    monkeypatch.setattr(framework, "_BUILDERS", {k: list(v) for k, v in framework._BUILDERS.items()})

    @section_for("sparsity")
    def imp_sections(runs):
        return [Section("Sparsity", intro=f"{len(runs)} sparsity runs",
                        items=[Table([[r.name] for r in runs], header=["run"])])]

    section_for("sparsity")(imp_sections)  # registering again replaces, it does not duplicate
    runs = _runs() + [StubRun(id="a1", name="imp-a", kind="sparsity"),
                      StubRun(id="a2", name="imp-b", kind="sparsity"),
                      StubRun(id="z1", name="odd", kind="zeta"),
                      _runs()[0]]  # a repeated run is reported once
    report = build_report(runs, title="Mixed")
    titles = [s.title for s in report.sections]
    assert titles == ["Training runs", "Learning curves", "Run details", "Sparsity",
                      "Runs of kind 'zeta'"]
    assert report.sections[3].intro == "2 sparsity runs"
    assert "No report builder is registered" in report.sections[4].intro
    assert report.title == "Mixed"


def test_builder_must_return_sections(monkeypatch):
    monkeypatch.setattr(framework, "_BUILDERS", {"train": [lambda runs: "oops"]})
    with pytest.raises(TypeError, match="must return a list of Section"):
        build_report(_runs())


def test_sections_escape_titles_and_intros_but_not_html():
    report = Report(title=EVIL, sections=[
        Section(EVIL, intro="a <b>\n\nsecond", items=[HTML("<em>trusted</em>"),
                                                     Table([[EVIL, None, float("nan")]])]),
        Section(EVIL),  # same title: anchors stay unique
    ])
    page = report.to_html()
    assert EVIL not in page
    assert page.count('<p class="intro">') == 2 and "a &lt;b&gt;" in page
    assert "<em>trusted</em>" in page
    assert page.count('<span class="na">&mdash;</span>') == 2
    assert 'id="s-script-alert-1-script"' in page and 'id="s-script-alert-1-script-2"' in page


def test_write_is_atomic(tmp_path, monkeypatch):
    report = Report("r", [Section("s", items=[go.Figure(go.Scatter(x=[0, 1], y=[1, 0]))])])
    target = tmp_path / "sub" / "r.html"
    assert write_report(report, target) == target
    first = target.read_text()
    assert [p.name for p in target.parent.iterdir()] == ["r.html"]
    assert oct(target.stat().st_mode & 0o777) == "0o644"

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_report(Report("other"), target)
    assert target.read_text() == first  # the old report is untouched...
    assert [p.name for p in target.parent.iterdir()] == ["r.html"]  # ...and no temp file left


def test_write_to_a_directory_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="is a directory"):
        write_report(Report("r"), tmp_path)


# --------------------------------------------------------------------------------------------
# In a browser
# --------------------------------------------------------------------------------------------

# Hover the first point of the first trace of every figure and read the hover label back.
_HOVER = """
(() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => {
  Plotly.Fx.hover(gd, [{curveNumber: 0, pointNumber: 1}]);
  const text = Array.from(gd.querySelectorAll('.hoverlayer .hovertext'))
    .map(n => n.textContent).join(' | ');
  Plotly.Fx.unhover(gd);
  return text;
}))()
"""


@pytest.fixture(scope="module")
def loaded(report_file, tmp_path_factory):
    if browser.chromium_path() is None:
        pytest.skip(browser.SKIP_REASON)
    _, path, _ = report_file
    shot = tmp_path_factory.mktemp("shot") / "report.png"
    result = browser.load_page(path, screenshot=shot, evaluate=_HOVER)
    keep = os.environ.get("LANDSCAPE_REPORT_SHOT")
    if keep:
        shutil.copyfile(shot, keep)
    return result


@pytest.mark.browser
def test_page_loads_without_errors_or_network(loaded):
    assert loaded.problems == [], "\n".join(loaded.problems + loaded.console)
    assert loaded.title == "Report on 2 training runs"


@pytest.mark.browser
def test_every_figure_is_drawn(loaded, report_file):
    report, _, _ = report_file
    figures = report.figures()
    assert len(loaded.plots) == len(figures) == 3
    for plot, fig in zip(loaded.plots, figures):
        assert plot["mainSvg"] >= 1, plot
        assert plot["dataTraces"] == len(fig.data), plot
        assert plot["drawnTraces"] == len(fig.data) > 0, plot
        assert plot["width"] > 600 and plot["height"] >= 300, plot


@pytest.mark.browser
def test_hover_shows_run_step_epoch_and_value(loaded):
    loss, accuracy, lr = loaded.evaluated
    # first run, train loss, point 1: iteration 200, as iteration 0 (NaN) was dropped
    assert "lenet_300_100-mnist-s0" in loss and "train (running avg) loss:" in loss
    assert "iteration 200" in loss and "epoch 0.22" in loss
    assert "train (running avg) accuracy:" in accuracy and "%" in accuracy
    assert "learning rate: 0.1iteration 100epoch 0.11" in lr


@pytest.mark.browser
def test_screenshot_is_a_png(loaded):
    data = loaded.screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


@pytest.mark.browser
def test_evil_name_runs_no_script_in_the_browser(tmp_path):
    if browser.chromium_path() is None:
        pytest.skip(browser.SKIP_REASON)
    run = _runs()[1]
    run.name = "<img src=x onerror=alert(2)>" + EVIL
    path = write_report(build_report([run]), tmp_path / "evil.html")
    result = browser.load_page(path, evaluate="document.querySelector('h1').textContent")
    assert result.dialogs == [] and result.problems == [], result.problems
    assert result.evaluated == "Report on a training run: " + run.name
    assert len(result.plots) == 3


@pytest.mark.browser
def test_harness_catches_what_it_should(tmp_path):
    """The checks above mean something: a page with each kind of problem is reported."""
    if browser.chromium_path() is None:
        pytest.skip(browser.SKIP_REASON)
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><head><title>bad</title></head><body>"
                    "<img src='http://127.0.0.1:9/x.png'>"
                    "<script>console.error('boom'); alert('hi');</script>"
                    "<script>throw new Error('uncaught');</script>"
                    "<div class='js-plotly-plot'></div></body></html>")
    result = browser.load_page(page, timeout=10, draw_timeout=0.5)
    assert result.console_errors == ["boom"]
    assert any("uncaught" in e for e in result.exceptions)
    assert result.dialogs == ["alert: hi"]
    assert result.network == ["http://127.0.0.1:9/x.png"]
    assert result.plots == [{"id": "", "mainSvg": 0, "drawnTraces": 0, "dataTraces": 0,
                             "width": result.plots[0]["width"], "height": 0}]
