"""A store you can trust at scale (issue 10): damaged bytes are caught wherever they fall, old
stores stay readable, runs whose process died say so, and maintenance (verify, rm, gc) is safe."""
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest
import torch

from landscape.errors import StoreError
from landscape.store import Store
from landscape.store.run import parts_dir

RUN_ID = "abc123def456"


def make_run(store, run_id=RUN_ID, name="r", steps=(0, 10), size=2000, parent=None, config=None, finish=True):
    with store.writer(run_id) as w:
        w.create(name=name, kind="train", config=config or {"model": {"name": "m"}, "seed": run_id},
                 environment={"torch": torch.__version__}, plan={"iters_per_epoch": 5, "total_steps": 10},
                 parent=parent)
        curves = {"step": [], "test/acc": []}
        for s in steps:
            curves["step"].append(s)
            curves["test/acc"].append(s / 10)
            w.save(s, curves=curves, model={"w": torch.arange(size, dtype=torch.float32) + s},
                   optimizer={"w": {"m": torch.ones(size)}}, checkpoint=True, resume=True)
        if finish:
            w.finish(curves=curves, metrics={"final/test/acc": 0.875})
    return store.open(run_id)


def read_everything(store, run_id):
    run = store.open(run_id)
    data = [run.checkpoint(s).model["w"] for s in run.checkpoint_steps]
    return run.metrics, run.curves["test/acc"].tolist(), data


def flip(path, offset, count=4):
    with open(path, "r+b") as f:
        f.seek(offset)
        old = f.read(count)
        f.seek(offset)
        f.write(bytes(b ^ 0xFF for b in old))


