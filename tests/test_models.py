"""The model zoo: shapes, published sizes, seeded θ0, pruning declarations, vmapped populations."""
from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, stack_module_state, vmap

from landscape.errors import ConfigError
from landscape.models import (
    build_model, init_names, model_names, prunable_parameters, reinitialize,
)
from landscape.models.resnet import ResNet, cifar_plan

MNIST, CIFAR, DIGITS = (1, 28, 28), (3, 32, 32), (1, 8, 8)
# The shape matrix runs at reduced width: the layer structure, pool skipping and flatten sizes
# are what is under test there, and full-width VGG-19s would only make it slower.
SMALL = 0.25


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_bitwise_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_registry_names():
    assert model_names() == [
        "lenet_300_100", "lenet5", "conv2", "conv4", "conv6", "vgg11", "vgg16", "vgg19",
        "resnet20", "resnet32", "resnet56", "resnet18", "mnist1d_cnn", "mnist1d_mlp", "mlp_3x512",
    ]
    assert init_names() == ["kaiming_normal", "kaiming_uniform", "glorot_normal", "glorot_uniform"]


@pytest.mark.parametrize("name", model_names())
@pytest.mark.parametrize("shape", [MNIST, CIFAR, DIGITS], ids=["mnist", "cifar", "digits"])
@pytest.mark.parametrize("classes", [10, 100])
def test_every_model_builds_for_every_dataset(name, shape, classes):
    model = build_model(name, shape, classes, seed=0, width=SMALL)
    assert model.training
    out = model(torch.randn(2, *shape))
    assert out.shape == (2, classes)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", model_names())
def test_full_width_on_the_smallest_input(name):
    model = build_model(name, DIGITS, 10, seed=0)
    assert model(torch.randn(2, *DIGITS)).shape == (2, 10)


@pytest.mark.parametrize("name", ["lenet5", "conv6", "vgg11", "resnet18"])
def test_non_square_input(name):
    model = build_model(name, (3, 32, 12), 7, seed=0, width=SMALL)
    assert model(torch.randn(2, 3, 32, 12)).shape == (2, 7)


# Exact counts at width 1 (weights and biases, BatchNorm affine parameters included), each
# checked against the literature:
#   lenet_300_100 266,610 and lenet5 61,706 on MNIST: 784*300+300 + 300*100+100 + 100*10+10, and
#     the usual padded LeNet-5 figure; Frankle & Carbin (2019) Fig. 2 gives 266K for LeNet-300-100.
#   conv2/conv4: F&C Fig. 2 gives 4.3M / 2.4M (conv weights 38K / 260K; conv6's 1.1M conv
#     weights match too, its 1.7M total does not — see landscape/models/conv.py).
#   vgg11/16/19 and resnet20: equal to open_lth's own tests (models/test/test_cifar_*.py);
#     VGG-19's 20.0M and ResNet-20's 0.27M are also the published figures.
#   resnet32/56: He et al. (2016) Table 6 gives 0.46M / 0.85M with parameter-free option-A
#     shortcuts; option B adds 2,560 conv weights + 192 BN parameters per network, hence
#     466,906 / 855,770 here.
#   resnet18: 11,173,962, the common CIFAR ResNet-18 (3x3 stem, no max-pool).
PUBLISHED = {
    ("lenet_300_100", MNIST): 266_610,
    ("lenet5", MNIST): 61_706,
    ("conv2", CIFAR): 4_301_642,
    ("conv4", CIFAR): 2_425_930,
    ("conv6", CIFAR): 2_262_602,
    ("vgg11", CIFAR): 9_231_114,
    ("vgg16", CIFAR): 14_728_266,
    ("vgg19", CIFAR): 20_040_522,
    ("resnet20", CIFAR): 272_474,
    ("resnet32", CIFAR): 466_906,
    ("resnet56", CIFAR): 855_770,
    ("resnet18", CIFAR): 11_173_962,
}


