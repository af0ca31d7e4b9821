"""The store as a pandas DataFrame for notebooks: one row per run, its configuration and metrics.

pandas is an optional extra (`pip install 'landscape[frame]'`); nothing else imports this module.
"""
from __future__ import annotations

import os
from typing import Any

from ..errors import ConfigError


def _flatten(data: dict[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        elif isinstance(value, (list, tuple)):
            out[f"{prefix}{key}"] = ",".join(str(v) for v in value)   # hashable, so it can group
        else:
            out[f"{prefix}{key}"] = value
    return out


def to_dataframe(store: "os.PathLike | str | Any | None" = None, kind: str | None = None):
    """One row per readable run of `store` (a Store or its directory), oldest first: id, name, kind,
    status, created, parent, then `config.*` (the configuration, flattened) and `metrics.*`."""
    try:
        import pandas as pd
    except ImportError:
        raise ConfigError("to_dataframe needs pandas, which is not installed",
                          "pip install 'landscape[frame]' (or pandas)") from None
    from .store import Run, Store

    store = store if isinstance(store, Store) else Store(store)
    rows = []
    for summary in store.list():
        if summary.status == "damaged" or (kind is not None and summary.kind != kind):
            continue
        run = Run(summary.path)
        rows.append({"id": run.id, "name": run.name, "kind": run.kind, "status": run.status,
                     "created": run.created, "parent": run.parent,
                     **_flatten(run.config, "config."), **_flatten(run.metrics, "metrics.")})
    columns = ["id", "name", "kind", "status", "created", "parent"]
    frame = pd.DataFrame(rows, columns=None if rows else columns)
    return frame.set_index("id") if rows else frame
