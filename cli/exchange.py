"""Tickets out and checkpoints in: `landscape export` and `landscape import`.

`register(app)` adds them to the main typer app; each makes one call into landscape.api.export or
landscape.api.imported and prints what was written.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .flags import with_train_flags
from .lmc import REFERENCES


def register(app: typer.Typer) -> None:
    @app.command("export", epilog=f"""**Examples**

    landscape export 7be204@3 --out ticket.pt

    landscape export 7be204@3/r1 --out ticket.safetensors --prune-naming

    landscape export 3f9a1c:500it --out net.npz --format npz

{REFERENCES}
""")
    def export(
        ref: Annotated[str, typer.Argument(help="The network: RUN, RUN:STEP or IMP@L[/ROLE][/rR][:STEP].")],
        out: Annotated[Path, typer.Option("--out", help="File to write; its masks and a FILE.json sidecar go beside it.")],
        format: Annotated[Optional[str], typer.Option("--format", help="pt, safetensors or npz [default: from --out's suffix].", show_default=False)] = None,
        prune_naming: Annotated[bool, typer.Option("--prune-naming/--no-prune-naming", help="Masks in the weights file as torch.nn.utils.prune's NAME_orig/NAME_mask.")] = False,
        store: Annotated[Optional[str], typer.Option("--store", help="Store directory [env LANDSCAPE_STORE; default ./landscape-store].", show_default=False)] = None,
        data_dir: Annotated[Optional[str], typer.Option("--data-dir", help="Data root (for the normalisation statistics) [env LANDSCAPE_DATA; default ./data].", show_default=False)] = None,
    ) -> None:
        """Write a stored network (a ticket, a checkpoint) as a plain state_dict, its masks and a JSON sidecar.

        Pruned weights are exactly zero; the sidecar holds the run ID, the configuration and the input
        normalisation, so the network runs in your own code with `model.load_state_dict(torch.load(FILE))`.
        """
        from landscape.api.export import export_network

        sidecar = export_network(ref, out, fmt=format, prune_naming=prune_naming, store=store, data_dir=data_dir)
        masks = sidecar["masks"]
        kept = sum(m["kept"] for m in masks.values())
        total = sum(m["total"] for m in masks.values())
        density = f", {100 * kept / total:.2f}% of prunable weights kept" if total else ", dense"
        typer.echo(f"{sidecar['run_id']} {sidecar['run_name']} at {sidecar['step']}it -> {out} "
                   f"({sidecar['file_format']}{density}); " + ", ".join(sidecar["files"].values()) + f", {out.name}.json")

    @app.command("import", epilog="""**Examples**

    landscape import their-net.pt --model lenet_300_100 --dataset mnist --data-dir ../shared/data --name theirs

    landscape import ticket.safetensors --model mylab.nets:small_cnn --dataset mnist1d

then: `landscape lmc theirs mine`, `landscape imp --from theirs ...`, `landscape train --from theirs:0 ...`
""")
    @with_train_flags
    def import_(
        file: Annotated[Path, typer.Argument(help="A state_dict: .pt/.pth (torch.save), .safetensors or .npz.")],
        **flags: Any,
    ) -> None:
        """Bring a network trained elsewhere into the store (a run of kind `imported`).

        It can then be an LMC endpoint, a sibling source, a start point (`train --from RUN:0`) and IMP's
        start and rewind point (`imp --from RUN`). The training flags say how runs started from it train.
        """
        from landscape.api.imported import import_network
        from landscape.calls.training import base_config

        from .commands import _pct, options

        run = import_network(file, base_config(flags), options(flags))
        m = run.metrics
        typer.echo(f"{run.id} {run.name}: imported {file} as {flags['model']} on {flags['dataset']}: "
                   f"test acc {_pct(m.get('final/test/acc'))}, val acc {_pct(m.get('final/val/acc'))} -> {run.path}")
