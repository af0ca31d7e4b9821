"""Your own models and datasets: import paths and entry points, what runs record about their code,
bad factories as one-line errors, and the protocol's inferred declarations."""
import textwrap

import numpy as np
import pytest
import torch
import typer

from landscape.cli.errors import run_guarded
from landscape.cli.main import app
from landscape.data import load_dataset
from landscape.errors import ConfigError, DataError
from landscape.models import build_model
from landscape.store import Store

LABNETS = '''
import math
import numpy as np
import torch
from torch import nn


class Net(nn.Module):
    """A tiny MLP with a LayerNorm (a layer landscape has no init rule for)."""

    def __init__(self, shape, classes, width):
        super().__init__()
        hidden = max(1, round(16 * width))
        self.inp = nn.Linear(math.prod(shape), hidden)
        self.norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, classes)

    def forward(self, x):
        return self.out(torch.relu(self.norm(self.inp(x.flatten(1)))))


def net(shape, classes, width):
    return Net(shape, classes, width)


class Declared(Net):
    prunable = ("inp.weight",)
    output_layer = "out.weight"


def declared(shape, classes, width):
    return Declared(shape, classes, width)


def blobs(root):
    g = np.random.RandomState(0)
    centres = 1.5 * g.randn(3, 10)
    y = g.randint(0, 3, 400)
    x = (centres[y] + g.randn(400, 10)).astype(np.float32)
    return x[:300], y[:300], x[300:], y[300:]


def not_a_module(shape, classes, width):
    return "a string"


def no_weights(shape, classes, width):
    return nn.ReLU()


def labels_out_of_range(root):
    x = np.zeros((8, 4), np.float32)
    return {"train_x": x, "train_y": np.arange(8), "test_x": x, "test_y": np.zeros(8, int), "classes": ["a", "b"]}


def shapes_differ(root):
    return np.zeros((8, 4)), np.zeros(8, int), np.zeros((8, 5)), np.zeros(8, int)


class Pairs(torch.utils.data.Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return torch.full((1, 3, 3), float(i % 2)), i % 2


def pairs(root):
    return Pairs(40), Pairs(10)
'''


def cli(*args: str) -> int:
    return run_guarded(typer.main.get_command(app), [str(a) for a in args])


@pytest.fixture
def labnets(tmp_path, monkeypatch):
    """A package `labnets` "installed" into the test environment: its module, and a dist-info with
    entry points registering a model and a dataset, on sys.path."""
    site = tmp_path / "site"
    (site / "labnets").mkdir(parents=True)
    (site / "labnets" / "__init__.py").write_text(textwrap.dedent(LABNETS))
    info = site / "labnets-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: labnets\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(
        "[landscape.models]\nlabnet = labnets:net\n\n[landscape.datasets]\nlabblobs = labnets:blobs\n")
    (info / "top_level.txt").write_text("labnets\n")
    monkeypatch.syspath_prepend(str(site))
    yield site / "labnets" / "__init__.py"
    import sys
    sys.modules.pop("labnets", None)


TINY = ["--steps", "6it", "--batch-size", "50", "--eval-every", "3it", "--lr", "0.05"]


def test_entry_point_model_and_dataset_train_imp_and_lmc(labnets, tmp_path, capsys):
    store = tmp_path / "store"
    assert cli("models") == 0 and cli("data", "list") == 0
    listed = capsys.readouterr().out
    assert "labnet" in listed and "entry point of labnets: labnets:net" in listed
    assert "labblobs" in listed and "labnets:blobs" in listed

    assert cli("train", "--model", "labnet", "--dataset", "labblobs", *TINY, "--replicates", "2",
               "--checkpoint-at", "0,3it,end", "--store", store) == 0
    runs = Store(store).runs("train")
    assert len(runs) == 2
    code = runs[0].config["model_code"]
    assert code["target"] == "labnets:net" and code["package"] == "labnets" and code["version"] == "1.2.3"
    assert len(code["file_sha256"]) == 64 and runs[0].config["dataset_code"]["target"] == "labnets:blobs"
    assert runs[0].config["model"]["name"] == "labnet"  # the ID hashes the name, not the code

    assert cli("imp", "--model", "labnet", "--dataset", "labblobs", *TINY, "--levels", "2",
               "--controls", "reinit", "--store", store, "--name", "labimp") == 0
    imp = Store(store).open("labimp")
    assert imp.complete and imp.sections("levels") == ["000", "001", "002"]
    ticket = Store(store).open(imp.section("levels/002")["ticket"][0])
    mask = ticket.mask()
    assert set(mask) == {"inp.weight", "out.weight"}  # inferred: every Linear weight
    assert mask["inp.weight"].float().mean().item() == pytest.approx(0.64, abs=0.01)

    assert cli("lmc", "--run-a", f"{imp.id}@0", "--run-b", f"{imp.id}@2", "--points", "3", "--store", store) == 0
    [lmc] = Store(store).runs("lmc")
    assert lmc.complete
    capsys.readouterr()

    # Editing the model's file: rerunning reuses the stored run and says the code has changed.
    labnets.write_text(labnets.read_text() + "\n# edited\n")
    assert cli("train", "--model", "labnet", "--dataset", "labblobs", *TINY, "--replicates", "2",
               "--checkpoint-at", "0,3it,end", "--store", store) == 0
    err = capsys.readouterr().err
    assert err.count("warning: run ") == 4  # model and dataset live in the same edited file, two runs
    assert err.count("the model code of labnets:net has changed") == 2


