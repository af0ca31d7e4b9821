"""kill -9 at random instants, rerun, compare bitwise (issue 10, on the store's format 2).

    python experiments/kill_trials.py --kills 30            # train and IMP, 15 kills each
    python experiments/kill_trials.py --kills 10 --only imp --seed 3

For each workload (a small `landscape train` and a small `landscape imp`), one straight run is the
reference. Then chains of runs in a fresh store: start the command, kill -9 it after a random
delay, check the store (every file verifies, no run marked complete that differs from the
reference), start it again ... and after the chain's kills, let it finish. Every run of the
finished store must equal the reference bit for bit: each checkpoint's weights and optimizer
state, and the curves (wall time aside). Prints the counts.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from landscape.store import Store
from landscape.store.maintenance import verify

TRAIN = ["train", "--model", "lenet_300_100", "--dataset", "synthetic", "--steps", "200it", "--batch-size", "16",
         "--eval-every", "10it", "--checkpoint-at", "0,50it,100it,end", "--optimizer", "sgd", "--momentum", "0.9"]
IMP = ["imp", "--model", "lenet_300_100", "--dataset", "synthetic", "--steps", "60it", "--batch-size", "32",
       "--eval-every", "10it", "--levels", "2", "--controls", "reinit"]
ENV = {**os.environ, "LANDSCAPE_SAVE_INTERVAL": "0", "OMP_NUM_THREADS": "1"}


def command(args: list[str], store: Path) -> list[str]:
    return [sys.executable, "-m", "landscape.cli.main", *args, "--store", str(store)]


def fingerprint(store: Path) -> dict[str, tuple]:
    """Everything a run computed, by run ID (wall-clock times left out)."""
    out = {}
    s = Store(store)
    for run in s.runs():
        states = []
        for step in run.checkpoint_steps:
            c = run.checkpoint(step)
            states.append((step, {k: v.numpy().tobytes() for k, v in c.model.items()},
                           {k: {b: t.numpy().tobytes() for b, t in d.items()} for k, d in c.optimizer.items()}))
        curves = {k: np.nan_to_num(v, nan=-1.0).tobytes() for k, v in run.curves.items() if k != "time"}
        levels = {n: {k: v for k, v in run.section(f"levels/{n}").items()} for n in run.sections("levels")}
        out[run.id] = (run.status, states, curves, repr(levels))
    return out


def check_consistent(store: Path, reference: dict[str, tuple]) -> list[str]:
    problems = [f"{v.id}: {v.problem}" for v in verify(Store(store)) if v.state != "ok"]
    for summary in Store(store).list():
        if summary.status == "complete":
            mine = fingerprint_one(store, summary.id)
            if mine != reference.get(summary.id):
                problems.append(f"{summary.id} is marked complete but differs from the reference")
    return problems


def fingerprint_one(store: Path, run_id: str) -> tuple:
    tmp = Path(tempfile.mkdtemp())
    try:
        s = Store(store)
        run = s.open(run_id)
        for f in run.files:
            dest = tmp / f.relative_to(store)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, dest)
        return fingerprint(tmp)[run_id]
    finally:
        shutil.rmtree(tmp)


def chain(args: list[str], store: Path, kills: int, duration: float, rng: random.Random,
          reference: dict) -> tuple[int, int, list[str]]:
    """Kill the command `kills` times at random instants, then let it finish; (kills done, reruns, problems)."""
    done = 0
    problems: list[str] = []
    for _ in range(kills):
        proc = subprocess.Popen(command(args, store), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.2, duration))
        if proc.poll() is not None:  # it finished before the kill: that rerun was complete
            continue
        proc.kill()
        proc.wait()
        done += 1
        problems += check_consistent(store, reference)
    final = subprocess.run(command(args, store), env=ENV, capture_output=True, text=True)
    if final.returncode != 0:
        problems.append(f"the final rerun failed: {final.stderr.strip()}")
    return done, kills + 1, problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=30, help="kills in all (split over the workloads)")
    parser.add_argument("--per-chain", type=int, default=5)
    parser.add_argument("--only", choices=("train", "imp"), default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="kill-trials-"))
    workloads = {"train": TRAIN, "imp": IMP}
    if args.only:
        workloads = {args.only: workloads[args.only]}
    try:
        for name, cmd in workloads.items():
            ref_store = work / f"{name}-reference"
            t0 = time.perf_counter()
            subprocess.run(command(cmd, ref_store), env=ENV, check=True, capture_output=True)
            duration = time.perf_counter() - t0
            reference = fingerprint(ref_store)
            budget = args.kills // len(workloads)
            kills = reruns = chains = identical = 0
            all_problems: list[str] = []
            while kills < budget:
                store = work / f"{name}-{chains}"
                k, r, problems = chain(cmd, store, min(args.per_chain, budget - kills), duration, rng, reference)
                final = fingerprint(store)
                same = final == reference
                identical += same
                if not same:
                    problems.append(f"chain {chains}: the finished store differs from the reference")
                kills, reruns, chains = kills + k, reruns + r, chains + 1
                all_problems += problems
                shutil.rmtree(store)
            print(f"{name}: {kills} kill -9 at random instants in {chains} chains ({reruns} starts, one straight run "
                  f"{duration:.1f}s); after each kill every file verified and no complete run differed: "
                  f"{'yes' if not all_problems else 'NO'}; finished stores bitwise identical to the reference: "
                  f"{identical}/{chains}")
            for p in all_problems[:10]:
                print("  problem:", p)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