@pytest.mark.parametrize("name,shape", list(PUBLISHED))
def test_parameter_counts_match_the_literature(name, shape):
    assert n_params(build_model(name, shape, 10, seed=0)) == PUBLISHED[name, shape]


def test_frankle_carbin_conv_weight_counts():
    # Fig. 2 of Frankle & Carbin (2019) gives conv weights as 38K / 260K / 1.1M (rounded loosely:
    # 38,592 appears as 38K).
    for name, exact, published in [("conv2", 38_592, 38e3), ("conv4", 259_776, 260e3),
                                   ("conv6", 1_144_512, 1.1e6)]:
        model = build_model(name, CIFAR, 10, seed=0)
        conv = sum(c.weight.numel() for c in model.convs)
        assert conv == exact
        assert abs(conv - published) / published < 0.05


def test_resnet_plan_generalises_like_open_lth():
    # open_lth's ResNet-110 test: 1,730,714 parameters with the same option-B shortcuts.
    with torch.device("meta"):
        assert n_params(ResNet(CIFAR, 10, plan=cifar_plan(110))) == 1_730_714


def test_small_input_rules():
    # 8x8: conv6 pools 8 -> 4 -> 2 -> 1, so its first fc layer sees 256 x 1 x 1.
    assert build_model("conv6", DIGITS, 10, seed=0).fc1.in_features == 256
    # vgg11 keeps three of its four pools on 8x8 (8 -> 4 -> 2 -> 1), all four on 32x32.
    assert sum(build_model("vgg11", DIGITS, 10, seed=0).pool_after) == 3
    assert sum(build_model("vgg11", CIFAR, 10, seed=0).pool_after) == 4
    # lenet5: unpadded conv2 on 28x28 (flatten 16x5x5), padded "same" on 8x8's 4x4 map (16x2x2).
    assert build_model("lenet5", MNIST, 10, seed=0).fc1.in_features == 400
    small = build_model("lenet5", DIGITS, 10, seed=0)
    assert small.conv2.padding == (2, 2) and small.fc1.in_features == 64


def test_parameter_names_do_not_depend_on_input_shape():
    for name in ["lenet5", "conv6", "vgg11", "resnet20"]:
        names = [[n for n, _ in build_model(name, s, 10, seed=0, width=SMALL).named_parameters()]
                 for s in (CIFAR, DIGITS)]
        assert names[0] == names[1]


def test_width_scales_hidden_layers_but_not_the_output():
    full = build_model("resnet20", CIFAR, 10, seed=0)
    half = build_model("resnet20", CIFAR, 10, seed=0, width=0.5)
    assert half.conv.out_channels == 8 and half.fc.in_features == 32 and half.fc.out_features == 10
    assert n_params(half) < n_params(full) / 3
    mlp = build_model("lenet_300_100", MNIST, 10, seed=0, width=0.1)
    assert (mlp.fc1.out_features, mlp.fc2.out_features, mlp.fc3.out_features) == (30, 10, 10)
    # Never below one unit.
    assert build_model("lenet5", MNIST, 10, seed=0, width=1e-3).conv1.out_channels == 1


@pytest.mark.parametrize("bad", [
    dict(name="resnet21"), dict(init="he_normal"), dict(width=0.0), dict(width=float("nan")),
    dict(input_shape=(28, 28)), dict(input_shape=(1, 0, 28)), dict(input_shape=(1, 28.5, 28)),
    dict(num_classes=0), dict(num_classes=2.0), dict(width="1"),
])
def test_bad_arguments_raise_config_error(bad):
    args = dict(name="lenet5", input_shape=MNIST, num_classes=10) | bad
    kwargs = {k: args.pop(k) for k in ("init", "width") if k in args}
    with pytest.raises(ConfigError):
        build_model(args["name"], args["input_shape"], args["num_classes"], seed=0, **kwargs)


