"""Geometry benchmark: landscape's Hessian and surface code against PyHessian and loss-landscapes.

    pip install -e '.[bench]'                          # pyhessian, loss-landscapes (benchmark only)
    python experiments/bench_geometry.py                # CPU, MNIST from ../shared/data
    python experiments/bench_geometry.py --examples 1000 --grid 11

One LeNet-300-100 trained briefly on MNIST (so the curvature is that of a trained network), one
seeded sample of `--examples` training examples, the test images for the surface; in this one process:

* top eigenvalue: PyHessian's `hessian(...).eigenvalues()` (power iteration; its defaults: at most
  100 iterations, relative tolerance 1e-3, and again with tolerance 1e-5, which it needs to come near
  1e-3 accuracy when the two top eigenvalues are close; the whole sample as its one batch, its fastest mode,
  which reuses one gradient graph for every product) against `landscape.geometry.top_eigen`
  (Lanczos with full reorthogonalisation and forward-over-reverse products, stopping when the top
  Ritz value moves by less than 1e-6). A converged reference (Lanczos, 150 steps) judges both.
* trace: PyHessian's `trace()` (Hutchinson; by default it stops when the running mean moves by
  < 1e-3 relative, at most 100 probes, then again with a fixed `--probes`) against
  `hutchinson_trace` with the same number of probes, 16 per vmapped pass. Both draw their probes
  with torch.randint from the same seed, so they use the same Rademacher vectors.
* surface: loss-landscapes' `planar_interpolation` (one forward per point, the whole set as one
  batch) against `landscape.geometry.surface` on exactly the same points (the same filter-normalised
  directions); the values are compared point by point. loss-landscapes walks its grid in place
  and evaluates even columns one step further along the second direction than odd ones (its
  boustrophedon walk adds before evaluating on the way up, subtracts before on the way down); the
  comparison maps each of its values to the point it actually evaluated.

Each side is timed once after a warm-up; both answers, both times and the ratios are printed.
Falls back to synthetic data of MNIST's shape, with a message, when MNIST is absent. `--device cuda`
runs both sides on the GPU; a peer that is not installed (a GPU machine without the `bench` extra)
is left out with a message and landscape's side is still measured. `--json PATH` also writes the
figures (experiments/gpu_check.py), `--quick` shrinks everything for a dry run.
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from landscape.data import device_splits, load_dataset
from landscape.errors import UserError
from landscape.geometry import Grid, HessianOperator, hutchinson_trace, random_direction, surface, top_eigen
from landscape.models import build_model

from figures import Figures  # experiments/figures.py (scripts run with experiments/ on sys.path)

SHARED = Path(os.environ.get("LANDSCAPE_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def mnist():
    try:
        dataset = load_dataset("mnist", SHARED)
    except UserError as exc:
        print(f"MNIST not available ({exc}); using synthetic data of MNIST's shape", file=sys.stderr)
        g = torch.Generator().manual_seed(0)
        x, y = torch.randn(12000, 1, 28, 28, generator=g), torch.randint(10, (12000,), generator=g)
        return x[:10000], y[:10000], x[10000:], y[10000:], "synthetic 1x28x28"
    train, _, test = device_splits(dataset, 5000, 0, torch.device("cpu"))
    return train.x, train.y, test.x, test.y, f"MNIST from {SHARED}"


def trained(x, y, steps: int) -> torch.nn.Module:
    model = build_model("lenet_300_100", (1, 28, 28), 10, seed=0).to(x.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        index = torch.randint(len(x), (128,), generator=g).to(x.device)
        optimizer.zero_grad()
        F.cross_entropy(model(x[index]), y[index]).backward()
        optimizer.step()
    return model.eval()


class Seconds(float):
    """Wall-clock seconds, carrying the process's CPU seconds too: on a shared machine the wall clock
    also counts the time other jobs held the cores, so both are printed."""

    cpu: float = 0.0

    def __format__(self, spec: str) -> str:
        return f"{float(self):{spec}} s wall, {self.cpu:{spec}} s CPU"


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    seconds = Seconds(time.perf_counter() - wall)
    seconds.cpu = time.process_time() - cpu
    return out, seconds


def ratio(theirs: Seconds, ours: Seconds) -> str:
    return f"{theirs / ours:.2f}x wall, {theirs.cpu / ours.cpu:.2f}x CPU"


def _sync(x: torch.Tensor) -> None:
    if x.is_cuda:
        torch.cuda.synchronize()


def bench_hessian(model, x, y, args, figures: Figures) -> None:
    try:
        from pyhessian import hessian as PyHessian
    except ImportError:
        PyHessian = None
        print("PyHessian is not installed (pip install -e '.[bench]'): landscape's side only")
    cuda = x.is_cuda
    state = dict(model.state_dict())
    op = HessianOperator(model, state, x, y, batch_size=len(x))
    reference = top_eigen(op, 1, steps=150, tol=0.0, vectors=False).values[0].item()
    op.mv(op.rademacher(1, torch.Generator().manual_seed(9))[0])  # warm-up

    def ours_top():
        fresh = HessianOperator(model, state, x, y, batch_size=len(x))
        eig = top_eigen(fresh, 1, vectors=False, generator=torch.Generator().manual_seed(1))
        return eig.values[0].item(), fresh.products

    def theirs_top(tol):
        torch.manual_seed(1)
        h = PyHessian(copy.deepcopy(model), torch.nn.CrossEntropyLoss(), data=(x, y), cuda=cuda)
        values, _ = h.eigenvalues(maxIter=args.power_iterations, tol=tol, top_n=1)
        return values[0]

    (ours, products), t_ours = timed(ours_top)
    _sync(x)
    print(f"top eigenvalue (converged reference {reference:.6f}, Lanczos 150 steps):")
    print(f"  landscape            {ours:.6f}  rel. error {abs(ours - reference) / abs(reference):.1e}  {t_ours:7.2f} "
          f"({products} products)")
    figures.add("top eigenvalue: landscape rel. error", abs(ours - reference) / abs(reference), "")
    if PyHessian is None:
        figures.add("top eigenvalue: landscape", float(t_ours), "s")
    else:
        theirs_top(1e-3)  # warm-up
    for tol in ((1e-3, 1e-5) if PyHessian is not None else ()):
        theirs, t_theirs = timed(lambda: theirs_top(tol))
        print(f"  PyHessian tol {tol:.0e}  {theirs:.6f}  rel. error {abs(theirs - reference) / abs(reference):.1e}  "
              f"{t_theirs:7.2f}")
        print(f"    agreement with landscape {abs(ours - theirs) / abs(theirs):.1e} relative; speed ratio "
              f"PyHessian/landscape {ratio(t_theirs, t_ours)}")
        figures.add(f"top eigenvalue: landscape vs PyHessian tol {tol:.0e}", float(t_ours), "s",
                    baseline=float(t_theirs), baseline_label="PyHessian")

    def theirs_trace(tol, probes):
        torch.manual_seed(2)
        h = PyHessian(copy.deepcopy(model), torch.nn.CrossEntropyLoss(), data=(x, y), cuda=cuda)
        return h.trace(maxIter=probes, tol=tol)

    if PyHessian is None:
        trace, t_ours = timed(lambda: hutchinson_trace(HessianOperator(model, state, x, y, batch_size=len(x)),
                                                       args.probes, generator=torch.Generator().manual_seed(2),
                                                       chunk=16))
        print(f"trace ({args.probes} probes): landscape {trace.estimate:.2f} ± {trace.stderr:.2f}  {t_ours:7.2f}")
        figures.add(f"trace, {args.probes} probes: landscape", float(t_ours), "s")
        return
    # PyHessian's default stopping rule (running mean moves by < 1e-3), then a fixed probe count.
    for tol, probes in ((1e-3, 100), (0.0, args.probes)):
        samples, t_theirs = timed(lambda: theirs_trace(tol, probes))
        n = len(samples)
        trace, t_ours = timed(lambda: hutchinson_trace(HessianOperator(model, state, x, y, batch_size=len(x)),
                                                       max(n, 2), generator=torch.Generator().manual_seed(2),
                                                       chunk=16))
        se = float(np.std(samples, ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
        rule = f"PyHessian's stopping rule (tol {tol:g}) chose {n}" if tol else "fixed"
        print(f"trace (Hutchinson, {n} Rademacher probes each: {rule}):")
        print(f"  landscape  {trace.estimate:.2f} ± {trace.stderr:.2f}  {t_ours:7.2f}")
        print(f"  PyHessian  {float(np.mean(samples)):.2f} ± {se:.2f}  {t_theirs:7.2f}")
        print(f"  difference {abs(trace.estimate - float(np.mean(samples))) / np.hypot(trace.stderr, se):.2f} "
              f"combined SE; speed ratio PyHessian/landscape {ratio(t_theirs, t_ours)}")
        figures.add(f"trace, {n} probes: landscape vs PyHessian", float(t_ours), "s", baseline=float(t_theirs),
                    baseline_label="PyHessian")


def bench_surface(model, x, y, args, figures: Figures) -> None:
    try:
        import loss_landscapes
        from loss_landscapes.metrics import Loss
    except ImportError:
        loss_landscapes = None
        print("loss-landscapes is not installed (pip install -e '.[bench]'): landscape's side only")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    params = [n for n, _ in model.named_parameters()]
    g = torch.Generator().manual_seed(3)
    d1, d2 = (random_direction(state, params, g, norm="filter") for _ in range(2))
    steps = args.grid
    # Their grid: start + i·(E1 − start)/steps + j·(E2 − start)/steps; ours the same points, centred at θ.
    start = {k: v - d1[k] - d2[k] if v.is_floating_point() else v for k, v in state.items()}
    ends = []
    for d in (d1, d2):
        m = copy.deepcopy(model)
        m.load_state_dict({k: start[k] + 2 * d[k] if start[k].is_floating_point() else start[k] for k in start})
        ends.append(m)
    origin = copy.deepcopy(model)
    origin.load_state_dict(start)
    coords = torch.arange(steps + 1, dtype=torch.float64) * 2 / steps
    grid = Grid(coords[:steps] - 1, coords - 1)  # x: i = 0..steps-1, y: j = 0..steps
    surface(model, state, [d1, d2], Grid(coords[:2] - 1, coords[:2] - 1), x, y)  # warm-up
    ours, t_ours = timed(lambda: surface(model, state, [d1, d2], grid, x, y, batch_size=args.batch_size))
    if loss_landscapes is None:
        print(f"surface {steps}x{steps} on {len(x)} examples: landscape {t_ours:7.2f}")
        figures.add(f"surface {len(grid.coefficients())} points: landscape", float(t_ours), "s")
        return
    metric = Loss(torch.nn.CrossEntropyLoss(), x, y)
    with torch.no_grad():
        theirs, t_theirs = timed(lambda: loss_landscapes.planar_interpolation(
            copy.deepcopy(origin), ends[0], ends[1], metric, steps=steps, deepcopy_model=True))
    loss = ours.loss.numpy()  # [y, x]
    mapped = np.array([[loss[j + 1 if i % 2 == 0 else j, i] for j in range(steps)] for i in range(steps)])
    diff = np.abs(mapped - theirs).max()
    unmapped = np.abs(np.array([[loss[j, i] for j in range(steps)] for i in range(steps)]) - theirs).max()
    print(f"surface {steps}x{steps} on {len(x)} examples ({steps * steps} points for loss-landscapes, "
          f"{len(grid.coefficients())} for landscape, {ours.points_per_pass} per pass):")
    print(f"  landscape        {t_ours:7.2f}  ({1e3 * t_ours / len(grid.coefficients()):.1f} ms per point wall)")
    print(f"  loss-landscapes  {t_theirs:7.2f}  ({1e3 * t_theirs / steps ** 2:.1f} ms per point wall)")
    print(f"  max |difference| over its points {diff:.1e} (loss range {theirs.min():.3f}..{theirs.max():.3f}); "
          f"read naively as a regular grid it would be off by up to {unmapped:.2f}")
    print(f"  speed ratio loss-landscapes/landscape per point "
          f"{(t_theirs / steps ** 2) / (t_ours / len(grid.coefficients())):.2f}x wall, "
          f"{(t_theirs.cpu / steps ** 2) / (t_ours.cpu / len(grid.coefficients())):.2f}x CPU")
    figures.add(f"surface {steps}x{steps}: landscape per point", t_ours / len(grid.coefficients()), "s",
                baseline=t_theirs / steps ** 2, baseline_label="loss-landscapes per point")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=2000, help="training examples the Hessian is measured on")
    parser.add_argument("--surface-examples", type=int, default=2000, help="test examples the surface is measured on")
    parser.add_argument("--grid", type=int, default=15, help="points per axis of the surface")
    parser.add_argument("--train-steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=500, help="our evaluation batch for the surface")
    parser.add_argument("--probes", type=int, default=100, help="trace probes for the fixed-count comparison")
    parser.add_argument("--power-iterations", type=int, default=100, help="PyHessian's maxIter (its default: 100)")
    parser.add_argument("--skip", choices=["hessian", "surface"], default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a dry run of the GPU check")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()
    if args.quick:
        args.examples, args.surface_examples, args.grid, args.train_steps = 300, 300, 5, 20
        args.probes, args.power_iterations = 8, 20
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    device = torch.device(args.device)
    train_x, train_y, test_x, test_y, source = (t.to(device) if torch.is_tensor(t) else t for t in mnist())
    model = trained(train_x, train_y, args.train_steps)
    index = torch.randperm(len(train_y), generator=torch.Generator().manual_seed(0))[:args.examples].to(device)
    print(f"LeNet-300-100, {args.train_steps} SGD steps on {source}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s)")
    figures = Figures()
    if args.skip != "hessian":
        bench_hessian(model, train_x[index], train_y[index], args, figures)
    if args.skip != "surface":
        bench_surface(model, test_x[:args.surface_examples], test_y[:args.surface_examples], args, figures)
    figures.write(args.json, device=str(device), data=source)


if __name__ == "__main__":
    main()
