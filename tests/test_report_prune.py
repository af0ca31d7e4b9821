"""The method comparison: prune, IMP (each retraining mode) and GMP runs of one model and dataset on
one figure, found in the store automatically, with each network's cost in training iterations."""
import pytest

from landscape.api.gmp import gmp
from landscape.api.imp import imp
from landscape.api.prune import PruneInitConfig, prune
from landscape.imp import ImpConfig, PruneConfig
from landscape.report import build_report
from landscape.report.prune import gather
from landscape.store import Store
from landscape.train.config import GmpSpec, recipe

TRAIN = dict(steps="20it", batch_size=32, eval_every="20it", optimizer="sgd", lr=0.05, width=0.25)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("cmp"))
    config = recipe("lenet_300_100", "synthetic", **TRAIN)
    prune(PruneInitConfig(config, method="snip", controls=("reinit",), replicates=2), [0.2, 0.05],
          store=root, name="p-snip")
    imp(ImpConfig(train=config, prune=PruneConfig(fraction=0.5), controls=("reinit",)), 2, store=root, name="i-wr")
    imp(ImpConfig(train=config, prune=PruneConfig(fraction=0.5), controls=(), retrain="finetune",
                  retrain_steps="10it"), 1, store=root, name="i-ft")
    gmp(config, GmpSpec(0.1, start="5it", end="15it", every="5it"), store=root, name="g")
    other = recipe("lenet_300_100", "synthetic", **{**TRAIN, "width": 0.5})  # another width: not comparable
    prune(PruneInitConfig(other, method="random"), [0.5], store=root, name="p-other")
    return Store(root)


def test_every_comparable_run_is_one_curve_with_its_cost(store):
    curves, keys = gather([store.open("p-snip")])
    labels = {c.label: c for c in curves}
    assert keys == [("lenet_300_100", 0.25, "synthetic")]
    assert set(labels) == {"snip (global)", "snip reinit", "IMP, weight rewinding (i-wr)",
                           "IMP reinit control (i-wr)", "IMP, fine-tuning (i-ft)",
                           "GMP (global, prune 5it-15it every 5it)"}
    snip = labels["snip (global)"]
    assert sorted(snip.points) == pytest.approx([0.05, 0.2], abs=1e-3) and all(len(v) == 2 for v in snip.points.values())
    assert set(snip.cost.values()) == {20}
    wr, ft = labels["IMP, weight rewinding (i-wr)"], labels["IMP, fine-tuning (i-ft)"]
    assert [wr.cost[d] for d in sorted(wr.cost, reverse=True)] == [20, 40, 60]  # T + L x T, rewinding to 0
    assert [ft.cost[d] for d in sorted(ft.cost, reverse=True)] == [20, 30]  # T + L x R
    [g] = labels["GMP (global, prune 5it-15it every 5it)"].points
    assert g == pytest.approx(0.1, abs=1e-3)


def test_the_report_of_any_of_them_draws_one_comparison(store):
    for ref in ("p-snip", "i-ft"):
        report = build_report([store.open(ref)])
        [section] = [s for s in report.sections if s.title == "Pruning methods compared"]
        [fig] = section.figures()
        names = {t.name for t in fig.data if t.name}
        assert "snip reinit" in names and "IMP, fine-tuning (i-ft)" in names
        assert fig.layout.xaxis.type == "log"
    plain = build_report([store.open("i-wr")])  # IMP sections still come first
    assert plain.sections[0].title == "Winning tickets"
