"""Tickets out, checkpoints in, and MNIST-1D: an exported ticket loads into a plain torch.nn model
and computes what the stored run computes; an imported network is an LMC endpoint, a sibling source
and IMP's start; MNIST-1D is the mnist1d package's data bit for bit."""
import json

import numpy as np
import pytest
import torch
import typer
from torch import nn
from torch.nn.utils import prune

from landscape.api.train import load_weights
from landscape.cli.errors import run_guarded
from landscape.cli.main import app
from landscape.data import device_splits, load_dataset
from landscape.models import build_model
from landscape.store import Store
from landscape.tensorfiles import read_tensors

SMALL = ["--model", "lenet_300_100", "--width", "0.1", "--dataset", "synthetic", "--steps", "8it",
         "--batch-size", "50", "--eval-every", "4it", "--optimizer", "adam", "--lr", "0.01"]


def cli(*args) -> int:
    return run_guarded(typer.main.get_command(app), [str(a) for a in args])


class PlainLeNet(nn.Module):
    """LeNet-300-100 written in plain torch.nn, with the zoo's layer names (width 0.1: 30 and 10)."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(64, 30), nn.Linear(30, 10), nn.Linear(10, 10)

    def forward(self, x):
        x = torch.relu(self.fc1(x.flatten(1)))
        return self.fc3(torch.relu(self.fc2(x)))


@pytest.fixture(scope="module")
def ticket_store(tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    assert cli("imp", *SMALL, "--levels", "1", "--controls", "none", "--store", store, "--name", "imp") == 0
    return store


def _stored_logits(store, ref_run, x):
    run = Store(store).open(ref_run)
    model = build_model("lenet_300_100", (1, 8, 8), 10, seed=0, width=0.1)
    load_weights(model, run.checkpoint(run.checkpoint_steps[-1]).model, "run")
    with torch.no_grad():
        for name, m in (run.mask() or {}).items():
            dict(model.named_parameters())[name].mul_(m)
        return model.eval()(x)


@pytest.mark.parametrize("fmt", ["pt", "safetensors", "npz"])
def test_exported_ticket_runs_in_plain_torch_with_the_stored_outputs(ticket_store, tmp_path, fmt):
    out = tmp_path / f"ticket.{fmt}"
    assert cli("export", "imp@1", "--out", out, "--store", ticket_store) == 0
    sidecar = json.loads((tmp_path / f"ticket.{fmt}.json").read_text())
    ticket_id = Store(ticket_store).open("imp").section("levels/001")["ticket"][0]
    assert sidecar["run_id"] == ticket_id and sidecar["files"]["masks"] == f"ticket.masks.{fmt}"

    state = read_tensors(out)
    masks = read_tensors(tmp_path / f"ticket.masks.{fmt}")
    assert set(masks) == {"fc1.weight", "fc2.weight", "fc3.weight"}
    for name, m in masks.items():  # pruned weights exactly zero, survivors as many as the sidecar says
        assert torch.all(state[name][~m] == 0) and int(m.sum()) == sidecar["masks"][name]["kept"]
    if fmt == "pt":
        state = torch.load(out, weights_only=True)  # the plain way
    plain = PlainLeNet()
    plain.load_state_dict(state)

    data = load_dataset("synthetic")
    norm = sidecar["normalisation"]
    x = (data.test_x.float() * norm["scale"] - torch.tensor(norm["mean"]).view(1, -1, 1, 1)) \
        / torch.tensor(norm["std"]).view(1, -1, 1, 1)
    _, _, test = device_splits(data, 200, 0, "cpu")  # the run's own normalisation (val 10% of 2000)
    assert torch.allclose(x, test.x, atol=1e-6)
    with torch.no_grad():
        assert torch.allclose(plain(x), _stored_logits(ticket_store, ticket_id, test.x), atol=1e-5)


def test_safetensors_files_are_the_reference_format(ticket_store, tmp_path):
    safetensors = pytest.importorskip("safetensors.torch")
    out = tmp_path / "t.safetensors"
    assert cli("export", "imp@1", "--out", out, "--store", ticket_store) == 0
    theirs = safetensors.load_file(str(out))
    ours = read_tensors(out)
    assert set(theirs) == set(ours) and all(torch.equal(theirs[k], ours[k]) for k in ours)
    safetensors.save_file({"a": torch.arange(6.0).view(2, 3), "b": torch.tensor([True, False])}, str(tmp_path / "r.safetensors"))
    back = read_tensors(tmp_path / "r.safetensors")
    assert torch.equal(back["a"], torch.arange(6.0).view(2, 3)) and back["b"].tolist() == [True, False]


def test_prune_naming_loads_into_torch_pruned_modules(ticket_store, tmp_path):
    out = tmp_path / "pruned.pt"
    assert cli("export", "imp@1", "--out", out, "--prune-naming", "--store", ticket_store) == 0
    state = torch.load(out, weights_only=True)
    assert {"fc1.weight_orig", "fc1.weight_mask", "fc3.bias"} <= set(state) and "fc1.weight" not in state
    plain = PlainLeNet()
    for layer in (plain.fc1, plain.fc2, plain.fc3):
        prune.identity(layer, "weight")
    plain.load_state_dict(state)
    ticket = Store(ticket_store).open("imp").section("levels/001")["ticket"][0]
    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(plain(x), _stored_logits(ticket_store, ticket, x), atol=1e-5)


def test_imported_network_is_an_endpoint_a_sibling_source_and_imps_start(ticket_store, tmp_path, capsys):
    out = tmp_path / "dense.safetensors"
    assert cli("export", "imp@0", "--out", out, "--store", ticket_store) == 0
    store = tmp_path / "store"
    assert cli("import", out, *SMALL, "--name", "theirs", "--store", store) == 0
    theirs = Store(store).open("theirs")
    dense = Store(ticket_store).open(Store(ticket_store).open("imp").section("levels/000")["dense"][0])
    assert theirs.kind == "imported" and theirs.checkpoint_steps == [0]
    assert theirs.config["imported"]["file_sha256"] and theirs.metrics["final/test/acc"] == dense.metrics["final/test/acc"]
    for k, v in dense.checkpoint(dense.checkpoint_steps[-1]).model.items():
        assert torch.equal(theirs.checkpoint(0).model[k], v), k
    assert cli("import", out, *SMALL, "--name", "theirs", "--store", store) == 0  # the same file: the same run
    assert len(Store(store).runs()) == 1

    assert cli("imp", *SMALL, "--levels", "1", "--controls", "none", "--from", "theirs", "--store", store,
               "--name", "fromtheirs") == 0
    imp = Store(store).open("fromtheirs")
    level0 = Store(store).open(imp.section("levels/000")["dense"][0])
    assert level0.config["start"]["run"] == theirs.id
    assert torch.equal(level0.checkpoint(0).model["fc1.weight"], theirs.checkpoint(0).model["fc1.weight"])
    assert cli("lmc", "--run-a", "theirs", "--run-b", "fromtheirs@1", "--points", "3", "--store", store) == 0
    assert "common parent " + theirs.id in capsys.readouterr().out.replace("parent\n", "parent ")
    assert cli("siblings", "--from", "theirs", "-k", "2", "--store", store, "--name", "sib") == 0
    sibling = Store(store).open("sib-r1")
    assert sibling.complete and sibling.config["start"]["run"] == theirs.id


def test_import_of_a_file_that_does_not_fit_is_one_line_exit_2(ticket_store, tmp_path, capsys):
    out = tmp_path / "dense.npz"
    assert cli("export", "imp@0", "--out", out, "--store", ticket_store) == 0
    store = tmp_path / "store"
    wide = [a if a != "0.1" else "0.2" for a in SMALL]
    assert cli("import", out, *wide, "--store", store) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "dense.npz does not fit this model (first difference: fc1.weight)" in lines[0]
    assert not list(store.glob("*.h5")) if store.exists() else True
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert cli("import", bad, *SMALL, "--store", store) == 2
    assert "cannot read" in capsys.readouterr().err


# -- MNIST-1D -----------------------------------------------------------------------------------
def test_mnist1d_is_the_packages_data_bit_for_bit():
    from landscape.data.mnist1d import make_mnist1d_arrays

    train_x, train_y, test_x, test_y = make_mnist1d_arrays()
    # Reference values from mnist1d 0.0.2.post1: make_dataset(get_dataset_args()).
    assert train_x.shape == (4000, 40) and test_x.shape == (1000, 40)
    assert train_y[:10].tolist() == [2, 6, 4, 5, 6, 6, 6, 0, 3, 1]
    assert train_x[0, :3].tolist() == pytest.approx([-0.33200567, -0.47191037, -0.77869708], abs=1e-8)
    assert train_x.sum() == pytest.approx(-51.78746787509559, abs=1e-9)
    assert test_x.sum() == pytest.approx(51.78746787509192, abs=1e-9)


@pytest.mark.slow
def test_mnist1d_equals_the_package_when_installed():
    from landscape.data.mnist1d import make_mnist1d_arrays

    pytest.importorskip("mnist1d", reason="pip install mnist1d to compare with the reference generator")
    from mnist1d.data import get_dataset_args, make_dataset

    train_x, train_y, test_x, test_y = make_mnist1d_arrays()
    state = np.random.get_state()
    reference = make_dataset(get_dataset_args())
    np.random.set_state(state)
    for ours, key in zip((train_x, train_y, test_x, test_y), ("x", "y", "x_test", "y_test")):
        assert np.array_equal(ours, reference[key]), key


def test_mnist1d_zoo_networks_have_the_papers_sizes():
    shape = (1, 1, 40)
    cnn = build_model("mnist1d_cnn", shape, 10, seed=0)
    mlp = build_model("mnist1d_mlp", shape, 10, seed=0)
    assert sum(p.numel() for p in cnn.parameters()) == 5210 and sum(p.numel() for p in mlp.parameters()) == 15210
    assert cnn.prunable == ("conv1.weight", "conv2.weight", "conv3.weight", "fc.weight")
    assert cnn(torch.randn(3, *shape)).shape == (3, 10)
    assert build_model("mnist1d_cnn", (3, 8, 8), 4, seed=0)(torch.randn(2, 3, 8, 8)).shape == (2, 4)
