"""landscape.geometry against exact references: torch.func.hessian on tiny networks, hand-made masks,
one-point-at-a-time evaluation."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, hessian

from landscape.errors import ConfigError
from landscape.geometry import (Grid, HessianOperator, grid_axis, hutchinson_trace, lanczos_top, per_layer,
                                plane_through, power_top, random_direction, slq_density, surface,
                                trajectory_plane)
from landscape.geometry.directions import filter_norms
from landscape.geometry.surface import stacked_points


def tiny(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()


def data(n: int = 40, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (n,), generator=g)


def exact_hessian(model, x, y, names=None):
    state = dict(model.state_dict())
    op = HessianOperator(model, state, x, y, names=names)
    flat = op.flatten(op.params)

    def loss(v):
        return F.cross_entropy(functional_call(model, {**op.unflatten(v), **op.fixed}, (x,)), y)

    return hessian(loss)(flat), op


def relative(a, b):
    return float((torch.as_tensor(a) - torch.as_tensor(b)).abs().max() / torch.as_tensor(b).abs().max())


@pytest.mark.parametrize("cache", [True, False])
def test_products_equal_exact_hessian_times_vector(cache):
    model = tiny()
    x, y = data()
    h, _ = exact_hessian(model, x, y)
    # several passes, unequal last one: the weighting must make it the full-set product
    op = HessianOperator(model, dict(model.state_dict()), x, y, batch_size=7, cache=cache)
    v = torch.randn(3, op.size, dtype=torch.float64)
    assert torch.allclose(op.mm(v), v @ h.T, rtol=1e-10, atol=1e-12)
    assert torch.allclose(op.mv(v[1]), h @ v[1], rtol=1e-10, atol=1e-12)  # the cached maps are reused


def test_top_eigenvalues_and_trace_equal_exact():
    model = tiny()
    x, y = data()
    h, op = exact_hessian(model, x, y)
    exact = torch.linalg.eigvalsh(h).flip(0)
    eig = lanczos_top(op, 3, steps=op.dim)
    assert relative(eig.values, exact[:3]) < 1e-4
    early = lanczos_top(op, 1, steps=op.dim, tol=1e-10)  # stops once converged, still exact
    assert relative(early.values, exact[:1]) < 1e-4 and early.steps < op.dim
    for value, vec in zip(eig.values, eig.vectors):  # eigenvectors too
        assert torch.allclose(h @ vec, value * vec, atol=1e-6)
    power = power_top(op, 1, iterations=2000, tol=1e-12)
    top_magnitude = exact[exact.abs().argmax()]
    assert relative(power.values[0], top_magnitude) < 1e-4
    trace = hutchinson_trace(op, probes=400, generator=torch.Generator().manual_seed(3))
    assert abs(trace.estimate - float(torch.trace(h))) < 3 * trace.stderr
    assert trace.stderr > 0


def test_slq_density_integrates_to_one_and_matches_moments():
    model = tiny()
    x, y = data()
    h, op = exact_hessian(model, x, y)
    n = op.dim
    density = slq_density(op, probes=64, steps=12, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(density.weights.sum(1), torch.ones(64, dtype=torch.float64), atol=1e-10)
    grid_step = float(density.grid[1] - density.grid[0])
    assert abs(float(density.smoothed.sum()) * grid_step - 1.0) < 1e-3
    # Gauss quadrature is exact for low moments, probe by probe: Σ τθᵖ = vᵀHᵖv / vᵀv.
    regenerated = op.rademacher(64, torch.Generator().manual_seed(5))
    v = regenerated / regenerated.norm(dim=1, keepdim=True)
    assert torch.allclose(density.moment(1), ((v @ h) * v).sum(1), atol=1e-9)
    assert torch.allclose(density.moment(2), ((v @ h @ h) * v).sum(1), atol=1e-9)
    # ... and over the probes they estimate tr(H)/n and tr(H²)/n.
    for p, exact in ((1, torch.trace(h) / n), (2, torch.trace(h @ h) / n)):
        m = density.moment(p)
        assert abs(float(m.mean() - exact)) < 3 * float(m.std() / len(m) ** 0.5)


def test_per_layer_blocks_equal_diagonal_blocks():
    model = tiny()
    x, y = data()
    h, op = exact_hessian(model, x, y)
    blocks = per_layer(model, dict(model.state_dict()), x, y, k=2, steps=100, probes=300,
                       seed_generator=lambda i: torch.Generator().manual_seed(i))
    offsets = {}
    start = 0
    for name, size in zip(op.names, op.sizes):
        offsets[name] = (start, start + size)
        start += size
    for layer in ("0", "2"):
        lo, hi = offsets[f"{layer}.weight"][0], offsets[f"{layer}.bias"][1]
        block = h[lo:hi, lo:hi]
        exact = torch.linalg.eigvalsh(block).flip(0)
        assert relative(blocks[layer]["eigenvalues"], exact[:2]) < 1e-4
        assert abs(blocks[layer]["trace"] - float(torch.trace(block))) < 3 * blocks[layer]["trace_stderr"]


def test_ticket_eigenvalues_equal_exact_hessian_without_pruned_rows():
    model = tiny()
    x, y = data()
    g = torch.Generator().manual_seed(9)
    mask = {"0.weight": (torch.rand(6, 4, generator=g) > 0.5), "2.weight": (torch.rand(3, 6, generator=g) > 0.4)}
    state = dict(model.state_dict())
    for k, m in mask.items():
        state[k] = state[k] * m
    model.load_state_dict(state)
    h, _ = exact_hessian(model, x, y)
    op = HessianOperator(model, state, x, y, mask=mask)
    keep = op.active
    assert op.dim == int(keep.sum()) < op.size
    exact = torch.linalg.eigvalsh(h[keep][:, keep]).flip(0)
    eig = lanczos_top(op, 3, steps=op.dim)
    assert relative(eig.values, exact[:3]) < 1e-4
    assert (eig.vectors[:, ~keep] == 0).all()
    # The unrestricted Hessian has a different top eigenvalue: the restriction is not a no-op.
    assert relative(torch.linalg.eigvalsh(h)[-1], exact[0]) > 1e-3
    with pytest.raises(ConfigError, match="more than the"):
        lanczos_top(op, op.dim + 1)


# ------------------------------------------------------------------------------------------------
# Surfaces
# ------------------------------------------------------------------------------------------------

class ConvBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


def conv_net(seed=0):
    torch.manual_seed(seed)
    model = ConvBN()
    model.train()
    with torch.no_grad():  # give the BatchNorm real statistics
        for _ in range(3):
            model(torch.randn(32, 1, 6, 6))
    return model.eval()


def images(n=48, seed=2):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 6, 6, generator=g), torch.randint(0, 3, (n,), generator=g)


def params_of(model):
    return [n for n, _ in model.named_parameters()]


def module_loss(model, state, x, y):
    model = type(model)() if not isinstance(model, nn.Sequential) else model
    model.load_state_dict(state)
    model.eval()
    with torch.no_grad():
        return float(F.cross_entropy(model(x), y, reduction="sum").double() / len(x))


def test_filter_normalised_direction_has_filter_norms_and_skips_biases_bn():
    model = conv_net()
    state = dict(model.state_dict())
    d = random_direction(state, params_of(model), torch.Generator().manual_seed(0), norm="filter")
    for name in ("conv.weight", "fc.weight"):
        assert torch.allclose(filter_norms(d[name]), filter_norms(state[name]), rtol=1e-5)
    for name in ("conv.bias", "bn.weight", "bn.bias", "bn.running_mean", "fc.bias"):
        assert (d[name] == 0).all()
    layer = random_direction(state, params_of(model), torch.Generator().manual_seed(0), norm="layer")
    assert torch.allclose(layer["conv.weight"].norm(), state["conv.weight"].norm(), rtol=1e-5)
    with pytest.raises(ConfigError, match="unknown norm"):
        random_direction(state, params_of(model), torch.Generator(), norm="filters")


def test_direction_zero_on_pruned_weights():
    model = conv_net()
    state = dict(model.state_dict())
    mask = {"conv.weight": torch.rand(4, 1, 3, 3) > 0.5, "fc.weight": torch.rand(3, 144) > 0.8}
    mask["conv.weight"][0] = False  # a filter with nothing left: a zero direction there, not NaN
    masked = {k: v * mask[k] if k in mask else v for k, v in state.items()}
    d = random_direction(masked, params_of(model), torch.Generator().manual_seed(1), mask=mask)
    for name, m in mask.items():
        assert (d[name][~m] == 0).all() and torch.isfinite(d[name]).all()
        assert (d[name][m] != 0).any()
        assert torch.allclose(filter_norms(d[name]), filter_norms(masked[name]), rtol=1e-5)


@pytest.mark.parametrize("recompute", [False, True])
def test_surface_centre_is_the_network_and_batched_equals_one_at_a_time(recompute):
    model = conv_net()
    state = dict(model.state_dict())
    x, y = images()
    g = torch.Generator().manual_seed(4)
    dirs = [random_direction(state, params_of(model), g) for _ in range(2)]
    grid = Grid(grid_axis(5, -1, 1), grid_axis(3, -0.5, 0.5))
    bn_x = images(64, seed=8)[0]
    kw = dict(bn_recompute=recompute, bn_x=bn_x, bn_batches=2, batch_size=16)
    batched = surface(model, state, dirs, grid, x, y, chunk=4, **kw)
    one = surface(model, state, dirs, grid, x, y, method="sequential", **kw)
    assert batched.points_per_pass == 4 and batched.bn_recompute == recompute
    assert batched.input_layer_once == (not recompute)  # the conv reads the input: evaluated once per batch
    assert torch.allclose(batched.loss, one.loss, rtol=1e-5, atol=1e-6)
    assert torch.equal(batched.error, one.error)
    centre = batched.loss[1, 2]
    if not recompute:
        assert abs(float(centre) - module_loss(model, state, x, y)) < 1e-6
        point = stacked_points(state, dirs, torch.tensor([[0.0, 0.0]], dtype=torch.float64))
        assert all(torch.equal(point[k][0], state[k]) for k in state)  # bit for bit
    assert batched.loss.std() > 0


def test_plane_reproduces_the_three_networks():
    nets = [conv_net(seed) for seed in range(3)]
    states = [dict(n.state_dict()) for n in nets]
    x, y = images()
    plane = plane_through(*states, params_of(nets[0]))
    assert torch.allclose(plane.points[:2], torch.tensor([[0.0, 0.0], [1.0, 0.0]], dtype=torch.float64))
    assert plane.points[2, 1] > 0
    coeff = plane.points
    for i in range(3):
        grid = Grid(coeff[i:i + 1, 0].clone(), coeff[i:i + 1, 1].clone())
        s = surface(nets[0], plane.origin, [plane.d1, plane.d2], grid, x, y, batch_size=16)
        assert abs(float(s.loss.flatten()[0]) - module_loss(nets[0], states[i], x, y)) < 1e-5
    # orthonormal coordinates: D1 ⟂ D2 and of equal length over the parameters
    names = params_of(nets[0])
    dot = sum(float((plane.d1[n] * plane.d2[n]).sum()) for n in names)
    n1 = sum(float((plane.d1[n] ** 2).sum()) for n in names) ** 0.5
    n2 = sum(float((plane.d2[n] ** 2).sum()) for n in names) ** 0.5
    assert abs(dot) < 1e-4 * n1 * n2 and abs(n1 - n2) < 1e-4 * n1 and abs(n1 - plane.unit) < 1e-4 * n1
    with pytest.raises(ConfigError, match="one line"):
        plane_through(states[0], states[1], states[1], names)


def test_trajectory_plane_and_its_errors():
    model = tiny()
    state = dict(model.state_dict())
    g = torch.Generator().manual_seed(0)
    states = [{k: v + torch.randn(v.shape, generator=g, dtype=v.dtype) * (4 - t) for k, v in state.items()}
              for t in range(4)]
    tp = trajectory_plane(states, params_of(model))
    assert tp.path.shape == (4, 2) and torch.equal(tp.path[-1], torch.zeros(2, dtype=tp.path.dtype))
    assert 0 < float(tp.explained.sum()) <= 1 + 1e-12
    with pytest.raises(ConfigError, match="at least 3 checkpoints"):
        trajectory_plane(states[:2], params_of(model))


def test_bad_grids():
    with pytest.raises(ConfigError, match="too small"):
        grid_axis(1, -1, 1)
    with pytest.raises(ConfigError, match="no width"):
        grid_axis(5, 1, 1)
    assert 0.0 in grid_axis(51, -1, 1).tolist()
