"""Reports on difficulty scores (kind "scores") and data-diet pre-training (kind "diet").

A store is written with RunWriter exactly as the API lays these runs out: a scores run over 200
training examples in 10 classes, two diet runs (an easy subset by those scores, followed by IMP;
a random subset, whose IMP run is only found through its "pretrained" runs), IMP runs to compare
them with (θ0, a full-data rewind, and two that must be left out: another pruning rate and a
transferred ticket), their member training runs, and LMC runs spawned from some rewind points.
Every accuracy is a known number, so the figures' values are checked, not only their presence.
"""
from __future__ import annotations

from pathlib import Path

import browser  # tests/browser.py: pytest puts this directory on sys.path (no __init__.py here)
import numpy as np
import pytest

from landscape.report import build_report, write_report
from landscape.report import scores as scores_report
from landscape.report.framework import plotly_text
from landscape.store import Store

EVIL = "<b>x</b>"
N, CLASSES, PER_CLASS_GALLERY = 200, 10, 2
CLASS_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "<i>7</i>", "eight", "nine"]
TRAIN = {"model": {"name": "lenet_300_100", "init": "kaiming_normal", "width": 1.0},
         "data": {"dataset": "mnist", "val_size": 20, "split_seed": 0, "augment": "none", "adapt": None},
         "optim": {"optimizer": "sgd", "lr": 0.1, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0,
                   "schedule": "constant", "milestones": [], "gamma": 0.1, "warmup": "0it"},
         "steps": "2ep", "batch_size": 16, "seeds": {"init": 0, "data_order": 0, "augment": 0},
         "checkpoint_at": ["0", "end"], "eval_every": "1ep", "start": None, "mask": None, "reinit": None}
PRUNE = {"fraction": 0.2, "scope": "layerwise", "criterion": "magnitude", "overrides": [], "exclude": []}
KEPT = {0: None, 1: ([80, 16], 0.8), 2: ([64, 13], 0.64)}
THETA0, REWIND = "θ0 (no pre-training)", "rewind to 500it, full data"
EASY, RANDOM = "easy subset (50 = 25%), 500it", "random subset (40 = 20%), 500it"


def _early(base: float, level: int, replicate: int) -> float:
    return base + 0.01 * level + 0.002 * replicate  # mean over 2 replicates: base + 0.01 level + 0.001


# --------------------------------------------------------------------------------------------
# Writing the store
# --------------------------------------------------------------------------------------------

def _run(store: Store, run_id: str, name: str, kind: str, config: dict, *, sections=(), plan=None,
         metrics=None) -> None:
    with store.writer(run_id) as writer:
        writer.create(name=name, kind=kind, config=config, environment={}, plan=plan)
        for path, attrs, arrays in sections:
            writer.write_section(path, attrs=attrs, arrays=arrays)
        writer.finish(curves={}, metrics=metrics or {})


def _imp(store: Store, run_id: str, base: float, *, rewind: str = "0it", step: int = 0, prune=PRUNE,
         checkpoint_at=("0", "end"), **extra) -> None:
    sections = []
    for level in range(3):
        ids = [f"{run_id}-L{level}-r{r}" for r in range(2)]
        for r, member in enumerate(ids):
            early = _early(base, level, r)
            _run(store, member, member, "train", {"member": member},
                 metrics={"min_val_loss/test/acc": early, "final/test/acc": early - 0.005,
                          "min_val_loss/step": 100 + level})
        if level == 0:
            sections.append(("levels/000", {"dense": ids, "ticket": ids, "density": 1.0}, None))
        else:
            kept, density = KEPT[level]
            sections.append((f"levels/{level:03d}", {"ticket": ids, "density": density, "layers": ["fc1", "fc2"],
                                                     "kept": kept, "total": [100, 20]}, None))
    config = {"train": {**TRAIN, "checkpoint_at": list(checkpoint_at)}, "prune": prune, "rewind": rewind,
              "controls": [], "replicates": 2, "ticket_from": None, **extra}
    _run(store, run_id, f"imp-{run_id}", "imp", config, sections=sections, plan={"rewind_step": step})


