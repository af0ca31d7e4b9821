"""IMP benchmark: one level (ticket + 2 controls) against three separate training runs, one process.

    python experiments/bench_imp.py [--steps 2000it] [--data-dir ../shared/data]

The level trains the ticket, its reinit control and its random-pruning control as one population
with the data loaded once; the baseline is what a researcher would otherwise do: three
`landscape train` runs (each loading the data, building its model, writing its run), run in turn.
Both write to throwaway stores. The ratio is level time / baseline time (below 1 is faster).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from landscape.api import TrainOptions, train as train_runs
from landscape.api.imp import imp
from landscape.imp import ImpConfig, PruneConfig
from landscape.train.config import recipe

SHARED = Path(os.environ.get("LANDSCAPE_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", default="2000it")
    parser.add_argument("--data-dir", default=str(SHARED))
    parser.add_argument("--dataset", default="mnist")
    args = parser.parse_args()
    train = dict(steps=args.steps, batch_size=60, optimizer="adam", lr=1.2e-3, eval_every="500it")
    config = ImpConfig(train=recipe("lenet_300_100", args.dataset, **train), controls=("reinit", "random-prune"),
                       prune=PruneConfig(0.2, overrides=(("fc3.weight", 0.1),)))
    with tempfile.TemporaryDirectory() as root:
        options = TrainOptions(store=root + "/imp", data_dir=args.data_dir)
        # Level 0, the dense run, is the same for both sides: train it first, untimed. IMP finds
        # it in the store (same configuration, same run ID) and goes straight to level 1.
        train_runs(config.validate().replicate(0), options)
        start = time.perf_counter()
        imp(config, 1, options)
        level_seconds = time.perf_counter() - start

        flags = ["--model", "lenet_300_100", "--dataset", args.dataset, "--data-dir", args.data_dir,
                 "--steps", args.steps, "--batch-size", "60", "--optimizer", "adam", "--lr", "1.2e-3",
                 "--eval-every", "500it"]
        start = time.perf_counter()
        for seed in (0, 1, 2):  # three runs of the same size as the ticket and its two controls
            subprocess.run([sys.executable, "-m", "landscape.cli.main", "train", *flags, "--seed", str(seed),
                            "--store", root + "/separate"], check=True, capture_output=True)
        separate = time.perf_counter() - start
    print(f"one IMP level, ticket + 2 controls, LeNet-300-100 on {args.dataset}, {args.steps} each:")
    print(f"  IMP level (one population, data loaded once) {level_seconds:.1f}s")
    print(f"  three separate `landscape train` runs          {separate:.1f}s")
    print(f"  ratio level / separate = {level_seconds / separate:.2f}")


if __name__ == "__main__":
    main()