def test_numpy_and_torch_scalars_are_accepted():
    np = pytest.importorskip("numpy")
    model = build_model("lenet5", torch.Size(MNIST), np.int64(10),
                        seed=np.int64(0), width=np.float32(0.5))
    assert model.input_shape == MNIST and model.num_classes == 10 and model.width == 0.5
    assert type(model.num_classes) is int


def test_unknown_names_list_the_known_ones():
    with pytest.raises(ConfigError, match="resnet20.*vgg19|vgg19.*resnet20"):
        build_model("resnet21", CIFAR, 10, seed=0)
    with pytest.raises(ConfigError, match="glorot_uniform"):
        build_model("resnet20", CIFAR, 10, seed=0, init="he")
    with pytest.raises(ConfigError, match="kaiming_normal"):
        reinitialize(build_model("lenet5", MNIST, 10, seed=0), seed=0, init="he")
    with pytest.raises(ConfigError, match="seed"):
        build_model("lenet5", MNIST, 10, seed=1.5)


# --- seeded initialisation -------------------------------------------------------------------

@pytest.mark.parametrize("init", init_names())
def test_same_seed_same_theta0_whatever_the_global_rng(init):
    torch.manual_seed(1)
    first = state(build_model("resnet20", CIFAR, 10, seed=7, init=init, width=SMALL))
    torch.manual_seed(12345)
    torch.randn(1000)
    build_model("vgg11", CIFAR, 100, seed=7, width=SMALL)  # something else built in between
    second = state(build_model("resnet20", CIFAR, 10, seed=7, init=init, width=SMALL))
    assert_bitwise_equal(first, second)


def test_build_leaves_the_global_rng_alone():
    before = torch.get_rng_state()
    build_model("conv4", CIFAR, 10, seed=0)
    assert torch.equal(before, torch.get_rng_state())


def test_different_seeds_differ():
    a = build_model("conv2", CIFAR, 10, seed=0, width=SMALL)
    b = build_model("conv2", CIFAR, 10, seed=1, width=SMALL)
    for name in a.prunable:
        assert not torch.equal(a.get_parameter(name), b.get_parameter(name)), name


def test_reinitialize_restores_theta0_and_resets_buffers():
    model = build_model("resnet20", CIFAR, 10, seed=3, width=SMALL)
    theta0 = state(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model(torch.randn(4, *CIFAR))  # train mode: moves the running statistics
    assert not torch.equal(model.bn.running_mean, theta0["bn.running_mean"])
    reinitialize(model, seed=3)
    assert_bitwise_equal(theta0, state(model))


def test_biases_zero_and_batchnorm_constant():
    model = build_model("vgg11", CIFAR, 10, seed=0, width=SMALL)
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            assert torch.all(p == 0), name
        elif ".bn." in name:
            assert torch.all(p == 1), name
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.running_mean == 0) and torch.all(m.running_var == 1)
            assert m.num_batches_tracked == 0


def _big_linear(init: str) -> torch.Tensor:
    # lenet_300_100 on CIFAR: fc1 is 300 x 3072, 921,600 draws.
    return build_model("lenet_300_100", CIFAR, 10, seed=0, init=init).fc1.weight.detach()


def _big_conv(init: str) -> torch.Tensor:
    # vgg11's last conv: 512 x 512 x 3 x 3, 2.36M draws.
    return build_model("vgg11", CIFAR, 10, seed=0, init=init).blocks[-1].conv.weight.detach()


# With N >= 9e5 draws the sample std is within ~0.1% of the true one; 2% is a wide margin that
# still tells fan_in from fan_out, and gain sqrt(2) from 1.
@pytest.mark.parametrize("draw,fan_in,fan_out",
                         [(_big_linear, 3072, 300), (_big_conv, 512 * 9, 512 * 9)])
