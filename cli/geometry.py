"""The loss-landscape geometry commands: `landscape hessian` and `landscape surface`.

`register(app)` adds them to the main typer app. Each parses its flags, makes one call into
`landscape.api.hessian` or `landscape.api.surface`, and prints what the stored run holds (so a
reused result prints the same), or with --json one JSON object for scripts.
"""
from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer

from .flags import _flag, with_flags
from .lmc import REFERENCES, _WHERE
from .lmc import out as _console

_EXAMPLES = _flag("examples", str, "2000", "Seeded sample of N training examples the loss is measured on, "
                  "or 'all' for the whole training split.")
_COMMON = [
    _flag("seed", int, 0, "Seed of the example sample, the probes / directions and the BatchNorm sample."),
    _flag("bn_batches", int, 10, "Training batches BatchNorm statistics are recomputed over (with --bn-recompute)."),
    _flag("batch_size", int, 1000, "Examples per pass."),
    _flag("json_", bool, False, "Print one JSON object (run ID, settings, results) instead of tables.", "--json"),
]
# The shared flags less their own --json (the run as `show --json` prints it): two options named
# --json on one command leave click parsing only the last, and this command's --json was ignored.
_WHERE_GEOMETRY = [p for p in _WHERE if p.name != "json_"]


def _examples(text: str) -> int | None:
    from landscape.errors import ConfigError

    if str(text).strip().lower() == "all":
        return None
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"cannot read --examples {text!r}", "give a number of examples or 'all'") from None


def _options(args: dict[str, Any], progress=None):
    from landscape.api import TrainOptions

    return TrainOptions(store=args["store"], data_dir=args["data_dir"], device=args["device"], name=args.get("name"),
                        progress=progress)


def _next(run, args) -> None:
    _console().print(f"next: landscape report {run.id}" + (f" --store {args['store']}" if args["store"] else ""))