def _scores(store: Store) -> None:
    label = np.arange(N) % CLASSES
    score = np.arange(N) / N + 0.001 * label  # position i: harder the later
    per_run = score[None] + np.array([[-0.01], [0.0], [0.01]])
    rng = np.random.default_rng(0)
    gallery = {}
    for side, pick in (("easy", lambda ix: ix[:PER_CLASS_GALLERY]), ("hard", lambda ix: ix[::-1][:PER_CLASS_GALLERY])):
        index = np.concatenate([pick(np.flatnonzero(label == k)) for k in range(CLASSES)])
        gallery.update({f"{side}_x": rng.integers(0, 256, (len(index), 1, 8, 8), dtype=np.uint8),
                        f"{side}_index": index, f"{side}_label": label[index], f"{side}_score": score[index]})
    attrs = {"method": "el2n", "description": "Norm of the error vector early in training.", "higher_is_harder": True,
             "n_train": N, "classes": CLASS_NAMES, "members": []}
    _run(store, "scores000001", "el2n-scores", "scores",
         {"method": "el2n", "at": "300it", "runs": 3, "train": TRAIN},
         sections=[("scores", attrs, {"score": score, "per_run": per_run, "label": label}),
                   ("gallery", {}, gallery)], metrics={"time_s": 83.0})


def _diet(store: Store, run_id: str, name: str, order: str, size: int, pretrain: list[str], *,
          scores: str | None, imp: str | None, metrics: dict) -> np.ndarray:
    per_class = size // CLASSES
    label = np.arange(N) % CLASSES
    if order == "easy":  # scores grow with the position: the easiest of a class come first
        index = np.sort(np.concatenate([np.flatnonzero(label == k)[:per_class] for k in range(CLASSES)]))
    else:
        rng = np.random.default_rng(1)
        index = np.sort(np.concatenate([rng.choice(np.flatnonzero(label == k), per_class, replace=False)
                                        for k in range(CLASSES)]))
    spec = {"scores": scores, "order": order, "size": size, "offset": 0, "balanced": True, "seed": 0}
    attrs = {"order": order, "size": size, "offset": 0, "balanced": True, "scores": scores or "",
             "method": "el2n" if scores else "", "fraction": size / N, "n_train": N,
             "class_counts": [per_class] * CLASSES}
    sections = [("subset", attrs, {"index": index}), ("pretrain", {"runs": pretrain, "step": 500}, None)]
    if imp:
        sections.append(("imp", {"run": imp}, None))
    for i, run_id_ in enumerate(pretrain):
        _run(store, run_id_, run_id_, "train", {"pretrain": run_id_}, metrics={"final/val/acc": 0.4 + 0.02 * i})
    _run(store, run_id, name, "diet", {"subset": spec, "pretrain": TRAIN, "pretrain_steps": "500it",
                                       "replicates": len(pretrain)}, sections=sections, metrics=metrics)
    return index


def _lmc(store: Store, run_id: str, parent: str, step: int, connected: float | None) -> None:
    sections = [("lmc", {"parent_run": parent, "parent_step": step, "a_label": "A", "b_label": "B"}, None)]
    if connected is not None:
        sections.append(("per_example", {"threshold": 0.0, "connected_fraction": connected},
                         {"barrier": np.zeros(N), "index": np.arange(N)}))
    _run(store, run_id, run_id, "lmc", {"a": parent, "b": parent}, sections=sections)


