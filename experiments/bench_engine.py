"""Engine benchmark: every figure is a ratio against a baseline measured in the same process.

    python experiments/bench_engine.py                      # CPU, MNIST from ../shared/data
    python experiments/bench_engine.py --device cuda        # also ResNet-20 on CIFAR-sized input
    python experiments/bench_engine.py --json engine.json   # the figures as data too (gpu_check.py)

1. One epoch of LeNet-300-100 on MNIST (batch 60, SGD): the engine against a bare hand-written
   PyTorch loop over the same in-memory tensors doing the same work. Target: within 1.15x.
2. Population training, K = 1, 2, 8: time per member per iteration, loop and vmap layouts.
3. CIFAR-10 from JPEGs: the first load (decode and cache) against a cached load.
Runs alternate (bare, engine, bare, engine...) and the median is reported, so drift in the
machine's speed hits both sides alike.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from landscape.data import device_splits, load_dataset
from landscape.errors import UserError
from landscape.models import build_model
from landscape.train.config import recipe
from landscape.train.engine import Member, Plan, train_population

from figures import Figures  # experiments/figures.py (scripts run with experiments/ on sys.path)

SHARED = Path(os.environ.get("LANDSCAPE_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def mnist_tensors(device: torch.device):
    try:
        dataset = load_dataset("mnist", SHARED)
        source = f"MNIST from {SHARED}"
    except UserError as exc:
        print(f"MNIST not available ({exc}); using synthetic data of MNIST's shape", file=sys.stderr)
        g = torch.Generator().manual_seed(0)
        x = torch.randn(60000, 1, 28, 28, generator=g)
        return x.to(device), torch.randint(10, (60000,), generator=g).to(device), "synthetic 60000x1x28x28"
    train, _, _ = device_splits(dataset, 0, 0, device)
    return train.x, train.y, source


def bare_epoch(x, y, batch: int, device, seed: int) -> float:
    """What a researcher would write by hand: no schedule, no masks, no hooks."""
    model = build_model("lenet_300_100", tuple(x.shape[1:]), 10, seed=seed).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed)).to(device)
    sync(device)
    start = time.perf_counter()
    for i in range(len(x) // batch):
        idx = perm[i * batch:(i + 1) * batch]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync(device)
    return time.perf_counter() - start


def engine_run(x, y, batch: int, device, seeds, steps: str, path: str = "auto", model: str = "lenet_300_100",
               width: float = 1.0) -> float:
    config = recipe(model, "mnist", steps=steps, batch_size=batch, optimizer="sgd", lr=0.1, schedule="constant",
                    eval_every="1000ep", checkpoint_at="end", width=width, augment="none")
    plan = Plan.make(config, len(x))
    members = [Member(build_model(model, tuple(x.shape[1:]), 10, seed=s, width=width).to(device), s, s)
               for s in seeds]
    sync(device)
    start = time.perf_counter()
    train_population(plan, members, x, y, [], path=path)
    sync(device)
    return time.perf_counter() - start


def bench_epoch(x, y, device, repeats: int, figures: Figures) -> None:
    batch = 60
    bare, engine = [], []
    bare_epoch(x[:6000], y[:6000], batch, device, 0)  # warm-up: allocator, kernels, caches
    engine_run(x[:6000], y[:6000], batch, device, [0], "1ep")
    for r in range(repeats):
        bare.append(bare_epoch(x, y, batch, device, r))
        engine.append(engine_run(x, y, batch, device, [r], "1ep"))
    b, e = statistics.median(bare), statistics.median(engine)
    print(f"\n[1] LeNet-300-100, one epoch ({len(x) // batch} it, batch {batch}, SGD), median of {repeats}:")
    print(f"    bare loop {b:.2f}s   engine {e:.2f}s   ratio engine/bare = {e / b:.3f} (target <= 1.15)")
    figures.add(f"LeNet-300-100 epoch ({len(x) // batch} it): engine", e, "s", baseline=b, baseline_label="bare loop")


def bench_population(x, y, device, iters: int, figures: Figures, model: str = "lenet_300_100",
                     width: float = 1.0, ks: tuple[int, ...] = (1, 2, 8)) -> None:
    print(f"\n[2] population training, {model} (width {width}), {iters} it, time per member per iteration:")
    baseline = None
    for k in ks:
        row, per_path = [], {}
        for path in ("loop", "vmap"):
            if k == 1 and path == "vmap":
                row.append("      -   ")
                continue
            engine_run(x, y, 60, device, list(range(k)), f"{min(5, iters)}it", path, model, width)  # warm-up
            seconds = engine_run(x, y, 60, device, list(range(k)), f"{iters}it", path, model, width)
            per = seconds / (k * iters) * 1e3
            baseline = baseline or per
            per_path[path] = per
            row.append(f"{path} {per:6.3f} ms ({per / baseline:4.2f}x)")
            figures.add(f"population {model} w{width:g} K={k} {path}: per member-iteration", per, "ms",
                        baseline=baseline, baseline_label="K=1 loop")
        print(f"    K={k}:  " + "   ".join(row))
        if len(per_path) == 2:  # what `--path auto` should pick here (population.choose_path)
            figures.note(f"population {model} w{width:g} K={k}: faster layout", min(per_path, key=per_path.get))
    print("    (ratios against K=1 loop; below 1.00x means members are cheaper together)")


def bench_cifar_cache(device, figures: Figures) -> None:
    folder = SHARED / "cifar10-jpeg"
    if not folder.is_dir():
        print(f"\n[3] skipped: no CIFAR-10 JPEGs at {folder}")
        return
    with tempfile.TemporaryDirectory() as cache:
        old = os.environ.get("LANDSCAPE_CACHE")
        os.environ["LANDSCAPE_CACHE"] = cache
        try:
            start = time.perf_counter()
            ds = load_dataset(f"imagefolder:{folder}")
            first = time.perf_counter() - start
            start = time.perf_counter()
            load_dataset(f"imagefolder:{folder}")
            cached = time.perf_counter() - start
        finally:
            if old is None:
                os.environ.pop("LANDSCAPE_CACHE")
            else:
                os.environ["LANDSCAPE_CACHE"] = old
    print(f"\n[3] CIFAR-10 from JPEGs ({len(ds.train_y)} + {len(ds.test_y)} images): first load (decode + cache) "
          f"{first:.1f}s, cached load {cached:.2f}s, ratio {first / cached:.0f}x")
    figures.add("CIFAR-10 JPEGs: first load (decode + cache)", first, "s", baseline=cached, baseline_label="cached load")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--population-iters", type=int, default=200)
    parser.add_argument("--skip-cifar", action="store_true")
    parser.add_argument("--examples", type=int, default=None, help="train on the first N examples (quick runs)")
    parser.add_argument("--resnet", action="store_true", help="also ResNet-20 populations on the CPU (always on CUDA)")
    parser.add_argument("--resnet-width", type=float, default=1.0)
    parser.add_argument("--ks", default="1,2,8", help="population sizes to measure")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()
    ks = tuple(int(k) for k in args.ks.split(","))
    figures = Figures()
    device = torch.device(args.device)
    torch.manual_seed(0)
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{torch.get_num_threads()} threads'}), torch {torch.__version__}")
    x, y, source = mnist_tensors(device)
    if args.examples:
        x, y = x[:args.examples], y[:args.examples]
    print(f"data: {source}, {len(x)} training examples on {device}")
    figures.note("engine benchmark data", source)
    bench_epoch(x, y, device, args.repeats, figures)
    bench_population(x, y, device, args.population_iters, figures, ks=ks)
    if device.type == "cuda" or args.resnet:
        g = torch.Generator().manual_seed(0)
        n = args.examples or 50000
        cx = torch.randn(n, 3, 32, 32, generator=g).to(device)
        cy = torch.randint(10, (n,), generator=g).to(device)
        bench_population(cx, cy, device, args.population_iters, figures, "resnet20", args.resnet_width, ks)
    if not args.skip_cifar:
        bench_cifar_cache(device, figures)
    figures.write(args.json, device=str(device), torch=torch.__version__)


if __name__ == "__main__":
    main()