def test_initialisation_statistics(draw, fan_in, fan_out):
    kn = draw("kaiming_normal")
    assert kn.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.02)
    assert abs(kn.mean().item()) < 0.01 * kn.std().item()

    ku = draw("kaiming_uniform")
    bound = math.sqrt(6 / fan_in)
    assert ku.abs().max().item() <= bound
    assert ku.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.02)

    gn = draw("glorot_normal")
    assert gn.std().item() == pytest.approx(math.sqrt(2 / (fan_in + fan_out)), rel=0.02)

    gu = draw("glorot_uniform")
    bound = math.sqrt(6 / (fan_in + fan_out))
    assert gu.abs().max().item() <= bound
    assert gu.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.02)


# --- pruning declarations --------------------------------------------------------------------

@pytest.mark.parametrize("name", model_names())
def test_prunable_is_exactly_the_conv_and_linear_weights(name):
    model = build_model(name, CIFAR, 10, seed=0, width=SMALL)
    expected = {f"{m_name}.weight" for m_name, m in model.named_modules()
                if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))}
    assert set(model.prunable) == expected
    assert len(model.prunable) == len(expected)
    assert not any(pname.endswith(".bias") for pname in model.prunable)
    bn_params = {f"{m_name}.{p}" for m_name, m in model.named_modules()
                 if isinstance(m, nn.BatchNorm2d) for p in ("weight", "bias")}
    assert not bn_params & set(model.prunable)

    params = prunable_parameters(model)
    assert list(params) == list(model.prunable)
    named = dict(model.named_parameters())
    assert all(params[k] is named[k] for k in params)


@pytest.mark.parametrize("name", model_names())
def test_output_layer_is_the_last_linear(name):
    model = build_model(name, CIFAR, 13, seed=0, width=SMALL)
    last_linear = [m_name for m_name, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
    assert model.output_layer == f"{last_linear}.weight"
    assert model.output_layer in model.prunable
    assert model.get_parameter(model.output_layer).shape[0] == 13


def test_prunable_parameters_of_a_foreign_model():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    assert list(prunable_parameters(model)) == ["0.weight", "3.weight"]


# --- populations under torch.func ------------------------------------------------------------

def _population(name: str, width: float, k: int = 3):
    models = [build_model(name, CIFAR, 10, seed=s, width=width) for s in range(k)]
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")
    return models, params, buffers, base


@pytest.mark.parametrize("name,width", [("resnet20", 0.25), ("vgg11", 0.125)])
def test_vmapped_population_matches_each_model_alone(name, width):
    torch.manual_seed(0)
    models, params, buffers, base = _population(name, width)
    x = torch.randn(3, 8, *CIFAR)  # a different batch per member

    def forward(p, b, xb):
        return functional_call(base, (p, b), (xb,))

    out = vmap(forward)(params, buffers, x)  # train mode: batch statistics, buffers updated
    for i, model in enumerate(models):
        torch.testing.assert_close(out[i], model(x[i]), rtol=1e-4, atol=1e-5)
        for bname, buf in model.named_buffers():
            torch.testing.assert_close(buffers[bname][i], buf, rtol=1e-5, atol=1e-6)
    counters = [b for k, b in buffers.items() if k.endswith("num_batches_tracked")]
    assert counters and all(torch.all(c == 1) for c in counters)

    # Eval mode then uses each member's own (just updated) running statistics.
    base.eval()
    out = vmap(forward)(params, buffers, x)
    for i, model in enumerate(models):
        model.eval()
        torch.testing.assert_close(out[i], model(x[i]), rtol=1e-4, atol=1e-5)


def test_vmapped_population_gradients_match():
    models, params, buffers, base = _population("resnet20", 0.25)
    x, y = torch.randn(3, 8, *CIFAR), torch.randint(0, 10, (3, 8))

    def loss(p, b, xb, yb):
        return F.cross_entropy(functional_call(base, (p, b), (xb,)), yb)

    grads = vmap(grad(loss))(params, buffers, x, y)
    for i, model in enumerate(models):
        F.cross_entropy(model(x[i]), y[i]).backward()
        for pname, p in model.named_parameters():
            torch.testing.assert_close(grads[pname][i], p.grad, rtol=1e-4, atol=1e-6)
