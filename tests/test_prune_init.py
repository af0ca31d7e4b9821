"""Pruning at initialisation: SNIP, GraSP and SynFlow against exact references, exact densities."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.func import functional_call, hessian

from landscape.errors import ConfigError
from landscape.models import build_model, prunable_parameters
from landscape.prune import layer_report, prune_at_init
from landscape.prune.at_init import (
    balanced_sample, hessian_gradient, snip_scores, synflow_mask, synflow_objective, synflow_scores,
)


def tiny(bias: bool = True, act=nn.Tanh) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 5, bias=bias), act(), nn.Linear(5, 4, bias=bias), act(), nn.Linear(4, 3, bias=bias))


def data(n=12, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=g), torch.randint(0, 3, (n,), generator=g)


def test_snip_is_abs_gradient_times_weight_summed_over_batches():
    model, (x, y) = tiny(), data()
    scores = snip_scores(model, x, y, batch_size=5)  # batches of 5, 5, 2
    by_hand = copy_model = tiny()
    losses = sum(nn.functional.cross_entropy(copy_model(x[i:i + 5]), y[i:i + 5]) for i in range(0, 12, 5))
    losses.backward()
    for name, p in prunable_parameters(by_hand).items():
        torch.testing.assert_close(scores[name], (p.grad * p.detach()).abs().double())
    assert all(p.grad is None for p in model.parameters())  # the scored network is untouched


def test_grasp_hg_equals_exact_hessian_gradient_product():
    model, (x, y) = tiny(), data(n=8)
    temperature = 200.0
    names = list(prunable_parameters(model))
    fixed = {n: p.detach() for n, p in model.named_parameters() if n not in names}

    def loss(weights):
        out = functional_call(model, {**fixed, **weights}, (x,))
        return nn.functional.cross_entropy(out / temperature, y)

    weights = {n: p.detach().clone().requires_grad_() for n, p in prunable_parameters(model).items()}
    flat_names = list(weights)
    g = torch.autograd.grad(loss(weights), list(weights.values()))
    g_flat = torch.cat([t.reshape(-1) for t in g]).double()
    h = hessian(loss)({n: w.detach() for n, w in weights.items()})
    sizes = [weights[n].numel() for n in flat_names]
    rows = [torch.cat([h[a][b].reshape(weights[a].numel(), weights[b].numel()) for b in flat_names], 1)
            for a in flat_names]
    exact = torch.cat(rows, 0).double() @ g_flat
    got = hessian_gradient(model, x, y, batch_size=len(x), temperature=temperature)
    got_flat = torch.cat([got[n].reshape(-1) for n in flat_names]).double()
    assert exact.abs().max() > 0
    torch.testing.assert_close(got_flat, exact, rtol=1e-4, atol=1e-9)
    assert sum(sizes) == len(exact)


def test_synflow_objective_is_all_ones_forward_of_abs_weights():
    model = tiny(act=nn.ReLU)
    r, _ = synflow_objective(model, (3,))
    h = torch.ones(1, 3, dtype=torch.float64)
    for layer in (model[0], model[2], model[4]):
        h = torch.relu(h @ layer.weight.detach().double().abs().T + layer.bias.detach().double().abs())
    torch.testing.assert_close(r, h.sum())


def test_synflow_conserves_saliency_per_layer_in_a_bias_free_relu_net():
    model = tiny(bias=False, act=nn.ReLU)
    r = synflow_objective(model, (3,))[0].detach()
    sums = [float(s.sum()) for s in synflow_scores(model, (3,)).values()]
    assert len(sums) == 3
    for s in sums:
        assert math.isclose(s, r.item(), rel_tol=1e-10)


def test_synflow_avoids_layer_collapse_where_global_magnitude_empties_a_layer():
    model = build_model("vgg16", (3, 8, 8), 10, seed=0, width=0.25)
    magnitude = layer_report(prune_at_init(model, "magnitude", 1e-3, scope="global"))
    synflow = layer_report(synflow_mask(model, (3, 8, 8), density=1e-3, scope="global", iterations=100))
    assert min(k for k, _ in magnitude.values()) == 0
    assert min(k for k, _ in synflow.values()) >= 1
    total = sum(t for _, t in synflow.values())
    assert sum(k for k, _ in synflow.values()) == math.floor(1e-3 * total) == sum(k for k, _ in magnitude.values())


@pytest.mark.parametrize("method", ["random", "magnitude", "snip", "grasp", "grasp-abs", "synflow"])
@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_every_method_keeps_exactly_the_requested_density(method, scope):
    model = build_model("lenet_300_100", (1, 8, 8), 10, seed=0, width=0.25)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(20, 1, 8, 8, generator=g), torch.arange(20) % 10
    mask = prune_at_init(model, method, 0.05, scope=scope, x=x, y=y, batch_size=8, iterations=5, seed=3)
    report = layer_report(mask)
    total = sum(t for _, t in report.values())
    if scope == "global":
        assert sum(k for k, _ in report.values()) == math.floor(0.05 * total)
    else:
        assert all(k == math.floor(0.05 * t) for k, t in report.values())
    assert set(mask) == set(prunable_parameters(model))  # biases never masked


@pytest.mark.parametrize("bad", [dict(method="obd"), dict(density=1.0), dict(density=0), dict(iterations=0)])
def test_bad_inputs_raise_config_errors(bad):
    model = build_model("lenet_300_100", (1, 8, 8), 10, seed=0, width=0.25)
    args = dict(method="synflow", density=0.1, iterations=3) | bad
    with pytest.raises(ConfigError):
        prune_at_init(model, args["method"], args["density"], iterations=args["iterations"])


def test_balanced_sample_takes_per_class_examples_reproducibly():
    labels = torch.arange(100) % 7
    a = balanced_sample(labels, 3, torch.Generator().manual_seed(0))
    b = balanced_sample(labels, 3, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and len(a) == 21
    assert torch.bincount(labels[a]).tolist() == [3] * 7
