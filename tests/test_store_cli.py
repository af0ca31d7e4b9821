"""The store from the command line (issue 10): concurrent identical commands wait and reuse, a full
disk and SIGTERM/SIGINT are one line with the conventional exit code, damaged runs are listed and
verified, and a damaged IMP member is repaired by rerunning the IMP command."""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from landscape.store import Store
from landscape.store.run import parts_dir

SMALL = ["--model", "lenet_300_100", "--dataset", "synthetic", "--steps", "30it", "--batch-size", "32",
         "--eval-every", "10it", "--checkpoint-at", "0,10it,end"]
LONG = ["--model", "lenet_300_100", "--dataset", "synthetic", "--steps", "300it", "--batch-size", "16",
        "--eval-every", "20it", "--optimizer", "sgd", "--momentum", "0.9", "--lr", "0.02"]


def landscape(*args, env=None, check=None, timeout=180):
    proc = subprocess.run([sys.executable, "-m", "landscape.cli.main", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)
    if check is not None:
        assert proc.returncode == check, proc.stderr
    return proc


def start(*args, env=None, stderr=subprocess.PIPE):
    return subprocess.Popen([sys.executable, "-m", "landscape.cli.main", *args], stdout=subprocess.PIPE,
                            stderr=stderr, text=True, env={**os.environ, **(env or {})})


def _run_id(flags: list[str]) -> str:
    from landscape.calls.training import base_config
    from landscape.cli.flags import TRAIN_FLAGS

    args = {p.name: p.default for p in TRAIN_FLAGS}
    for name, value in zip(flags[::2], flags[1::2]):
        key = name[2:].replace("-", "_")
        default = args.get(key)
        args[key] = type(default)(value) if isinstance(default, (int, float)) and default is not None else value
    args["batch_size"] = int(args["batch_size"]) if args["batch_size"] is not None else None
    from landscape.api.train import load_for, resolve_val_size

    config = base_config(args).validate()
    return resolve_val_size(config, load_for(config, None)).run_id()


def test_four_identical_trains_wait_for_one_computation(tmp_path):
    store = tmp_path / "store"
    run_id = _run_id(SMALL)
    holder = Store(store).writer(run_id)  # so that all four surely meet a live writer
    logs = [tmp_path / f"err{i}" for i in range(4)]
    procs = [start("train", *SMALL, "--store", str(store), env={"LANDSCAPE_PROGRESS": "1"}, stderr=log.open("w"))
             for log in logs]
    waiting = f"waiting for run {run_id}, written by process {os.getpid()} on host {os.uname().nodename}"
    deadline = time.time() + 120
    while time.time() < deadline and not all(waiting in log.read_text() for log in logs):
        time.sleep(0.1)
    holder.close()
    outs = [p.communicate(timeout=180)[0] for p in procs]
    errs = [log.read_text() for log in logs]
    assert [p.returncode for p in procs] == [0] * 4, errs
    assert all(waiting in e for e in errs)
    assert sum("on synthetic" in e for e in errs) == 1  # one progress bar: one computation
    assert all(run_id in o for o in outs)
    [run] = Store(store).runs()
    assert run.complete and run.id == run_id


@pytest.mark.slow
def test_imp_runs_sharing_the_dense_run_all_finish(tmp_path):
    store = tmp_path / "store"
    base = ["imp", "--model", "lenet_300_100", "--dataset", "synthetic", "--steps", "60it", "--batch-size", "32",
            "--eval-every", "30it", "--levels", "1", "--controls", "none", "--store", str(store)]
    procs = [start(*base, "--prune-fraction", f) for f in ("0.2", "0.3", "0.4", "0.5")]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [r[1] for r in results]
    runs = Store(store).list()
    assert sum(r.name.endswith("-L0-dense-r0") for r in runs) == 1
    assert all(r.status == "complete" for r in runs)


def _wait_for_resume(store: Path, at_least: int, proc) -> None:
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        for path in store.glob("*.h5"):
            try:
                if (Store(store).open(path.stem).resume_step or 0) >= at_least:
                    return
            except Exception:
                pass
        time.sleep(0.05)
    raise AssertionError("the run never got going")


@pytest.mark.parametrize("signum,code,word", [(signal.SIGTERM, 143, "terminated"),
                                              pytest.param(signal.SIGINT, 130, "interrupted", marks=pytest.mark.slow)])
def test_a_signal_stops_cleanly_and_the_rerun_is_identical(tmp_path, cli_in_process, signum, code, word):
    straight = tmp_path / "straight"
    cli_in_process("train", *LONG, "--store", str(straight), check=0)
    [reference] = Store(straight).runs()
    store = tmp_path / "stopped"
    proc = start("train", *LONG, "--store", str(store), env={"LANDSCAPE_SAVE_INTERVAL": "0"})
    _wait_for_resume(store, 60, proc)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{word} at step ") and "rerun" in lines[0], err
    assert not [p for p in store.rglob("*") if ".tmp." in p.name]
    stopped = Store(store).open(reference.id)
    assert not stopped.complete and stopped.display_status.startswith("interrupted (resumable from")
    cli_in_process("train", *LONG, "--store", str(store), check=0)
    resumed = Store(store).open(reference.id)
    a, b = reference.checkpoint(reference.checkpoint_steps[-1]).model, resumed.checkpoint(resumed.checkpoint_steps[-1]).model
    assert all(torch.equal(a[k], b[k]) for k in a)


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_a_full_disk_is_one_line_and_keeps_the_last_state(tmp_path):
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "3m"):
        pytest.skip("cannot mount a small tmpfs here (needs root); the simulated ENOSPC test covers the store")
    try:
        store = disk / "store"
        args = ["train", "--model", "lenet_300_100", "--dataset", "synthetic", "--steps", "60it", "--batch-size", "32",
                "--eval-every", "10it", "--checkpoint-at", "0,10it,20it,30it,40it,50it,end", "--store", str(store)]
        proc = landscape(*args)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: no space left on ") and "while saving run" in lines[0] \
            and "free ~" in lines[0], proc.stderr
        [summary] = Store(store).list()
        assert summary.status == "running" and summary.display_status.startswith("interrupted")
        run = Store(store).open(summary.id)
        for step in run.checkpoint_steps:  # every state it lists is whole
            run.checkpoint(step)
        assert not [p for p in store.rglob("*") if ".tmp." in p.name]
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