def _build(root: Path, *, full: bool = True) -> dict:
    """The store described at the top; without `full`, only what diet-random needs, no LMC."""
    store = Store(root)
    _scores(store)
    easy = _diet(store, "diet00000001", EVIL, "easy", 50, ["preA-r0", "preA-r1"], scores="scores000001",
                 imp="impdietA0001", metrics={"pretrain/final/val/acc": 0.5})
    rand = _diet(store, "diet00000002", "diet-random", "random", 40, ["preB-r0", "preB-r1"], scores=None, imp=None,
                 metrics={})
    # As the API writes them: the rewind step is where the pre-training ended.
    _imp(store, "impdietB0001", 0.93, rewind="500it", step=500, pretrained=["preB-r0", "preB-r1"])
    if full:
        _imp(store, "imptheta0001", 0.90)
        _imp(store, "imprewind500", 0.92, rewind="500it", step=500, checkpoint_at=("0", "500it", "end"))
        _imp(store, "impdietA0001", 0.94, rewind="500it", step=500, pretrained=["preA-r0", "preA-r1"])
        _imp(store, "impother0001", 0.50, prune={**PRUNE, "fraction": 0.5})  # not comparable: other pruning
        _imp(store, "imptransfer1", 0.60, ticket_from={"run": "imptheta0001", "level": 1, "output": "pruned"})
        _lmc(store, "lmc-preA-1", "preA-r0", 500, 0.8)
        _lmc(store, "lmc-preA-2", "preA-r0", 500, 0.9)
        _lmc(store, "lmc-theta0", "imptheta0001-L0-r0", 0, 0.3)
        _lmc(store, "lmc-rewind-nope", "imprewind500-L0-r0", 500, None)  # no per-example barriers
        _lmc(store, "lmc-elsewhere", "imprewind500-L0-r0", 400, 0.5)  # not a rewind point
    return {"store": store, "easy": easy, "random": rand}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    return _build(tmp_path_factory.mktemp("diet") / "store")


def _open(built, *ids):
    return [built["store"].open(i) for i in ids]


@pytest.fixture(scope="module")
def diets(built):
    return build_report(_open(built, "diet00000001", "diet00000002"))


@pytest.fixture(scope="module")
def mixed(built, tmp_path_factory):
    report = build_report(_open(built, "scores000001", "diet00000001", "diet00000002"))
    path = write_report(report, tmp_path_factory.mktemp("page") / "diet.html")
    return report, path, path.read_text(encoding="utf-8")


def _figure(report, title_start: str):
    matches = [f for f in report.figures() if (f.layout.title.text or "").startswith(title_start)]
    assert matches, [f.layout.title.text for f in report.figures()]
    return matches


# --------------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------------

