"""`landscape align` and `landscape lmc --align` on stored networks: aligned runs are networks that
compute B's function, usable as references; before/after in one command; bad input refused.

Runs on the synthetic dataset with a few dozen iterations; commands run in-process (`run_guarded`).
"""
from __future__ import annotations

import json

import pytest
import torch
import typer

from landscape.api import train
from landscape.api import align as A
from landscape.api import lmc as L
from landscape.api.imp import imp
from landscape.api.refs import resolve_endpoint
from landscape.cli.errors import run_guarded
from landscape.cli.main import app
from landscape.imp import ImpConfig, PruneConfig
from landscape.models import build_model
from landscape.store import Store
from landscape.train.config import recipe


def small(model: str = "lenet_300_100", **overrides):
    # A constant rate: the VGG and ResNet recipes' milestones (80ep, 120ep) lie past 40 iterations.
    values = dict(steps="40it", batch_size=32, optimizer="sgd", lr=0.1, eval_every="40it", schedule="constant")
    return recipe(model, "synthetic", **{**values, **overrides})


def cli(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run_guarded(typer.main.get_command(app), list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def files(root) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.glob("*.h5"))}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("align") / "store"
    train(small(), store=str(root), name="s0")
    train(small(seed=1), store=str(root), name="s1")
    train(small(width=0.5, steps="5it"), store=str(root), name="narrow")
    train(small("resnet20", width=0.25, steps="5it"), store=str(root), name="res0")
    train(small("resnet20", width=0.25, steps="5it", seed=1), store=str(root), name="res1")
    config = ImpConfig(train=small(steps="30it"), rewind="0", controls=(), replicates=2,
                       prune=PruneConfig(fraction=0.5))
    imp(config, 1, store=str(root), name="tickets")
    return root


def _outputs(endpoint, x):
    cfg = endpoint.config
    model = build_model(cfg.model.name, (1, 8, 8), 10, seed=0, width=cfg.model.width)
    state = endpoint.run.checkpoint(endpoint.step).model
    mask = endpoint.run.mask() or {}
    model.load_state_dict({k: v * mask[k] if k in mask else v for k, v in state.items()})
    with torch.no_grad():
        return model.eval()(x)


def test_an_aligned_run_is_b_permuted_and_a_network_reference(store):
    s = Store(store)
    run = A.align("tickets@1", "tickets@1/r1", store=str(store))
    assert run.kind == "aligned" and run.complete
    b = resolve_endpoint(s, "tickets@1/r1")
    assert run.parent == b.run.id
    perms = run.arrays("alignment/perms")
    assert set(perms) == {"fc1", "fc2"} and sorted(perms["fc1"].tolist()) == list(range(300))
    # π(B), mask included, computes exactly B's function...
    aligned = resolve_endpoint(s, run.id)
    x = torch.rand(64, 1, 8, 8)
    assert (_outputs(aligned, x) - _outputs(b, x)).abs().max() <= 1e-5
    assert aligned.run.mask() is not None and aligned.config.model.name == "lenet_300_100"
    # ...closer to A, with the masks' overlap reported before and after.
    m = run.metrics
    assert m["l2_after"] < m["l2_before"] and m["objective_after"] > m["objective_before"]
    assert 0 <= m["jaccard_before"] <= 1 and m["jaccard_after"] > m["jaccard_before"]
    # Asking again reuses it; it is an LMC endpoint.
    assert A.align("tickets@1", "tickets@1/r1", store=str(store)).id == run.id
    assert L.lmc("tickets@1", run.id, points=3, store=str(store)).complete


def test_aligning_a_network_to_itself_changes_nothing(store):
    run = A.align("s0", "s0", store=str(store), method="activations", examples=200)
    assert run.metrics["l2_after"] == 0.0
    assert all(p.tolist() == list(range(len(p))) for p in run.arrays("alignment/perms").values())


def test_lmc_align_measures_before_and_after_in_one_call(store, capsys):
    code, out, err = cli(capsys, "lmc", "--run-a", "s0", "--run-b", "s1", "--align", "weights", "--repair",
                         "--points", "5", "--train-subset", "300", "--store", str(store))
    assert code == 0, err
    assert "before" in out and "after (weights)" in out and "after + REPAIR" in out
    s = Store(store)
    result = s.runs("lmc_align")[-1]
    linked = A.comparison_runs(s, result)
    plain = L.lmc("s0", "s1", points=5, train_subset=300, store=str(store))
    assert linked["before"].id == plain.id  # the same LMC run a plain `landscape lmc` makes
    assert linked["repaired"].section("lmc")["repair"] and not linked["after"].section("lmc")["repair"]
    m = result.metrics
    assert m["after/distance/l2"] < m["before/distance/l2"]
    assert result.section("comparison")["correction"] == "repair"
    code, out, err = cli(capsys, "lmc", "--run-a", "s0", "--run-b", "s1", "--align", "weights", "--repair",
                         "--points", "5", "--train-subset", "300", "--store", str(store), "--json")
    assert code == 0 and json.loads(out)["id"] == result.id  # the stored comparison, one document


