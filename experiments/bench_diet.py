"""Data-diet benchmark: EL2N scoring as one population against separate runs, and GraNd's speed.

    python experiments/bench_diet.py [--dataset mnist] [--runs 10] [--at 500it] [--device cpu]

1. EL2N with S scoring runs: one `landscape scores --runs S` (S networks trained as one population,
   the data loaded once, each network scoring the whole training split) against what a researcher
   would otherwise do: S separate `landscape scores --runs 1` commands, seeds 0..S-1, in turn. The
   scores must agree to the last bit (member s of the population is the run with seed s); the
   ratio is population time / separate time (below 1 is faster).
2. GraNd: seconds per 10,000 examples for the two vectorised methods — per-example gradient norms
   from one batched backward pass (what `landscape scores --score grand` uses for the model zoo)
   and per-example gradients by `vmap(grad)` (the fallback for any other model) — against a Python
   loop of one backward pass per example on the same network and data (measured on fewer
   examples, scaled to 10,000).
Both use LeNet-300-100 (the MNIST recipe) unless --model says otherwise; stores are throwaway.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from landscape.api import TrainOptions
from landscape.api.scores import scores
from landscape.api.train import load_for, resolve_device, resolve_val_size
from landscape.data import device_splits
from landscape.diet import ScoresConfig, grand_scores
from landscape.models import build_model
from landscape.store import Store
from landscape.train.config import recipe

SHARED = Path(os.environ.get("LANDSCAPE_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def el2n_population_vs_separate(args) -> None:
    config = ScoresConfig(recipe(args.model, args.dataset, steps=args.at, width=args.width), method="el2n", at=args.at,
                          runs=args.runs)
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        population = scores(config, TrainOptions(store=root + "/pop", data_dir=args.data_dir, device=args.device))
        pop_seconds = time.perf_counter() - start
        per_run = population.arrays("scores")["per_run"]

        flags = ["--model", args.model, "--width", str(args.width), "--dataset", args.dataset, "--data-dir", args.data_dir,
                 "--score", "el2n",
                 "--at", args.at, "--runs", "1", "--device", args.device, "--store", root + "/separate"]
        start = time.perf_counter()
        for seed in range(args.runs):
            subprocess.run([sys.executable, "-m", "landscape.cli.main", "scores", *flags, "--seed", str(seed)],
                           check=True, capture_output=True)
        separate_seconds = time.perf_counter() - start
        alone = {int(r.config["train"]["seeds"]["init"]): r.arrays("scores")["per_run"][0]
                 for r in Store(root + "/separate").runs("scores")}
        identical = all(np.array_equal(alone[s], per_run[s]) for s in range(args.runs))
    n = per_run.shape[1]
    print(f"EL2N, {args.model} on {args.dataset}, S={args.runs} runs trained {args.at} each, {n:,} examples scored "
          f"by each, device {args.device}:")
    print(f"  one population (`landscape scores --runs {args.runs}`)  {pop_seconds:7.1f}s")
    print(f"  {args.runs} separate `landscape scores --runs 1`          {separate_seconds:7.1f}s")
    print(f"  ratio population / separate = {pop_seconds / separate_seconds:.2f}; scores identical: {identical}")


def _loop_grand(model, x, y) -> torch.Tensor:
    model.eval()
    norms = []
    for xi, yi in zip(x, y):
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(xi[None]), yi[None]).backward()
        norms.append(torch.sqrt(sum(p.grad.double().pow(2).sum() for p in model.parameters())))
    model.train()
    return torch.stack(norms)


def grand_speed(args) -> None:
    device = resolve_device(args.device)
    config = resolve_val_size(recipe(args.model, args.dataset), load_for(recipe(args.model, args.dataset), args.data_dir))
    dataset = load_for(config, args.data_dir)
    train, _, _ = device_splits(dataset, config.data.val_size, 0, device)
    model = build_model(args.model, dataset.input_shape, dataset.num_classes, seed=0, width=args.width).to(device)
    x, y = train.x[:args.grand_examples], train.y[:args.grand_examples]
    def timed(run, count):
        run(x[:64], y[:64])  # warm-up
        start = time.perf_counter()
        values = run(x[:count], y[:count])
        if device.type == "cuda":
            torch.cuda.synchronize()
        return values, (time.perf_counter() - start) * 10_000 / count

    m = args.loop_examples
    norms, norms_s = timed(lambda a, b: grand_scores(model, a, b, method="norms"), len(x))
    vmapped, vmap_s = timed(lambda a, b: grand_scores(model, a, b, method="vmap"), min(len(x), args.vmap_examples))
    loop, loop_s = timed(lambda a, b: _loop_grand(model, a, b), m)
    agree = torch.allclose(norms[:m], loop, rtol=1e-4) and torch.allclose(vmapped[:m], loop, rtol=1e-4)
    print(f"GraNd, {args.model} (width {args.width}) on {args.dataset} at initialisation, device {device.type}, seconds per 10,000 examples:")
    print(f"  gradient norms from one batched backward ({len(x):,} examples)  {norms_s:7.2f}s  ratio to loop {norms_s / loop_s:.3f}")
    print(f"  vmap of grad                             ({min(len(x), args.vmap_examples):,} examples)  {vmap_s:7.2f}s  "
          f"ratio to loop {vmap_s / loop_s:.3f}")
    print(f"  loop of one backward pass per example    ({m:,} examples)  {loop_s:7.2f}s")
    print(f"  all three agree (rtol 1e-4): {agree}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--model", default="lenet_300_100")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--data-dir", default=str(SHARED))
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--at", default="500it")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--grand-examples", type=int, default=10_000)
    parser.add_argument("--loop-examples", type=int, default=1_000)
    parser.add_argument("--vmap-examples", type=int, default=2_000)
    parser.add_argument("--skip-el2n", action="store_true")
    args = parser.parse_args()
    if not args.skip_el2n:
        el2n_population_vs_separate(args)
    grand_speed(args)


if __name__ == "__main__":
    main()
