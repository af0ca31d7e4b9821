"""Loss surfaces into the store: `landscape surface REF`, `--plane A,B,C`, `--trajectory RUN`.

    from landscape.api.surface import surface
    run = surface("7be204@3", grid="25x25", span="-1:1", store="runs", data_dir="../shared/data")
    run = surface(plane="7be204@3:0,7be204@3,7be204@0", grid="21x21")   # rewind point, ticket, dense
    run = surface(trajectory="3f9a1c", grid="21x21")                     # Li et al. section 7

Three ways to choose the plane (landscape.geometry.directions): random filter-normalised directions
around REF (Li et al. 2018; seeded, zero on REF's pruned weights), the plane through three
networks (orthonormal coordinates in units of ‖B − A‖, the three marked and their own values
stored beside the surface's), or the two leading PCA directions of a run's checkpoints (the path
drawn over the surface, with the variance it explains). Loss and error at every grid point on the
test set and a seeded training sample, many points per vmapped pass, BatchNorm statistics
optionally recomputed at each point. A result is a run of kind "surface" whose ID hashes the request.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import torch

from ..batched.batchnorm import recompute_module_, statistics_batches
from ..batched.evaluate import Scores, evaluate_module
from ..batched.states import working_copy
from ..data import data_root
from ..environment import describe
from ..errors import ConfigError
from ..geometry import Grid, grid_axis, plane_through, random_direction, surface as evaluate_surface
from ..geometry import trajectory_plane
from ..geometry.directions import check_norm
from ..geometry.surface import SURFACE_METHODS
from ..store import Run, Store
from ..train.rng import generator
from .lmc import check_pair
from .probes import DEFAULT_EXAMPLES, Network, check_examples, load_network, sample_index
from .refs import resolve_endpoint
from .requests import DataCache, EvalData, request_id
from .train import TrainOptions, resolve_device

_STREAM = 0x5F4A  # the training sample, the BatchNorm sample and the directions of a surface request
MODES = ("random", "plane", "trajectory")


@dataclass(frozen=True)
class SurfaceSettings:
    """The grid and how it is evaluated. All but the last two are part of the request's identity."""

    grid: str = "25x25"          # "N" for a line, "NXxNY" for a plane
    span: str | None = None      # "LO:HI" (both axes) or "X0:X1,Y0:Y1"; None: -1:1, or around the marked points
    norm: str = "filter"         # of random directions: filter, layer or none
    include_1d: bool = False     # random directions also move biases and BatchNorm parameters
    margin: float = 0.25         # automatic spans reach this share of the points' extent beyond them
    bn_recompute: bool = False   # recompute BatchNorm statistics at each grid point
    bn_batches: int = 10
    examples: int | None = DEFAULT_EXAMPLES  # seeded training sample; None: the whole training split
    test_examples: int | None = None  # the first N test examples; None: all
    seed: int = 0
    batch_size: int = 1000
    # Not part of the identity: how the same numbers are computed.
    chunk: int | None = None     # grid points per vmapped pass (None: as many as fit)
    method: str = "batched"      # or "sequential": one point at a time

    def identity(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("chunk", "method")}

    def axes(self) -> tuple[int, int | None]:
        return parse_grid(self.grid)

    def validate(self) -> "SurfaceSettings":
        def integer(value, label, low=1, optional=False):
            if optional and value is None:
                return
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{label} {value!r} must be an integer of at least {low}")

        self.axes()
        if self.span is not None:
            parse_span(self.span, 2)
        check_norm(self.norm)
        integer(self.bn_batches, "--bn-batches")
        integer(self.examples, "--examples", optional=True)
        integer(self.test_examples, "--test-examples", optional=True)
        integer(self.seed, "--seed", 0)
        integer(self.batch_size, "--batch-size")
        integer(self.chunk, "--chunk", optional=True)
        if not (isinstance(self.margin, (int, float)) and math.isfinite(self.margin) and self.margin >= 0):
            raise ConfigError(f"--margin {self.margin!r} must be a number of at least 0")
        if self.method not in SURFACE_METHODS:
            raise ConfigError(f"unknown method {self.method!r}", f"choose {' or '.join(SURFACE_METHODS)}")
        return self


def parse_grid(text: str) -> tuple[int, int | None]:
    """"51" → (51, None); "25x25" → (25, 25). At least 2 points per axis."""
    parts = str(text).lower().replace("×", "x").split("x")
    try:
        counts = [int(p) for p in parts]
    except ValueError:
        counts = []
    if len(counts) not in (1, 2):
        raise ConfigError(f"cannot read --grid {text!r}", "write N for a line or NXxNY for a plane, e.g. 51 or 25x25")
    if min(counts) < 2:
        raise ConfigError(f"--grid {text} has fewer than 2 points per axis", "use at least 2, e.g. --grid 25x25")
    return counts[0], counts[1] if len(counts) == 2 else None


