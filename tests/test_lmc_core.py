"""Linear mode connectivity core: curves, barriers, BatchNorm recomputation, distances."""
from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from landscape.errors import ConfigError
from landscape.lmc import (
    Curve, LinearPath, alpha_grid, angular_distance, barrier, connected_fraction, disagreement,
    interpolation_curve, l2_distance, mask_overlap, normalized_l2_distance, per_example_barrier,
    time_interpolation,
)
from landscape.batched.chunking import chunks
from landscape.models import build_model

DIGITS, SMALL_RGB = (1, 8, 8), (3, 8, 8)


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def data(shape, n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *shape, generator=g), torch.randint(0, 10, (n,), generator=g)


@torch.no_grad()
def direct(model: nn.Module, weights: dict, x, y) -> tuple[float, float, torch.Tensor]:
    """(mean loss, error, per-example loss) of `weights` loaded into a copy of `model`, eval mode."""
    net = copy.deepcopy(model)
    net.load_state_dict(weights)
    net.eval()
    logits = net(x)
    losses = F.cross_entropy(logits, y, reduction="none")
    return float(losses.double().mean()), float((logits.argmax(1) != y).double().mean()), losses


@torch.no_grad()
def with_statistics(model: nn.Module, seed: int) -> dict:
    """A BN network's state after a few train-mode batches: running stats that are not (0, 1)."""
    net = copy.deepcopy(model).train()
    for i in range(3):
        net(data(SMALL_RGB, 32, seed * 10 + i)[0] * 2 + 0.5)
    return state(net)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """These networks and batches are tiny: intra-op threads add only synchronisation, and on a
    busy machine (other test runs sharing the cores) spinning threads slowed this file from
    seconds to minutes. Restored afterwards for the rest of the session."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def mlp():
    return build_model("lenet_300_100", DIGITS, 10, seed=0)


@pytest.fixture(scope="module")
def mlp_pair(mlp):
    return state(mlp), state(build_model("lenet_300_100", DIGITS, 10, seed=1))


@pytest.fixture(scope="module")
def resnet():
    return build_model("resnet20", SMALL_RGB, 10, seed=0, width=0.25)


@pytest.fixture(scope="module")
def resnet_pair(resnet):
    other = build_model("resnet20", SMALL_RGB, 10, seed=1, width=0.25)
    return with_statistics(resnet, 1), with_statistics(other, 2)


# --- identical networks -------------------------------------------------------------------------

def assert_zero_barrier(curve: Curve) -> None:
    result = barrier(curve)
    for key in ("error", "loss", "error_straight", "loss_straight"):
        assert result[key] == 0.0, key
    assert result["stable"]


def test_identical_mlp_has_exactly_zero_barrier(mlp, mlp_pair):
    x, y = data(DIGITS, 200, 0)
    a = mlp_pair[0]
    for method in ("batched", "sequential"):
        curve = interpolation_curve(mlp, a, state(mlp), x, y, alphas=30, method=method, per_example=True)
        assert_zero_barrier(curve)
        assert torch.equal(per_example_barrier(curve), torch.zeros(200))
        assert not curve.bn_recompute and curve.method == method and curve.mask_mode == "none"


def test_identical_bn_network_has_exactly_zero_barrier_with_recompute(resnet, resnet_pair):
    x, y = data(SMALL_RGB, 100, 0)
    bn_x = data(SMALL_RGB, 64, 1)[0]
    a = resnet_pair[0]
    for method in ("batched", "sequential"):
        curve = interpolation_curve(resnet, a, copy.deepcopy(a), x, y, alphas=30, bn_recompute="on",
                                    bn_x=bn_x, batch_size=32, alpha_chunk=7, method=method)
        assert curve.bn_recompute and curve.bn_examples == 64
        assert_zero_barrier(curve)


# --- endpoints ----------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["batched", "sequential"])
def test_endpoints_equal_the_networks_evaluated_directly(mlp, mlp_pair, resnet, resnet_pair, method):
    for model, (a, b), shape, options in [
        (mlp, mlp_pair, DIGITS, {}),
        (resnet, resnet_pair, SMALL_RGB, {"bn_recompute": "off"}),
    ]:
        x, y = data(shape, 150, 3)
        curve = interpolation_curve(model, a, b, x, y, alphas=5, batch_size=64, method=method, **options)
        assert not curve.bn_recompute
        for row, weights in ((0, a), (-1, b)):
            loss, error, _ = direct(model, weights, x, y)
            assert curve.loss[row].item() == pytest.approx(loss, rel=1e-6, abs=1e-7)
            assert curve.error[row].item() == pytest.approx(error, abs=1e-12)


@pytest.mark.parametrize("method", ["batched", "sequential"])
def test_template_and_states_are_left_unchanged(resnet, resnet_pair, method):
    before, pair = state(resnet), [copy.deepcopy(s) for s in resnet_pair]
    resnet.train()
    x, y = data(SMALL_RGB, 40, 0)
    mask = {n: torch.rand(p.shape) < 0.5 for n, p in resnet.named_parameters() if n in resnet.prunable}
    interpolation_curve(resnet, *resnet_pair, x, y, alphas=3, bn_x=x, batch_size=20, masks=(mask, mask),
                        method=method)
    assert resnet.training
    for original, after in [(before, resnet.state_dict()), *zip(pair, resnet_pair)]:
        assert all(torch.equal(v, after[k]) for k, v in original.items())


# --- batched against sequential -----------------------------------------------------------------

@pytest.mark.parametrize("chunk", [1, 4, 7, 16, 30, None])
def test_batched_equals_sequential_mlp(mlp, mlp_pair, chunk):
    x, y = data(DIGITS, 300, 4)
    ref = interpolation_curve(mlp, *mlp_pair, x, y, method="sequential", per_example=True, batch_size=128)
    got = interpolation_curve(mlp, *mlp_pair, x, y, alpha_chunk=chunk, per_example=True, batch_size=128)
    torch.testing.assert_close(got.loss, ref.loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got.error, ref.error)
    torch.testing.assert_close(got.per_example_loss, ref.per_example_loss, rtol=1e-4, atol=1e-5)
    assert got.alpha_chunk <= (chunk or 30)


@pytest.mark.parametrize("chunk", [1, 4, 7, None])
def test_batched_equals_sequential_with_batchnorm_recompute(resnet, resnet_pair, chunk):
    x, y = data(SMALL_RGB, 120, 5)
    bn_x = data(SMALL_RGB, 100, 6)[0]
    options = dict(alphas=11, bn_x=bn_x, bn_batches=2, batch_size=40)
    ref = interpolation_curve(resnet, *resnet_pair, x, y, method="sequential", **options)
    got = interpolation_curve(resnet, *resnet_pair, x, y, alpha_chunk=chunk, **options)
    assert ref.bn_recompute and got.bn_recompute and got.bn_examples == 80
    torch.testing.assert_close(got.loss, ref.loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got.error, ref.error)


def test_chunks_cover_every_point_once():
    for points in (1, 2, 7, 30):
        for size in (1, 3, 4, 7, 30, 100):
            parts = chunks(points, size)
            assert [i for p in parts for i in range(p.start, p.stop)] == list(range(points))
            assert max(p.stop - p.start for p in parts) <= size


def test_recompute_changes_an_interpolated_bn_network(resnet, resnet_pair):
    x, y = data(SMALL_RGB, 80, 7)
    off = interpolation_curve(resnet, *resnet_pair, x, y, alphas=3, bn_recompute="off")
    on = interpolation_curve(resnet, *resnet_pair, x, y, alphas=3, bn_x=x, batch_size=40)
    assert not off.bn_recompute and on.bn_recompute
    assert not torch.allclose(off.loss[1], on.loss[1])


# --- constructed cases with known answers -------------------------------------------------------

class TwoLayer(nn.Module):
    """logits = W2 · relu(W1 · x), no biases: positively homogeneous of degree 2 in the weights."""

    def __init__(self, w1: torch.Tensor, w2: torch.Tensor):
        super().__init__()
        self.fc1 = nn.Linear(w1.shape[1], w1.shape[0], bias=False)
        self.fc2 = nn.Linear(w2.shape[1], w2.shape[0], bias=False)
        with torch.no_grad():
            self.fc1.weight.copy_(w1)
            self.fc2.weight.copy_(w2)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


def test_permuted_hidden_units_give_a_large_barrier():
    # A: hidden unit i reads input i and votes for class i. B: the same function with the two
    # hidden units swapped. Halfway, both hidden units read both inputs and vote for both
    # classes equally: the logits tie, argmax says class 0 for everything, half the set is wrong
    # and the loss is log 2.
    eye, swap = torch.eye(2), torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    a, b = TwoLayer(eye, 5 * eye), TwoLayer(swap, 5 * swap)
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).repeat(10, 1)
    y = torch.tensor([0, 1]).repeat(10)
    for method in ("batched", "sequential"):
        curve = interpolation_curve(a, state(a), state(b), x, y, alphas=3, method=method, per_example=True)
        assert curve.error.tolist() == [0.0, 0.5, 0.0]
        endpoint_loss = math.log1p(math.exp(-5))
        result = barrier(curve)
        assert result["error"] == 0.5 and result["error_alpha"] == 0.5 and not result["stable"]
        assert result["loss"] == pytest.approx(math.log(2) - endpoint_loss, rel=1e-6)
        assert result["loss_straight"] == pytest.approx(math.log(2) - endpoint_loss, rel=1e-6)
        torch.testing.assert_close(per_example_barrier(curve), torch.full((20,), math.log(2) - endpoint_loss))
        assert connected_fraction(per_example_barrier(curve), 0.1) == 0.0


def test_a_network_and_itself_scaled():
    # θB = 2·θA, so θ(α) = (1 + α)·θA and, two layers without biases, logits(α) = (1 + α)²·logits_A.
    torch.manual_seed(0)
    net = TwoLayer(torch.randn(16, 4), torch.randn(3, 16))
    x, y = torch.randn(50, 4), torch.randint(0, 3, (50,))
    doubled = {k: 2 * v for k, v in state(net).items()}
    curve = interpolation_curve(net, state(net), doubled, x, y, alphas=9)
    with torch.no_grad():
        logits = net(x)
    for alpha, loss, error in zip(curve.alphas.tolist(), curve.loss, curve.error):
        expected = F.cross_entropy((1 + alpha) ** 2 * logits, y).item()
        assert loss.item() == pytest.approx(expected, rel=1e-5)
        assert error.item() == pytest.approx((logits.argmax(1) != y).double().mean().item())


def test_frankle_and_straight_line_barriers_differ_when_endpoints_differ():
    curve = Curve(alphas=torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64),
                  loss=torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64),
                  error=torch.tensor([0.1, 0.3, 0.5], dtype=torch.float64))
    result = barrier(curve)
    assert result["error"] == pytest.approx(0.5 - 0.3)  # max is the B endpoint itself
    assert result["error_straight"] == pytest.approx(0.0)  # on the line: no barrier above it
    assert result["loss"] == pytest.approx(1.0) and result["loss_straight"] == pytest.approx(0.0)


# --- per-example barrier ------------------------------------------------------------------------

def test_per_example_barrier_matches_brute_force(mlp, mlp_pair):
    x, y = data(DIGITS, 12, 8)
    alphas = [0.0, 0.2, 0.5, 0.7, 1.0]
    curve = interpolation_curve(mlp, *mlp_pair, x, y, alphas=alphas, per_example=True)
    path = LinearPath(*mlp_pair)
    for row, alpha in enumerate(alphas):  # the per-example losses are the interpolated network's
        torch.testing.assert_close(curve.per_example_loss[row], direct(mlp, path.at(alpha), x, y)[2])
    losses = curve.per_example_loss.tolist()
    expected = [max(losses[r][i] - ((1 - a) * losses[0][i] + a * losses[-1][i]) for r, a in enumerate(alphas))
                for i in range(12)]
    got = per_example_barrier(curve)
    assert got.shape == (12,) and got.dtype == torch.float32
    torch.testing.assert_close(got, torch.tensor(expected), rtol=1e-5, atol=1e-6)
    assert connected_fraction(got, float("inf")) == 1.0
    assert connected_fraction(got, got.median().item()) == pytest.approx((got <= got.median()).float().mean().item())


# --- masks --------------------------------------------------------------------------------------

def random_masks(model, density, seed):
    g = torch.Generator().manual_seed(seed)
    return {n: torch.rand(dict(model.named_parameters())[n].shape, generator=g) < density for n in model.prunable}


def test_different_masks_interpolate_masked_weights_over_the_union(mlp, mlp_pair):
    a, b = mlp_pair
    mask_a, mask_b = random_masks(mlp, 0.3, 1), random_masks(mlp, 0.3, 2)
    x, y = data(DIGITS, 60, 9)
    alpha = 0.3
    curve = interpolation_curve(mlp, a, b, x, y, alphas=[0.0, alpha, 1.0], masks=(mask_a, mask_b), per_example=True)
    manual = {k: (1 - alpha) * a[k] * mask_a.get(k, 1) + alpha * b[k] * mask_b.get(k, 1) for k in a}
    torch.testing.assert_close(curve.per_example_loss[1], direct(mlp, manual, x, y)[2], rtol=1e-5, atol=1e-6)
    masked_a = {k: a[k] * mask_a.get(k, 1) for k in a}
    torch.testing.assert_close(curve.per_example_loss[0], direct(mlp, masked_a, x, y)[2])
    assert curve.mask_mode == "union"
    both = sum(int((mask_a[n] & mask_b[n]).sum()) for n in mask_a)
    either = sum(int((mask_a[n] | mask_b[n]).sum()) for n in mask_a)
    assert curve.mask_jaccard == pytest.approx(both / either)
    assert curve.metadata()["mask_mode"] == "union"


def test_shared_mask(mlp, mlp_pair):
    mask = random_masks(mlp, 0.5, 3)
    x, y = data(DIGITS, 30, 10)
    curve = interpolation_curve(mlp, *mlp_pair, x, y, alphas=3, masks=(mask, {k: v.float() for k, v in mask.items()}))
    assert curve.mask_mode == "shared" and curve.mask_jaccard == 1.0


# --- distances ----------------------------------------------------------------------------------

def test_weight_distances():
    v = {"w": torch.tensor([3.0, 4.0]), "b": torch.tensor([1.0])}
    zero = {"w": torch.zeros(2), "b": torch.zeros(1)}
    assert l2_distance(v, v, ["w", "b"]) == 0.0
    assert l2_distance(v, zero, ["w"]) == 5.0
    assert angular_distance(v, v, ["w", "b"]) == 0.0
    assert angular_distance(v, {k: -t for k, t in v.items()}, ["w", "b"]) == 2.0  # opposite
    assert angular_distance({"w": torch.tensor([1.0, 0.0])}, {"w": torch.tensor([0.0, 2.0])}, ["w"]) == pytest.approx(1.0)
    assert angular_distance({"w": torch.tensor([1.0, 0.0])}, {"w": torch.tensor([1.0, 1.0])}, ["w"]) == pytest.approx(0.5)
    assert math.isnan(angular_distance(v, zero, ["w"]))
    parent = {"w": torch.tensor([1.0, 1.0])}
    a, b = {"w": torch.tensor([2.0, 1.0])}, {"w": torch.tensor([1.0, 2.0])}  # orthogonal unit moves
    assert normalized_l2_distance(a, b, parent, ["w"]) == pytest.approx(math.sqrt(2))
    assert normalized_l2_distance(a, a, parent, ["w"]) == 0.0
    with pytest.raises(ConfigError):
        l2_distance(v, v, [])
    with pytest.raises(ConfigError):
        l2_distance(v, {"w": v["w"]}, ["b"])


def test_distances_on_models(mlp, mlp_pair):
    a, b = mlp_pair
    names = mlp.prunable
    assert l2_distance(a, copy.deepcopy(a), names) == 0.0
    assert l2_distance(a, b, names) > 0
    assert 0.9 < angular_distance(a, b, names) < 1.1  # independent inits are nearly orthogonal (1)
    x = data(DIGITS, 100, 11)[0]
    assert disagreement(mlp, a, copy.deepcopy(a), x, batch_size=32) == 0.0
    flipped = {k: -v if k.startswith("fc3.") else v for k, v in a.items()}  # argmax becomes argmin
    assert disagreement(mlp, a, flipped, x, batch_size=32) == 1.0


def test_disagreement_with_batchnorm(resnet, resnet_pair):
    x = data(SMALL_RGB, 50, 12)[0]
    a, b = resnet_pair
    assert disagreement(resnet, a, a, x) == 0.0
    with torch.no_grad():
        pa, pb = (copy.deepcopy(resnet).eval() for _ in range(2))
        pa.load_state_dict(a), pb.load_state_dict(b)
        expected = (pa(x).argmax(1) != pb(x).argmax(1)).double().mean().item()
    assert disagreement(resnet, a, b, x, batch_size=16) == pytest.approx(expected)


def test_mask_overlap_by_hand():
    mask_a = {"l1": torch.tensor([1, 1, 0, 0], dtype=torch.bool), "l2": torch.tensor([[1, 0], [0, 0]])}
    mask_b = {"l1": torch.tensor([1, 0, 1, 0], dtype=torch.bool), "l2": torch.tensor([[1, 0], [0, 0]])}
    overlap = mask_overlap(mask_a, mask_b)
    assert overlap["l1"] == pytest.approx(1 / 3)
    assert overlap["l2"] == 1.0
    assert overlap["overall"] == pytest.approx(2 / 4)  # kept by both: 1 + 1; kept by either: 3 + 1
    assert mask_overlap({"l": torch.zeros(3)}, {"l": torch.zeros(3)}) == {"overall": 1.0, "l": 1.0}


# --- bad input ----------------------------------------------------------------------------------

def test_bad_input_raises_config_error(mlp, mlp_pair, resnet, resnet_pair):
    a, b = mlp_pair
    x, y = data(DIGITS, 10, 13)
    for points in (1, 0, -3, True, [], [[0.0, 1.0]], [0.0, float("nan")]):
        with pytest.raises(ConfigError):
            interpolation_curve(mlp, a, b, x, y, alphas=points)
    wider = state(build_model("lenet_300_100", DIGITS, 10, seed=0, width=0.5))
    with pytest.raises(ConfigError, match="state_b does not match the template"):
        interpolation_curve(mlp, a, wider, x, y)
    with pytest.raises(ConfigError, match="state_a"):
        interpolation_curve(mlp, {k: v for k, v in a.items() if k != "fc1.bias"}, b, x, y)
    with pytest.raises(ConfigError):
        disagreement(mlp, a, wider, x)
    with pytest.raises(ConfigError):
        interpolation_curve(mlp, a, b, x, y[:5])
    with pytest.raises(ConfigError):
        interpolation_curve(mlp, a, b, x, y.float())
    for bad in ({"method": "fast"}, {"bn_recompute": "yes"}, {"batch_size": 0}, {"alpha_chunk": 0},
                {"masks": ({"fc1.weight": torch.ones(3)}, None)}, {"masks": ({"nope": torch.ones(3)}, None)},
                {"masks": {"fc1.weight": torch.ones(300, 64)}}):
        with pytest.raises(ConfigError):
            interpolation_curve(mlp, a, b, x, y, **bad)
    xr, yr = data(SMALL_RGB, 10, 14)
    for mode in ("auto", "on"):
        with pytest.raises(ConfigError, match="bn_x"):
            interpolation_curve(resnet, *resnet_pair, xr, yr, bn_recompute=mode)
    with pytest.raises(ConfigError, match="bn_x"):
        interpolation_curve(resnet, *resnet_pair, xr, yr, bn_x=x)
    curve = interpolation_curve(mlp, a, b, x, y, alphas=[0.25, 0.5, 1.0], per_example=True)
    with pytest.raises(ConfigError, match="α = 0"):
        barrier(curve)
    with pytest.raises(ConfigError):
        per_example_barrier(curve)
    with pytest.raises(ConfigError, match="per-example"):
        per_example_barrier(interpolation_curve(mlp, a, b, x, y, alphas=2))


def test_alpha_grid():
    grid = alpha_grid(30)
    assert grid.dtype == torch.float64 and len(grid) == 30 and grid[0] == 0.0 and grid[-1] == 1.0
    assert alpha_grid([0.5]).tolist() == [0.5]
    assert alpha_grid(torch.tensor([-0.5, 1.5])).tolist() == [-0.5, 1.5]


def test_on_for_a_model_without_batchnorm_is_a_no_op(mlp, mlp_pair):
    x, y = data(DIGITS, 10, 15)
    assert not interpolation_curve(mlp, *mlp_pair, x, y, alphas=2, bn_recompute="on").bn_recompute


def test_time_interpolation_smoke(mlp, mlp_pair):
    x, y = data(DIGITS, 200, 16)
    batched, sequential = time_interpolation(mlp, *mlp_pair, x, y, points=5)
    assert batched > 0 and sequential > 0
