"""Store benchmark (issue 10): what a checkpoint costs to write, and how fast `landscape ls` is.

    python experiments/bench_store.py                       # 5 checkpoints of VGG-16 (CIFAR), ls on 10..1000 runs
    python experiments/bench_store.py --checkpoints 10 --runs 100,1000 --dir /tmp/bench

1. N checkpoints of a VGG-16-sized training state (weights + SGD momentum, ~118 MB), written
   a) as the store wrote them before format 2 (format 1: every update copies the whole run file,
      adds the checkpoint and renames the copy over the original), and
   b) through `RunWriter.save` (format 2: one sealed part file per state plus a small index).
   Printed per checkpoint: bytes written (the sizes of the files each update writes whole) and
   seconds. Old grows linearly per checkpoint (quadratic in total); new stays constant.
2. `landscape ls` on stores of 0..1000 runs (each with curves, configuration, environment and
   metrics like a real training run): wall time of the command (start-up included) and of
   `Store.list()` alone; and the start-up time of `landscape ls` and `landscape --help`.
Nothing is asserted: the figures are printed, with old/new ratios.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch

from landscape.models import build_model
from landscape.store import Store
from landscape.store import layout
from landscape.fileio import replace_durably


def vgg16_state() -> tuple[dict, dict]:
    model = build_model("vgg16", (3, 32, 32), 10, seed=0)
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    momentum = {k: {"momentum_buffer": torch.randn_like(v)} for k, v in model.named_parameters()}
    return weights, momentum


def io_written() -> int:
    """Bytes this process sent towards storage (Linux /proc/self/io), -1 where unknown."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def old_layout(path: Path, n: int, model, optimizer) -> list[tuple[int, float, int]]:
    """Format 1 as main wrote it before issue 10: copy the file, add to the copy, rename it over."""
    with h5py.File(path, "w") as f:
        f.attrs.update(format=1, id="0" * 12, status="running")
        f.create_group("curves")
        f.create_group("checkpoints")
    rows = []
    for step in range(n):
        t0, io0 = time.perf_counter(), io_written()
        tmp = path.with_name(f".{path.name}.tmp")
        shutil.copyfile(path, tmp)
        with h5py.File(tmp, "r+") as f:
            layout.write_curves(f["curves"], {"step": list(range(step + 1))})
            layout.write_state(f["checkpoints"].create_group(str(step)), model, optimizer, step)
            if "resume" in f:
                del f["resume"]
            layout.write_state(f.create_group("resume"), model, optimizer, step)
        written = tmp.stat().st_size
        replace_durably(tmp, path)
        rows.append((written, time.perf_counter() - t0, io_written() - io0))
    return rows


def new_layout(root: Path, n: int, model, optimizer) -> list[tuple[int, float, int]]:
    store = Store(root)
    rows = []
    with store.writer("1" * 12) as w:
        w.create(name="bench", kind="train", config={}, environment={})
        parts = root / f"{'1' * 12}.parts"
        for step in range(n):
            t0, io0 = time.perf_counter(), io_written()
            before = {p.name for p in parts.glob("*")} if parts.exists() else set()
            w.save(step, curves={"step": list(range(step + 1))}, model=model, optimizer=optimizer,
                   checkpoint=True, resume=True)
            new_parts = [p for p in parts.glob("*") if p.name not in before]
            written = sum(p.stat().st_size for p in new_parts) + store.path_for("1" * 12).stat().st_size
            rows.append((written, time.perf_counter() - t0, io_written() - io0))
    return rows