@pytest.mark.slow
def test_batchnorm_networks_use_the_recomputation_and_say_so(store, capsys):
    code, out, err = cli(capsys, "lmc", "--run-a", "res0", "--run-b", "res1", "--align", "weights", "--repair",
                         "--points", "3", "--train-subset", "200", "--bn-batches", "1", "--batch-size", "200", "--store", str(store))
    assert code == 0, err
    assert "recomputed at each α" in out and "after + REPAIR" not in out


@pytest.mark.slow  # trains two siblings
def test_instability_align_reports_barrier_vs_k_before_and_after(store, capsys):
    code, out, err = cli(capsys, "instability", "--run", "s0", "--at", "0", "--siblings", "2", "--points", "3",
                         "--train-subset", "200", "--align", "weights", "--store", str(store))
    assert code == 0, err
    assert "test error barrier before" in out and "0it" in out
    run = Store(store).runs("instability_align")[-1]
    assert run.curves["step"].tolist() == [0.0]
    # Siblings spawned at 0 share θ0 and barely move: weight matching keeps them as they are.
    point = run.section(f"points/{0:09d}")
    linked = A.comparison_runs(Store(store), Store(store).open(point["comparisons"][0]))
    assert point["after/test/loss"][0] == linked["after"].metrics["test/loss_barrier"]
    assert point["before/test/loss"][0] == linked["before"].metrics["test/loss_barrier"]
    assert linked["aligned"].metrics["l2_after"] <= linked["aligned"].metrics["l2_before"]
    code, out, err = cli(capsys, "report", run.id, point["comparisons"][0], linked["aligned"].id,
                         "--store", str(store), "--out", str(store.parent / "align.html"))
    assert code == 0, err
    html = (store.parent / "align.html").read_text()
    assert "Instability before and after alignment" in html and "before and after alignment" in html
    code, out, err = cli(capsys, "instability", "--run", "s0", "--at", "0", "--siblings", "2", "--points", "3",
                         "--train-subset", "200", "--align", "weights", "--store", str(store), "--json")
    assert code == 0 and json.loads(out)["id"] == run.id  # the aligned analysis, reused, one document


def test_align_help_and_json(store, capsys):
    code, out, _ = cli(capsys, "align", "--help")
    assert code == 0 and "Examples" in out and "landscape align --run-a" in out
    code, out, _ = cli(capsys, "align", "--run-a", "s0", "--run-b", "s1", "--json", "--store", str(store))
    assert code == 0 and '"l2_after"' in out


@pytest.mark.parametrize("args, message", [
    (["align", "--run-a", "s0", "--run-b", "narrow"], "different architectures"),
    (["align", "--run-a", "s0", "--run-b", "res0"], "different architectures"),
    (["align", "--run-a", "s0", "--run-b", "s1", "--method", "activations", "--examples", "0"], "--examples"),
    (["align", "--run-a", "s0", "--run-b", "s1", "--method", "bogus"], "not an alignment method"),
    (["lmc", "--run-a", "s0", "--run-b", "s1", "--repair"], "needs --align"),
    (["lmc", "--run-a", "res0", "--run-b", "res1", "--align", "weights", "--repair", "--no-bn-recompute"],
     "--no-bn-recompute"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(store, capsys, args, message):
    before = files(store)
    code, out, err = cli(capsys, *args, "--store", str(store))
    assert code == 2 and err.startswith("error:") and message in err and len(err.strip().splitlines()) == 1
    assert files(store) == before


def test_a_model_without_a_permutation_spec_is_refused_naming_what_to_declare(store, capsys, monkeypatch):
    from landscape.models.mlp import LeNet300100

    monkeypatch.delattr(LeNet300100, "permutation_spec")
    before = files(store)
    code, _, err = cli(capsys, "align", "--run-a", "s0", "--run-b", "s1", "--seed", "3", "--store", str(store))
    assert code == 2 and "declares no permutation spec" in err and "permutation_spec()" in err
    assert files(store) == before
