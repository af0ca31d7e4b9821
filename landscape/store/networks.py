"""A hessian run's measured networks as stored, read back the same way by the api (the CLI's
tables and `--json`) and by the report, without torch."""
from __future__ import annotations

import json
from typing import Any

from .run import Run


def read_networks(run: Run) -> list[dict[str, Any]]:
    """Each measured network's attributes, per-layer results, seconds by phase and arrays (under
    "arrays"), in order. Per-layer eigenvalue lists are stored as JSON text (ragged): decoded here."""
    out = []
    for name in run.sections("networks"):
        record = run.section(f"networks/{name}")
        layers = run.section(f"networks/{name}/layers")
        if layers:
            layers["eigenvalues"] = [json.loads(v) if isinstance(v, str) else v for v in layers.get("eigenvalues", [])]
            record["layers"] = layers
        record["seconds"] = run.section(f"networks/{name}/seconds")
        record["arrays"] = run.arrays(f"networks/{name}")
        out.append(record)
    return out