def test_damage_at_any_offset_is_caught(tmp_path):
    """Every byte is covered: header, HDF5 metadata, attributes, curves and the weights' data region."""
    clean = tmp_path / "clean"
    make_run(Store(clean))
    make_run(Store(clean), "fedcba987654", name="intact")
    index = clean / f"{RUN_ID}.h5"
    [part0, part10] = sorted(parts_dir(index).iterdir())
    targets = [(index, o) for o in np.linspace(0, index.stat().st_size - 4, 12).astype(int)]
    # the data region of a part: the bytes that hold the float32 weights (found by value)
    blob = part10.read_bytes()
    data_at = blob.find((torch.arange(2000, dtype=torch.float32) + 10).numpy().tobytes()[:64])
    assert data_at > 0
    targets += [(part10, data_at + 400), (part10, 100), (part10, len(blob) - 8), (part0, len(blob) // 2)]
    for i, (path, offset) in enumerate(targets):
        trial = tmp_path / f"t{i}"
        shutil.copytree(clean, trial)
        flip(trial / path.relative_to(clean), int(offset))
        store = Store(trial)
        with pytest.raises(StoreError, match=f"run {RUN_ID} is damaged") as err:
            read_everything(store, RUN_ID)
        assert "\n" not in str(err.value) and "landscape rm" in str(err.value)
        listed = {s.id: s for s in store.list()}  # never raises, never hides the intact run
        assert listed["fedcba987654"].status == "complete"
        if path == index:
            assert listed[RUN_ID].damaged and listed[RUN_ID].problem
        from landscape.store.maintenance import verify
        verdicts = {v.id: v.state for v in verify(store)}
        assert verdicts == {RUN_ID: "damaged", "fedcba987654": "ok"}, (path.name, offset)


def test_missing_part_is_damage_in_ls(tmp_path):
    store = Store(tmp_path)
    make_run(store)
    next(parts_dir(store.path_for(RUN_ID)).iterdir()).unlink()
    [summary] = store.list()
    assert summary.damaged and "missing" in summary.problem


def write_format1(path, run_id="0123456789ab"):
    """A run file as stores before the part files held it: one HDF5 file, weights inline, no seal."""
    with h5py.File(path, "w") as f:
        f.attrs.update(format=1, id=run_id, name="old", kind="train", status="complete", parent="",
                       created="2026-01-01T00:00:00Z", updated="", config_json=json.dumps({"a": 1}))
        f.create_group("config").attrs["a"] = 1
        f.create_group("environment")
        f.create_group("plan").attrs["total_steps"] = 10
        f.create_group("curves").create_dataset("step", data=np.array([0.0, 10.0]))
        f.create_group("metrics").attrs["final/test/acc"] = 0.5
        for step in (0, 10):
            g = f.create_group(f"checkpoints/{step}")
            g.attrs["step"] = step
            g.create_group("model").create_dataset("w", data=np.full(3, float(step), np.float32))
            g.create_group("optimizer")


def test_old_single_file_runs_stay_readable_and_can_be_continued(tmp_path):
    store = Store(tmp_path)
    tmp_path.mkdir(exist_ok=True)
    write_format1(store.path_for("0123456789ab"))
    run = store.open("old")
    assert run.checkpoint_steps == [0, 10] and run.checkpoint(10).model["w"].tolist() == [10.0] * 3
    assert [s.status for s in store.list()] == ["complete"]
    from landscape.store.maintenance import verify
    assert [v.state for v in verify(store)] == ["unverified"]
    with store.writer("0123456789ab") as w:  # a writer adds parts beside the inline checkpoints
        w.save(20, curves={"step": [0, 10, 20]}, model={"w": torch.full((3,), 20.0)}, optimizer={},
               checkpoint=True, resume=False)
    run = store.open("old")
    assert run.checkpoint_steps == [0, 10, 20]
    assert run.checkpoint(0).model["w"].tolist() == [0.0] * 3 and run.checkpoint(20).model["w"].tolist() == [20.0] * 3


def test_update_cost_does_not_grow_with_the_run(tmp_path):
    """Each save writes its own part and a small index; earlier checkpoints are never rewritten."""
    store = Store(tmp_path)
    sizes = []
    with store.writer(RUN_ID) as w:
        w.create(name="r", kind="train", config={}, environment={})
        curves = {"step": []}
        for step in range(6):
            curves["step"].append(step)
            w.save(step, curves=curves, model={"w": torch.randn(50_000)}, optimizer={}, checkpoint=True, resume=True)
            sizes.append(store.path_for(RUN_ID).stat().st_size)
        first = sorted(parts_dir(store.path_for(RUN_ID)).iterdir())[0]
        before = first.stat().st_mtime_ns, first.stat().st_ino
        w.save(6, curves=curves, model={"w": torch.randn(50_000)}, optimizer={}, checkpoint=True, resume=True)
        assert (first.stat().st_mtime_ns, first.stat().st_ino) == before  # untouched
    assert max(sizes) < 50_000 and sizes[-1] - sizes[0] < 5_000  # the index stays small


def test_a_dead_writer_shows_interrupted_never_running(tmp_path):
    code = textwrap.dedent(f"""
        import os, sys, torch
        from landscape.store import Store
        w = Store(sys.argv[1]).writer("{RUN_ID}")
        w.create(name="k", kind="train", config={{}}, environment={{}})
        w.save(7, curves={{"step": [7]}}, model={{"w": torch.ones(3)}}, optimizer={{}}, checkpoint=False, resume=True)
        print("ready", flush=True)
        sys.stdin.readline()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    [live] = Store(tmp_path).list()
    assert live.display_status == f"running (process {proc.pid} on host {os.uname().nodename})"
    proc.kill()
    proc.wait()
    [dead] = Store(tmp_path).list()
    assert dead.status == "running" and dead.display_status == "interrupted (resumable from 7it)"
    assert Store(tmp_path).open(RUN_ID).display_status == "interrupted (resumable from 7it)"


def test_a_writer_waits_for_a_live_one_then_takes_over(tmp_path):
    store = Store(tmp_path, wait_s=5.0)
    heard = []
    store.notify = lambda message, waited: heard.append(message)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from landscape.store import Store
        w = Store(sys.argv[1]).writer("{RUN_ID}")
        print("ready", flush=True)
        time.sleep(1.0)
        w.close()
    """), str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "ready"
    started = time.monotonic()
    with store.writer(RUN_ID):
        assert time.monotonic() - started > 0.3
    holder.wait()
    assert heard == [f"waiting for run {RUN_ID}, written by process {holder.pid} on host {os.uname().nodename}"]
    with store.writer(RUN_ID):  # and a bounded wait ends in a clear error
        code = (f"import sys\nfrom landscape.store import Store\ntry:\n    Store(sys.argv[1], wait_s=0.5).writer('{RUN_ID}')\n"
                "except Exception as e:\n    print(e)")
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True).stdout
        assert f"run {RUN_ID} is still being written by process {os.getpid()}" in out and "--wait" in out


def test_disk_full_keeps_the_last_complete_state(tmp_path, monkeypatch):
    """A simulated ENOSPC in the middle of a save: one clear error, the previous state intact."""
    from landscape.store import layout

    store = Store(tmp_path)
    make_run(store, steps=(0,), finish=False)
    before = read_everything(store, RUN_ID)
    real = layout.write_tensors

    def full(group, tensors):  # as h5py reports a failed write: errno in the message only
        raise OSError("Can't synchronously write data (file write failed: time = Mon Nov 30, filename = 'x', "
                      "file descriptor = 7, errno = 28, error message = 'No space left on device')")

    monkeypatch.setattr(layout, "write_tensors", full)
    with store.writer(RUN_ID) as w:
        with pytest.raises(StoreError, match=r"no space left on .* while saving run abc123def456 at step 5 .*free ~\d+ MB"):
            w.save(5, curves={"step": [0, 5]}, model={"w": torch.ones(2000)}, optimizer={}, checkpoint=True,
                   resume=True)
    monkeypatch.setattr(layout, "write_tensors", real)
    run = store.open(RUN_ID)
    assert run.resume_step == 0 and run.checkpoint_steps == [0]
    np.testing.assert_array_equal(read_everything(store, RUN_ID)[2][0], before[2][0])
    leftovers = [p for p in tmp_path.rglob("*") if ".tmp." in p.name]
    assert not leftovers


def test_rm_refuses_runs_others_use_unless_asked(tmp_path):
    store = Store(tmp_path)
    make_run(store, "aaaa00000001", name="parent")
    make_run(store, "aaaa00000002", name="child", parent="aaaa00000001")
    make_run(store, "aaaa00000003", name="lmc", config={"endpoints": ["aaaa00000002", "x"]})
    make_run(store, "aaaa00000004", name="alone")
    from landscape.store.maintenance import plan_removal, remove_run

    with pytest.raises(StoreError, match="run aaaa00000001 is used by aaaa00000002"):
        plan_removal(store, ["parent"], with_dependents=False)
    plan = plan_removal(store, ["parent"], with_dependents=True)
    assert plan.ids == ["aaaa00000003", "aaaa00000002", "aaaa00000001"]  # users first
    assert plan_removal(store, ["alone"], with_dependents=False).ids == ["aaaa00000004"]
    flip(store.path_for("aaaa00000002"), 700)  # a damaged run can go alone
    assert plan_removal(store, ["aaaa00000002"], with_dependents=False).ids == ["aaaa00000002"]
    for run_id in plan.ids:
        remove_run(store, run_id)
    assert [s.id for s in store.list()] == ["aaaa00000004"]
    assert not parts_dir(store.path_for("aaaa00000001")).exists()


def test_gc_removes_leftovers_of_killed_writes_only(tmp_path):
    store = Store(tmp_path)
    make_run(store)
    parts = parts_dir(store.path_for(RUN_ID))
    (tmp_path / f".{RUN_ID}.h5.tmp.999.abc").write_bytes(b"x" * 1000)  # a killed index write
    (parts / ".0000000020-aa.h5.tmp.999.abc").write_bytes(b"x" * 500)  # a killed part write
    (parts / "0000000020-deadbeef.h5").write_bytes(b"x" * 300)  # written, never listed
    (tmp_path / "bbbb00000000.parts").mkdir()
    (tmp_path / "bbbb00000000.parts" / "0000000000-aa.h5").write_bytes(b"x" * 200)  # no index at all
    (tmp_path / ".locks").mkdir(exist_ok=True)
    (tmp_path / ".locks" / "cccc00000000.lock").write_bytes(b"")  # left by bad input
    from landscape.store.maintenance import collect

    held = store.writer("dddd00000000")  # a live writer's lock and temp files stay
    (tmp_path / ".dddd00000000.h5.tmp.1.x").write_bytes(b"y" * 50)
    done = collect(store)
    held.close()
    assert (done.temps, done.parts, done.locks) == (2, 2, 1)
    assert done.bytes == 1000 + 500 + 300 + 200
    assert (tmp_path / ".dddd00000000.h5.tmp.1.x").exists()
    assert read_everything(store, RUN_ID)[0] == {"final/test/acc": 0.875}


def test_ls_rm_verify_gc_do_not_import_torch(tmp_path):
    """`show` does: it resolves every reference `lmc` accepts (IMP@L/role/rN), through the api."""
    make_run(Store(tmp_path))
    for command in (["ls"], ["verify"], ["rm", RUN_ID, "--dry-run"], ["gc", "--dry-run"]):
        code = ("import sys, typer\nfrom landscape.cli.main import app\nfrom landscape.cli.errors import run_guarded\n"
                f"rc = run_guarded(typer.main.get_command(app), {command + ['--store', str(tmp_path)]!r})\n"
                "print('RESULT', rc, 'torch' in sys.modules)")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert "RESULT 0 False" in out.stdout, (command, out.stdout, out.stderr)
