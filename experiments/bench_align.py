"""Alignment benchmark: weight matching and activation matching time, and LMC with alignment
against LMC without, measured in one run.

    python experiments/bench_align.py                     # CPU
    python experiments/bench_align.py --device cuda --examples 5000 --vgg-width 1

For LeNet-300-100 (MNIST shape), VGG-11 (CIFAR shape, width --vgg-width, default 1/4) and
ResNet-20 (CIFAR shape), two networks from different seeds (weights perturbed from θ0 so that
BatchNorm is not the identity; timing does not depend on the values):

* weight matching: passes to convergence and seconds (median of --repeats);
* activation matching: seconds on --examples random inputs;
* LMC: a 15-point interpolation of the two networks on --examples inputs, without alignment,
  against weight matching + permuting + the same interpolation (the cost alignment adds to
  `landscape lmc --align weights`, besides the second LMC the command runs). The ratio is
  (aligned LMC) / (plain LMC).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from landscape.align import activation_matching, apply_permutation, spec_of, weight_matching
from landscape.batched.states import working_copy
from landscape.lmc import interpolation_curve
from landscape.models import build_model

from figures import Figures  # experiments/figures.py (scripts run with experiments/ on sys.path)

MODELS = (("lenet_300_100", (1, 28, 28), 1.0), ("vgg11", (3, 32, 32), "vgg_width"),
          ("resnet20", (3, 32, 32), "resnet_width"))


def networks(name, shape, width, device):
    out = []
    for seed in (0, 1):
        model = build_model(name, shape, 10, seed=seed, width=width)
        g = torch.Generator().manual_seed(seed + 10)
        with torch.no_grad():
            for t in model.state_dict().values():
                if t.is_floating_point():
                    t.add_(0.05 * torch.randn(t.shape, generator=g))
            for key, t in model.state_dict().items():
                if key.endswith("running_var"):
                    t.abs_().add_(0.5)
        out.append(model.to(device).eval())
    return out


def timed(fn, repeats):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--examples", type=int, default=500)
    parser.add_argument("--vgg-width", type=float, default=0.25)
    parser.add_argument("--resnet-width", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a dry run of the GPU check")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()
    if args.quick:
        args.examples, args.vgg_width, args.resnet_width = 64, 0.125, 0.25
    figures = Figures()
    device = torch.device(args.device)
    torch.manual_seed(0)
    print(f"device {device}, {args.examples} examples, median of {args.repeats}")
    print(f"{'model':14s} {'params':>9s} {'groups':>6s} | {'WM passes':>9s} {'WM s':>7s} | {'AM s':>7s} | "
          f"{'LMC s':>7s} {'LMC+WM s':>8s} {'ratio':>6s}")
    for name, shape, width in MODELS:
        width = getattr(args, width) if isinstance(width, str) else width
        a, b = networks(name, shape, width, device)
        spec = spec_of(a)
        sa, sb = a.state_dict(), b.state_dict()
        params = {n for n, _ in a.named_parameters()}
        x = torch.rand(args.examples, *shape, device=device)
        y = torch.randint(0, 10, (args.examples,), device=device)
        bn_x = x[: min(len(x), 1000)]

        def wm():
            return weight_matching(spec, sa, sb, params, generator=torch.Generator().manual_seed(0))

        wm_s, match = timed(wm, args.repeats)
        am_s, _ = timed(lambda: activation_matching(spec, working_copy(a, device), working_copy(b, device), x),
                        args.repeats)

        def plain():
            return interpolation_curve(a, sa, sb, x, y, alphas=15, bn_x=bn_x, bn_batches=1)

        def aligned():
            perms = wm().perms
            return interpolation_curve(a, sa, apply_permutation(sb, spec, perms), x, y, alphas=15, bn_x=bn_x,
                                       bn_batches=1)

        lmc_s, _ = timed(plain, args.repeats)
        both_s, _ = timed(aligned, args.repeats)
        count = sum(p.numel() for p in a.parameters())
        print(f"{name + ('' if width == 1 else f' w{width:g}'):14s} {count:9d} {len(spec.groups):6d} | "
              f"{match.passes:9d} {wm_s:7.2f} | {am_s:7.2f} | {lmc_s:7.2f} {both_s:8.2f} {both_s / lmc_s:6.2f}")
        label = name + ('' if width == 1 else f' w{width:g}')
        figures.add(f"{label}: weight matching ({match.passes} passes)", wm_s, "s")
        figures.add(f"{label}: activation matching, {args.examples} examples", am_s, "s")
        figures.add(f"{label}: LMC with weight matching", both_s, "s", baseline=lmc_s, baseline_label="plain LMC")
    figures.write(args.json, device=str(device), examples=args.examples)


if __name__ == "__main__":
    main()
