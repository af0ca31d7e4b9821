"""The engine's science: a population of K is K separate runs, masks hold, a continued run is the
uninterrupted run, and checkpoints are the weights at their step."""
import copy

import pytest
import torch

from landscape.models import build_model, prunable_parameters
from landscape.train.config import recipe
from landscape.train.engine import EvalSet, Member, Plan, train_population


def data(n=256, shape=(1, 8, 8), classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(classes, (n,), generator=g)
    x = torch.randn(n, *shape, generator=g) + y.view(-1, 1, 1, 1).float() * 0.5
    return x, y


def plan(model="lenet_300_100", steps="24it", **kw):
    defaults = dict(batch_size=32, eval_every="8it", checkpoint_at="0,8it,end", lr=0.05, schedule="constant")
    config = recipe(model, "synthetic", steps=steps, **{**defaults, **kw})
    return Plan.make(config, 256)


def members(model="lenet_300_100", seeds=(0, 1, 2), shape=(1, 8, 8), masks=None, width=1.0):
    out = []
    for i, s in enumerate(seeds):
        net = build_model(model, shape, 4, seed=s, width=width)
        out.append(Member(net, data_seed=10 + s, augment_seed=20 + s, mask=masks[i] if masks else None))
    return out


class Recorder:
    def __init__(self):
        self.evals, self.checkpoints = {}, {}

    def on_eval(self, step, metrics):
        self.evals[step] = metrics

    def on_checkpoint(self, step, states, *, requested):
        if requested:
            self.checkpoints[step] = states

    def on_progress(self, step):
        pass


def run(p, ms, path, start_step=0, x=None, y=None):
    x, y = (x, y) if x is not None else data()
    rec = Recorder()
    test = EvalSet("test", *data(64, shape=tuple(x.shape[1:]), seed=1))
    result = train_population(p, ms, x, y, [test], start_step=start_step,
                              hooks=rec, path=path)
    return result, rec


@pytest.mark.parametrize("optimizer, extra", [("sgd", dict(momentum=0.9, weight_decay=1e-3)), ("adam", {}),
                                              ("sgd", dict(momentum=0.9, nesterov=True))])
def test_population_of_k_equals_k_separate_runs(optimizer, extra):
    p = plan(optimizer=optimizer, **extra)
    together, _ = run(p, members(), "loop")
    for i, seed in enumerate((0, 1, 2)):
        alone, _ = run(p, members(seeds=(seed,)), "loop")
        for name, tensor in alone.states[0].model.items():
            assert torch.equal(tensor, together.states[i].model[name]), name


@pytest.fixture
def float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


@pytest.mark.parametrize("model, shape, width", [("lenet_300_100", (1, 8, 8), 1.0), ("resnet20", (3, 8, 8), 0.25)])
def test_vmap_and_loop_paths_agree(model, shape, width, float64):
    """BatchNorm included: running statistics are stacked per member under vmap.

    In float64, so the comparison can be tight: in float32 the 1-ulp differences between batched
    and plain matmuls after one step are amplified by training (ReLUs flipping), which says
    nothing about whether the two paths do the same arithmetic."""
    p = plan(model, steps="12it", optimizer="sgd", momentum=0.9, lr=0.05, eval_every="4it",
             checkpoint_at="0,end")
    x, y = data(shape=shape)
    loop, rec_loop = run(p, members(model, shape=shape, width=width), "loop", x=x, y=y)
    vm, rec_vm = run(p, members(model, shape=shape, width=width), "vmap", x=x, y=y)
    assert vm.path == "vmap" and loop.path == "loop"
    for a, b in zip(loop.states, vm.states):
        for name in a.model:
            torch.testing.assert_close(a.model[name], b.model[name], rtol=1e-9, atol=1e-11)
        for name in a.optimizer:
            for key in a.optimizer[name]:
                torch.testing.assert_close(a.optimizer[name][key], b.optimizer[name][key], rtol=1e-9, atol=1e-11)
    for step in rec_loop.evals:
        for a, b in zip(rec_loop.evals[step], rec_vm.evals[step]):
            assert a["test/acc"] == b["test/acc"]
            assert a["test/loss"] == pytest.approx(b["test/loss"], rel=1e-9)


def random_masks(seed, model="lenet_300_100", density=0.3):
    net = build_model(model, (1, 8, 8), 4, seed=0)
    g = torch.Generator().manual_seed(seed)
    return {n: (torch.rand(p.shape, generator=g) < density).float() for n, p in prunable_parameters(net).items()}


@pytest.mark.parametrize("path", ["loop", "vmap"])
@pytest.mark.parametrize("optimizer, extra", [("sgd", dict(momentum=0.9, weight_decay=1e-2)), ("adam", dict(weight_decay=1e-2))])
def test_masked_weights_stay_zero_and_keep_no_momentum(path, optimizer, extra):
    masks = [random_masks(1), None]
    p = plan(optimizer=optimizer, **extra)
    result, rec = run(p, members(seeds=(0, 1), masks=masks), path)
    start = members(seeds=(0,))[0].model.state_dict()
    for step, states in rec.checkpoints.items():
        for name, mask in masks[0].items():
            w = states[0].model[name]
            assert torch.all(w[mask == 0] == 0), (step, name)
            for buf in states[0].optimizer.get(name, {}).values():
                if buf.shape == mask.shape:
                    assert torch.all(buf[mask == 0] == 0), (step, name)
            if step > 0:  # survivors did train
                assert not torch.equal(w[mask == 1], start[name][mask == 1])
    # the unmasked member is untouched by its neighbour's mask
    assert (result.states[1].model["fc1.weight"] != 0).float().mean() > 0.99


@pytest.mark.parametrize("path", ["loop", "vmap"])
def test_continuing_from_a_checkpoint_is_the_uninterrupted_run(path):
    p = plan(optimizer="sgd", momentum=0.9, schedule="cosine", augment="crop-flip", model="conv2")
    shape = (3, 8, 8)
    x, y = data(shape=shape)
    full, rec = run(p, members("conv2", shape=shape), path, x=x, y=y)
    resumed = members("conv2", shape=shape)
    for member, state in zip(resumed, rec.checkpoints[8]):
        member.model.load_state_dict(state.model)
        member.optimizer_state = state.optimizer
    second, _ = run(p, resumed, path, start_step=8, x=x, y=y)
    for a, b in zip(full.states, second.states):
        for name in a.model:
            assert torch.equal(a.model[name], b.model[name]), name


def test_checkpoint_zero_is_theta_zero_and_steps_are_counted():
    p = plan()
    ms = members(seeds=(5,))
    theta0 = copy.deepcopy(ms[0].model.state_dict())
    result, rec = run(p, ms, "loop")
    assert sorted(rec.checkpoints) == [0, 8, 24]
    for name, tensor in theta0.items():
        assert torch.equal(rec.checkpoints[0][0].model[name], tensor)
        assert torch.equal(rec.checkpoints[24][0].model[name], result.states[0].model[name])
    assert sorted(rec.evals) == [0, 8, 16, 24]
    assert "train_running/loss" not in rec.evals[0][0] and "train_running/loss" in rec.evals[8][0]
    assert rec.evals[24][0]["test/acc"] > rec.evals[0][0]["test/acc"]


def test_data_order_differs_by_seed_and_augmentation_is_seeded():
    p = plan(augment="crop-flip", model="conv2", optimizer="sgd")
    shape = (3, 8, 8)
    x, y = data(shape=shape)
    a, _ = run(p, members("conv2", seeds=(0,), shape=shape), "loop", x=x, y=y)
    b, _ = run(p, members("conv2", seeds=(0,), shape=shape), "loop", x=x, y=y)
    assert all(torch.equal(a.states[0].model[n], b.states[0].model[n]) for n in a.states[0].model)
    other = members("conv2", seeds=(0,), shape=shape)
    other[0].augment_seed += 1
    c, _ = run(p, other, "loop", x=x, y=y)
    assert not torch.equal(a.states[0].model["fc1.weight"], c.states[0].model["fc1.weight"])