def parse_span(text: str, dims: int) -> list[tuple[float, float]]:
    """"-1:1" → the same span on every axis; "-1:1,-0.5:0.5" → one per axis."""
    spans = []
    for part in str(text).split(","):
        lo, colon, hi = part.partition(":")
        try:
            pair = (float(lo), float(hi)) if colon else None
        except ValueError:
            pair = None
        if pair is None or not all(map(math.isfinite, pair)):
            raise ConfigError(f"cannot read --span {text!r}", "write LOW:HIGH, e.g. --span -1:1 (or X0:X1,Y0:Y1)")
        if not pair[1] > pair[0]:
            raise ConfigError(f"--span {part} has no width", "give LOW:HIGH with LOW < HIGH, e.g. --span -1:1")
        spans.append(pair)
    if len(spans) == 1:
        spans = spans * dims
    if len(spans) != dims:
        raise ConfigError(f"--span {text!r} gives {len(spans)} ranges for a {dims}-D grid", "give one, or one per axis")
    return spans[:dims]


@dataclass
class Request:
    """What a surface request resolved to, before anything is evaluated."""

    mode: str
    networks: list[Network]
    centre: dict[str, torch.Tensor]
    directions: list[dict[str, torch.Tensor]]
    marked: list[tuple[str, list[float], Network | None]]  # label, coordinates, network to evaluate there
    identity: dict[str, Any]
    path: np.ndarray | None = None
    path_steps: list[int] | None = None
    explained: list[float] | None = None
    unit: float | None = None


def surface(ref: str | None = None, *, plane: str | list[str] | None = None, trajectory: str | None = None,
            settings: SurfaceSettings | None = None, options: TrainOptions | None = None, **values) -> Run:
    """Evaluate a loss surface and store it; return the run (reused when the request is stored).

    Give exactly one of REF (random directions around it), plane= ("A,B,C" or three references) or
    trajectory= (a training run). Keywords may be `SurfaceSettings` or `TrainOptions` fields."""
    names = {f.name for f in fields(SurfaceSettings)}
    settings = replace(settings or SurfaceSettings(), **{k: v for k, v in values.items() if k in names}).validate()
    options = replace(options or TrainOptions(), **{k: v for k, v in values.items() if k not in names})
    given = [m for m, v in zip(MODES, (ref, plane, trajectory)) if v]
    if len(given) != 1:
        raise ConfigError("give exactly one of REF, --plane A,B,C or --trajectory RUN" if given else
                          "no network given", "e.g. landscape surface RUN, or --plane A,B,C, or --trajectory RUN")
    store = Store(options.store)
    device = resolve_device(options.device)
    nx, ny = settings.axes()
    if given[0] != "random" and ny is None:
        raise ConfigError(f"--{given[0]} draws a plane, but --grid {settings.grid} is a line",
                          "give a 2-D grid, e.g. --grid 21x21")
    cache = DataCache(options.data_dir, device)
    if given[0] == "plane":
        head = plane.split(",")[0] if isinstance(plane, str) else list(plane)[0]
    else:
        head = ref or trajectory
    first = resolve_endpoint(store, head)
    data = cache.get(first.config)
    check_examples(settings.examples, len(data.train_y))
    if given[0] == "random":
        request = _random(store, ref, settings, data)
    elif given[0] == "plane":
        request = _plane(store, plane, settings, data)
    else:
        request = _trajectory(store, trajectory, settings, data)
    identity = {**request.identity, **settings.identity()}
    run_id = request_id("surface", identity)
    if store.exists(run_id) and store.open(run_id).complete:
        return store.open(run_id)
    grid = _grid(settings, request)
    with store.writer(run_id) as writer:
        if store.exists(run_id) and store.open(run_id).complete:
            return store.open(run_id)
        result = _evaluate(request, grid, settings, data, options)
        head = request.networks[0]
        name = options.name or f"surface-{request.mode}-{head.endpoint.run.name}-{head.endpoint.step}it"
        writer.create(name=name, kind="surface", config=identity,
                      environment={**describe(device), "data_dir": str(data_root(options.data_dir))})
        writer.write_section("surface", attrs=result["attrs"], arrays=result["arrays"])
        writer.finish(curves=result["curves"], metrics=result["metrics"])
    return store.open(run_id)


