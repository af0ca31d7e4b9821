"""Issue 9's science corrections, each tested against what the stored tensors say:
controls independent across seeds (2), scores and pre-training on the full schedule (1),
honest training metrics (3), provenance (4) and barriers that say where their maximum is (5)."""
from __future__ import annotations

import pytest
import torch

from landscape.api.imp import imp
from landscape.imp import ImpConfig, PruneConfig
from landscape.store import Store
from landscape.train.config import recipe


def _imp_config(seed: int, criterion: str = "magnitude", controls=("reinit", "random-prune")) -> ImpConfig:
    train = recipe("lenet_300_100", "synthetic", steps="20it", batch_size=32, eval_every="20it",
                   optimizer="sgd", lr=0.05, seed=seed)
    return ImpConfig(train=train, controls=controls, prune=PruneConfig(fraction=0.2, criterion=criterion))


def _level_one(store_dir, seed: int, **kwargs) -> dict:
    """The stored reinit weights at the start, random-prune mask and ticket mask of level 1."""
    run = imp(_imp_config(seed, **kwargs), 1, store=str(store_dir))
    store = Store(store_dir)
    record = run.section("levels/001")
    out = {"ticket_mask": store.open(record["ticket"][0]).mask()}
    if "reinit" in record:
        reinit = store.open(record["reinit"][0])
        out["reinit"] = reinit.checkpoint(reinit.checkpoint_steps[0]).model
        out["random_mask"] = store.open(record["random-prune"][0]).mask()
    return out


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- 2. controls are independent across seeds ----------------------------------------------------

def test_controls_differ_between_seeds_and_repeat_bit_for_bit(tmp_path):
    seed0 = _level_one(tmp_path / "a", 0)
    seed1 = _level_one(tmp_path / "b", 1)
    again = _level_one(tmp_path / "c", 0)  # the same command in a fresh store
    for name in ("fc1.weight", "fc2.weight", "fc3.weight"):
        assert not torch.equal(seed0["reinit"][name], seed1["reinit"][name]), name
        assert not torch.equal(seed0["random_mask"][name], seed1["random_mask"][name]), name
    assert _same(seed0["reinit"], again["reinit"])
    assert _same(seed0["random_mask"], again["random_mask"])


def test_random_criterion_differs_between_seeds(tmp_path):
    seed0 = _level_one(tmp_path / "a", 0, criterion="random", controls=())
    seed1 = _level_one(tmp_path / "b", 1, criterion="random", controls=())
    again = _level_one(tmp_path / "c", 0, criterion="random", controls=())
    assert not torch.equal(seed0["ticket_mask"]["fc1.weight"], seed1["ticket_mask"]["fc1.weight"])
    assert _same(seed0["ticket_mask"], again["ticket_mask"])


def test_only_imp_runs_with_random_draws_change_id():
    plain = _imp_config(0, controls=())
    assert "draws" not in plain.to_dict()
    assert _imp_config(0).to_dict()["draws"] == "run-seeds"


# -- 1. scores and pre-training are the first steps of the full schedule --------------------------

def _cosine(**overrides):
    return recipe("lenet_300_100", "synthetic", **{**dict(steps="60it", batch_size=32, eval_every="10it",
                  optimizer="sgd", lr=0.1, momentum=0.9, schedule="cosine"), **overrides})


def test_a_scoring_network_is_step_t_of_the_full_run(tmp_path):
    from landscape.api.train import train
    from landscape.diet import ScoresConfig
    from landscape.api.scores import scores

    run = scores(ScoresConfig(_cosine(), method="el2n", at="20it", runs=1), store=str(tmp_path))
    assert run.config["train"]["steps"] == "60it" and run.config["train"]["stop"] == "20it"
    assert run.config["at"] == "20it"
    member = Store(tmp_path).open(run.section("scores")["members"][0])
    assert member.checkpoint_steps[-1] == 20 and member.plan["schedule_steps"] == 60
    [full] = train(_cosine(checkpoint_at="0,20it,end"), store=str(tmp_path))
    scored, reference = member.checkpoint(20).model, full.checkpoint(20).model
    assert all(torch.equal(scored[k], reference[k]) for k in reference)
    # the learning rate is the 60-step cosine's, not a 20-step one annealed to 0
    import math
    lr = dict(zip(member.curves["step"], member.curves["lr"]))[20]
    assert lr == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 19 / 60)))


