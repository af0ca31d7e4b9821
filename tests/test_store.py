import os
import signal
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
import torch

from landscape.errors import StoreError
from landscape.store import Store


def make_run(store, run_id="abc123def456", name="r", kind="train", steps=(0, 10)):
    with store.writer(run_id) as w:
        w.create(name=name, kind=kind, config={"model": {"name": "m", "width": 1.0}, "mask": None, "tags": ["a"]},
                 environment={"torch": torch.__version__}, plan={"iters_per_epoch": 5, "total_steps": 10})
        curves = {"step": [], "test/acc": []}
        for s in steps:
            curves["step"].append(s)
            curves["test/acc"].append(s / 10)
            w.save(s, curves=curves, model={"w": torch.full((3,), float(s))}, optimizer={"w": {"m": torch.ones(3)}},
                   checkpoint=True, resume=True)
        w.finish(curves=curves, metrics={"final/test/acc": 1.0})
    return store.open(run_id)


def test_round_trip(tmp_path):
    store = Store(tmp_path)
    run = make_run(store)
    assert run.complete and run.kind == "train" and run.name == "r"
    assert run.config == {"model": {"name": "m", "width": 1.0}, "mask": None, "tags": ["a"]}
    assert run.checkpoint_steps == [0, 10]
    assert run.checkpoint(10).model["w"].tolist() == [10.0] * 3
    assert run.checkpoint(10).optimizer["w"]["m"].tolist() == [1.0] * 3
    np.testing.assert_array_equal(run.curves["test/acc"], [0.0, 1.0])
    assert run.metrics == {"final/test/acc": 1.0}
    assert run.resume_state() is None  # dropped once complete
    assert run.plan == {"iters_per_epoch": 5, "total_steps": 10}
    with h5py.File(run.path) as f:  # configuration is data: typed attributes, not only JSON
        assert f["config/model"].attrs["width"] == 1.0
    with pytest.raises(StoreError, match="no checkpoint at 5it"):
        run.checkpoint(5)


def test_references_resolve_by_id_prefix_and_name(tmp_path):
    store = Store(tmp_path)
    make_run(store, "abc123def456", name="alpha")
    make_run(store, "abc999000111", name="beta")
    assert store.resolve("abc123def456") == "abc123def456"
    assert store.resolve("abc1") == "abc123def456"
    assert store.resolve("beta") == "abc999000111"
    with pytest.raises(StoreError, match="too short"):
        store.resolve("abc")
    with pytest.raises(StoreError, match="no run 'gamma'"):
        store.resolve("gamma")
    assert store.resolve_checkpoint("alpha:end") == ("abc123def456", 10)
    assert store.resolve_checkpoint("alpha:2ep") == ("abc123def456", 10)
    with pytest.raises(StoreError, match="no checkpoint at 5it"):
        store.resolve_checkpoint("alpha:1ep")


def test_prefix_shared_by_two_runs_is_ambiguous(tmp_path):
    store = Store(tmp_path)
    make_run(store, "abcd11112222")
    make_run(store, "abcd33334444")
    with pytest.raises(StoreError, match="ambiguous: it matches abcd11112222, abcd33334444"):
        store.resolve("abcd")


def test_one_writer_per_run(tmp_path):
    store = Store(tmp_path)
    with store.writer("abc123def456"):
        with pytest.raises(StoreError, match="being written by another"):
            store.writer("abc123def456")
    store.writer("abc123def456").close()  # released


def test_truncated_file_is_a_clear_error_and_listed_as_damaged(tmp_path):
    store = Store(tmp_path)
    run = make_run(store)
    data = run.path.read_bytes()
    run.path.write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreError, match="damaged"):
        store.open("abc123def456")
    assert [s.status for s in store.list()] == ["damaged"]


def test_unwritable_store_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot write to the store"):
        Store(blocker / "store").ensure_writable()


def test_failed_update_leaves_the_file_as_it_was(tmp_path):
    store = Store(tmp_path)
    run = make_run(store, steps=(0,))
    before = run.path.read_bytes()
    with store.writer(run.id) as w:
        with pytest.raises(AttributeError):  # not a tensor: fails half-way through the update
            w.save(5, curves={"step": [0]}, model={"w": object()}, optimizer={}, checkpoint=True, resume=False)
    assert run.path.read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp.*"))


KILLER = textwrap.dedent("""
    import sys, torch
    from landscape.store import Store
    store = Store(sys.argv[1])
    w = store.writer("abc123def456")
    w.create(name="k", kind="train", config={}, environment={})
    curves = {"step": []}
    step = 0
    print("ready", flush=True)
    while True:  # write checkpoints until killed
        curves["step"].append(step)
        w.save(step, curves=curves, model={"w": torch.randn(200_000)}, optimizer={}, checkpoint=True, resume=True)
        step += 1
""")


@pytest.mark.parametrize("delay", [0.3, 0.55, 0.8])
def test_kill_at_any_instant_leaves_a_readable_file(tmp_path, delay):
    proc = subprocess.Popen([sys.executable, "-c", KILLER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    import time
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = Store(tmp_path)
    run = store.open("abc123def456")
    assert not run.complete
    # every checkpoint it lists is whole, and the curves agree with them
    assert run.checkpoint_steps == list(range(len(run.checkpoint_steps)))
    last = run.checkpoint_steps[-1]
    assert run.checkpoint(last).model["w"].shape == (200_000,)
    assert run.curves["step"].tolist() == run.checkpoint_steps
    # the next writer cleans up after the killed one and can write
    with store.writer("abc123def456") as w:
        assert not list(tmp_path.glob(".*.tmp.*"))
        w.finish(curves={"step": [0]}, metrics={})
    assert store.open("abc123def456").complete
