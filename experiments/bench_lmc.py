"""LMC benchmark: a 30-point interpolation on the full MNIST test set, batched against one α at a time.

    python experiments/bench_lmc.py                     # CPU, MNIST from ../shared/data
    python experiments/bench_lmc.py --device cuda --repeats 5

Two LeNet-300-100 networks (independent initialisations trained briefly, so the curve is not
trivial; the timing does not depend on the weights), interpolated at 30 evenly spaced α on the
10,000 MNIST test images, by the two methods of `landscape.lmc.interpolation_curve`:

* batched: the interpolated weights for a chunk of α are stacked and run with
  vmap(functional_call), so one pass over the data evaluates the whole chunk;
* sequential: one α at a time through an ordinary module (load weights, pass over the data).

Both run in this one process, alternating (batched, sequential, batched, ...), each once
warmed up; the median of `--repeats` is reported with the ratio, and the curves are checked to
agree. A third configuration, batched with a smaller evaluation batch (--small-batch), shows the
CPU trade-off: the number of α per pass is bounded by the size of one activation tensor
(landscape.batched.chunking.CPU_ACTIVATION_BYTES), so smaller batches let all 30 α share a pass.
Falls back to synthetic data of MNIST's shape, with a message, when MNIST is absent.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from landscape.data import device_splits, load_dataset
from landscape.errors import UserError
from landscape.lmc import barrier, interpolation_curve
from landscape.batched.chunking import auto_alpha_chunk
from landscape.models import build_model

from figures import Figures  # experiments/figures.py (scripts run with experiments/ on sys.path)

SHARED = Path(os.environ.get("LANDSCAPE_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def mnist(device: torch.device):
    try:
        dataset = load_dataset("mnist", SHARED)
    except UserError as exc:
        print(f"MNIST not available ({exc}); using synthetic data of MNIST's shape", file=sys.stderr)
        g = torch.Generator().manual_seed(0)
        x = torch.randn(70000, 1, 28, 28, generator=g)
        y = torch.randint(10, (70000,), generator=g)
        return (x[:60000].to(device), y[:60000].to(device), x[60000:].to(device), y[60000:].to(device),
                "synthetic 1x28x28 (60000 train, 10000 test)")
    train, _, test = device_splits(dataset, 5000, 0, device)
    return train.x, train.y, test.x, test.y, f"MNIST from {SHARED}"


def trained(seed: int, x: torch.Tensor, y: torch.Tensor, steps: int) -> dict[str, torch.Tensor]:
    model = build_model("lenet_300_100", (1, 28, 28), 10, seed=seed).to(x.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(len(x), (60,), generator=g).to(x.device)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--points", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--small-batch", type=int, default=250, help="evaluation batch of the third configuration")
    parser.add_argument("--train-steps", type=int, default=300, help="SGD steps per endpoint network")
    parser.add_argument("--examples", type=int, default=None, help="evaluate on the first N test examples")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()
    device = torch.device(args.device)

    train_x, train_y, test_x, test_y, source = mnist(device)
    if args.examples:
        test_x, test_y = test_x[:args.examples], test_y[:args.examples]
    a, b = trained(1, train_x, train_y, args.train_steps), trained(2, train_x, train_y, args.train_steps)
    template = build_model("lenet_300_100", (1, 28, 28), 10, seed=0).to(device)
    configs = {"batched": ("batched", args.batch_size), "sequential": ("sequential", args.batch_size),
               f"batched, batch {args.small_batch}": ("batched", args.small_batch)}
    chunk = {name: auto_alpha_chunk(template, a, test_x, bs, args.points) for name, (_, bs) in configs.items()}
    print(f"data: {source}; {len(test_y)} test examples; device {device}, {torch.get_num_threads()} threads")
    print(f"networks: two LeNet-300-100, {args.train_steps} SGD steps each from different inits; "
          f"{args.points} points, evaluation batch {args.batch_size}")

    curves, times = {}, {name: [] for name in configs}
    for method in ("batched", "sequential"):  # warm-up: one-time costs count against neither
        interpolation_curve(template, a, b, test_x[:64], test_y[:64], alphas=2, method=method)
    for _ in range(args.repeats):
        for name, (method, batch_size) in configs.items():
            sync(device)
            start = time.perf_counter()
            curves[name] = interpolation_curve(template, a, b, test_x, test_y, alphas=args.points,
                                               batch_size=batch_size, method=method)
            sync(device)
            times[name].append(time.perf_counter() - start)

    median = {name: statistics.median(t) for name, t in times.items()}
    for name, (method, batch_size) in configs.items():
        per_pass = "1 α per pass" if method == "sequential" else f"up to {chunk[name]} α per pass"
        print(f"{name + ':':<24} {median[name]:6.3f} s  ({per_pass}, batch {batch_size}; runs: "
              f"{', '.join(f'{t:.3f}' for t in times[name])})")
    small = f"batched, batch {args.small_batch}"
    print(f"speed-up of batched over one α at a time: {median['sequential'] / median['batched']:.2f}x at batch "
          f"{args.batch_size}, {median['sequential'] / median[small]:.2f}x at batch {args.small_batch}")
    figures = Figures()
    for name in configs:
        figures.add(f"LMC {args.points} α on {len(test_y)} examples: {name}", median[name], "s",
                    baseline=median["sequential"], baseline_label="one α at a time")
    figures.write(args.json, device=str(device), data=source)
    gap = max(float((curves[n].loss - curves["sequential"].loss).abs().max()) for n in configs)
    gap = max([gap] + [float((curves[n].error - curves["sequential"].error).abs().max()) for n in configs])
    b_ = barrier(curves["batched"])
    print(f"curves agree to {gap:.2e}; test error barrier {100 * b_['error']:.2f}%, loss barrier {b_['loss']:.4f} "
          f"(endpoint test errors {100 * float(curves['batched'].error[0]):.2f}%, "
          f"{100 * float(curves['batched'].error[-1]):.2f}%)")


if __name__ == "__main__":
    main()
