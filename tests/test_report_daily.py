"""Report fixes of issue 12, checked where they matter: drawn in headless chromium (tests/browser.py).

An IMP run (2 levels, a reinit control) and one of its training runs in one report: the log axis of
weights remaining has a tick at every level, the dense network is a reference line, the per-layer
plot starts at level 0 with each layer visible when they overlap, a constant learning rate is drawn
at its value, and the title reads naturally.
"""
from __future__ import annotations

import pytest

import browser  # noqa: E402  (tests/browser.py)
import landscape as ls
from landscape.report import build_report, write_report

_DESCRIBE = """
(() => ({
  h1: document.querySelector('h1').textContent,
  plots: Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => ({
    title: (gd._fullLayout.title || {}).text || '',
    xticks: Array.from(gd.querySelectorAll('.xtick text')).map(n => n.textContent),
    yrange: gd._fullLayout.yaxis.range,
    shapes: (gd._fullLayout.shapes || []).length,
    annotations: (gd._fullLayout.annotations || []).map(a => a.text),
    traces: gd._fullData.map(t => ({name: t.name || '', x: Array.from(t.x || []), y: Array.from(t.y || []),
                               dash: (t.line || {}).dash || 'solid', mode: t.mode || ''})),
  })),
}))()
"""


@pytest.fixture(scope="module")
def imp_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report-daily")
    config = ls.recipe("lenet_300_100", "synthetic", steps="20it", eval_every="10it", width=0.25, batch_size=32)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LANDSCAPE_CACHE", str(root / "cache"))
        run = ls.imp(ls.ImpConfig(config, controls=("reinit",)), 2, store=root / "store", device="cpu")
    store = ls.Store(root / "store")
    member = store.open(run.section("levels/001")["ticket"][0])
    report = build_report([run, member])
    path = write_report(report, root / "r.html")
    return report, path, run, member


@pytest.fixture(scope="module")
def page(imp_report):
    if browser.chromium_path() is None:
        pytest.skip(browser.SKIP_REASON)
    _, path, _, _ = imp_report
    return browser.load_page(path, evaluate=_DESCRIBE)


def _plot(page, start: str) -> dict:
    return next(p for p in page.evaluated["plots"] if p["title"].startswith(start))


def test_title_reads_naturally(imp_report):
    report, _, _, _ = imp_report
    assert report.title == "Report on 2 runs: an IMP run and a training run"


@pytest.mark.browser
def test_page_is_clean(page):
    assert page.problems == [], "\n".join(page.problems)
    assert page.evaluated["h1"] == "Report on 2 runs: an IMP run and a training run"


@pytest.mark.browser
def test_weights_remaining_has_a_tick_at_every_level_and_the_dense_reference(page, imp_report):
    _, _, run, _ = imp_report
    remaining = sorted((100 * run.section(f"levels/{name}")["density"] for name in run.sections("levels")), reverse=True)
    assert [f"{r:.3g}" for r in remaining] == ["100", "80", "64"]
    for title in ("Test accuracy at early stopping", "Final test accuracy"):
        plot = _plot(page, title)
        assert [t for t in plot["xticks"] if t] == ["100", "80", "64"], plot["xticks"]
        assert plot["shapes"] == 1 and any(a.startswith("dense network: ") for a in plot["annotations"])


@pytest.mark.browser
def test_per_layer_plot_starts_at_level_0_and_overlapping_layers_stay_visible(page):
    plot = _plot(page, "Weights remaining per layer")
    assert len(plot["traces"]) == 3
    for trace in plot["traces"]:
        assert trace["x"] == [0, 1, 2] and trace["y"][0] == 100 and "markers" in trace["mode"]
    # layerwise pruning at one rate: the lines coincide, so each has its own dash
    assert len({t["dash"] for t in plot["traces"]}) == 3


@pytest.mark.browser
def test_constant_learning_rate_is_drawn_at_its_value(page, imp_report):
    _, _, _, member = imp_report
    plot = _plot(page, "Learning rate")
    lr = member.config["optim"]["lr"]
    assert {v for t in plot["traces"] for v in t["y"]} == {lr}
    low, high = plot["yrange"]
    assert low == 0 and lr < high < 1.5 * lr
