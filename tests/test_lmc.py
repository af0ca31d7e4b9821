"""Linear mode connectivity wired into the store and the command line: siblings, `landscape lmc`,
`landscape instability` (with the find-onset bisection), references, reuse, bad input, the report.

Everything runs on the synthetic dataset with a few dozen iterations; the commands run in-process
(`run_guarded`, as `landscape` does) so that no test pays for a fresh interpreter and torch import.
"""
from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path

import pytest
import torch
import typer

sys.path.insert(0, str(Path(__file__).resolve().parent))
import browser  # noqa: E402  (tests/browser.py)

from landscape.api import train  # noqa: E402
from landscape.api import instability as I  # noqa: E402
from landscape.api import lmc as L  # noqa: E402
from landscape.api import refs as R  # noqa: E402
from landscape.api import siblings as S  # noqa: E402
from landscape.cli.errors import run_guarded  # noqa: E402
from landscape.cli.main import app  # noqa: E402
from landscape.errors import ConfigError, StoreError  # noqa: E402
from landscape.store import Store  # noqa: E402
from landscape.train.config import Seeds, recipe  # noqa: E402

STEPS = "0,5it,10it,15it,20it,25it,30it,end"  # 40 iterations in all


def small(model: str = "lenet_300_100", dataset: str = "synthetic", **overrides):
    values = dict(steps="40it", batch_size=32, optimizer="sgd", lr=0.1, eval_every="40it", checkpoint_at=STEPS)
    return recipe(model, dataset, **{**values, **overrides})


