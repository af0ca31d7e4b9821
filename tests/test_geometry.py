"""`landscape hessian` and `landscape surface` wired into the store, the command line and the reports.

The science is tested against exact references in test_geometry_core.py; here: requests stored and
reused, whole IMP runs, marked points reproduced, the reports, and bad input (one line, exit 2,
nothing written). Everything runs on the synthetic dataset with tiny budgets.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_lmc import cli, small, snapshot  # noqa: E402

from landscape.api import train  # noqa: E402
from landscape.api.hessian import hessian, read_networks  # noqa: E402
from landscape.api.surface import surface  # noqa: E402
from landscape.report import build_report  # noqa: E402
from landscape.store import Store  # noqa: E402

CHEAP = dict(examples=200, steps=8, probes=4)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    from landscape.api.imp import imp
    from landscape.imp import ImpConfig

    root = tmp_path_factory.mktemp("geometry") / "store"
    train(small(steps="20it", checkpoint_at="0,5it,10it,end"), store=str(root), name="parent")
    train(small(width=0.5, steps="5it", checkpoint_at="end"), store=str(root), name="narrow")
    train(small(steps="5it", checkpoint_at="0,end"), store=str(root), name="short")
    imp(ImpConfig(train=small(steps="10it", checkpoint_at="0,end"), controls=("reinit",)), 2, store=str(root),
        name="imp")
    return root


def test_hessian_of_a_whole_imp_run_is_stored_reused_and_reported(store, capsys):
    run = hessian("imp", store=str(store), **CHEAP)
    networks = read_networks(run)
    roles = [(n["level"], n["role"]) for n in networks]
    assert roles == [(0, "ticket"), (1, "ticket"), (1, "reinit"), (2, "ticket"), (2, "reinit")]
    remaining = [n["weights_remaining"] for n in networks]
    assert remaining[0] == 1.0 and remaining[1] == remaining[2] < 1.0 and remaining[3] < remaining[1]
    # the measured dimension is the weights each mask keeps, biases included
    s = Store(store)
    ticket = s.open(networks[3]["run"])
    biases = sum(v.numel() for k, v in ticket.checkpoint(ticket.checkpoint_steps[-1]).model.items() if "bias" in k)
    assert networks[3]["dim"] == sum(int(m.sum()) for m in ticket.mask().values()) + biases
    assert all(n["trace_stderr"] > 0 and n["eigenvalues"][0] > 0 for n in networks)
    assert list(run.curves["weights_remaining"]) == remaining

    before = snapshot(store)
    code, out, err = cli(capsys, "hessian", "imp", "--store", str(store), "--examples", "200", "--steps", "8",
                         "--probes", "4", "--json")
    assert code == 0, err
    assert json.loads(out)["id"] == run.id and snapshot(store) == before  # reused, nothing rewritten

    html = build_report([s.open("imp")]).to_html()
    assert "Curvature of tickets and controls" in html and "Winning tickets" in html
    assert "Top Hessian eigenvalue vs weights remaining" in build_report([run]).to_html()


def test_hessian_of_one_network_with_layers_and_density(store, capsys):
    code, out, err = cli(capsys, "hessian", "imp@2", "--store", str(store), "--examples", "200", "--steps", "8",
                         "--probes", "4", "--top-k", "2", "--per-layer", "--density", "--density-probes", "2",
                         "--density-steps", "6")
    assert code == 0, err
    assert "top eigenvalues" in out and "per layer" in out and "restricted to the weights its mask keeps" in out
    run = Store(store).open(out.split()[0])
    [n] = read_networks(run)
    assert len(n["eigenvalues"]) == 2 and n["eigenvalues"][0] >= n["eigenvalues"][1]
    assert n["layers"]["names"] == ["fc1", "fc2", "fc3"]
    assert np.allclose(n["arrays"]["density_weights"].sum(1), 1.0)
    assert "Hessian spectral density" in build_report([run]).to_html()


def test_surfaces_reproduce_their_marked_networks(store):
    line = surface("parent", store=str(store), grid="5", examples=200)
    marked = line.section("surface/marked/0")
    assert marked["coords"] == [0.0]
    assert marked["train_loss_surface"] == marked["train_loss"] and marked["test_loss_surface"] == marked["test_loss"]
    a = line.arrays("surface")
    assert a["test_loss"].shape == (5,) and a["test_loss"][2] == marked["test_loss"]

    plane = surface(plane="imp@2:0,imp@2,imp@0", store=str(store), grid="5x4", examples=200)
    info = plane.section("surface")
    assert info["mode"] == "plane" and plane.arrays("surface")["train_loss"].shape == (4, 5)
    for i in range(3):
        m = plane.section(f"surface/marked/{i}")
        assert abs(m["train_loss_surface"] - m["train_loss"]) < 1e-5 * max(1.0, m["train_loss"])
        assert abs(m["test_loss_surface"] - m["test_loss"]) < 1e-5 * max(1.0, m["test_loss"])

    path = surface(trajectory="parent", store=str(store), grid="4x4", examples=200)
    a = path.arrays("surface")
    assert a["path"].shape == (4, 2) and list(a["path_steps"]) == [0, 5, 10, 20]
    assert 0 < sum(path.section("surface")["explained"]) <= 1
    html = build_report([line, plane, path]).to_html()
    assert "Loss surfaces" in html and "training path" in html


@pytest.mark.parametrize("args, message", [
    (["surface", "parent", "--grid", "1x5"], "fewer than 2 points per axis"),
    (["surface", "parent", "--grid", "1"], "fewer than 2 points per axis"),
    (["surface", "parent", "--span", "0.5:0.5"], "has no width"),
    (["surface", "parent", "--norm", "filters"], "unknown norm"),
    (["surface", "--plane", "parent,narrow,parent:0"], "different architectures"),
    (["surface", "--plane", "parent,parent:0"], "needs three networks"),
    (["surface", "--trajectory", "short"], "at least 3 checkpoints"),
    (["surface", "parent", "--plane", "parent,parent:0,parent:5it"], "exactly one of"),
    (["surface", "--plane", "parent:0,parent:10it,parent:10it", "--grid", "5x5"], "one line"),
    (["surface", "--trajectory", "parent", "--grid", "9"], "is a line"),
    (["hessian", "parent", "--top-k", "999999"], "more than the"),
    (["hessian", "imp@2", "--top-k", "50000"], "keeps"),
    (["hessian", "parent", "--examples", "99999"], "more than the 1800"),
    (["hessian", "parent", "--method", "qr"], "unknown method"),
    (["hessian", "nope"], "no run 'nope'"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(store, capsys, args, message):
    before = snapshot(store)
    code, out, err = cli(capsys, *args, "--store", str(store))
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], err
    assert snapshot(store) == before


@pytest.mark.parametrize("command", ["hessian", "surface"])
def test_help_has_examples(capsys, command):
    code, out, err = cli(capsys, command, "--help")
    assert code == 0 and "Examples" in out and "IMP@L" in out