def register(app: typer.Typer) -> None:
    """Add `hessian` and `surface` to `app`."""

    @app.command("hessian", epilog=f"""**Examples**

    landscape hessian 3f9a1c --top-k 5 --examples 2000

    landscape hessian imp-run@3 --per-layer --density --data-dir ../shared/data

    landscape hessian imp-run --roles ticket,reinit --steps 30 --probes 50

    landscape hessian 3f9a1c:500it --method power --json

{REFERENCES} A whole IMP run (`IMP`, no level) measures every level's ticket and controls.
""")
    @with_flags([_EXAMPLES] + _COMMON + _WHERE_GEOMETRY)
    def hessian(
        ref: Annotated[str, typer.Argument(help="The network (any lmc reference), or a whole IMP run.",
                                           show_default=False)],
        top_k: Annotated[int, typer.Option("--top-k", help="How many of the largest eigenvalues.")] = 1,
        method: Annotated[str, typer.Option(help="lanczos (full reorthogonalisation) or power (with deflation).")] = "lanczos",
        steps: Annotated[int, typer.Option(help="Lanczos steps (or power iterations per eigenvalue).")] = 100,
        tol: Annotated[Optional[float], typer.Option(help="Stop when no top-k eigenvalue moves by more than this, "
                                                     "relatively [default: 1e-6 lanczos, 1e-3 power].",
                                                     show_default=False)] = None,
        probes: Annotated[int, typer.Option(help="Rademacher probes of Hutchinson's trace estimate.")] = 100,
        density: Annotated[bool, typer.Option("--density/--no-density", help="Also the spectral density (SLQ).")] = False,
        density_probes: Annotated[int, typer.Option(help="SLQ probes.")] = 8,
        density_steps: Annotated[int, typer.Option(help="Lanczos steps per SLQ probe.")] = 60,
        per_layer: Annotated[bool, typer.Option("--per-layer/--no-per-layer", help="Also each layer's diagonal block.")] = False,
        bn_recompute: Annotated[bool, typer.Option("--bn-recompute/--no-bn-recompute", help="Recompute BatchNorm "
                                                   "statistics on training batches first [default: the network's own, "
                                                   "in evaluation mode].")] = False,
        roles: Annotated[Optional[str], typer.Option(help="For a whole IMP run: roles to measure, e.g. ticket,reinit "
                                                     "[default: all].", show_default=False)] = None,
        save_vectors: Annotated[bool, typer.Option("--save-vectors", help="Store the top-k eigenvectors.")] = False,
        name: Annotated[Optional[str], typer.Option(help="A readable name for the result.", show_default=False)] = None,
        **flags,
    ) -> None:
        """Curvature of the training loss: top-k eigenvalues, trace (with its standard error), density.

        Hessian-vector products by torch.func (forward-over-reverse) on a seeded, stored sample of
        training examples. For a ticket or control the Hessian is restricted to the weights its
        mask keeps (probe vectors are zero on pruned weights): the curvature of the subnetwork that
        trains. Stored as a run of kind hessian; asking again for the same request reuses it.
        """
        from landscape.api.hessian import HessianSettings, hessian as measure

        from .progress import step_progress

        args = {**flags, "name": name}
        settings = HessianSettings(
            top_k=top_k, method=method, steps=steps, tol=tol, probes=probes, density=density, density_probes=density_probes,
            density_steps=density_steps, per_layer=per_layer, examples=_examples(args["examples"]), seed=args["seed"],
            bn_recompute=bn_recompute, bn_batches=args["bn_batches"], batch_size=args["batch_size"],
            roles=tuple(r.strip() for r in roles.split(",") if r.strip()) if roles else None,
            save_vectors=save_vectors)
        with step_progress(f"hessian of {ref}") as progress:
            run = measure(ref, settings, _options(args, progress))
        if args["json_"]:
            print(json.dumps(hessian_json(run)))
            return
        print_hessian(run)
        _next(run, args)

    @app.command("surface", epilog=f"""**Examples**

    landscape surface 3f9a1c --grid 25x25 --span -1:1

    landscape surface 3f9a1c --grid 51 --norm layer

    landscape surface --plane imp-run@3:0,imp-run@3,imp-run@0 --grid 21x21

    landscape surface --trajectory 3f9a1c --grid 21x21 --json

    landscape surface resnet-run --grid 11x11 --bn-recompute --examples 1000

{REFERENCES} `--plane A,B,C` draws the plane through three networks (e.g. a ticket's rewind point
`IMP@L:0`, the ticket `IMP@L`, the dense network `IMP@0`); `--trajectory RUN` the two leading PCA
directions of RUN's checkpoints, with the path over them.
""")
    @with_flags([_EXAMPLES] + _COMMON + _WHERE_GEOMETRY)
    def surface(
        ref: Annotated[Optional[str], typer.Argument(help="The network at the centre (random directions).",
                                                     show_default=False)] = None,
        grid: Annotated[str, typer.Option(help="N points on a line, or NXxNY on a plane.")] = "25x25",
        span: Annotated[Optional[str], typer.Option(help="LOW:HIGH on every axis, or X0:X1,Y0:Y1 [default: -1:1; "
                                                    "around the marked points for --plane/--trajectory].",
                                                    show_default=False)] = None,
        norm: Annotated[str, typer.Option(help="Random directions normalised per filter (Li et al.), layer, or none.")] = "filter",
        include_bias_bn: Annotated[bool, typer.Option("--include-bias-bn", help="Random directions also move biases "
                                                      "and BatchNorm parameters (left out by default, as Li et al.).")] = False,
        plane: Annotated[Optional[str], typer.Option(help="The plane through three networks A,B,C.",
                                                     show_default=False)] = None,
        trajectory: Annotated[Optional[str], typer.Option(help="The PCA plane of a training run's checkpoints.",
                                                          show_default=False)] = None,
        bn_recompute: Annotated[bool, typer.Option("--bn-recompute/--no-bn-recompute", help="Recompute BatchNorm "
                                                   "statistics at every grid point.")] = False,
        test_examples: Annotated[Optional[int], typer.Option(help="Evaluate on the first N test examples [default: all].",
                                                             show_default=False)] = None,
        margin: Annotated[float, typer.Option(help="Automatic spans reach this share of the points' extent beyond them.")] = 0.25,
        chunk: Annotated[Optional[int], typer.Option(help="Grid points per vmapped pass [default: as many as fit].",
                                                     show_default=False)] = None,
        method: Annotated[str, typer.Option(help="batched (many points per pass) or sequential (one at a time).")] = "batched",
        name: Annotated[Optional[str], typer.Option(help="A readable name for the result.", show_default=False)] = None,
        **flags,
    ) -> None:
        """Loss and error on a line or a plane of networks around REF, through three networks, or along a run.

        Evaluated on the test set and a seeded training sample, many grid points per pass
        (torch.func). Directions are zero on pruned weights, so a ticket's surface stays in its own
        subspace. Stored as a run of kind surface; asking again for the same request reuses it.
        """
        from landscape.api.surface import SurfaceSettings, surface as evaluate

        from .progress import step_progress

        args = {**flags, "name": name}
        settings = SurfaceSettings(
            grid=grid, span=span, norm=norm, include_1d=include_bias_bn, margin=margin, bn_recompute=bn_recompute,
            bn_batches=args["bn_batches"], examples=_examples(args["examples"]), test_examples=test_examples,
            seed=args["seed"], batch_size=args["batch_size"], chunk=chunk, method=method)
        with step_progress("surface") as progress:
            run = evaluate(ref, plane=plane, trajectory=trajectory, settings=settings,
                           options=_options(args, progress))
        if args["json_"]:
            print(json.dumps(surface_json(run)))
            return
        print_surface(run)
        _next(run, args)