def test_import_path_model_declarations_and_seeded_init(labnets):
    model = build_model("labnets:net", (1, 2, 5), 3, seed=7)
    assert model.prunable == ("inp.weight", "out.weight") and model.output_layer == "out.weight"
    declared = build_model("labnets:declared", (1, 2, 5), 3, seed=7)
    assert declared.prunable == ("inp.weight",)
    # θ0 is the tool's draw from the seed (Kaiming normal, zero biases), whatever the global RNG did
    torch.manual_seed(123)
    again = build_model("labnets:net", (1, 2, 5), 3, seed=7)
    for (name, a), b in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), name
    assert torch.count_nonzero(model.inp.bias) == 0
    state = torch.random.get_rng_state()
    own = build_model("labnets:net", (1, 2, 5), 3, seed=7, init="own")
    assert torch.equal(torch.random.get_rng_state(), state)  # the factory ran on a forked RNG
    assert torch.count_nonzero(own.inp.bias) > 0  # torch's own Linear init draws biases
    assert torch.equal(own.inp.weight, build_model("labnets:net", (1, 2, 5), 3, seed=7, init="own").inp.weight)
    assert not torch.equal(own.inp.weight, build_model("labnets:net", (1, 2, 5), 3, seed=8, init="own").inp.weight)
    with pytest.raises(ConfigError, match="zoo model"):
        build_model("lenet_300_100", (1, 8, 8), 10, seed=0, init="own")


def test_dataset_protocol_forms(labnets):
    blobs = load_dataset("labnets:blobs")
    assert blobs.train_x.dtype == torch.float32 and blobs.input_shape == (1, 1, 10) and blobs.num_classes == 3
    pairs = load_dataset("labnets:pairs")  # a torch Dataset, materialised once into the decode cache
    assert pairs.input_shape == (1, 3, 3) and len(pairs.train_y) == 40 and pairs.classes == ("0", "1")
    assert torch.equal(pairs.train_x[1], torch.ones(1, 3, 3))
    cached = load_dataset("labnets:pairs")
    assert torch.equal(cached.train_x, pairs.train_x)


@pytest.mark.parametrize("args, message", [
    (["--model", "nosuchpkg.mod:f"], "cannot import module 'nosuchpkg.mod' (ModuleNotFoundError"),
    (["--model", "labnets:nothing"], "has no attribute 'nothing'"),
    (["--model", "labnets:not_a_module"], "returned a str, not a torch.nn.Module"),
    (["--model", "labnets:no_weights"], "has no prunable tensors"),
    (["--dataset", "labnets:labels_out_of_range"], "labels run from 0 to 7, outside the 2 classes"),
    (["--dataset", "labnets:shapes_differ"], "train samples have shape (1, 1, 4) but test samples (1, 1, 5)"),
    (["--model", "labnet", "--init", "own", "--init", "bogus"], "unknown initialisation 'bogus'"),
])
def test_bad_factories_are_one_line_exit_2_store_unchanged(labnets, tmp_path, capsys, args, message):
    store = tmp_path / "store"
    base = {"--model": "labnet", "--dataset": "labblobs"}
    flags = dict(zip(args[::2], args[1::2]))
    argv = [x for k, v in {**base, **flags}.items() for x in (k, v)]
    assert cli("train", *argv, *TINY, "--store", store) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not store.exists() or not list(store.glob("*.h5"))


def test_unknown_names_say_what_is_accepted():
    with pytest.raises(ConfigError, match="package.module:factory"):
        build_model("no_such_net", (1, 8, 8), 10, seed=0)
    with pytest.raises(DataError, match="package.module:factory"):
        load_dataset("no_such_data")


def test_float_data_is_normalised_in_its_own_units(labnets):
    from landscape.data import device_splits

    blobs = load_dataset("labnets:blobs")
    train, _, test = device_splits(blobs, 0, 0, "cpu")
    assert train.x.mean().abs() < 1e-5 and abs(train.x.std().item() - 1) < 1e-2
    mean, std = train.mean[0], train.std[0]
    assert torch.allclose(test.x, (blobs.test_x - mean) / std, atol=1e-5)
    assert blobs.train_x.abs().max() > 2  # the dataset's tensor was not normalised in place
    assert np.isfinite(mean) and std > 0


def test_zoo_runs_keep_their_ids_and_stored_configuration(tmp_path):
    from landscape.api.code import code_record
    from landscape.train.config import recipe

    # IDs computed on main before outside models existed
    assert recipe("lenet_300_100", "digits", steps="30it").run_id() == "a4512df7fc5e"
    assert recipe("conv2", "mnist").run_id() == "5a2e883981ad"
    assert code_record(recipe("lenet_300_100", "digits")) == {}  # nothing added to a zoo run's config


def test_default_names_of_outside_code_hold_no_colon():
    from landscape.imp import ImpConfig
    from landscape.train.config import recipe

    config = recipe("labnets.nets:small_cnn", "labnets.data:waves")
    assert config.default_name() == "small_cnn-waves-sgd-s0"  # a colon would read as RUN:STEP
    assert ImpConfig(config).default_name() == "imp-small_cnn-waves-rw0it"
