import math

import pytest

from landscape.errors import ConfigError
from landscape.steps import Step, parse_step_list, resolve_step_list
from landscape.train.config import TrainConfig, default_val_size, recipe
from landscape.train.rng import derive_seed, epoch_permutation
from landscape.train.schedule import LRSchedule


@pytest.mark.parametrize("text, iters", [("500it", 500), ("2ep", 200), ("50k", 50000), ("0", 0), (7, 7),
                                         ("1.5ep", 150), (" 3IT ", 3)])
def test_step_strings_resolve(text, iters):
    assert Step.parse(text).resolve(iters_per_epoch=100) == iters


@pytest.mark.parametrize("bad", ["ten", "5 epochs", "-3it", "1.5it", "", "2e", -1])
def test_malformed_step_strings_are_config_errors(bad):
    with pytest.raises(ConfigError, match="step"):
        Step.parse(bad)


def test_step_lists_keep_end_symbolic_and_sort():
    items = parse_step_list("end, 2ep,0, 100it")
    assert items == ("end", "2ep", "0it", "100it")
    assert resolve_step_list(items, 50, 1000) == [0, 100, 1000]
    with pytest.raises(ConfigError, match="beyond the end"):
        resolve_step_list(("30ep",), 50, 1000)


def test_run_id_is_a_function_of_the_canonical_configuration():
    a = recipe("lenet_300_100", "mnist", steps="2ep")
    b = recipe("lenet_300_100", "mnist", steps="2.0ep")
    assert a.run_id() == b.run_id()
    assert recipe("lenet_300_100", "mnist", steps="2ep", seed=1).run_id() != a.run_id()
    assert recipe("lenet_300_100", "mnist", steps="2ep", data_seed=1).run_id() != a.run_id()
    assert TrainConfig.from_dict(a.to_dict()) == a


def test_recipes_carry_the_published_hyperparameters():
    lenet = recipe("lenet_300_100", "mnist")
    assert (lenet.optim.optimizer, lenet.optim.lr, lenet.batch_size, lenet.steps) == ("adam", 1.2e-3, 60, "50000it")
    resnet = recipe("resnet20", "cifar10")
    assert resnet.optim.milestones == ("80ep", "120ep") and resnet.data.augment == "crop-flip"
    assert recipe("lenet_300_100", "mnist", lr=0.05).optim.lr == 0.05


@pytest.mark.parametrize("override, message", [
    (dict(lr=-0.1), "learning rate"), (dict(lr=float("nan")), "learning rate"), (dict(optimizer="rmsprop"), "optimizer"),
    (dict(batch_size=0), "batch size"), (dict(augment="mixup"), "augmentation"), (dict(schedule="step"), "milestones"),
    (dict(steps="0it"), "positive"), (dict(momentum=1.5), "momentum"), (dict(seed=-1), "seed"),
])
def test_bad_values_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        recipe("lenet_300_100", "mnist", **override)


def test_default_validation_size_follows_the_lottery_ticket_paper():
    assert default_val_size(60000) == 5000
    assert default_val_size(1497) == 150


def test_schedules():
    step = LRSchedule(0.1, "step", 100, milestones=(50, 75), gamma=0.1)
    assert [step(0), step(49), step(50), step(75)] == pytest.approx([0.1, 0.1, 0.01, 0.001])
    cos = LRSchedule(1.0, "cosine", 100)
    assert cos(0) == pytest.approx(1.0) and cos(50) == pytest.approx(0.5) and cos(100) == pytest.approx(0.0)
    warm = LRSchedule(1.0, "constant", 100, warmup_steps=4)
    assert [warm(0), warm(1), warm(3), warm(4)] == pytest.approx([0.25, 0.5, 1.0, 1.0])


def test_seeds_are_counter_based_and_independent():
    assert derive_seed(1, 2) != derive_seed(2, 1)
    assert derive_seed(1, 2) == derive_seed(1, 2)
    p = epoch_permutation(1000, data_seed=3, epoch=5)
    assert p.equal(epoch_permutation(1000, 3, 5)) and not p.equal(epoch_permutation(1000, 3, 6))
    assert sorted(p.tolist()) == list(range(1000))
    assert math.isfinite(derive_seed(2**62, 2**63))
