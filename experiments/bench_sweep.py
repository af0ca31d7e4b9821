"""Sweep overhead: 8 short single-threaded IMP runs as 8 sequential `landscape imp` processes (a)
against one sweep of the same 8 grid points on a 2-worker LocalCluster (b), in the same run.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/bench_sweep.py [--steps 300it] [--levels 1]

Prints both wall times and their ratio b/a (target on 2 idle cores: <= 0.6), then where (b)'s time
goes: the cluster's start-up (from the call to the first task), the scheduling overhead per task
(the idle gap between one task's end and the next task's start on the same worker: what Dask adds
to every task), and the one-off cost of a worker's first task (imports: torch, its compiler stack,
the dataset reader), which a `landscape` process pays on every command. Each variant writes to a
fresh store, so neither reuses the other's runs.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]


def grid(steps: str, levels: int) -> tuple[dict, list[dict]]:
    fixed = {"model": "lenet_300_100", "dataset": "digits", "steps": steps, "levels": levels,
             "controls": "none", "eval_every": steps, "batch_size": 32}
    # Eight seeds: no two runs share a dense run, so this measures scheduling, not waiting.
    return fixed, [{"seed": s, "prune_fraction": 0.2} for s in range(8)]


def sequential(fixed: dict, points: list[dict], store: Path) -> float:
    started = time.perf_counter()
    for point in points:
        args = [f"--{k.replace('_', '-')}={v}" for k, v in {**fixed, **point}.items()]
        subprocess.run([str(ROOT / ".venv/bin/landscape"), "imp", *args, "--store", str(store)], check=True,
                       capture_output=True)
    return time.perf_counter() - started


def swept(fixed: dict, points: list[dict], store: Path, workers: int):
    from landscape.sweep import sweep

    spec = {"command": "imp", "options": fixed,
            "zip": [{"seed": [p["seed"] for p in points], "prune_fraction": [p["prune_fraction"] for p in points]}]}
    started, clock = time.perf_counter(), time.time()
    result = sweep(spec, store=str(store), workers=workers, status_every_s=0)
    wall = time.perf_counter() - started
    assert not result.failed, [t.error for t in result.failed]
    return wall, clock, result


def timeline(result, clock: float) -> dict[str, float]:
    """Start-up, the gaps between consecutive tasks of one worker, first and later task lengths."""
    by_worker: dict[int, list] = {}
    for o in result.outcomes.values():
        by_worker.setdefault(o.pid, []).append(o)
    gaps, first, later = [], [], []
    for tasks in by_worker.values():
        tasks.sort(key=lambda o: o.started)
        first.append(tasks[0].ended - tasks[0].started)
        later += [o.ended - o.started for o in tasks[1:]]
        gaps += [b.started - a.ended for a, b in zip(tasks, tasks[1:])]
    mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")  # noqa: E731
    return {"startup": min(o.started for o in result.outcomes.values()) - clock, "gap": mean(gaps),
            "first": mean(first), "later": mean(later), "workers": len(by_worker), "gaps": len(gaps)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="300it")
    parser.add_argument("--levels", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    fixed, points = grid(args.steps, args.levels)
    with tempfile.TemporaryDirectory() as tmp:
        a = sequential(fixed, points, Path(tmp) / "a")
        b, clock, result = swept(fixed, points, Path(tmp) / "b", args.workers)
    n, t = len(points), timeline(result, clock)
    print(f"{n} IMP runs (lenet_300_100 on digits, {args.steps}, {args.levels} level(s), 1 thread each)")
    print(f"(a) {n} sequential `landscape imp` processes: {a:.1f}s ({a / n:.1f}s per command)")
    print(f"(b) one sweep on a {args.workers}-worker LocalCluster:   {b:.1f}s (cluster start-up included)")
    print(f"ratio b/a = {b / a:.2f} (target <= 0.6)")
    print(f"cluster start-up (call to first task): {t['startup']:.1f}s")
    print(f"a worker's first task {t['first']:.1f}s (its imports included), later tasks {t['later']:.1f}s")
    print(f"scheduling overhead per task (idle gap between tasks on a worker, mean of {t['gaps']}): "
          f"{t['gap']:.3f}s = {100 * t['gap'] / 10:.2f}% of a 10-second task (target < 5%)")


if __name__ == "__main__":
    sys.exit(main())
