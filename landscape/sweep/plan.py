"""A spec's stages as tasks: each grid point parsed by its command's own flags, checked, and keyed.

A task's key is its run ID where the run is known beforehand (train, imp, scores): Dask collapses
equal keys, so grid points that ask for the same run compute it once, and a stored complete run
is not submitted at all. Other commands are keyed by a hash of their flags.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from ..calls import check_call, predict_runs, shared_runs, stored_complete
from ..errors import ConfigError, UserError
from ..store import Store
from .flags import parse_flags
from .spec import Produced, Stage, fill_own, fill_refs


@dataclass
class Task:
    stage: str
    label: str                       # the grid point, as the options that vary
    command: str
    point: dict[str, Any]            # the options as written, templates filled
    flags: dict[str, Any]            # the command's flags, as its command line would have them
    key: str
    run_ids: list[str] | None        # the runs it stores, when known beforehand
    stored: bool                     # the store holds them complete: nothing to do
    duplicates: list[str] = field(default_factory=list)  # labels of equal grid points folded into it
    shares: tuple[str, ...] = ()     # runs other tasks may need too (an IMP run's dense runs)
    rank: int = 0                    # how many earlier tasks share them: those run first


def _flags_key(command: str, flags: dict[str, Any]) -> str:
    text = json.dumps({"command": command, **flags}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def absolute_paths(point: dict[str, Any]) -> dict[str, Any]:
    """Workers may run elsewhere (another directory, another machine): paths travel absolute."""
    out = dict(point)
    for key in ("store", "data_dir", "data-dir"):
        if isinstance(out.get(key), str) and out[key]:
            out[key] = os.path.abspath(os.path.expanduser(out[key]))
    return out


def _label(stage: Stage, point: dict[str, Any], template: dict[str, Any]) -> str:
    varying = list(stage.grid) + [k for z in stage.zips for k in z]
    varying += [k for k, v in template.items() if isinstance(v, str) and "{" in v and k not in varying
                and k not in ("name",)]
    return " ".join(f"{k}={point[k]}" for k in varying if k in point) or "(single point)"


def plan_stage(stage: Stage, produced: dict[str, list[Produced]], defaults: dict[str, Any],
               store) -> list[Task]:
    """Every task of `stage`, checked before anything is submitted (a bad point raises a UserError)."""
    tasks: dict[str, Task] = {}
    for template in stage.points():
        for point in fill_refs(template, stage.refs, produced, f"stage {stage.name}"):
            point = absolute_paths({**defaults, **fill_own(point)})
            label = _label(stage, point, template)
            try:
                flags = parse_flags(stage.command, point)
                check_call(stage.command, flags)
                ids = predict_runs(stage.command, flags)
            except UserError as exc:
                raise type(exc)(f"stage {stage.name}, point {label}: {exc.what}", exc.fix) from None
            key = f"{stage.command}-{ids[0] if ids else _flags_key(stage.command, flags)}"
            if key in tasks:
                tasks[key].duplicates.append(label)
                continue
            where = Store(flags["store"]) if flags.get("store") else store  # a point may name its own store
            tasks[key] = Task(stage.name, label, stage.command, point, flags, key, ids,
                              stored_complete(stage.command, flags, where, ids),
                              shares=tuple(shared_runs(stage.command, flags)))
    if not tasks:
        raise ConfigError(f"stage {stage.name} has no points", "give its grid at least one value per entry")
    seen: dict[tuple[str, ...], int] = {}
    for task in tasks.values():
        # The first task of each group sharing runs computes them; the others are ranked after every
        # first, so that no worker sits waiting for a run that another worker is writing.
        if task.shares:
            task.rank = seen.get(task.shares, 0)
            seen[task.shares] = task.rank + 1
    return list(tasks.values())


def predicted(tasks: list[Task]) -> list[Produced] | None:
    """What a stage's tasks offer later stages, when every one's runs are known beforehand."""
    if any(t.run_ids is None for t in tasks):
        return None
    return [Produced(t.point, tuple(t.run_ids)) for t in tasks]
