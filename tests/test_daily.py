"""A researcher's daily loop (issue 12): the notebook API, names, `ls`/`show` through the command
line, progress off a terminal, and the one-line errors of bad input with the store unchanged.

Commands run in this process (through the same guard as `landscape`), so torch is imported once.
"""
from __future__ import annotations

import json
import subprocess
import sys
import webbrowser
from pathlib import Path

import numpy as np
import pytest
from typer.main import get_command

import landscape as ls
from landscape.cli.errors import run_guarded
from landscape.cli.main import app

SMALL = ["--model", "lenet_300_100", "--dataset", "synthetic", "--steps", "20it", "--batch-size", "32",
         "--eval-every", "10it", "--width", "0.25"]


def cli(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run_guarded(get_command(app), [str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()} \
        if root.exists() else {}


@pytest.fixture(scope="module")
def imp_store(tmp_path_factory):
    """A store with a training run and an IMP run of 2 levels (ticket + reinit control)."""
    store = tmp_path_factory.mktemp("daily") / "store"
    argv = ["imp", *SMALL, "--levels", "2", "--controls", "reinit", "--name", "fc", "--store", str(store)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LANDSCAPE_CACHE", str(store.parent / "cache"))
        assert run_guarded(get_command(app), argv) == 0
    return store


# -- notebook API ----------------------------------------------------------------------------------

def test_top_level_names_stay_the_api_whatever_is_imported_first():
    code = ("import landscape.train.config, landscape.imp, landscape.lmc, landscape.diet, landscape.report\n"
            "import landscape as ls\n"
            "from landscape.api.train import train\n"
            "assert ls.train is train, ls.train\n"
            "assert ls.imp.__module__ == 'landscape.api.imp' and ls.lmc.__module__ == 'landscape.api.lmc'\n"
            "assert ls.diet.__module__ == 'landscape.api.diet'\n"
            "assert ls.recipe('lenet_300_100', 'digits').model.name == 'lenet_300_100'\n"
            "import landscape.train.engine\n"
            "assert callable(ls.train) and not isinstance(ls.train, type(ls))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_curves_carry_their_steps_and_stay_arrays(imp_store):
    run = ls.Store(imp_store).open("fc-L1-ticket-r0")
    loss = run.curves["val/loss"]
    assert loss.steps.tolist() == run.curves["step"].tolist() == [0, 10, 20]
    assert isinstance(loss, np.ndarray) and len(loss.tolist()) == 3 and isinstance(float(loss.mean()), float)
    assert loss[1:].steps.tolist() == [10, 20] and (100 * loss).steps.tolist() == [0, 10, 20]
    assert list(loss.items())[0] == (0.0, float(loss[0]))
    pytest.importorskip("pandas")
    series = loss.to_pandas()
    assert series.index.name == "step" and series.loc[20] == loss[-1]


def test_store_to_dataframe_has_a_row_per_run_with_config_and_metrics(imp_store):
    pytest.importorskip("pandas")
    frame = ls.Store(imp_store).to_dataframe()
    runs = ls.Store(imp_store).list()
    assert len(frame) == len(runs) and set(frame.index) == {r.id for r in runs}
    assert {"name", "kind", "status", "config.optim.lr", "metrics.final/test/acc"} <= set(frame.columns)
    trains = ls.to_dataframe(imp_store, kind="train")
    assert set(trains["kind"]) == {"train"} and trains["metrics.final/test/acc"].between(0, 1).all()


# -- inspecting --------------------------------------------------------------------------------------

def test_show_imp_prints_the_level_table(imp_store, capsys):
    code, out, _ = cli(capsys, "show", "fc", "--store", imp_store)
    assert code == 0
    assert "ticket acc (early stop)" in out and "ticket acc (final)" in out and "reinit acc (final)" in out
    for level, remaining in ((0, "100.00%"), (1, "80.00%"), (2, "64.00%")):
        assert any(line.split()[:2] == [str(level), remaining] for line in out.splitlines()), out
    code, out, _ = cli(capsys, "show", "fc", "--store", imp_store, "--json")
    levels = json.loads(out)["levels"]
    assert [r["level"] for r in levels] == [0, 1, 2] and levels[2]["remaining"] == pytest.approx(0.64)
    member = levels[1]["members"]["ticket"][0]
    assert ls.Store(imp_store).open(member).name == "fc-L1-ticket-r0"
    assert levels[1]["ticket_acc_final"] == ls.Store(imp_store).open(member).metrics["final/test/acc"]


def test_show_takes_every_reference_lmc_takes(imp_store, capsys):
    store = ls.Store(imp_store)
    ticket, reinit = store.open("fc-L2-ticket-r0"), store.open("fc-L2-reinit-r0")
    for ref, run in (("fc@2", ticket), ("fc@2/reinit", reinit), ("fc@2/reinit/r0:0it", reinit),
                     (f"{ticket.id}:end", ticket), ("fc@0", store.open("fc-L0-dense-r0"))):
        code, out, err = cli(capsys, "show", ref, "--store", imp_store, "--json")
        assert code == 0, err
        info = json.loads(out)
        assert info["id"] == run.id and info["reference"]["ref"] == ref
    # a ticket: its sparsity per layer, counted from the mask
    code, out, _ = cli(capsys, "show", "fc@2", "--store", imp_store)
    assert "sparsity per layer" in out
    mask = ticket.mask()
    layers = {r["layer"]: r for r in json.loads(cli(capsys, "show", "fc@2", "--store", imp_store, "--json")[1])["layers"]}
    for name, m in mask.items():
        assert layers[name]["kept"] == int(m.sum()) and layers[name]["total"] == m.numel()


def ls_json(capsys, store, *flags) -> list[dict]:
    code, out, err = cli(capsys, "ls", "--store", store, "--json", *flags)
    assert code == 0, err
    return json.loads(out)


def test_ls_groups_imp_members_under_their_imp_run(imp_store, capsys):
    store = ls.Store(imp_store)
    imp = store.open("fc")
    members = [i for level in imp.sections("levels") for role in ("dense", "ticket", "reinit")
               for i in imp.section(f"levels/{level}").get(role) or []]
    members = list(dict.fromkeys(members))   # level 0 lists its dense run as the ticket too
    rows = ls_json(capsys, imp_store)
    assert [r["id"] for r in rows if r["kind"] in ("imp", "train")] == [imp.id]   # members hidden
    [fc] = [r for r in rows if r["id"] == imp.id]
    assert (fc["model"], fc["dataset"], fc["imp"]) == ("lenet_300_100", "synthetic", None)
    assert fc["sparsity"] == pytest.approx(0.36) and fc["size_bytes"] > 0 and fc["status"] == "complete"
    everything = ls_json(capsys, imp_store, "--all")
    assert len(everything) == len(store.list())
    ids = [r["id"] for r in everything]
    assert ids[ids.index(imp.id) + 1:][:len(members)] == members   # right after it, level by level
    assert {r["imp"] for r in everything if r["id"] in members} == {imp.id}
    ticket2 = next(r for r in everything if r["name"] == "fc-L2-ticket-r0")
    assert ticket2["sparsity"] == pytest.approx(0.36)
    assert ticket2["test_acc"] == store.open(ticket2["id"]).metrics["final/test/acc"]
    code, out, _ = cli(capsys, "ls", "--store", imp_store)
    assert code == 0 and "fc-L1-ticket-r0" not in out
    assert f"{len(members)} IMP member run(s) hidden: --all shows them" in out
    code, out, _ = cli(capsys, "ls", "--store", imp_store, "--all")
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if imp.id in line)
    assert [line.split()[1] for line in lines[at + 1:at + 1 + len(members)]] == [store.open(i).name for i in members]
    assert all(f"{i}    fc-L" in out for i in members)   # indented under fc


def test_ls_filters_apply_to_the_table_and_the_json(imp_store, capsys):
    names = lambda *flags: sorted(r["name"] for r in ls_json(capsys, imp_store, *flags))  # noqa: E731
    assert names("--all", "--name", "*-reinit-*") == ["fc-L1-reinit-r0", "fc-L2-reinit-r0"]
    assert names("--name", "fc") == ["fc"] and names("--name", "f?") == ["fc"]
    assert names("--kind", "imp") == ["fc"] and names("--kind", "lmc", "--name", "fc*") == []
    assert names("--kind", "train") == []                            # all of them are IMP members
    assert len(names("--all", "--kind", "train")) == 5
    assert names("--all", "--model", "lenet_300_100", "--dataset", "synthetic", "--name", "fc*") == \
        sorted(["fc", "fc-L0-dense-r0", "fc-L1-ticket-r0", "fc-L1-reinit-r0", "fc-L2-ticket-r0", "fc-L2-reinit-r0"])
    assert names("--all", "--model", "conv2") == [] and names("--all", "--dataset", "mnist") == []
    assert names("--status", "complete", "--kind", "imp") == ["fc"]
    assert names("--all", "--status", "interrupted") == names("--all", "--status", "damaged") == []
    code, out, _ = cli(capsys, "ls", "--store", imp_store, "--kind", "train")
    assert code == 0 and "no runs matching these filters" in out and "5 IMP member run(s) hidden" in out
    code, out, _ = cli(capsys, "ls", "--store", imp_store, "--all", "--name", "*-L2-*", "--kind", "train")
    assert code == 0 and "fc-L2-ticket-r0" in out and "fc-L1" not in out and "2 run(s)" in out


@pytest.mark.parametrize("flag, value", [("--kind", "trian"), ("--status", "done")])
def test_ls_bad_filter_values_are_one_line_exit_2(imp_store, capsys, flag, value):
    code, out, err = cli(capsys, "ls", "--store", imp_store, flag, value, "--json")
    assert code == 2 and not out and err.count("\n") == 1
    assert err.startswith(f"error: unknown {flag} {value!r}")
    assert "interrupted" in err if flag == "--status" else "imp, " in err


# -- names --------------------------------------------------------------------------------------------

def test_a_name_is_an_alias_and_a_taken_name_is_refused_unless_renamed(tmp_path, capsys):
    store = tmp_path / "store"
    assert cli(capsys, "train", *SMALL, "--name", "first", "--store", store)[0] == 0
    # the same configuration under another name: the name is added, and we are told
    code, _, err = cli(capsys, "train", *SMALL, "--name", "second", "--store", store)
    assert code == 0 and "added the name 'second'" in err
    first = ls.Store(store).open("first")
    assert json.loads(cli(capsys, "show", "second", "--store", store, "--json")[1])["id"] == first.id
    # another configuration may not take a name that is in use
    other = [*SMALL, "--seed", "1"]
    before = snapshot(store)
    code, _, err = cli(capsys, "train", *other, "--name", "second", "--store", store)
    assert code == 2 and err.count("\n") == 1 and "already belongs to run" in err and "--rename" in err
    assert snapshot(store) == before
    # ... unless it is moved
    code, _, err = cli(capsys, "train", *other, "--name", "second", "--rename", "--store", store)
    assert code == 0
    moved = json.loads(cli(capsys, "show", "second", "--store", store, "--json")[1])
    assert moved["id"] != first.id and json.loads(cli(capsys, "show", "first", "--store", store, "--json")[1])["id"] == first.id


@pytest.mark.parametrize("name", ["x" * 101, "two\nlines", "a/b", "sp ace", ""])
def test_bad_names_are_one_line_exit_2_store_unchanged(tmp_path, capsys, name):
    store = tmp_path / "store"
    store.mkdir()
    before = snapshot(store)
    code, out, err = cli(capsys, "train", *SMALL, "--name", name, "--store", store)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert snapshot(store) == before


def test_generated_names_never_collide(imp_store, capsys):
    store = ls.Store(imp_store)
    a, b = "fc@1", "fc@1/reinit"
    first = ls.lmc(a, b, points=3, store=imp_store, device="cpu")
    second = ls.lmc(a, b, points=4, store=imp_store, device="cpu")
    assert first.id != second.id and first.name != second.name
    names = [s.name for s in store.list()]
    assert len(names) == len(set(names))


# -- bad input: one line, exit 2, store unchanged --------------------------------------------------

def test_store_path_errors_for_ls_and_report(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("not a store")
    for args in (["ls"], ["report", "x"], ["show", "x"]):
        for where in (tmp_path / "missing", afile):
            code, out, err = cli(capsys, *args, "--store", where)
            assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and not out, (args, err)
    assert not (tmp_path / "missing").exists() and afile.read_text() == "not a store"


def test_report_into_a_missing_folder_and_open_without_a_browser(imp_store, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(webbrowser, "open", lambda url, *a, **k: False)
    target = tmp_path / "new" / "folder" / "r.html"
    code, out, err = cli(capsys, "report", "fc-L1-ticket-r0", "--store", imp_store, "--out", target, "--open")
    assert code == 0 and target.exists()
    assert f"created the folder {target.parent}" in err and str(target.resolve()) in err


def test_version(capsys):
    code, out, _ = cli(capsys, "--version")
    assert code == 0 and out.strip() == f"landscape {ls.__version__}"


# -- progress ------------------------------------------------------------------------------------

def test_progress_off_a_terminal_is_a_status_line_every_n_seconds(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LANDSCAPE_PROGRESS_EVERY", "0")   # captured stderr is not a terminal
    monkeypatch.delenv("LANDSCAPE_PROGRESS", raising=False)
    code, out, err = cli(capsys, "imp", *SMALL, "--levels", "1", "--controls", "reinit", "--store", tmp_path / "s")
    assert code == 0, err
    lines = err.splitlines()
    assert any("level 0/1 · dense · step 10/20" in line for line in lines), err
    assert any("level 1/1 · ticket + 1 control · step 20/20" in line for line in lines)
    assert all(line.startswith("[0:") for line in lines)
    # the level's figures are printed as it finishes, before the summary
    out = out.splitlines()
    assert out[0].startswith("  level  0") and out[1].startswith("  level  1")


def test_tracker_counts_time_across_segments():
    from landscape.cli.progress import Tracker

    tracker = Tracker("x", how="off")
    tracker.phase("level 1/2")
    tracker(20, 20)
    first = tracker.elapsed
    tracker.phase("level 2/2")
    tracker(5, 20)
    assert tracker.elapsed >= first and tracker.status() == "x · level 2/2 · step 5/20"


def test_json_on_the_commands_that_make_runs(imp_store, capsys):
    # rerunning the IMP command reuses every level; --json prints the run as `show --json` does
    code, out, err = cli(capsys, "imp", *SMALL, "--levels", "2", "--controls", "reinit", "--name", "fc",
                         "--store", imp_store, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["kind"] == "imp" and [r["level"] for r in doc["levels"]] == [0, 1, 2]
    code, out, err = cli(capsys, "lmc", "--run-a", "fc@1", "--run-b", "fc@2", "--points", "3", "--store", imp_store,
                         "--device", "cpu", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["kind"] == "lmc" and "test/error_barrier" in doc["metrics"]


def test_models_prints_milestones_as_step_strings(capsys):
    code, out, _ = cli(capsys, "models")
    assert code == 0 and "milestones=80ep,120ep" in out and "('80ep'" not in out
