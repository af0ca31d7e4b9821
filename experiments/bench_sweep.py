"""Sweep overhead: 8 short single-threaded IMP runs as 8 sequential `landscape imp` processes (a)
against one sweep of the same 8 grid points on a 2-worker LocalCluster (b), in the same run.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/bench_sweep.py [--steps 300it] [--levels 1]

Prints both wall times, their ratio b/a (target on 2 idle cores: <= 0.6), and the scheduling
overhead per task: (b's wall time x 2 workers - the seconds the 8 tasks spent inside the api) / 8,
which counts cluster start-up, data loading in each worker, and idle slots, against the mean task.
Each variant writes to a fresh store, so neither reuses the other's runs.
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
    started = time.perf_counter()
    result = sweep(spec, store=str(store), workers=workers, status_every_s=0)
    wall = time.perf_counter() - started
    assert not result.failed, [t.error for t in result.failed]
    inside = sum(o.ended - o.started for o in result.outcomes.values())
    return wall, inside, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="300it")
    parser.add_argument("--levels", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    fixed, points = grid(args.steps, args.levels)
    with tempfile.TemporaryDirectory() as tmp:
        a = sequential(fixed, points, Path(tmp) / "a")
        b, inside, result = swept(fixed, points, Path(tmp) / "b", args.workers)
    n = len(points)
    waited = sum(o.waited_s for o in result.outcomes.values())
    overhead = (b * args.workers - inside) / n
    task = inside / n
    print(f"{n} IMP runs (lenet_300_100 on digits, {args.steps}, {args.levels} level(s), 1 thread each)")
    print(f"(a) {n} sequential `landscape imp` processes: {a:.1f}s")
    print(f"(b) one sweep on a {args.workers}-worker LocalCluster:   {b:.1f}s (cluster start-up included)")
    print(f"ratio b/a = {b / a:.2f} (target <= 0.6)")
    print(f"mean task {task:.1f}s inside the api ({waited:.1f}s waiting for runs other tasks wrote); "
          f"overhead per task {overhead:.2f}s = {100 * overhead / max(task, 1e-9):.1f}% of a task "
          f"({100 * overhead / 10:.1f}% of a 10-second task)")


if __name__ == "__main__":
    sys.exit(main())