def bench_checkpoints(work: Path, n: int) -> None:
    model, optimizer = vgg16_state()
    size = sum(v.numel() * 4 for v in model.values()) + sum(b.numel() * 4 for d in optimizer.values() for b in d.values())
    work.mkdir(parents=True, exist_ok=True)
    print(f"== {n} checkpoints of a VGG-16 (CIFAR-10) state: {size / 1e6:.1f} MB of weights + momentum ==")
    old = old_layout(work / "old.h5", n, model, optimizer)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    new = new_layout(work / "new", n, model, optimizer)
    print(f"{'ckpt':>4}  {'old MB written':>14} {'old s':>7} {'old io MB':>9}   {'new MB written':>14} {'new s':>7} "
          f"{'new io MB':>9}   {'bytes old/new':>13}")
    for i, ((ob, os_, oi), (nb, ns, ni)) in enumerate(zip(old, new)):
        print(f"{i:>4}  {ob / 1e6:>14.1f} {os_:>7.2f} {oi / 1e6:>9.1f}   {nb / 1e6:>14.1f} {ns:>7.2f} {ni / 1e6:>9.1f}   "
              f"{ob / nb:>13.2f}")
    tot_o, tot_n = sum(r[0] for r in old), sum(r[0] for r in new)
    print(f"total: old {tot_o / 1e9:.2f} GB in {sum(r[1] for r in old):.1f} s, new {tot_n / 1e9:.2f} GB in "
          f"{sum(r[1] for r in new):.1f} s: old/new bytes {tot_o / tot_n:.2f}, time "
          f"{sum(r[1] for r in old) / sum(r[1] for r in new):.2f}")
    shutil.rmtree(work, ignore_errors=True)


def fill_store(root: Path, count: int, start: int) -> None:
    store = Store(root)
    rng = np.random.default_rng(start)
    evals = 50
    for i in range(start, count):
        run_id = f"{i:012x}"
        with store.writer(run_id) as w:
            config = {"model": {"name": "resnet20", "width": 1.0, "init": "kaiming_normal"},
                      "data": {"dataset": "cifar10", "val_size": 5000, "augment": "crop-flip"},
                      "optim": {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "milestones": ["80ep", "120ep"]},
                      "seeds": {"init": i, "data_order": i, "augment": i}, "steps": "160ep"}
            w.create(name=f"run-{i}", kind="train", config=config,
                     environment={"torch": torch.__version__, "host": "bench", "python": sys.version.split()[0]},
                     plan={"total_steps": 62400, "iters_per_epoch": 390})
            curves = {k: list(rng.random(evals)) for k in ("step", "epoch", "lr", "time", "train/loss", "train/acc",
                                                           "val/loss", "val/acc", "test/loss", "test/acc")}
            w.finish(curves=curves, metrics={"final/test/acc": float(rng.random()), "final/val/acc": 0.9,
                                             "steps": 62400.0, "train_time_s": 1000.0})


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of a command; on shared cores the CPU time is
    the steadier figure."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def median(cmd: list[str], repeats: int) -> tuple[float, float]:
    runs = [timed(cmd) for _ in range(repeats)]
    return sorted(r[0] for r in runs)[repeats // 2], sorted(r[1] for r in runs)[repeats // 2]


def bench_ls(work: Path, counts: list[int], repeats: int) -> None:
    print(f"== landscape ls (median of {repeats}) ==")
    exe = [sys.executable, "-m", "landscape.cli.main"]
    empty = work / "empty"
    startup, startup_cpu = median(exe + ["ls", "--store", str(empty)], repeats)
    helptime, help_cpu = median(exe + ["--help"], repeats)
    print(f"start-up: `landscape ls` on an empty store {startup:.3f} s wall ({startup_cpu:.3f} s CPU), "
          f"`landscape --help` {helptime:.3f} s wall ({help_cpu:.3f} s CPU)")
    root = work / "runs"
    have = 0
    print(f"{'runs':>6} {'ls wall s':>9} {'ls CPU s':>8} {'CPU - start-up':>14} {'Store.list() s':>14} {'ms per run':>10}")
    for count in counts:
        fill_store(root, count, have)
        have = count
        wall, cpu = median(exe + ["ls", "--store", str(root)], repeats)
        t0 = time.perf_counter()
        Store(root).list()
        inner = time.perf_counter() - t0
        print(f"{count:>6} {wall:>9.3f} {cpu:>8.3f} {cpu - startup_cpu:>14.3f} {inner:>14.3f} {1000 * inner / count:>10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", type=int, default=5)
    parser.add_argument("--runs", default="10,100,300,1000", help="store sizes for the ls benchmark")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", default=None, help="working folder (default: a temporary one, removed after)")
    parser.add_argument("--skip", choices=("checkpoints", "ls"), default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = Path(args.dir or tempfile.mkdtemp(prefix="bench-store-"))
    try:
        if args.skip != "checkpoints":
            bench_checkpoints(base / "ckpt", args.checkpoints)
        if args.skip != "ls":
            bench_ls(base / "ls", [int(c) for c in args.runs.split(",")], args.repeats)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
