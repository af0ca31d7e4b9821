"""The CUDA paths, checked against the CPU: run on a GPU machine by experiments/gpu_check.sh.

Every test here runs on `device`: CUDA when there is one, else skipped with the reason, unless
LANDSCAPE_TEST_DEVICE names a device (the GPU check's CPU dry run sets it to `cpu`, so this file
cannot rot where no GPU is). The references are computed on the CPU in float64 where the two
sides' arithmetic legitimately differs (kernels sum in other orders), with tolerances to match.
TF32 is turned off: it would trade the comparison's precision for speed.
"""
import os

import pytest
import torch
import torch.nn.functional as F

from landscape.data import device_splits
from landscape.data.augment import augment_batch
from landscape.data.synthetic import make_synthetic
from landscape.diet.gradnorm import grad_norms
from landscape.lmc import interpolation_curve
from landscape.models import build_model
from landscape.train.config import recipe
from landscape.train.engine import EvalSet, Member, Plan, train_population

pytestmark = pytest.mark.cuda


@pytest.fixture(scope="module")
def device() -> torch.device:
    named = os.environ.get("LANDSCAPE_TEST_DEVICE")
    if named:
        return torch.device(named)
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: these run on a GPU machine (experiments/gpu_check.sh); "
                    "LANDSCAPE_TEST_DEVICE=cpu runs them here")
    return torch.device("cuda")


@pytest.fixture(autouse=True)
def _no_tf32():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _data(shape, n=256, classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(classes, (n,), generator=g)
    return torch.randn(n, *shape, generator=g) + y.view(-1, 1, 1, 1).float() * 0.5, y


def _train(device, model, shape, path, seeds=(0, 1), optimizer="sgd", width=1.0, steps="12it"):
    config = recipe(model, "synthetic", steps=steps, batch_size=32, eval_every="6it", checkpoint_at="0,end",
                    schedule="constant",
                    lr=0.05, optimizer=optimizer, width=width)
    x, y = _data(shape)
    tx, ty = _data(shape, 64, seed=1)
    members = [Member(build_model(model, shape, 4, seed=s, width=width).to(device), 10 + s, 20 + s) for s in seeds]
    result = train_population(Plan.make(config, len(x)), members, x.to(device), y.to(device),
                              [EvalSet("test", tx.to(device), ty.to(device))], path=path)
    return [{k: v.detach().to("cpu", torch.float64) for k, v in s.model.items()} for s in result.states]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])   # adam: the fused optimizer on CUDA
def test_training_on_the_device_follows_the_cpu(device, optimizer):
    on_device = _train(device, "lenet_300_100", (1, 8, 8), "loop", optimizer=optimizer)
    on_cpu = _train(torch.device("cpu"), "lenet_300_100", (1, 8, 8), "loop", optimizer=optimizer)
    for a, b in zip(on_device, on_cpu):
        for name in a:
            torch.testing.assert_close(a[name], b[name], rtol=1e-3, atol=1e-4)


@pytest.fixture
def float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


@pytest.mark.parametrize("model, shape, width", [("lenet_300_100", (1, 8, 8), 1.0), ("resnet20", (3, 8, 8), 0.25)])
def test_vmap_population_equals_the_loop_on_the_device(device, model, shape, width, float64):
    """BatchNorm populations included: running statistics stacked per member under vmap. In float64,
    as tests/test_engine.py does on the CPU: in float32 the batched kernels' rounding differences
    are amplified by training (ReLUs flipping), which says nothing about the two layouts' arithmetic."""
    loop = _train(device, model, shape, "loop", seeds=(0, 1, 2), width=width)
    vmap = _train(device, model, shape, "vmap", seeds=(0, 1, 2), width=width)
    for a, b in zip(loop, vmap):
        for name in a:
            torch.testing.assert_close(a[name], b[name], rtol=1e-9, atol=1e-11)


def test_data_lives_on_the_device_and_augmentation_matches_the_cpu(device):
    dataset = make_synthetic(200, 50, (3, 16, 16))
    train, val, test = device_splits(dataset, 20, 0, device)
    assert train.x.device.type == device.type and test.y.device.type == device.type
    cpu_train, _, _ = device_splits(dataset, 20, 0, torch.device("cpu"))
    torch.testing.assert_close(train.x.cpu(), cpu_train.x)
    for kind in ("crop", "flip", "crop-flip"):
        on_device = augment_batch(train.x[:64], kind, torch.Generator().manual_seed(3))
        on_cpu = augment_batch(cpu_train.x[:64], kind, torch.Generator().manual_seed(3))
        torch.testing.assert_close(on_device.cpu(), on_cpu)


def test_batched_interpolation_equals_one_alpha_at_a_time_on_the_device(device):
    shape = (3, 8, 8)
    template = build_model("resnet20", shape, 4, seed=0, width=0.25)
    a = build_model("resnet20", shape, 4, seed=1, width=0.25).state_dict()
    b = build_model("resnet20", shape, 4, seed=2, width=0.25).state_dict()
    x, y = _data(shape, 128)
    common = dict(alphas=7, bn_x=x.to(device), bn_batches=2, batch_size=64)
    batched = interpolation_curve(template.to(device), a, b, x.to(device), y.to(device), method="batched", **common)
    single = interpolation_curve(template.to(device), a, b, x.to(device), y.to(device), method="sequential", **common)
    reference = interpolation_curve(template.cpu(), a, b, x, y, method="sequential",
                                    **{**common, "bn_x": x})
    torch.testing.assert_close(batched.loss, single.loss, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(batched.loss.cpu(), reference.loss, rtol=1e-3, atol=1e-4)


def test_per_example_gradient_norms_on_the_device(device):
    shape = (3, 16, 16)
    model = build_model("conv2", shape, 4, seed=0, width=0.25).to(device)
    x, y = _data(shape, 6)
    x, y = x.to(device), y.to(device)
    fast = grad_norms(model.eval(), x, y).double().cpu()
    slow = []
    for xi, yi in zip(x, y):
        model.zero_grad()
        F.cross_entropy(model(xi[None]), yi[None]).backward()
        slow.append(torch.sqrt(sum(p.grad.double().pow(2).sum() for p in model.parameters())).cpu())
    torch.testing.assert_close(fast, torch.stack(slow), rtol=1e-4, atol=1e-6)