def test_scores_report(built):
    report = build_report(_open(built, "scores000001"))
    assert [s.title for s in report.sections] == ["Example difficulty scores", "Scores: el2n-scores"]
    overview = report.sections[0].items[0]
    (row,) = overview.rows
    score = np.arange(N) / N + 0.001 * (np.arange(N) % CLASSES)
    assert row[:6] == ["el2n-scores", "el2n", "300it", 3, "200", 10]
    assert row[6] == f"{score.mean():.4g}" and row[7] == f"{np.median(score):.4g}"
    assert row[9] == "1" and row[10] == "1 min 23 s"  # the runs rank alike; 83 s
    assert "Norm of the error vector" in report.sections[0].intro
    distribution, gallery = report.sections[1].items
    (boxes,) = distribution.data
    assert list(boxes.customdata) == [N // CLASSES] * CLASSES
    assert boxes.x[7] == plotly_text("<i>7</i>")
    # class 3 holds positions 3, 13, ..., 193: its median is the mean of positions 93 and 103
    assert boxes.median[3] == pytest.approx((93 + 103) / 2 / N + 0.003)
    assert [t.type for t in gallery.data] == ["image", "scatter", "image", "scatter"]
    assert gallery.data[0].source.startswith("data:image/png;base64,")


def test_gallery_grid_and_greyscale():
    grey = np.arange(4 * 8 * 8, dtype=np.uint8).reshape(4, 1, 8, 8)
    rgb = scores_report.to_rgb(grey)
    assert rgb.shape == (4, 8, 8, 3) and (rgb[..., 0] == rgb[..., 2]).all() and (rgb[..., 1] == grey[:, 0]).all()
    colour = np.zeros((3, 3, 16, 16), dtype=np.uint8)
    colour[:, 0] = 200
    grid = scores_report.compose_grid(colour, np.array([4, 4, 9]), framed=np.array([True, False, False]))
    assert grid.rows == [4, 9] and len(grid.row_centres) == 2
    tile = 32 + scores_report.GAP  # 16 px images are enlarged to 32
    assert grid.image.shape == (scores_report.GAP + 2 * tile, scores_report.GAP + 2 * tile, 3)
    x, y = grid.centres[1].astype(int)
    assert tuple(grid.image[y, x]) == (200, 0, 0)  # the second class-4 image sits beside the first
    top = scores_report.GAP
    assert tuple(grid.image[top - 1, top]) == scores_report.FRAME_COLOUR  # only the first is framed
    assert tuple(grid.image[top - 1, top + tile]) == (255, 255, 255)


# --------------------------------------------------------------------------------------------
# Diet
# --------------------------------------------------------------------------------------------

def test_diet_sections(diets):
    report = diets
    assert [s.title for s in report.sections] == [f"Data diet: {EVIL}", "Data diet: diet-random",
                                                 "Pre-training variants compared"]
    easy, rand, _ = report.sections
    table = dict(easy.items[0].rows)
    assert table["size"] == "50 (25% of 200)"
    assert table["scores"] == "el2n: el2n-scores (scores000001)"
    assert table["pre-training"] == "500it (500 iterations), 2 replicates"
    assert table["final val / test acc"] == "50.00% / —"  # from the diet run's metrics
    assert table["IMP after it"] == "imp-impdietA0001 (impdietA0001)"
    assert "easiest training examples by el2n" in easy.intro
    # the random subset: no scores, so the class counts; its accuracy is the mean of its pre-training runs
    table = dict(rand.items[0].rows)
    assert table["scores"] == "none (random order)" and table["final val / test acc"] == "41.00% / —"
    assert table["IMP after it"] == "imp-impdietB0001 (impdietB0001)"  # found by its "pretrained" runs
    (counts,) = rand.items[1].data
    assert counts.type == "bar" and list(counts.y) == [4] * CLASSES


def test_subset_is_highlighted(built, diets):
    distribution, gallery = diets.sections[0].items[1:]
    everyone, subset = distribution.data
    assert sum(everyone.customdata) == N and sum(subset.customdata) == len(built["easy"]) == 50
    assert list(subset.customdata) == [5] * CLASSES
    assert subset.name == plotly_text("subset (50)")
    # the subset is the 5 easiest of each class: the gallery's 2 easiest are framed, no hardest one is
    easy_hover, hard_hover = gallery.data[1].customdata, gallery.data[3].customdata
    assert all(row[3] == "<br>in the subset" for row in easy_hover)
    assert all(row[3] == "<br>not in the subset" for row in hard_hover)


def _traces(fig, label):
    group = [t for t in fig.data if t.name == plotly_text(label)]
    assert len(group) == 1, [t.name for t in fig.data]
    return group[0], [t for t in fig.data if t.legendgroup == group[0].legendgroup]


def test_comparison_has_every_comparable_variant_with_its_values(diets):
    section = diets.sections[-1]
    early, final = section.figures()[:2]
    names = [t.name for t in early.data if t.showlegend is not False]
    assert names == [plotly_text(n) for n in (THETA0, REWIND, EASY, RANDOM)]  # not the 0.5 / transferred runs
    for label, base in ((THETA0, 0.90), (REWIND, 0.92), (EASY, 0.94), (RANDOM, 0.93)):
        line, group = _traces(early, label)
        assert len(group) == 2  # the mean and its min-max band
        assert list(line.x) == pytest.approx([100, 80, 64])
        assert list(line.y) == pytest.approx([100 * (base + 0.01 * level + 0.001) for level in range(3)])
        band = next(t for t in group if t is not line)
        assert max(band.y) == pytest.approx(100 * (base + 0.022))  # highest replicate at level 2
        line, _ = _traces(final, label)
        assert line.y[1] == pytest.approx(100 * (base + 0.011 - 0.005))
    table = section.items[2]
    assert table.header == ["variant", "IMP run", "replicates", "100%", "80%", "64%"]
    assert [r[0] for r in table.rows] == [THETA0, REWIND, EASY, RANDOM]
    assert table.rows[0][3:] == ["90.10%", "91.10%", "92.10%"]
    assert table.rows[2][1] == "impdietA0001"  # the IMP run by ID: names are long


def test_connected_examples_per_rewind_point(diets):
    section = diets.sections[-1]
    (bars,) = section.figures()[2].data
    assert list(bars.y) == [plotly_text(THETA0), plotly_text(EASY)]  # nothing measured at the others
    assert list(bars.x) == pytest.approx([30, 85])
    assert list(bars.customdata[1][:3]) == pytest.approx([2, 80, 90])
    assert bars.error_x.visible is True
    assert "per-example barriers was spawned" not in section.intro


def test_no_lmc_says_so(tmp_path):
    built = _build(tmp_path / "store", full=False)
    report = build_report(_open(built, "diet00000002"))
    section = report.sections[-1]
    assert len(section.figures()) == 2  # the accuracy figures, no empty bar chart
    assert "No LMC run with per-example barriers was spawned" in section.intro


def test_run_data_is_escaped(mixed):
    _, _, page = mixed
    assert EVIL not in page and "<i>7</i>" not in page
    assert "Data diet: &lt;b&gt;x&lt;/b&gt;" in page  # the section title
    assert "&lt;b&gt;x&lt;\\u002fb&gt;" in page  # in plotly's JSON: shown literally
    assert "&lt;i&gt;7&lt;\\u002fi&gt;" in page


def test_mixed_report(mixed):
    report, _, page = mixed
    assert [s.title for s in report.sections] == [
        "Example difficulty scores", "Scores: el2n-scores", f"Data diet: {EVIL}", "Data diet: diet-random",
        "Pre-training variants compared"]
    assert page.count("Plotly.newPlot(") == len(report.figures()) == 2 + 2 + 1 + 3


# --------------------------------------------------------------------------------------------
# In a browser
# --------------------------------------------------------------------------------------------

# Every trace drawn, whatever its layer (scatter, box, bar, image), and every gallery picture
# decoded (an SVG <image> with a size).
_DRAWN = """
(() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => ({
  traces: gd.querySelectorAll('.scatterlayer .trace, .boxlayer .trace, .barlayer .trace, .imagelayer .im').length,
  images: Array.from(gd.querySelectorAll('.imagelayer image')).filter(i => i.getBBox().width > 50).length,
})))()
"""


@pytest.mark.browser
def test_page_loads_and_draws_every_plot(mixed):
    if browser.chromium_path() is None:
        pytest.skip(browser.SKIP_REASON)
    report, path, _ = mixed
    loaded = browser.load_page(path, evaluate=_DRAWN)
    assert loaded.problems == [], "\n".join(loaded.problems + loaded.console)
    figures = report.figures()
    assert len(loaded.plots) == len(figures)
    for plot, drawn, fig in zip(loaded.plots, loaded.evaluated, figures):
        assert plot["mainSvg"] >= 1 and plot["dataTraces"] == len(fig.data) > 0, plot
        assert drawn["traces"] == len(fig.data), (fig.layout.title.text, drawn)
        assert drawn["images"] == sum(t.type == "image" for t in fig.data), (fig.layout.title.text, drawn)
        assert plot["width"] > 600 and plot["height"] >= 300, plot
