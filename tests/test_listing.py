"""`landscape ls` on stores written directly (no training): status filters, exact sparsity from a
mask, IMP grouping, long names, runs whose summary line predates the listing facts, and that all of
it stays torch-free (store/listing.py; end-to-end on a real IMP run in test_daily.py)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.main import get_command

from landscape.api.refs import ROLES
from landscape.cli.errors import run_guarded
from landscape.cli.main import app
from landscape.store import Store
from landscape.store.files import USER_BLOCK, _parse_header, _write_sealed
from landscape.store.listing import MEMBER_ROLES, Filters, list_runs

TRAIN = {"model": {"name": "lenet_300_100"}, "data": {"dataset": "mnist"}}


def write(store: Store, run_id: str, name: str, *, kind: str = "train", config=None, mask=None,
          finish: bool = True, levels=None) -> None:
    with store.writer(run_id) as w:
        w.create(name=name, kind=kind, config=config or TRAIN, environment={}, mask=mask)
        w.save(5, curves={"step": [5]}, model={"w": torch.ones(4)}, optimizer={}, checkpoint=True, resume=True)
        for level, attrs in (levels or {}).items():
            w.write_section(f"levels/{level:03d}", attrs=attrs)
        if finish:
            w.finish(curves={"step": [5]}, metrics={"final/test/acc": 0.5})


@pytest.fixture
def store(tmp_path) -> Store:
    """An IMP run (2 levels) over four train runs, a pruned run, an interrupted and a damaged run."""
    s = Store(tmp_path / "store")
    dense, t1, r1, t2 = "d0" * 6, "a1" * 6, "b1" * 6, "a2" * 6
    for run_id, name in ((dense, "fc-L0-dense-r0"), (t1, "fc-L1-ticket-r0"), (r1, "fc-L1-reinit-r0"),
                         (t2, "fc-L2-ticket-r0")):
        write(s, run_id, name)
    write(s, "1111" * 3, "fc", kind="imp", config={"train": TRAIN, "levels": 2},
          levels={0: {"dense": [dense], "ticket": [dense], "density": 1.0},
                  1: {"ticket": [t1], "reinit": [r1], "density": 0.8}, 2: {"ticket": [t2], "density": 0.64}})
    mask = {"a": torch.tensor([1, 0, 0, 1], dtype=torch.bool), "b": torch.zeros(4, dtype=torch.bool)}
    write(s, "2222" * 3, "pruned", kind="prune", config={"model": {"name": "conv2"}, "data": {"dataset": "cifar10"}},
          mask=mask)
    write(s, "3333" * 3, "killed", finish=False)
    write(s, "4444" * 3, "broken")
    path = s.path_for("4444" * 3)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return s


def drop_listing(path: Path) -> None:
    """Reseal a run file with the summary line runs had before it carried the listing facts."""
    data = path.read_bytes()
    line = json.loads(_parse_header(data[:USER_BLOCK])[1])
    del line["listing"]
    _write_sealed(path, memoryview(data), json.dumps(line, separators=(",", ":")))


def rows(store: Store, **filters) -> dict[str, dict]:
    return {r["name"]: r for r in list_runs(store, Filters(**filters)).rows}


def test_member_roles_are_the_imp_roles():
    assert set(MEMBER_ROLES) == {"dense", *ROLES}


def test_status_filters_and_sparsity(store):
    assert set(rows(store, status="interrupted")) == {"killed"}
    assert rows(store, status="interrupted")["killed"]["status"] == "interrupted (resumable from 5it)"
    damaged = list_runs(store, Filters(status="damaged")).rows
    assert [r["id"] for r in damaged] == ["4444" * 3] and "checksum" in damaged[0]["problem"]
    assert set(rows(store, status="complete")) == {"fc", "pruned"}
    assert rows(store)["pruned"]["sparsity"] == 0.75     # 2 of 8 mask entries kept
    assert rows(store)["fc"]["sparsity"] == pytest.approx(0.36)
    assert rows(store)["killed"]["sparsity"] is None and rows(store)["killed"]["test_acc"] is None
    assert set(rows(store, kind="prune", model="conv2", dataset="cifar10")) == {"pruned"}
    found = list_runs(store, Filters(kind="train"))
    assert [r["name"] for r in found.rows] == ["killed"] and found.hidden == 4


def test_members_follow_their_imp_run_with_all(store):
    names = [r["name"] for r in list_runs(store, Filters(all=True)).rows if r["kind"] in ("imp", "train")]
    assert names == ["fc", "fc-L0-dense-r0", "fc-L1-ticket-r0", "fc-L1-reinit-r0", "fc-L2-ticket-r0", "killed"]
    assert {r["imp"] for r in list_runs(store, Filters(all=True, name="fc-*")).rows} == {"1111" * 3}
    assert [r["name"] for r in store.ls(kind="imp")] == ["fc"]   # the notebook API
    assert len(store.ls(all=True, name="fc-L1-*")) == 2 and store.ls(name="fc-L1-*") == []


def test_a_summary_line_without_the_listing_facts_is_read_from_hdf5(store):
    """Stores written before the summary line carried model, sparsity, members...: the same rows."""
    before = list_runs(store, Filters(all=True)).rows
    for s in store.list():
        if s.listing is None:
            continue
        drop_listing(s.path)
    assert all(s.listing is None for s in store.list() if not s.damaged)
    assert list_runs(store, Filters(all=True)).rows == before


def test_long_names_are_shortened_never_wrapped(tmp_path, capsys):
    store = Store(tmp_path)
    name = "a-rather-long-name-" * 5 + "end"
    write(store, "5555" * 3, name)
    code = run_guarded(get_command(app), ["ls", "--store", str(tmp_path)])
    out = capsys.readouterr().out
    [row] = [line for line in out.splitlines() if "5555" in line]
    assert code == 0 and "…" in row and "-end " in row and name not in out
    assert len(out.splitlines()) == 3   # header, the run, the count


def test_ls_with_filters_does_not_import_torch(store):
    """Neither the summary line nor the HDF5 fallback needs torch."""
    drop_listing(store.path_for("2222" * 3))
    code = ("import sys, json, io, contextlib, typer\nfrom landscape.cli.main import app\n"
            "from landscape.cli.errors import run_guarded\nbuf = io.StringIO()\n"
            "with contextlib.redirect_stdout(buf):\n"
            f"    rc = run_guarded(typer.main.get_command(app), ['ls', '--all', '--json', '--status', 'complete', "
            f"'--store', {str(store.root)!r}])\n"
            "print('RESULT', rc, 'torch' in sys.modules, json.dumps(sorted(r['name'] for r in json.loads(buf.getvalue()))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "RESULT 0 False" in out.stdout, out.stderr
    assert json.loads(out.stdout.split("False ", 1)[1]) == ["fc", "fc-L0-dense-r0", "fc-L1-reinit-r0",
                                                           "fc-L1-ticket-r0", "fc-L2-ticket-r0", "pruned"]
