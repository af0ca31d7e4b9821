"""IMP's retraining modes (Renda et al. 2020) and the fine-tuned transfer baseline."""
import numpy as np
import pytest
import torch

from landscape.api.imp import imp
from landscape.errors import ConfigError
from landscape.imp import ImpConfig, PruneConfig, TicketSource
from landscape.store import Store
from landscape.train.config import recipe

STEP = dict(steps="40it", batch_size=32, eval_every="5it", optimizer="sgd", lr=0.1, momentum=0.9,
            schedule="step", milestones=("15it", "30it"), gamma=0.5, width=0.25)


def small(**kw):
    return ImpConfig(train=recipe("lenet_300_100", "synthetic", **STEP), controls=(), replicates=1,
                     prune=PruneConfig(fraction=0.5), **kw)


def test_default_imp_ids_are_those_stored_before_retraining_modes_existed():
    # Computed with the code on main before --retrain and --transfer-init were added (the transfer's
    # ID after issue 9, whose seeded output-layer draws changed it on purpose).
    c = recipe("lenet_300_100", "synthetic", steps="60it", batch_size=32)
    assert ImpConfig(train=c, rewind="20it").validate().run_id() == "65da3debdb94"
    assert ImpConfig(train=c, ticket_from=TicketSource("abc", 2)).validate().run_id() == "29a699843bce"
    assert ImpConfig(train=c, retrain="lr-rewind").validate().run_id() != ImpConfig(train=c).validate().run_id()


def _level_ticket(run, store, level):
    return store.open(run.section(f"levels/{level:03d}")["ticket"][0])


def test_lr_rewind_replays_the_schedule_from_k_on_the_trained_weights(tmp_path):
    store = Store(tmp_path)
    run = imp(small(rewind="10it", retrain="lr-rewind"), 2, store=str(tmp_path))
    dense, t1, t2 = (_level_ticket(run, store, level) for level in (0, 1, 2))
    for ticket, previous in ((t1, dense), (t2, t1)):
        assert ticket.config["start"]["run"] == previous.id and ticket.config["start"]["at"] == 10
        assert ticket.curves["step"][0] == 10
        from_k = dense.curves["step"] >= 10
        np.testing.assert_array_equal(ticket.curves["lr"], dense.curves["lr"][from_k])
        # Start weights: the previous level's trained weights under the new mask.
        assert ticket.checkpoint_steps[0] == 10
        start = ticket.checkpoint(10).model["fc2.weight"]
        assert torch.equal(start, previous.checkpoint(40).model["fc2.weight"] * ticket.mask()["fc2.weight"])
    assert run.section("levels/002")["iterations"] == 40 + 2 * 30


def test_finetune_trains_the_budget_at_the_final_rate(tmp_path):
    store = Store(tmp_path)
    run = imp(small(retrain="finetune", retrain_steps="20it"), 1, store=str(tmp_path))
    dense, t1 = _level_ticket(run, store, 0), _level_ticket(run, store, 1)
    final_lr = 0.1 * 0.5 ** 2
    assert dense.curves["lr"][-1] == pytest.approx(final_lr)
    assert t1.metrics["steps"] == 20 and t1.config["optim"]["schedule"] == "constant"
    np.testing.assert_allclose(t1.curves["lr"], final_lr)
    start = t1.checkpoint(20).model  # trained from the dense run's final weights under the mask
    assert t1.config["start"] == {"run": dense.id, "step": 40, "with_optimizer": False, "fresh": [], "at": 0}
    assert (start["fc1.weight"][~t1.mask()["fc1.weight"]] == 0).all()


def test_transfer_init_trained_starts_from_the_source_tickets_trained_weights(tmp_path):
    store = Store(tmp_path)
    source = imp(small(), 1, store=str(tmp_path))
    target = ImpConfig(train=recipe("lenet_300_100", "synthetic", **{**STEP, "seed": 5}), controls=(),
                       ticket_from=TicketSource(source.id, 1, init="trained"))
    run = imp(target, 1, store=str(tmp_path))
    ticket = _level_ticket(run, store, 1)
    src = _level_ticket(source, store, 1)
    assert ticket.config["start"]["run"] == src.id and ticket.config["start"]["at"] == 0
    assert ticket.curves["step"][0] == 0
    assert torch.equal(ticket.mask()["fc1.weight"], src.mask()["fc1.weight"])
    assert torch.equal(ticket.checkpoint(0).model["fc1.weight"], src.checkpoint(40).model["fc1.weight"])


@pytest.mark.parametrize("kw", [dict(retrain="rewind-everything"), dict(retrain="finetune", retrain_steps="0"),
                                dict(retrain_steps="10it"),
                                dict(retrain="lr-rewind", ticket_from=TicketSource("abc", 1))])
def test_bad_retraining_requests_are_refused(kw):
    with pytest.raises(ConfigError):
        small(**kw).validate()