def _random(store: Store, ref: str, settings: SurfaceSettings, data: EvalData) -> Request:
    network = load_network(resolve_endpoint(store, ref), data)
    dims = 1 if settings.axes()[1] is None else 2
    gen = generator(_STREAM, settings.seed, 2)
    directions = [random_direction(network.state, network.params, gen, norm=settings.norm,
                                   include_1d=settings.include_1d, mask=network.mask) for _ in range(dims)]
    e = network.endpoint
    return Request("random", [network], network.state, directions, [(_short(e), [0.0] * dims, network)],
                   {"mode": "random", "networks": [{"run": e.run.id, "step": e.step}]})


def _plane(store: Store, plane, settings: SurfaceSettings, data: EvalData) -> Request:
    refs = [r.strip() for r in plane.split(",")] if isinstance(plane, str) else list(plane)
    if len(refs) != 3 or not all(refs):
        raise ConfigError(f"--plane needs three networks, got {len(refs)}", "write --plane A,B,C")
    endpoints = [resolve_endpoint(store, r) for r in refs]
    for other in endpoints[1:]:
        try:
            check_pair(endpoints[0], other)
        except ConfigError as exc:
            raise ConfigError(f"--plane: {exc.what.replace('A ', 'the first network ').replace(' B ', ' another ')}",
                              "choose three networks of one model, width and dataset") from None
    networks = [load_network(e, data) for e in endpoints]
    p = plane_through(*(n.state for n in networks), networks[0].params)
    marked = [(_short(n.endpoint), point.tolist(), n) for n, point in zip(networks, p.points)]
    return Request("plane", networks, p.origin, [p.d1, p.d2], marked,
                   {"mode": "plane", "networks": [{"run": e.run.id, "step": e.step} for e in endpoints]},
                   unit=p.unit)


def _trajectory(store: Store, ref: str, settings: SurfaceSettings, data: EvalData) -> Request:
    end = resolve_endpoint(store, ref)
    steps = [s for s in end.run.checkpoint_steps if s <= end.step]
    if len(steps) < 3:
        raise ConfigError(f"--trajectory needs at least 3 checkpoints, {end.run.name} ({end.run.id}) has "
                          f"{len(steps)} up to {end.step}it", "train with more --checkpoint-at steps, "
                          "e.g. --checkpoint-at 0,1ep,2ep,3ep,end")
    network = load_network(end, data)
    states = []
    for s in steps[:-1]:
        state = {k: v.to(data.train_x.device) for k, v in end.run.checkpoint(s).model.items()}
        if network.mask is not None:
            state = {k: v * network.mask[k] if k in network.mask else v for k, v in state.items()}
        states.append(state)
    tp = trajectory_plane(states + [network.state], network.params)
    return Request("trajectory", [network], tp.end, [tp.d1, tp.d2], [(_short(end), [0.0, 0.0], network)],
                   {"mode": "trajectory", "networks": [{"run": end.run.id, "step": end.step}], "steps": steps},
                   path=tp.path.numpy(), path_steps=steps, explained=tp.explained.tolist())


def _short(e) -> str:
    return f"{e.label.split(': ')[0] if e.imp is not None else e.run.name} @{e.step}it"


def _grid(settings: SurfaceSettings, request: Request) -> Grid:
    nx, ny = settings.axes()
    dims = 1 if ny is None else 2
    if settings.span is not None:
        spans = parse_span(settings.span, dims)
    elif request.mode == "random":
        spans = [(-1.0, 1.0)] * dims
    else:
        points = np.array([c for _, c, _ in request.marked] + ([] if request.path is None else request.path.tolist()))
        lo, hi = points.min(0), points.max(0)
        extent = max(float((hi - lo).max()), 1e-12)
        spans = [(float(lo[i] - settings.margin * extent), float(hi[i] + settings.margin * extent))
                 for i in range(dims)]
    xs = grid_axis(nx, *spans[0])
    return Grid(xs, None if ny is None else grid_axis(ny, *spans[1]))