@pytest.mark.slow  # the store-level checks of test_store_trust.py run by default
def test_damaged_runs_are_listed_verified_and_refused_in_one_line(tmp_path):
    store = tmp_path / "store"
    landscape("train", *SMALL, "--store", str(store), check=0)
    landscape("train", *SMALL, "--seed", "1", "--store", str(store), check=0)
    bad, good = sorted(Store(store).runs(), key=lambda r: r.id)
    with open(bad.path, "r+b") as f:  # a few bytes in the middle of the index (curves, attributes...)
        f.seek(bad.path.stat().st_size // 2)
        f.write(b"\x00\xff\x00\xff")
    listing = landscape("ls", "--store", str(store), check=0).stdout
    assert good.id in listing and bad.id in listing and "damaged" in listing
    shown = landscape("show", bad.id, "--store", str(store), check=2)
    assert shown.stderr.count("\n") == 1 and f"run {bad.id} is damaged" in shown.stderr
    verified = landscape("verify", "--store", str(store), check=1).stdout
    assert "1 damaged" in verified and bad.id in verified
    part = sorted(parts_dir(good.path).iterdir())[-1]  # the weights' data region of the other run
    with open(part, "r+b") as f:
        f.seek(part.stat().st_size // 2)
        f.write(b"\x00\xff\x00\xff")
    assert "2 damaged" in landscape("verify", "--store", str(store), check=1).stdout
    lmc = landscape("lmc", "--run-a", f"{good.id}:end", "--run-b", f"{good.id}:10it", "--points", "3",
                    "--store", str(store))
    assert lmc.returncode == 2 and f"run {good.id} is damaged" in lmc.stderr and lmc.stderr.count("\n") == 1


@pytest.mark.slow
def test_a_damaged_imp_member_is_repaired_by_rerunning_imp(tmp_path):
    store = tmp_path / "store"
    args = ["imp", "--model", "lenet_300_100", "--dataset", "synthetic", "--steps", "40it", "--batch-size", "32",
            "--eval-every", "20it", "--levels", "2", "--controls", "reinit", "--store", str(store)]
    landscape(*args, check=0)
    s = Store(store)
    [imp] = s.runs("imp")
    level1 = imp.section("levels/001")
    ticket, control = level1["ticket"][0], level1["reinit"][0]
    dense = imp.section("levels/000")["dense"][0]
    before = {i: s.open(i).checkpoint(s.open(i).checkpoint_steps[-1]).model for i in (ticket, control, dense)}
    refused = landscape("rm", ticket, "--store", str(store), check=2)
    assert f"run {ticket} is used by {imp.id}" in refused.stderr
    with open(s.path_for(ticket), "r+b") as f:
        f.seek(2000)
        f.write(b"\xff" * 8)
    landscape("rm", ticket, "--store", str(store), check=0)  # a damaged run can go alone
    s.path_for(dense).unlink()  # and a member deleted by hand
    shutil.rmtree(parts_dir(s.path_for(dense)))
    landscape(*args, check=0)
    for run_id, weights in before.items():
        run = s.open(run_id)
        again = run.checkpoint(run.checkpoint_steps[-1]).model
        assert run.complete and all(torch.equal(weights[k], again[k]) for k in weights), run_id
    assert s.open(imp.id).complete
