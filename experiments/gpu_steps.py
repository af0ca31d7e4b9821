"""Two GPU-check figures that go through the whole api (data, population, store), not the bare engine.

    python experiments/gpu_steps.py siblings --device cuda --json siblings.json
    python experiments/gpu_steps.py imp-level --device cuda --iters 300 --json imp.json

siblings:  K = 8 ResNet-20 siblings spawned from one checkpoint and trained as one population,
           against one sibling alone: seconds per member, and the layout `auto` chose.
imp-level: one IMP level of ResNet-20 on CIFAR-10 (ticket + reinit + random-prune controls, one
           population) for a fixed number of iterations, timed after its dense level 0; the
           time is extrapolated to the 30,000 iterations of open_lth's ResNet-20 recipe.
Real CIFAR-10 from ../shared/data (or $LANDSCAPE_SHARED_DATA) when its JPEGs are there; otherwise
synthetic tensors of CIFAR-10's shape (`synthetic-cifar10`), or `--dataset` for a quicker dry run.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from landscape.api import TrainOptions, train
from landscape.api.imp import imp
from landscape.api.siblings import plan_siblings
from landscape.imp import ImpConfig, PruneConfig
from landscape.store import Store
from landscape.train.config import recipe
from landscape.train.population import choose_path

from figures import Figures  # experiments/figures.py (scripts run with experiments/ on sys.path)

SHARED = Path(os.environ.get("LANDSCAPE_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
FULL_ITERS = 30000  # open_lth's ResNet-20 on CIFAR-10: 160 epochs of 391 iterations ≈ 62.5k; Frankle et al. 2020 use 30k at batch 128


def dataset(requested: str | None) -> str:
    if requested:
        return requested
    folder = SHARED / "cifar10-jpeg"
    return f"imagefolder:{folder}" if folder.is_dir() else "synthetic-cifar10"


def resnet_config(data: str, iters: int, width: float, seed: int = 0):
    # SGD as Frankle et al. 2020 train ResNet-20; evaluation only at the end, so time is training time.
    # Constant: the recipe's milestones (80ep, 120ep) lie past a benchmark's few iterations.
    return recipe("resnet20", data, steps=f"{iters}it", batch_size=128, optimizer="sgd", lr=0.1, momentum=0.9,
                  schedule="constant",
                  weight_decay=1e-4, eval_every=f"{iters}it", checkpoint_at="0,end", width=width, seed=seed)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def siblings_step(args, figures: Figures) -> None:
    data = dataset(args.dataset)
    with tempfile.TemporaryDirectory() as root:
        options = TrainOptions(store=f"{root}/store", data_dir=str(SHARED), device=args.device)
        [parent] = train(resnet_config(data, args.iters, args.width), options)   # the common parent, untimed
        # K + 3 distinct siblings: K for the population, one alone, two for the warm-up (data on
        # the device, kernels compiled, allocator grown), so no timed run finds its result stored.
        configs = plan_siblings(Store(options.store), f"{parent.id}:0", args.k + 3).configs
        train(configs[args.k + 1:], options)
        times = {}
        for k, group in ((1, configs[args.k:args.k + 1]), (args.k, configs[:args.k])):
            sync(args.device)
            start = time.perf_counter()
            train(group, options)
            sync(args.device)
            times[k] = time.perf_counter() - start
    one, many = times[1], times[args.k] / args.k
    layout = choose_path("auto", args.k, torch.device(args.device))
    print(f"ResNet-20 (width {args.width:g}) siblings on {data}, {args.iters} it each: one alone {one:.2f}s; "
          f"{args.k} as one population {times[args.k]:.2f}s = {many:.2f}s per member ({many / one:.2f}x), layout {layout}")
    figures.note("siblings data", data)
    figures.add(f"ResNet-20 sibling, {args.iters} it: per member in a population of {args.k}", many, "s",
                baseline=one, baseline_label="one sibling alone")
    figures.note(f"siblings K={args.k}: layout chosen by auto", layout)


def imp_step(args, figures: Figures) -> None:
    data = dataset(args.dataset)
    config = ImpConfig(train=resnet_config(data, args.iters, args.width), controls=("reinit", "random-prune"),
                       prune=PruneConfig(0.2, scope="global"))
    with tempfile.TemporaryDirectory() as root:
        options = TrainOptions(store=f"{root}/store", data_dir=str(SHARED), device=args.device)
        train(config.validate().replicate(0), options)   # level 0, the dense run: untimed
        sync(args.device)
        start = time.perf_counter()
        imp(config, 1, options)
        sync(args.device)
        seconds = time.perf_counter() - start
    per_iter = seconds / args.iters
    print(f"one IMP level of ResNet-20 (width {args.width:g}) on {data}: ticket + 2 controls, {args.iters} it, "
          f"{seconds:.2f}s; {1e3 * per_iter:.1f} ms per iteration of 3 networks; "
          f"extrapolated to {FULL_ITERS} it: {per_iter * FULL_ITERS / 60:.1f} min")
    figures.note("imp-level data", data)
    figures.add(f"IMP level (ticket + 2 controls), {args.iters} it", seconds, "s")
    figures.add(f"IMP level extrapolated to {FULL_ITERS} it", per_iter * FULL_ITERS / 60, "min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["siblings", "imp-level"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--dataset", default=None, help="instead of CIFAR-10 (e.g. synthetic-rgb for a quick dry run)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    figures = Figures()
    (siblings_step if args.step == "siblings" else imp_step)(args, figures)
    figures.write(args.json, device=args.device, torch=torch.__version__)


if __name__ == "__main__":
    sys.exit(main())
