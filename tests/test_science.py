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