def test_diet_pretraining_follows_the_imp_schedule(tmp_path):
    import math

    from landscape.api.diet import DietRequest, diet

    result = diet(_cosine(), DietRequest(subset="random", size=100, pretrain_steps="12it"), store=str(tmp_path))
    [pre_id] = result.section("pretrain")["runs"]
    pre = Store(tmp_path).open(pre_id)
    assert pre.config["stop"] == "12it" and pre.config["steps"] == "60it" and pre.checkpoint_steps[-1] == 12
    lr = dict(zip(pre.curves["step"], pre.curves["lr"]))
    assert lr[10] == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 9 / 60)))


def _cli(*args) -> tuple[int, str]:
    import io
    from contextlib import redirect_stderr, redirect_stdout

    import typer

    from landscape.cli.errors import run_guarded
    from landscape.cli.main import app

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = run_guarded(typer.main.get_command(app), list(args))
    return code, err.getvalue()


SMALL = ["--model", "lenet_300_100", "--dataset", "synthetic", "--batch-size", "32", "--eval-every", "20it"]


@pytest.mark.parametrize("args, message", [
    (["scores", "--steps", "40it", "--score", "el2n", "--at", "50it"], "beyond the end of training"),
    (["scores", "--steps", "40it", "--score", "grand", "--at", "2ep", "--runs", "1"], "beyond the end of training"),
    (["train", "--steps", "40it", "--warmup", "50it"], "warm-up of 50it"),
    (["train", "--steps", "40it", "--schedule", "step", "--milestones", "20it,41it"], "past the end of training"),
    (["diet", "--steps", "40it", "--subset", "random", "--size", "100", "--pretrain-steps", "41it"],
     "beyond the end of training"),
])
def test_steps_past_the_end_are_one_line_errors(tmp_path, args, message):
    store = tmp_path / "store"
    code, err = _cli(*args[:1], *SMALL, *args[1:], "--store", str(store))
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert not list(store.glob("*.h5")) if store.exists() else True


# -- 5. barriers that say where their maximum is -------------------------------------------------

def _curve(error):
    from landscape.lmc.curve import Curve

    error = torch.tensor(error, dtype=torch.float64)
    return Curve(alphas=torch.linspace(0, 1, len(error), dtype=torch.float64), loss=error.clone(), error=error)


def test_a_maximum_at_an_endpoint_is_flagged_and_has_no_straight_line_barrier():
    from landscape.lmc import barrier, endpoint_note

    gap = barrier(_curve([0.10, 0.12, 0.15, 0.20]))  # rises monotonically to B
    assert gap["error_alpha"] == 1.0 and gap["error_at_endpoint"] is True
    assert gap["error"] == pytest.approx(0.05) and gap["error_straight"] == pytest.approx(0.0, abs=1e-12)
    assert endpoint_note(gap["error_alpha"], gap["error_at_endpoint"], gap["error"]) == \
        "max at α=1: this is the endpoint gap, not a barrier"
    bump = barrier(_curve([0.10, 0.30, 0.15, 0.20]))
    assert bump["error_at_endpoint"] is False and bump["error_alpha"] == pytest.approx(1 / 3)
    assert bump["error_straight"] == pytest.approx(0.30 - (0.10 + (0.20 - 0.10) / 3))


def test_normalised_l2_with_different_starting_points_is_at_most_2():
    from landscape.lmc import normalized_l2_distance

    g = torch.Generator().manual_seed(0)
    parent = {"w": torch.randn(1000, generator=g, dtype=torch.float64) * 10}
    mask_a = torch.rand(1000, generator=g) < 0.5
    mask_b = torch.rand(1000, generator=g) < 0.5
    start_a, start_b = {"w": parent["w"] * mask_a}, {"w": parent["w"] * mask_b}
    for scale in (1e-3, 1.0, 100.0):
        a = {"w": start_a["w"] + scale * torch.randn(1000, generator=g, dtype=torch.float64) * mask_a}
        b = {"w": start_b["w"] + scale * torch.randn(1000, generator=g, dtype=torch.float64) * mask_b}
        value = normalized_l2_distance(a, b, start_a, ["w"], parent_b=start_b)
        assert 0 <= value <= 2
        # travel measured from each own start, but the gap between the starts counted as distance:
        old = float((a["w"] - b["w"]).norm() / (((a["w"] - start_a["w"]).norm() + (b["w"] - start_b["w"]).norm()) / 2))
        if scale < 1:
            assert old > 2  # the old definition was unbounded
    # opposite displacements from one start reach the bound exactly
    d = torch.randn(1000, generator=g, dtype=torch.float64)
    assert normalized_l2_distance({"w": parent["w"] + d}, {"w": parent["w"] - d}, parent, ["w"]) == pytest.approx(2)