def cli(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run_guarded(typer.main.get_command(app), list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.glob("*.h5"))}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A parent with checkpoints every 5 iterations, and runs that do not match it."""
    root = tmp_path_factory.mktemp("lmc") / "store"
    train(small(), store=str(root), name="parent")
    train(small(width=0.5, steps="5it", checkpoint_at="end"), store=str(root), name="narrow")
    train(small(adapt="1x16x16", steps="5it", checkpoint_at="end"), store=str(root), name="bigger")
    train(small(seed=7), store=str(root), name="replicate")
    return root


@pytest.mark.parametrize("command", ["siblings", "lmc", "instability"])
def test_every_command_has_help_with_examples_and_the_reference_syntax(capsys, command):
    code, out, _ = cli(capsys, command, "--help")
    assert code == 0 and "Examples" in out and f"landscape {command}" in out and "IMP@L" in out


# ------------------------------------------------------------------------------------------------
# Siblings
# ------------------------------------------------------------------------------------------------

def test_siblings_start_from_the_checkpoint_and_differ_only_in_their_noise(store, tmp_path):
    s = Store(store)
    parent = s.open("parent")
    kids = S.siblings("parent:10it", 2, store=str(store))
    assert [k.parent for k in kids] == [parent.id, parent.id] and all(k.complete for k in kids)
    start = parent.checkpoint(10)
    for kid in kids:
        begin = kid.checkpoint(10)  # the starting point is stored with the sibling
        assert all(torch.equal(begin.model[n], start.model[n]) for n in start.model)
        assert kid.config["start"] == {"run": parent.id, "step": 10, "with_optimizer": True, "fresh": []}
    a, b = (dict(k.config) for k in kids)
    assert a["seeds"]["init"] == b["seeds"]["init"] == parent.config["seeds"]["init"]
    assert a["seeds"]["data_order"] != b["seeds"]["data_order"] and a["seeds"]["augment"] != b["seeds"]["augment"]
    assert {**a, "seeds": None} == {**b, "seeds": None}  # nothing else differs
    assert {k: v for k, v in a.items() if k not in ("seeds", "start", "checkpoint_at")} == \
        {k: v for k, v in parent.config.items() if k not in ("seeds", "start", "checkpoint_at")}
    end_a, end_b = kids[0].checkpoint(40).model, kids[1].checkpoint(40).model
    assert any(not torch.equal(end_a[n], end_b[n]) for n in end_a)  # different noise, different result

    # The same seeds give the same network: sibling 0 again, trained alone in another store.
    other = tmp_path / "other"
    other.mkdir()
    for file in parent.files:  # the run file and its part files (the weights)
        (other / file.relative_to(parent.path.parent)).parent.mkdir(exist_ok=True)
        shutil.copy(file, other / file.relative_to(parent.path.parent))
    plan = S.plan_siblings(Store(other), "parent:10it", 2)
    [again] = train([plan.configs[0]], store=str(other), masks=[plan.mask])
    assert again.id == kids[0].id
    assert all(torch.equal(again.checkpoint(40).model[n], end_a[n]) for n in end_a)


def test_sibling_seeds_are_their_own():
    base = Seeds(init=3, data_order=3, augment=3)
    seeds = [S.sibling_seeds(base, i) for i in range(4)]
    assert len({s.data_order for s in seeds}) == 4 and len({s.augment for s in seeds}) == 4
    assert all(s.init == 3 and s.data_order != 3 for s in seeds)


# ------------------------------------------------------------------------------------------------
# `landscape lmc`
# ------------------------------------------------------------------------------------------------

def test_a_run_against_itself_has_barrier_exactly_zero(store, capsys):
    code, out, err = cli(capsys, "lmc", "--run-a", "parent", "--run-b", "parent:end", "--points", "5",
                         "--per-example", "--store", str(store))
    assert code == 0, err
    [run] = [r for r in Store(store).runs("lmc") if r.config["a"] == r.config["b"]]
    m = run.metrics
    for split in ("test", "train"):
        assert m[f"{split}/error_barrier"] == 0.0 and m[f"{split}/loss_barrier"] == 0.0
    assert m["distance/l2"] == 0.0 and m["distance/angular"] == 0.0 and m["distance/disagreement"] == 0.0
    assert m["per_example/connected_fraction"] == 1.0
    assert run.arrays("per_example")["barrier"].max() == 0.0
    assert run.curves["alpha"].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert "error barrier" in out and "stable" in out and run.id in out


def test_lmc_between_siblings_stores_curves_barriers_distances(store, capsys):
    kids = S.siblings("parent:10it", 2, store=str(store))
    code, out, err = cli(capsys, "lmc", "--run-a", kids[0].id, "--run-b", f"{kids[1].id}:end", "--points", "6",
                         "--train-subset", "300", "--per-example", "--store", str(store))
    assert code == 0, err
    run = L.lmc(kids[0].id, kids[1].id, store=str(store), points=6, train_subset=300, per_example=True)
    assert run.kind == "lmc" and run.complete
    info, m = run.section("lmc"), run.metrics
    assert (info["num_train"], info["train_total"], info["num_test"]) == (300, 1800, 500)
    assert info["bn_recompute"] is False and info["mask_mode"] == "none"
    assert (info["parent_run"], info["parent_step"]) == (kids[0].parent, 10)  # the spawn point
    for split in ("test", "train"):
        error = run.curves[f"{split}/error"]
        assert len(error) == 6
        assert m[f"{split}/error_barrier"] == pytest.approx(error.max() - (error[0] + error[-1]) / 2)
        assert m[f"{split}/error_barrier"] >= 0
    assert 0 < m["distance/angular"] < 2 and m["distance/l2"] > 0 and m["distance/l2_normalized"] > 0
    assert 0 <= m["distance/disagreement"] <= 1 and m["distance/mask_jaccard"] is None
    barriers = run.arrays("per_example")["barrier"]
    assert barriers.shape == (300,) and (barriers >= 0).all()
    threshold = L.LmcSettings().example_threshold
    assert run.section("per_example")["threshold"] == threshold
    assert m["per_example/connected_fraction"] == pytest.approx(float((barriers <= threshold).mean()))
    assert "disagreement" in out and "angular" in out and "linearly connected" in out


def test_unrelated_replicates_have_no_common_parent(store):
    run = L.lmc("parent", "replicate", store=str(store), points=3)
    assert run.section("lmc")["parent_run"] == "" and run.metrics["distance/l2_normalized"] is None
    assert 0.5 < run.metrics["distance/angular"] < 1.5  # independent inits: about orthogonal (1)


def test_rerunning_the_same_request_reuses_the_stored_result(store, capsys):
    args = ["lmc", "--run-a", "parent:20it", "--run-b", "parent:30it", "--points", "4", "--store", str(store)]
    assert cli(capsys, *args)[0] == 0
    [run] = [r for r in Store(store).runs("lmc")
             if (r.config["a"]["step"], r.config["b"]["step"], r.config["points"]) == (20, 30, 4)]
    before = run.path.stat().st_mtime_ns, run.path.read_bytes()
    parent_id = Store(store).resolve("parent")
    # the same request spelled differently: an ID prefix, iterations written out
    code, out, _ = cli(capsys, "lmc", "--run-a", f"{parent_id[:6]}:20", "--run-b", f"{parent_id}:30it",
                       "--points", "4", "--store", str(store))
    assert code == 0 and run.id in out
    assert (run.path.stat().st_mtime_ns, run.path.read_bytes()) == before
    # a different request is a different run
    assert L.lmc("parent:20it", "parent:30it", store=str(store), points=5).id != run.id


def test_batchnorm_statistics_are_recomputed_by_default_and_recorded(tmp_path):
    root = str(tmp_path / "bn")
    config = small("resnet20", "synthetic-rgb", width=0.25, steps="4it", checkpoint_at="0,end", augment="none",
                   schedule="constant")  # the recipe's milestones (80ep, 120ep) lie past 4it
    [net] = train(config, store=root, name="bn")
    on = L.lmc("bn:0", "bn", store=root, points=3, train_subset=100, batch_size=50, bn_batches=2)
    off = L.lmc("bn:0", "bn", store=root, points=3, train_subset=100, batch_size=50, bn_batches=2,
                bn_recompute=False)
    assert on.section("lmc")["bn_recompute"] is True and on.section("lmc")["bn_examples"] == 100
    assert off.section("lmc")["bn_recompute"] is False and off.section("lmc")["bn_recompute_requested"] is False
    assert on.id != off.id
    assert all(math.isfinite(v) for r in (on, off) for v in r.curves["test/loss"])


# ------------------------------------------------------------------------------------------------
# References
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def imp_store(tmp_path_factory) -> Path:
    from landscape.api.imp import imp
    from landscape.imp import ImpConfig

    root = tmp_path_factory.mktemp("imp") / "store"
    imp(ImpConfig(train=small(steps="20it", checkpoint_at="0,end"), rewind="5it"), 1, store=str(root), name="imp")
    return root


def test_references_resolve(store, imp_store):
    s = Store(store)
    parent = s.open("parent")
    assert R.resolve_endpoint(s, "parent").canonical == f"{parent.id}:40it"
    assert R.resolve_endpoint(s, f"{parent.id[:5]}:15it").canonical == f"{parent.id}:15it"
    assert R.resolve_endpoint(s, "parent:end").step == 40
    assert R.resolve_endpoint(s, "parent:15").step_given

    s = Store(imp_store)
    imp = s.open("imp")
    levels = {n: imp.section(f"levels/{n}") for n in imp.sections("levels")}
    ticket = R.resolve_endpoint(s, "imp@1")
    assert ticket.run.id == levels["001"]["ticket"][0] and ticket.step == 20 and ticket.level == 1
    assert R.resolve_endpoint(s, "imp@1/r0:end").canonical == ticket.canonical
    assert R.resolve_endpoint(s, "imp@1:5it").step == 5
    assert R.resolve_endpoint(s, "imp@0").run.id == levels["000"]["dense"][0]
    for bad, error in [("imp", ConfigError), ("imp@2", StoreError), ("imp@1/r1", StoreError),
                       ("imp@1/reinit", StoreError), ("imp@1/x", ConfigError), ("imp@1:7it", StoreError),
                       ("nope", StoreError), ("imp@0@1", StoreError)]:
        with pytest.raises(error):
            R.resolve_endpoint(s, bad)


def test_imp_levels_interpolate_with_their_masks_and_spawn_from_the_rewind_point(imp_store):
    s = Store(imp_store)
    run = L.lmc("imp@1", "imp@0", store=str(imp_store), points=3)
    info, m = run.section("lmc"), run.metrics
    assert info["mask_mode"] == "union" and "different masks" in info["mask_note"]
    assert m["distance/mask_jaccard"] == pytest.approx(m["distance/density_a"]) and m["distance/density_b"] == 1.0
    dense = R.resolve_endpoint(s, "imp@0").run
    assert (info["parent_run"], info["parent_step"]) == (dense.id, 5)  # the rewind point
    assert run.section("masks")["layers"] == list(s.open(info["a_run"]).mask())

    plan = S.plan_siblings(s, "imp@1", 2)
    ticket = R.resolve_endpoint(s, "imp@1").run
    assert plan.step == 5 and plan.parent == dense.id
    assert all(torch.equal(plan.mask[n], ticket.mask()[n]) for n in plan.mask)
    assert all(c.mask == ticket.config["mask"] for c in plan.configs)
    with pytest.raises(ConfigError):
        S.plan_siblings(s, dense.id, 2)  # a plain run needs a step


# ------------------------------------------------------------------------------------------------
# Bad input: one line, exit 2, nothing written
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["lmc", "--run-a", "parent", "--run-b", "narrow"], "different architectures"),
    (["lmc", "--run-a", "parent", "--run-b", "bigger"], "different input shapes"),
    (["lmc", "--run-a", "parent:7it", "--run-b", "parent"], "no checkpoint at 7it"),
    (["lmc", "--run-a", "parent", "--run-b", "parent:99it"], "no checkpoint at 99it"),
    (["lmc", "--run-a", "parent", "--run-b", "parent:10it", "--points", "1"], "at least 2 points"),
    (["lmc", "--run-a", "nope", "--run-b", "parent"], "no run 'nope'"),
    (["lmc", "--run-a", "parent", "--run-b", "parent:10it", "--train-subset", "99999"], "more than the 1800"),
    (["lmc", "--run-a", "parent@1", "--run-b", "parent"], "names a level of an IMP run"),
    (["siblings", "--from", "parent", "-k", "2"], "say which checkpoint"),
    (["siblings", "--from", "parent:10it", "-k", "1"], "at least 2 siblings"),
    (["siblings", "--from", "parent:end"], "nothing to train"),
    (["instability", "--run", "parent", "--at", "0,7it"], "no checkpoint at 7it"),
    (["instability", "--run", "parent", "--at", "end"], "nothing to train"),
    (["instability", "--run", "missing", "--at", "0"], "no run 'missing'"),
    (["instability", "--run", "parent", "--siblings", "1"], "at least 2 siblings"),
    (["instability", "--run", "parent", "--points", "0"], "at least 2 points"),
])
def test_bad_input_is_one_line_exit_2_and_the_store_unchanged(store, capsys, args, message):
    before = snapshot(store)
    code, out, err = cli(capsys, *args, "--store", str(store))
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], err
    assert snapshot(store) == before


# ------------------------------------------------------------------------------------------------
# Instability
# ------------------------------------------------------------------------------------------------

def test_instability_stores_barrier_against_the_spawn_step(store, capsys):
    code, out, err = cli(capsys, "instability", "--run", "parent", "--at", "0,20it", "--siblings", "2",
                         "--points", "4", "--store", str(store))
    assert code == 0, err
    [run] = Store(store).runs("instability")
    assert run.curves["step"].tolist() == [0.0, 20.0]
    assert len(run.curves["test/error_barrier/mean"]) == 2 and len(run.curves["train/loss_barrier/max"]) == 2
    points = I.read_points(run)
    s = Store(store)
    for point in points:
        assert len(point.siblings) == 2 and point.pairs == [[0, 1]] and len(point.lmc) == 1
        kids = [s.open(i) for i in point.siblings]
        assert all(k.parent == run.parent and k.config["start"]["step"] == point.step for k in kids)
        assert s.open(point.lmc[0]).metrics["test/error_barrier"] == point.barriers["test/error"][0]
    assert "k" in out and "onset of stability" in out


def test_bisection_finds_the_earliest_stable_step_with_few_measurements():
    for n in range(0, 12):
        candidates = list(range(0, 10 * n, 10))
        for onset in range(n + 1):
            calls = []

            def stable(k):
                calls.append(k)
                return k >= 10 * onset

            found, tested = I.bisect_onset(candidates, stable)
            assert found == (candidates[onset] if onset < n else None)
            assert tested == calls and len(calls) <= math.ceil(math.log2(n + 1))


def test_find_onset_trains_fewer_sibling_sets_than_a_scan(store, capsys, monkeypatch):
    """A constructed case: the sibling sets are really trained and interpolated, but their measured
    barriers are replaced by a table in which the network becomes stable at 15it."""
    real = I._measure_point
    constructed = {0: 0.30, 5: 0.20, 10: 0.05, 15: 0.01, 20: 0.012, 25: 0.005, 30: 0.0}

    def measure(ctx, k):
        point = real(ctx, k)
        point.barriers["test/error"] = [constructed[k]] * len(point.pairs)
        return point

    monkeypatch.setattr(I, "_measure_point", measure)
    code, out, err = cli(capsys, "instability", "--run", "parent", "--find-onset", "--threshold", "0.02",
                         "--points", "3", "--name", "onset", "--store", str(store))
    assert code == 0, err
    run = Store(store).open("onset")
    summary = run.section("summary")
    candidates = [0, 5, 10, 15, 20, 25, 30]  # every stored checkpoint before the end
    assert summary["candidates"] == candidates and summary["method"] == "bisection"
    assert summary["onset"] == 15 and run.metrics["onset"] == 15
    assert len(set(summary["tested"])) == summary["sibling_sets_measured"] == 3 < len(candidates)
    spawned = {r.config["start"]["step"] for r in Store(store).runs("train")
               if r.config.get("start") and r.parent == run.parent}
    assert set(summary["tested"]) <= spawned and not spawned & {25, 30}  # never trained there
    assert "stable from k = 15it" in out and "bisection measured 3 of 7" in out


# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------

@pytest.mark.browser
def test_the_report_renders_in_the_browser(store, tmp_path, capsys):
    if browser.chromium_path() is None:
        pytest.skip(browser.SKIP_REASON)
    from landscape.report import build_report, write_report

    s = Store(store)
    kids = S.siblings("parent:10it", 2, store=str(store))
    runs = [L.lmc(kids[0].id, kids[1].id, store=str(store), points=6, train_subset=300, per_example=True),
            L.lmc("parent", "replicate", store=str(store), points=3)]
    runs += s.runs("instability") or [I.instability("parent", ["0", "20it"], points=4, store=str(store))]
    report = build_report(runs)
    titles = [section.title for section in report.sections]
    assert "Linear mode connectivity" in titles and "Per-example barriers" in titles
    assert any(t.startswith("Instability") for t in titles)
    path = write_report(report, tmp_path / "lmc.html")
    result = browser.load_page(path, screenshot=tmp_path / "lmc.png")
    assert result.problems == [], "\n".join(result.problems + result.console)
    assert len(result.plots) == len(report.figures()) >= 5
    assert all(plot["mainSvg"] >= 1 and plot["dataTraces"] > 0 for plot in result.plots)


def test_cpu_alpha_chunks_keep_one_activation_tensor_small():
    """On the CPU a pass's activations must stay below CPU_ACTIVATION_BYTES (past it, every layer pays
    page faults and batching over α becomes slower than one α at a time); small ones batch fully."""
    from landscape.batched.chunking import CPU_ACTIVATION_BYTES, auto_alpha_chunk, largest_activation
    from landscape.models import build_model

    mlp = build_model("lenet_300_100", (1, 8, 8), 10, seed=0)
    x = torch.zeros(500, 1, 8, 8)
    assert auto_alpha_chunk(mlp, mlp.state_dict(), x, 500, 30) == 30
    conv = build_model("conv2", (3, 32, 32), 10, seed=0, width=0.25)
    x = torch.zeros(1000, 3, 32, 32)
    per_alpha = largest_activation(conv, x[:1]) * 1000 * 4
    chunk = auto_alpha_chunk(conv, conv.state_dict(), x, 1000, 30)
    assert chunk == max(1, CPU_ACTIVATION_BYTES // per_alpha) < 30
    assert auto_alpha_chunk(conv, conv.state_dict(), x, 100, 30) > chunk  # smaller batches share a pass
