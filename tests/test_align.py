"""Alignment against exact references: permuted copies compute the same function, matching a
network to a permuted copy of itself finds that permutation, REPAIR hits its targets."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from landscape.align import (activation_matching, apply_permutation, permute_mask, random_permutation,
                             repair_state, weight_matching)
from landscape.align.probes import probe_moments
from landscape.align.repair import repair_probes, targets
from landscape.errors import ConfigError
from landscape.lmc import barrier, interpolation_curve
from landscape.models import build_model, model_names, prunable_parameters
from landscape.models.permutation import spec_of

SHAPES = {"lenet_300_100": (1, 28, 28), "mlp_3x512": (1, 28, 28), "lenet5": (1, 28, 28)}
WIDTHS = {"resnet18": 0.125, "vgg16": 0.125, "vgg19": 0.125, "vgg11": 0.125, "resnet56": 0.5}


def _network(name: str, seed: int):
    """A zoo model with random weights, biases and BatchNorm parameters and statistics (a trained
    network's BatchNorm is far from the identity, and permuting it must move all four)."""
    model = build_model(name, SHAPES.get(name, (3, 16, 16)), 10, seed=seed, width=WIDTHS.get(name, 0.25))
    g = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for key, t in model.state_dict().items():
            if key.endswith("bias") or key.endswith("running_mean"):
                t.copy_(0.1 * torch.randn(t.shape, generator=g))
            elif key.endswith("running_var") or (key.endswith("weight") and t.dim() == 1):
                t.copy_(0.5 + torch.rand(t.shape, generator=g))
    return model.eval()


def _masks(model, seed: int):
    g = torch.Generator().manual_seed(seed)
    return {n: torch.rand(p.shape, generator=g) < 0.7 for n, p in prunable_parameters(model).items()}


def _masked(state, mask):
    return {k: v * mask[k] if k in mask else v for k, v in state.items()}


def _outputs(model, state, x):
    copy = _copy(model)
    copy.load_state_dict(state)
    with torch.no_grad():
        return copy.eval()(x)


def _copy(model):
    import copy
    return copy.deepcopy(model)


def _inputs(model, n=32, seed=0):
    return torch.randn(n, *model.input_shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", model_names())
def test_a_permuted_network_computes_the_same_function_masks_included(name):
    model = _network(name, 0)
    spec = spec_of(model)
    state, mask = model.state_dict(), _masks(model, 1)
    perms = random_permutation(spec, torch.Generator().manual_seed(2))
    permuted, permuted_mask = apply_permutation(state, spec, perms), permute_mask(mask, spec, perms)
    # float64: a deep random ResNet's logits reach ~10^2, where float32 rounding alone is ~1e-5.
    model, x = model.double(), _inputs(model).double()
    state, permuted = ({k: v.double() if v.is_floating_point() else v for k, v in s.items()}
                       for s in (state, permuted))
    before = _outputs(model, _masked(state, mask), x)
    after = _outputs(model, _masked(permuted, permuted_mask), x)
    assert (before - after).abs().max() <= 1e-5
    # The test can fail: the weights did move, and a wrong mask would change the outputs.
    assert any(not torch.equal(state[k], permuted[k]) for k in state)
    wrong = _outputs(model, _masked(permuted, mask), x)
    assert (before - wrong).abs().max() > 1e-3
    # Every tensor with a per-unit axis moved, BatchNorm statistics included.
    for group in spec.groups:
        for axis in group.axes:
            assert permuted[axis.tensor].shape == state[axis.tensor].shape


@pytest.mark.parametrize("name", model_names())
def test_weight_matching_recovers_a_random_permutation_exactly(name):
    model = _network(name, 3)
    spec = spec_of(model)
    b = model.state_dict()
    perms = random_permutation(spec, torch.Generator().manual_seed(4))
    a = apply_permutation(b, spec, perms)
    params = {n for n, _ in model.named_parameters()}
    match = weight_matching(spec, a, b, params, generator=torch.Generator().manual_seed(0))
    assert match.converged
    for group in spec.groups:
        assert torch.equal(match.perms[group.name], perms[group.name]), group.name
    aligned = apply_permutation(b, spec, match.perms)
    assert all(torch.equal(aligned[k], a[k]) for k in a)  # distance 0
    x = _inputs(model, 16)
    y = torch.arange(16) % 10
    curve = interpolation_curve(model, a, aligned, x, y, alphas=3, bn_recompute="off")
    assert barrier(curve)["loss"] == 0.0 and barrier(curve)["error"] == 0.0


@pytest.mark.parametrize("name", ["lenet_300_100", "lenet5", "conv4", "vgg11", "resnet20"])
def test_activation_matching_recovers_a_random_permutation(name):
    model = _network(name, 5)
    spec = spec_of(model)
    b = model.state_dict()
    perms = random_permutation(spec, torch.Generator().manual_seed(6))
    model_a, model_b = _copy(model), _copy(model)
    model_a.load_state_dict(apply_permutation(b, spec, perms))
    x = _inputs(model, 256, 7)
    match = activation_matching(spec, model_a, model_b, x, batch_size=100)
    moments = probe_moments(model_a, [p for g in spec.groups for p in g.probes], x, 100)
    for group in spec.groups:
        # A unit that is always 0 (dead after a ReLU) correlates with nothing; any dead unit may
        # take its place, and the function is the same. Every live unit must find itself.
        live = torch.stack([moments[p].std for p in group.probes]).amax(0) > 0
        assert live.float().mean() > 0.5
        assert torch.equal(match.perms[group.name][live], perms[group.name][live]), group.name


def test_a_one_hidden_layer_network_converges_in_one_pass():
    from landscape.models.mlp import MLP
    torch.manual_seed(0)
    a, b = (MLP((1, 8, 8), 10, hidden=(40,)) for _ in range(2))
    spec = spec_of(a)
    assert len(spec.groups) == 1
    params = {n for n, _ in a.named_parameters()}
    match = weight_matching(spec, a.state_dict(), b.state_dict(), params, generator=torch.Generator().manual_seed(0))
    assert match.passes == 1 and match.passes_run == 2
    assert match.objective[1] > match.objective[0]
    assert match.objective[2] == match.objective[1]


@pytest.mark.parametrize("name", ["conv4", "resnet20"])
def test_the_objective_never_decreases_between_passes(name):
    a, b = _network(name, 8), _network(name, 9)
    spec = spec_of(a)
    params = {n for n, _ in a.named_parameters()}
    match = weight_matching(spec, a.state_dict(), b.state_dict(), params, generator=torch.Generator().manual_seed(1))
    assert match.passes >= 2  # several groups interact: more than one pass is needed
    assert all(later >= earlier for earlier, later in zip(match.objective, match.objective[1:]))
    assert match.objective[-1] > match.objective[0]


@pytest.mark.parametrize("name", ["lenet_300_100", "lenet5"])
def test_repair_gives_every_channel_the_target_statistics(name):
    a, b = _network(name, 10), _network(name, 11)
    model = _copy(a)
    probes = repair_probes(model)
    x = _inputs(a, 300, 12)
    stats_a = probe_moments(_copy(a), probes, x, 100)
    stats_b = probe_moments(_copy(b), probes, x, 100)
    alpha = 0.3
    middle = {k: torch.lerp(a.state_dict()[k], b.state_dict()[k], alpha) for k in a.state_dict()}
    goal = targets(stats_a, stats_b, alpha)
    repaired = repair_state(model, middle, probes, goal, x, 100)
    model.load_state_dict(repaired)
    after = probe_moments(model, probes, x, 100)
    model.load_state_dict(middle)
    before = probe_moments(model, probes, x, 100)
    for p in probes:
        torch.testing.assert_close(after[p].mean, goal[p][0], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(after[p].std, goal[p][1], rtol=1e-4, atol=1e-5)
        # ...which the plain interpolation does not have (variance collapse).
        assert not torch.allclose(before[p].std, goal[p][1], rtol=1e-2)


def test_repair_refuses_batchnorm_networks():
    with pytest.raises(ConfigError, match="BatchNorm recomputation"):
        repair_probes(_network("vgg11", 0))


def test_a_model_without_a_permutation_spec_is_named():
    with pytest.raises(ConfigError, match="permutation_spec"):
        spec_of(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)))


def test_the_3x512_mlp_has_ainsworths_shape():
    model = build_model("mlp_3x512", (1, 28, 28), 10, seed=0)
    assert [tuple(p.shape) for n, p in model.named_parameters() if n.endswith("weight")] == [
        (512, 784), (512, 512), (512, 512), (10, 512)]
    assert sum(p.numel() for p in model.parameters()) == 932_362 and model.output_layer == "fc4.weight"