@pytest.fixture(scope="module")
def pair_store(tmp_path_factory):
    from landscape.api.train import train

    root = tmp_path_factory.mktemp("pairs") / "store"
    config = recipe("lenet_300_100", "synthetic", steps="30it", batch_size=32, optimizer="sgd", lr=0.1,
                    eval_every="10it", checkpoint_at="0,10it,end")
    train(config, store=str(root), name="a")
    from dataclasses import replace
    train(replace(config, seeds=replace(config.seeds, data_order=5, augment=5)), store=str(root), name="b")
    train(replace(config, data=replace(config.data, split_seed=3)), store=str(root), name="other-split")
    return root


def test_lmc_prints_where_the_maximum_is_the_straight_line_barrier_and_the_true_median(pair_store):
    import numpy as np

    code, _ = _cli("lmc", "--run-a", "a", "--run-b", "b", "--per-example", "--train-subset", "100",
                   "--points", "7", "--store", str(pair_store), "--name", "ab")
    assert code == 0
    import io
    from contextlib import redirect_stdout

    from landscape.cli.lmc import print_lmc

    run = Store(pair_store).open("ab")
    out = io.StringIO()
    with redirect_stdout(out):
        print_lmc(run)
    text = out.getvalue()
    assert "barrier, straight line" in text and "max at α=" in text and "straight-line loss barrier" in text
    pe = run.arrays("per_example")["barrier"]
    assert len(pe) == 100 and f"median {float(np.median(pe.astype(np.float64))):.4g}," in text
    m = run.metrics
    for split in ("test", "train"):
        assert f"{split}/error_barrier_at_endpoint" in m and f"{split}/error_barrier_straight" in m


def test_the_lmc_figure_draws_references_marks_the_maximum_and_starts_at_zero(pair_store):
    from landscape.report.lmc import curve_figure

    run = Store(pair_store).open("ab")
    fig = curve_figure([run], "error")
    names = [t.name for t in fig.data]
    assert "test: endpoint mean" in names and "test: straight line" in names
    [star] = [t for t in fig.data if t.name.startswith("test: max at α=")]
    assert star.x[0] == pytest.approx(run.metrics["test/error_barrier_alpha"])
    assert fig.layout.yaxis.rangemode == "tozero"


# -- 4. provenance -------------------------------------------------------------------------------

def test_lmc_refuses_endpoints_with_different_validation_splits(pair_store):
    before = {p.name: p.read_bytes() for p in pair_store.glob("*.h5")}
    code, err = _cli("lmc", "--run-a", "a", "--run-b", "other-split", "--store", str(pair_store))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "different validation splits" in err, err
    assert {p.name: p.read_bytes() for p in pair_store.glob("*.h5")} == before


# -- 3. training metrics say what they are -------------------------------------------------------

def _accuracy_on_training_split(run) -> tuple[float, float]:
    import torch.nn.functional as F

    from landscape.data import device_splits, load_dataset
    from landscape.models import build_model

    data = load_dataset("synthetic", None)
    train, _, _ = device_splits(data, run.config["data"]["val_size"], run.config["data"]["split_seed"], "cpu")
    model = build_model("lenet_300_100", (1, 8, 8), 10, seed=0)
    model.load_state_dict(run.checkpoint(run.checkpoint_steps[-1]).model)
    model.eval()
    with torch.no_grad():
        logits = model(train.x)
    return float((logits.argmax(1) == train.y).double().mean()), float(F.cross_entropy(logits, train.y))