# ------------------------------------------------------------------------------------------------
# Printing
# ------------------------------------------------------------------------------------------------

def _plain(value):
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def hessian_json(run) -> dict:
    from landscape.api.hessian import read_networks

    networks = [{k: v for k, v in n.items() if k != "arrays"} for n in read_networks(run)]
    return _plain({"id": run.id, "name": run.name, "kind": run.kind, "path": str(run.path),
                   "info": run.section("hessian"), "metrics": run.metrics, "networks": networks})


def surface_json(run) -> dict:
    info = run.section("surface")
    marked = [run.section(f"surface/marked/{i}") for i in range(len(info.get("marked_labels", [])))]
    return _plain({"id": run.id, "name": run.name, "kind": run.kind, "path": str(run.path), "info": info,
                   "marked": marked, "metrics": run.metrics, "grid": run.arrays("surface")})


def print_hessian(run) -> None:
    from rich.table import Table

    from landscape.api.hessian import read_networks

    info = run.section("hessian")
    _console().print(f"[bold]{run.id}[/] {run.name} -> {run.path}")
    _console().print(f"  {info['model']} on {info['dataset']}: loss on a seeded sample of {info['examples']} of "
              f"{info['train_total']} training examples; {info['bn_note']}")
    _console().print(f"  masks: {info['mask_note']}")
    table = Table("network", "remaining", "weights", "loss", "top eigenvalues", "trace ± SE", "time",
                  box=None, padding=(0, 2))
    networks = read_networks(run)
    for n in networks:
        eig = ", ".join(f"{v:.4g}" for v in n["eigenvalues"])
        table.add_row(n["label"].split(": ")[0] if n["level"] >= 0 else n["label"],
                      f"{100 * n['weights_remaining']:.1f}%", str(n["dim"]), f"{n['loss']:.4f}", eig,
                      f"{n['trace']:.4g} ± {n['trace_stderr']:.2g}", f"{sum(n['seconds'].values()):.1f}s")
    _console().print(table)
    for n in networks:
        if "layers" in n:
            layers = n["layers"]
            rows = ", ".join(f"{name}: λ1 {top:.4g}, tr {tr:.4g}" for name, top, tr in
                             zip(layers["names"], layers["top_eigenvalue"], layers["trace"]))
            _console().print(f"  per layer ({n['ref']}): {rows}")
    _console().print(f"  {info['method']}: eigen residuals ‖Hv − λv‖ up to "
              f"{max(max(n['residuals']) for n in networks):.2g}; trace by Hutchinson (Rademacher probes)")


def print_surface(run) -> None:
    info = run.section("surface")
    m = run.metrics
    _console().print(f"[bold]{run.id}[/] {run.name} -> {run.path}")
    shape = info["grid"]
    what = {"random": f"random directions normalised by {info['norm']}" +
                      (" (biases and BatchNorm moved too)" if info["include_1d"] else
                       " (biases and BatchNorm left out, as Li et al.)"),
            "plane": f"the plane through three networks (unit = ‖B − A‖ = {info['unit']:.4g})" if info.get("unit")
            else "the plane through three networks",
            "trajectory": "the two leading PCA directions of the run's checkpoints"
                          + (f", explaining {100 * info['explained'][0]:.1f}% + {100 * info['explained'][1]:.1f}% "
                             "of the variance" if info.get("explained") else "")}[info["mode"]]
    _console().print(f"  grid {shape} along {what}")
    bn = ("recomputed at every point over " + f"{info['bn_examples']} training inputs" if info["bn_recompute"]
          else "none to recompute" if info["bn_recompute_requested"] else "the network's own statistics")
    _console().print(f"  BatchNorm: {bn}; test {info['num_test']} examples, train {info['num_train']} of {info['train_total']}")
    for i, label in enumerate(info.get("marked_labels", [])):
        r = run.section(f"surface/marked/{i}")
        coords = ", ".join(f"{c:.3f}" for c in r["coords"])
        _console().print(f"  {label} at ({coords}): test loss {r['test_loss']:.4f} (surface {r['test_loss_surface']:.4f}), "
                  f"train loss {r['train_loss']:.4f} (surface {r['train_loss_surface']:.4f})")
    _console().print(f"  test loss over the grid {m['test/min_loss']:.4f} .. {m['test/max_loss']:.4f}; "
              f"{info['points']} points in {info['seconds']:.1f}s ({info['method']}, up to {info['points_per_pass']} "
              "points per pass)")