def _evaluate(request: Request, grid: Grid, settings: SurfaceSettings, data: EvalData,
              options: TrainOptions) -> dict[str, Any]:
    device = data.train_x.device
    index = sample_index(len(data.train_y), settings.examples, _STREAM, settings.seed).to(device)
    train = (data.train_x[index], data.train_y[index])
    test = (data.test_x[:settings.test_examples], data.test_y[:settings.test_examples])
    bn_sample = sample_index(len(data.train_y), settings.bn_batches * settings.batch_size, _STREAM + 1, settings.seed)
    bn_x = data.train_x[bn_sample.to(device)]
    template = request.networks[0].template
    common = dict(bn_recompute=settings.bn_recompute, bn_x=bn_x, bn_batches=settings.bn_batches,
                  batch_size=settings.batch_size, chunk=settings.chunk, method=settings.method)
    points = len(grid.coefficients())
    started = time.perf_counter()
    values = {}
    for i, (split, (x, y)) in enumerate((("test", test), ("train", train))):
        progress = (lambda done, total, i=i: options.progress(i * points + done, 2 * points)) \
            if options.progress else None
        values[split] = evaluate_surface(template, request.centre, request.directions, grid, x, y,
                                         progress=progress, **common)
    seconds = time.perf_counter() - started
    marked = _marked_values(request, settings, template, test, train, bn_x)
    s = values["test"]
    attrs = {
        "mode": request.mode, "dims": 1 if grid.ys is None else 2, "grid": settings.grid,
        "refs": [n.endpoint.ref for n in request.networks], "labels": [n.endpoint.label for n in request.networks],
        "model": request.networks[0].endpoint.config.model.name,
        "width": request.networks[0].endpoint.config.model.width,
        "dataset": request.networks[0].endpoint.config.data.dataset,
        "norm": settings.norm if request.mode == "random" else "", "include_1d": settings.include_1d,
        "bn_recompute": s.bn_recompute, "bn_recompute_requested": settings.bn_recompute,
        "bn_examples": min(len(bn_x), settings.bn_batches * settings.batch_size) if s.bn_recompute else 0,
        "num_test": len(test[1]), "num_train": len(train[1]), "train_total": len(data.train_y),
        "method": s.method, "points_per_pass": s.points_per_pass, "points": points, "seconds": seconds,
        "marked_labels": [m["label"] for m in marked], "marked_x": [m["coords"][0] for m in marked],
        "marked_y": [m["coords"][1] if len(m["coords"]) > 1 else 0.0 for m in marked],
        "marked": {f"{i}": m for i, m in enumerate(marked)},
        "unit": request.unit, "explained": request.explained,
        "masked": [int(n.mask is not None) for n in request.networks],
    }
    arrays = {"x": grid.xs.numpy(), "test_loss": s.loss.numpy(), "test_error": s.error.numpy(),
              "train_loss": values["train"].loss.numpy(), "train_error": values["train"].error.numpy()}
    if grid.ys is not None:
        arrays["y"] = grid.ys.numpy()
    if request.path is not None:
        arrays["path"] = request.path
        arrays["path_steps"] = np.asarray(request.path_steps)
    metrics = {"time_s": seconds, "points": points}
    for split in ("test", "train"):
        metrics[f"{split}/min_loss"] = float(values[split].loss.min())
        metrics[f"{split}/max_loss"] = float(values[split].loss.max())
        metrics[f"{split}/loss_at_first"] = marked[0][f"{split}_loss_surface"]
        metrics[f"{split}/loss_of_first"] = marked[0][f"{split}_loss"]
    return {"attrs": attrs, "arrays": arrays, "metrics": metrics, "curves": {}}


def _marked_values(request: Request, settings: SurfaceSettings, template, test, train, bn_x) -> list[dict]:
    """Each marked network's own loss and error (evaluated directly, under its mask) beside the
    surface's value at its coordinates: the two must agree."""
    out = []
    common = dict(bn_recompute=settings.bn_recompute, bn_x=bn_x, bn_batches=settings.bn_batches,
                  batch_size=settings.batch_size)
    for label, coords, network in request.marked:
        record = {"label": label, "coords": list(coords)}
        grid = Grid(torch.tensor(coords[:1], dtype=torch.float64),
                    None if len(coords) == 1 else torch.tensor(coords[1:], dtype=torch.float64))
        for split, (x, y) in (("test", test), ("train", train)):
            at = evaluate_surface(template, request.centre, request.directions, grid, x, y, **common)
            record[f"{split}_loss_surface"] = float(at.loss.flatten()[0])
            record[f"{split}_error_surface"] = float(at.error.flatten()[0])
            own = _direct(template, network.state, x, y, settings, bn_x)
            record[f"{split}_loss"], record[f"{split}_error"] = own
        out.append(record)
    return out


@torch.no_grad()
def _direct(template, state, x, y, settings: SurfaceSettings, bn_x) -> tuple[float, float]:
    model = working_copy(template, x.device)
    model.load_state_dict(state)
    if settings.bn_recompute:
        recompute_module_(model, statistics_batches(bn_x, settings.batch_size, settings.bn_batches))
    scores = Scores(1, len(x), x.device, per_example=False)
    evaluate_module(model, x, y, settings.batch_size, scores, 0)
    return float(scores.loss()[0]), float(scores.error()[0])


__all__ = ["SurfaceSettings", "surface", "parse_grid", "parse_span", "MODES"]
