"""Pruning: exact counts, scopes, criteria, tie-breaking, validation, one-shot and the controls."""
from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from torch import nn

from landscape.errors import ConfigError
from landscape.models import build_model, init_names, prunable_parameters
from landscape.prune import (
    apply_mask, density, full_mask, init_scales_of, init_std, kept_at_density, kept_schedule,
    layer_report, layerwise_schedule, level_density, mask_hash, one_shot, prune, pruned_count,
    random_mask_like, reinit, rescaled_reinit, sparsity,
)
from landscape.prune.select import lowest

MNIST = (1, 28, 28)
LENET_SIZES = {"fc1.weight": 784 * 300, "fc2.weight": 300 * 100, "fc3.weight": 100 * 10}
# Frankle & Carbin's LeNet rates: 20% per round, the output layer at half that.
RATE, OUTPUT_RATE = 0.2, 0.1


@pytest.fixture(scope="module")
def lenet():
    return build_model("lenet_300_100", MNIST, 10, seed=0)


def weights_of(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in prunable_parameters(model).items()}


def noisy(weights: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """Stand-in for a round of training: the same tensors with seeded perturbations."""
    g = torch.Generator().manual_seed(seed)
    return {n: w + 0.01 * torch.randn(w.shape, generator=g) for n, w in weights.items()}


def kept(mask) -> dict[str, int]:
    return {name: k for name, (k, _) in layer_report(mask).items()}


def assert_nested(new, old):
    for name in old:
        assert not (new[name] & ~old[name]).any(), f"{name}: a pruned weight came back"


def two_layer(fan_in_a: int, fan_in_b: int, seed: int = 0) -> nn.Module:
    """Two linear layers of equal size and different fan-in, weights exactly at Kaiming init."""
    model = nn.Sequential(nn.Linear(fan_in_a, fan_in_b), nn.Linear(fan_in_b, fan_in_a))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in model:
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu", generator=g)
    return model


# --- counts -----------------------------------------------------------------------------------

def test_counts_are_the_ceil_rule_in_exact_arithmetic():
    assert pruned_count(0.2, 100) == 20
    assert pruned_count(0.1, 810) == 81
    assert pruned_count(0.1, 729) == 73  # 72.9 rounds up
    # 0.035 * 200 is 7.000000000000001 in floating point; the rate means 7 exactly.
    assert 0.035 * 200 > 7 and pruned_count(0.035, 200) == 7
    # (1 - 0.41) * 100 is 59.00000000000001 in floating point; density 0.41 keeps 41 of 100.
    assert kept_at_density(0.41, 100) == 41
    assert pruned_count(Fraction(1, 3), 10) == 4
    assert pruned_count(0.2, 0) == 0


def test_schedules():
    assert kept_schedule(1000, 0.1, 4) == [1000, 900, 810, 729, 656]
    assert kept_schedule(5, 0.5, 3) == [5, 2, 1, 0]
    assert level_density(0.2, 3) == pytest.approx(0.512, abs=1e-15)
    assert level_density(0.2, 0) == 1.0
    levels = layerwise_schedule(LENET_SIZES, RATE, 2, overrides={"fc3.weight": OUTPUT_RATE})
    assert levels == [
        LENET_SIZES,
        {"fc1.weight": 188160, "fc2.weight": 24000, "fc3.weight": 900},
        {"fc1.weight": 150528, "fc2.weight": 19200, "fc3.weight": 810},
    ]
    frozen = layerwise_schedule(LENET_SIZES, RATE, 2, exclude=["fc1.weight"])
    assert [level["fc1.weight"] for level in frozen] == [235200] * 3


# --- masks ------------------------------------------------------------------------------------

def test_full_mask_and_reports(lenet):
    mask = full_mask(lenet)
    assert list(mask) == list(lenet.prunable) == list(LENET_SIZES)
    assert all(m.dtype == torch.bool and m.all() for m in mask.values())
    assert layer_report(mask) == {n: (s, s) for n, s in LENET_SIZES.items()}
    assert sparsity(mask) == 0.0 and density(mask) == 1.0


def test_mask_hash_is_stable_and_sensitive():
    mask = {"a.weight": torch.ones(3, 4, dtype=torch.bool),
            "b.weight": torch.ones(5, dtype=torch.bool)}
    digest = mask_hash(mask)
    assert len(digest) == 16 and int(digest, 16) >= 0
    assert mask_hash(dict(reversed(list(mask.items())))) == digest
    flipped = {**mask, "b.weight": mask["b.weight"].clone()}
    flipped["b.weight"][4] = False
    assert mask_hash(flipped) != digest
    reshaped = {**mask, "a.weight": torch.ones(4, 3, dtype=torch.bool)}
    assert mask_hash(reshaped) != digest
    renamed = {"c.weight": mask["a.weight"], "b.weight": mask["b.weight"]}
    assert mask_hash(renamed) != digest
    # Pinned: run IDs embed this digest, so it must not drift between versions.
    assert digest == mask_hash({"b.weight": torch.ones(5, dtype=torch.bool),
                                "a.weight": torch.ones(3, 4, dtype=torch.bool)})
    assert digest == PINNED_HASH


PINNED_HASH = "7cbaa27dd6f41901"


def test_apply_mask_zeros_pruned_weights_and_copies():
    state = {"w": torch.tensor([[1.0, float("nan")], [3.0, 4.0]]), "b": torch.tensor([1.0, 2.0])}
    mask = {"w": torch.tensor([[True, False], [False, True]])}
    out = apply_mask(state, mask)
    assert torch.equal(out["w"], torch.tensor([[1.0, 0.0], [0.0, 4.0]]))
    assert out["b"] is state["b"]
    assert state["w"][1, 0] == 3.0  # input untouched


# --- prune: counts, scopes, exclusions ----------------------------------------------------------

def test_layerwise_levels_match_the_simulated_schedule_exactly(lenet):
    levels = 5
    overrides = {lenet.output_layer: OUTPUT_RATE}
    expected = layerwise_schedule(LENET_SIZES, RATE, levels, overrides=overrides)
    weights, mask = weights_of(lenet), full_mask(lenet)
    for level in range(1, levels + 1):
        weights = noisy(weights, level)
        new = prune(weights, mask, fraction=RATE, scope="layerwise", criterion="magnitude",
                    overrides=overrides)
        assert_nested(new, mask)
        mask = new
        assert kept(mask) == expected[level]
        n_kept, total = sum(expected[level].values()), sum(LENET_SIZES.values())
        assert sparsity(mask) == float(1 - Fraction(n_kept, total))
        assert density(mask) == float(Fraction(n_kept, total))
    assert expected[5] == {"fc1.weight": 77069, "fc2.weight": 9830, "fc3.weight": 590}


def test_global_prunes_ceil_of_the_live_weights(lenet):
    weights = weights_of(lenet)
    mask = prune(weights, full_mask(lenet), fraction=RATE, scope="layerwise",
                 criterion="magnitude", overrides={"fc3.weight": OUTPUT_RATE})
    alive = sum(kept(mask).values())  # 213060
    new = prune(noisy(weights, 1), mask, fraction=0.123, scope="global", criterion="magnitude")
    assert alive - sum(kept(new).values()) == math.ceil(Fraction("0.123") * alive) == 26207
    assert_nested(new, mask)


def test_global_magnitude_prunes_the_globally_smallest_live_weights():
    g = torch.Generator().manual_seed(3)
    weights = {"a": torch.randn(7, 9, generator=g), "b": 3 * torch.randn(40, generator=g),
               "c": 0.1 * torch.randn(2, 3, 4, generator=g)}
    mask = {n: torch.rand(w.shape, generator=g) > 0.3 for n, w in weights.items()}
    new = prune(weights, mask, fraction=0.37, scope="global", criterion="magnitude")

    live = [(w.reshape(-1)[i].abs().item(), n, i) for n, w in weights.items()
            for i in range(w.numel()) if mask[n].reshape(-1)[i]]
    doomed = {(n, i) for _, n, i in sorted(live)[: math.ceil(Fraction("0.37") * len(live))]}
    for n, m in new.items():
        for i in range(m.numel()):
            assert bool(m.reshape(-1)[i]) == (bool(mask[n].reshape(-1)[i]) and (n, i) not in doomed)


def test_excluded_tensors_are_untouched_and_do_not_count(lenet):
    weights, mask = weights_of(lenet), full_mask(lenet)
    for scope in ("global", "layerwise"):
        new = prune(weights, mask, fraction=RATE, scope=scope, criterion="magnitude",
                    exclude=["fc1.weight"])
        assert torch.equal(new["fc1.weight"], mask["fc1.weight"])
        assert new["fc1.weight"] is not mask["fc1.weight"]
        pruned = sum(LENET_SIZES[n] - k for n, k in kept(new).items())
        expected = math.ceil(Fraction(1, 5) * 31000) if scope == "global" else 6000 + 200
        assert pruned == expected
    assert all(m.all() for m in mask.values()), "the input mask was modified"


def test_overrides_layerwise_and_in_global_scope(lenet):
    weights, mask = weights_of(lenet), full_mask(lenet)
    layerwise = prune(weights, mask, fraction=RATE, scope="layerwise", criterion="magnitude",
                      overrides={"fc2.weight": 0.5})
    assert kept(layerwise) == {"fc1.weight": 188160, "fc2.weight": 15000, "fc3.weight": 800}
    # In global scope an overridden tensor is pruned on its own; the rest share one threshold.
    globl = prune(weights, mask, fraction=RATE, scope="global", criterion="magnitude",
                  overrides={"fc3.weight": 0.5})
    assert kept(globl)["fc3.weight"] == 500
    assert kept(globl)["fc1.weight"] + kept(globl)["fc2.weight"] == 265200 - 53040
    alone = prune(weights, mask, fraction=0.5, scope="layerwise", criterion="magnitude")
    assert torch.equal(globl["fc3.weight"], alone["fc3.weight"])


def test_already_pruned_weights_are_never_selected_again():
    # The dead weights are the smallest; were they candidates, they would be "pruned" first and
    # fewer live weights would go.
    w = torch.arange(1.0, 11.0)
    w[:4] = 0.0
    mask = {"w": torch.arange(10) >= 4}
    new = prune({"w": w}, mask, fraction=0.5, scope="layerwise", criterion="magnitude")
    assert new["w"].tolist() == [False] * 7 + [True] * 3


def test_ties_prune_the_lowest_indices_first_every_time():
    weights = {"a": torch.full((4, 5), -2.0), "b": torch.full((3,), 2.0)}
    mask = {n: torch.ones_like(w, dtype=torch.bool) for n, w in weights.items()}
    first = prune(weights, mask, fraction=0.3, scope="layerwise", criterion="magnitude")
    assert first["a"].reshape(-1).tolist() == [False] * 6 + [True] * 14
    assert first["b"].tolist() == [False, True, True]
    # Across tensors too: the earlier tensor in mask order goes first.
    globl = prune(weights, mask, fraction=0.9, scope="global", criterion="magnitude")
    assert not globl["a"].any() and globl["b"].tolist() == [False, True, True]
    for _ in range(3):
        again = prune(weights, mask, fraction=0.3, scope="layerwise", criterion="magnitude")
        assert all(torch.equal(again[n], first[n]) for n in first)


def test_selection_equals_a_stable_sort_under_heavy_ties():
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        n = int(torch.randint(1, 60, (1,), generator=g))
        values = torch.randint(0, 4, (n,), generator=g).double()
        count = int(torch.randint(0, n + 1, (1,), generator=g))
        expected = torch.zeros(n, dtype=torch.bool)
        expected[torch.sort(values, stable=True).indices[:count]] = True
        assert torch.equal(lowest(values, count), expected)


# --- criteria ---------------------------------------------------------------------------------

def test_init_std_matches_the_model_init():
    for init in init_names():
        model = build_model("lenet5", MNIST, 10, seed=1, init=init)
        scales = init_scales_of(model, init=init)
        assert list(scales) == list(model.prunable)
        for name, p in prunable_parameters(model).items():
            if p.numel() >= 2000:
                assert p.std().item() == pytest.approx(scales[name], rel=0.05), (init, name)
    assert init_std((300, 784)) == math.sqrt(2 / 784)
    assert init_std((16, 6, 5, 5), "glorot_uniform") == math.sqrt(2 / (150 + 400))


def test_rescaled_magnitude_undoes_the_fan_in_bias_of_global_magnitude():
    model = two_layer(1024, 32)
    weights, mask = weights_of(model), full_mask(model)
    big, small = "0.weight", "1.weight"  # fan-in 1024 and 32, 32768 weights each

    def share(new):
        return {n: 1 - k / mask[n].numel() for n, k in kept(new).items()}

    plain = share(prune(weights, mask, fraction=0.5, scope="global", criterion="magnitude"))
    rescaled = share(prune(weights, mask, fraction=0.5, scope="global",
                           criterion="rescaled-magnitude", init_scale=init_scales_of(model)))
    # Kaiming stds differ by sqrt(1024 / 32) = 5.7x, so one magnitude threshold takes ~4x more of
    # the big-fan-in layer; scale-normalised scores take half of each.
    assert plain[big] > 0.75 and plain[small] < 0.25
    assert rescaled[big] == pytest.approx(0.5, abs=0.02)
    assert rescaled[small] == pytest.approx(0.5, abs=0.02)


def test_random_criterion_is_seeded_and_independent_of_exclusions(lenet):
    weights, mask = weights_of(lenet), full_mask(lenet)

    def rnd(seed, **kw):
        return prune(weights, mask, fraction=RATE, scope="layerwise", criterion="random",
                     seed=seed, **kw)

    a, b, c = rnd(0), rnd(0), rnd(1)
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert not torch.equal(a["fc2.weight"], c["fc2.weight"])
    assert kept(a) == {"fc1.weight": 188160, "fc2.weight": 24000, "fc3.weight": 800}
    assert torch.equal(rnd(0, exclude=["fc1.weight"])["fc2.weight"], a["fc2.weight"])
    # Random scores ignore magnitude: about as many small weights survive as large ones.
    w = weights["fc1.weight"].abs()
    small = w < w.median()
    assert (a["fc1.weight"] & small).sum() / small.sum() == pytest.approx(0.8, abs=0.01)


# --- one-shot ---------------------------------------------------------------------------------

def test_one_shot_keeps_the_floor_of_the_target(lenet):
    weights, mask = weights_of(lenet), full_mask(lenet)
    layerwise = one_shot(weights, mask, target_density=0.037, scope="layerwise",
                         criterion="magnitude")
    assert kept(layerwise) == {n: math.floor(Fraction("0.037") * s) for n, s in LENET_SIZES.items()}
    assert kept(layerwise) == {"fc1.weight": 8702, "fc2.weight": 1110, "fc3.weight": 37}
    globl = one_shot(weights, None, target_density=0.037, scope="global", criterion="magnitude")
    assert sum(kept(globl).values()) == kept_at_density(0.037, 266200) == 9849
    # One shot to density d from a full mask is one step at rate 1 - d, exactly.
    step = prune(weights, mask, fraction=0.2, scope="global", criterion="magnitude")
    shot = one_shot(weights, mask, target_density=0.8, scope="global", criterion="magnitude")
    assert all(torch.equal(step[n], shot[n]) for n in step)


def test_one_shot_from_a_sparse_mask_and_its_limits(lenet):
    weights, mask = weights_of(lenet), full_mask(lenet)
    half = one_shot(weights, mask, target_density=0.5, scope="layerwise", criterion="magnitude")
    tenth = one_shot(weights, half, target_density=0.1, scope="layerwise", criterion="magnitude",
                     overrides={"fc3.weight": 0.3})
    assert_nested(tenth, half)
    assert kept(tenth) == {"fc1.weight": 23520, "fc2.weight": 3000, "fc3.weight": 300}
    with pytest.raises(ConfigError, match="fewer than"):
        one_shot(weights, tenth, target_density=0.5, scope="global", criterion="magnitude")
    with pytest.raises(ConfigError, match="fc1.bias"):
        one_shot(dict(lenet.state_dict()), None, target_density=0.5, scope="global",
                 criterion="magnitude")


# --- validation -------------------------------------------------------------------------------

@pytest.mark.parametrize("fraction", [0, 0.0, 1, 1.0, -0.1, 1.5, float("nan"), True, "0.2", None])
def test_fraction_outside_the_open_unit_interval_is_rejected(lenet, fraction):
    with pytest.raises(ConfigError):
        prune(weights_of(lenet), full_mask(lenet), fraction=fraction, scope="global",
              criterion="magnitude")


@pytest.mark.parametrize("kwargs, message", [
    ({"overrides": {"fc9.weight": 0.1}}, "'fc9.weight'.*fc1.weight, fc2.weight, fc3.weight"),
    ({"exclude": ["fc1.bias"]}, "'fc1.bias'.*fc1.weight, fc2.weight, fc3.weight"),
    ({"exclude": ["fc1.weight", "fc2.weight", "fc3.weight"]}, "every prunable tensor"),
    ({"exclude": ["fc3.weight"], "overrides": {"fc3.weight": 0.1}}, "both excluded"),
    ({"overrides": {"fc3.weight": 1.0}}, "override"),
    ({"scope": "per-layer"}, "scope"),
    ({"criterion": "gradient"}, "criterion"),
    ({"criterion": "rescaled-magnitude"}, "init_scale"),
    ({"criterion": "rescaled-magnitude", "init_scale": {"fc1.weight": 0.1}}, "fc2.weight"),
])
def test_invalid_arguments_are_config_errors(lenet, kwargs, message):
    args = {"fraction": RATE, "scope": "layerwise", "criterion": "magnitude", **kwargs}
    with pytest.raises(ConfigError, match=message):
        prune(weights_of(lenet), full_mask(lenet), **args)


def test_a_mask_that_does_not_fit_the_weights_is_rejected(lenet):
    weights = weights_of(lenet)
    wrong_shape = {**full_mask(lenet), "fc3.weight": torch.ones(10, 10, dtype=torch.bool)}
    not_bool = {**full_mask(lenet), "fc3.weight": torch.ones(10, 100)}
    for mask in (wrong_shape, not_bool, {}):
        with pytest.raises(ConfigError):
            prune(weights, mask, fraction=RATE, scope="global", criterion="magnitude")


# --- controls ---------------------------------------------------------------------------------

def test_random_mask_like_keeps_the_per_layer_counts(lenet):
    ticket = prune(weights_of(lenet), full_mask(lenet), fraction=0.6, scope="global",
                   criterion="magnitude")
    shuffled = random_mask_like(ticket, seed=5)
    assert kept(shuffled) == kept(ticket)
    assert all(not torch.equal(shuffled[n], ticket[n]) for n in ticket)
    again, other = random_mask_like(ticket, seed=5), random_mask_like(ticket, seed=6)
    assert all(torch.equal(again[n], shuffled[n]) for n in ticket)
    assert not torch.equal(other["fc1.weight"], shuffled["fc1.weight"])


def test_reinit_draws_fresh_weights_under_the_same_mask(lenet):
    before = {n: t.clone() for n, t in lenet.state_dict().items()}
    ticket = prune(weights_of(lenet), full_mask(lenet), fraction=0.5, scope="layerwise",
                   criterion="magnitude")
    state = reinit(lenet, ticket, seed=99)
    assert state.keys() == before.keys()
    assert all(torch.equal(lenet.state_dict()[n], before[n]) for n in before), "template modified"
    for name, m in ticket.items():
        w = state[name]
        assert (w[~m] == 0).all() and (w[m] != 0).all()
        assert not torch.equal(w[m], before[name][m])
        assert w[m].std().item() == pytest.approx(init_std(tuple(m.shape)), rel=0.1)
    assert all((state[n] == 0).all() for n in state if n.endswith(".bias"))


def test_rescaled_reinit_preserves_each_units_input_variance():
    fan_in, units = 1000, 200
    model = nn.Sequential(nn.Linear(fan_in, units))
    g = torch.Generator().manual_seed(0)
    rows = torch.stack([torch.randperm(fan_in, generator=g) < fan_in // 2 for _ in range(units)])
    rows[0] = False  # a unit with no input left stays zero
    mask = {"0.weight": rows}

    plain = reinit(model, mask, seed=1)["0.weight"]
    rescaled = rescaled_reinit(model, mask, seed=1)["0.weight"]
    dense_expectation = fan_in * init_std((units, fan_in)) ** 2  # = 2
    assert (rescaled[0] == 0).all()
    assert (rescaled[~rows] == 0).all()
    assert (rescaled[1:] ** 2).sum(1).mean().item() == pytest.approx(dense_expectation, rel=0.03)
    assert (plain[1:] ** 2).sum(1).mean().item() == pytest.approx(dense_expectation / 2, rel=0.03)


def test_rescaled_reinit_scales_conv_channels_by_sqrt_fan_in_over_kept():
    model = nn.Sequential(nn.Conv2d(3, 4, 3))  # fan-in 27 per output channel
    mask = {"0.weight": torch.ones(4, 3, 3, 3, dtype=torch.bool)}
    kept_per_channel = [27, 13, 1, 0]
    for channel, k in enumerate(kept_per_channel):
        mask["0.weight"][channel].view(-1)[k:] = False
    plain = reinit(model, mask, seed=2)["0.weight"]
    rescaled = rescaled_reinit(model, mask, seed=2)["0.weight"]
    for channel, k in enumerate(kept_per_channel):
        gain = math.sqrt(27 / k) if k else 0.0
        assert torch.allclose(rescaled[channel], plain[channel] * gain, rtol=1e-6, atol=0)