def test_train_metrics_are_the_network_on_the_training_split(tmp_path):
    from landscape.api.train import train

    config = recipe("lenet_300_100", "synthetic", steps="30it", batch_size=32, optimizer="sgd", lr=0.1,
                    eval_every="10it")
    [run] = train(config, store=str(tmp_path))
    acc, loss = _accuracy_on_training_split(run)
    assert run.metrics["final/train/acc"] == pytest.approx(acc, abs=1e-12)
    assert run.metrics["final/train/loss"] == pytest.approx(loss, rel=1e-5)
    assert "final/train_running/acc" in run.metrics
    import math
    measured = [s for s, v in zip(run.curves["step"], run.curves["train/acc"]) if not math.isnan(v)]
    assert measured == [30.0]  # at the end only, unless asked for more
    assert "eval_train" not in config.to_dict()  # unchanged IDs for runs that do not ask

    from dataclasses import replace
    [every] = train(replace(config, eval_train=True), store=str(tmp_path))
    assert not any(math.isnan(v) for v in every.curves["train/acc"])
    assert every.metrics["final/train/acc"] == run.metrics["final/train/acc"]  # the same network


def test_reports_label_both_and_read_old_runs():
    from landscape.report.train import SPLIT_LABEL, honest_curves

    assert SPLIT_LABEL["train_running"] != SPLIT_LABEL["train"]
    old = {"step": [0, 10], "train/loss": [float("nan"), 1.0], "train/acc": [float("nan"), 0.5]}
    assert honest_curves(old) == {"step": [0, 10], "train_running/loss": old["train/loss"],
                                  "train_running/acc": old["train/acc"]}
    new = {"step": [10], "train/acc": [0.9], "train_running/acc": [0.8]}
    assert honest_curves(new) == new


def test_a_run_stores_its_split_and_normalisation_enough_to_reproduce_its_evaluation(pair_store):
    import numpy as np

    from landscape.data import load_dataset
    from landscape.models import build_model

    run = Store(pair_store).open("a")
    info, arrays = run.section("data"), run.arrays("data")
    assert info["split_hash"] and info["normalised_on"].startswith("the training split")
    # by hand, from the file: the validation positions, the statistics, the weights
    data = load_dataset("synthetic", None)
    val = torch.as_tensor(arrays["val_index"])
    mean = torch.tensor(info["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(info["std"]).view(1, -1, 1, 1)
    x = (data.train_x[val].double() / 255 - mean) / std
    model = build_model("lenet_300_100", (1, 8, 8), 10, seed=0).double()
    model.load_state_dict({k: v.double() for k, v in run.checkpoint(run.checkpoint_steps[-1]).model.items()})
    model.eval()
    with torch.no_grad():
        acc = float((model(x).argmax(1) == data.train_y[val]).double().mean())
    assert acc == pytest.approx(run.metrics["final/val/acc"], abs=1.5 / len(val))
    other = Store(pair_store).open("other-split").section("data")
    assert other["split_hash"] != info["split_hash"]
    train_positions = np.setdiff1d(np.arange(info["n_train_set"]), arrays["val_index"])
    from landscape.api.provenance import split_hash_of
    assert split_hash_of(torch.as_tensor(train_positions), val) == info["split_hash"]


def test_scores_at_0_store_the_scored_networks_and_the_dataset_indices(tmp_path):
    import numpy as np

    from landscape.api.scores import scores
    from landscape.data.splits import split_train_val
    from landscape.diet import ScoresConfig
    from landscape.models import build_model

    config = recipe("lenet_300_100", "synthetic", steps="20it", batch_size=32, eval_every="20it")
    run = scores(ScoresConfig(config, method="el2n", at="0", runs=2), store=str(tmp_path))
    arrays = run.arrays("scores")
    train_idx, _ = split_train_val(run.section("data")["n_train_set"], run.config["train"]["data"]["val_size"], 0)
    assert np.array_equal(arrays["dataset_index"], train_idx.numpy())
    for s in range(2):
        stored = run.arrays(f"networks/r{s}")
        fresh = build_model("lenet_300_100", (1, 8, 8), 10, seed=s).state_dict()
        assert all(np.array_equal(stored[k], fresh[k].numpy()) for k in fresh)
    assert run.section("data")["mean"]
