"""A sweep file: TOML naming a command, its fixed options, a grid, zipped groups, ordered stages.

    command = "train"            # or [[stage]] tables, each with name, command, options, grid, zip
    [options]                    # fixed options: the command's flags, by name (steps, batch-size...)
    model = "lenet_300_100"
    [grid]                       # lists crossed (Cartesian product)
    seed = [0, 1, 2, 3]
    [[zip]]                      # lists of equal length that vary together, crossed with the grid
    rewind = ["0", "500it"]
    name = ["rw0", "rw500"]

A string option may hold templates: `{seed}` is this task's own option; `{STAGE.run}` one task per
run of each task of an earlier stage, `{STAGE.runs[1]}` a task's second run, `{STAGE.id}` its
first, `{STAGE.OPTION}` the option of that task (references to one stage pick the same task).
"""
from __future__ import annotations

import itertools
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError

TOP_KEYS = {"command", "name", "options", "grid", "zip", "stage", "description"}
STAGE_KEYS = {"command", "name", "options", "grid", "zip"}
TEMPLATE = re.compile(r"\{([A-Za-z_][\w-]*)(?:\.([A-Za-z_][\w-]*)(?:\[(\d+)\])?)?\}")


@dataclass(frozen=True)
class Stage:
    name: str
    command: str
    options: dict[str, Any]
    grid: dict[str, list]
    zips: tuple[dict[str, list], ...] = ()
    refs: tuple[str, ...] = ()   # earlier stages whose runs its templates name

    def points(self) -> list[dict[str, Any]]:
        """The grid points before stage references are filled in: options ⊕ grid product ⊕ zips."""
        axes = [[dict(zip(self.grid, values)) for values in itertools.product(*self.grid.values())]]
        for group in self.zips:
            axes.append([dict(zip(group, values)) for values in zip(*group.values())])
        out = []
        for parts in itertools.product(*axes):
            point = dict(self.options)
            for part in parts:
                point.update(part)
            out.append(point)
        return out


@dataclass(frozen=True)
class Spec:
    stages: tuple[Stage, ...]
    source: str = "<spec>"
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def load_spec(spec: str | Path | Mapping[str, Any]) -> Spec:
    """A spec from a TOML file path, TOML text, or an already parsed dictionary."""
    if isinstance(spec, Mapping):
        return parse_spec(dict(spec))
    path = Path(spec) if not (isinstance(spec, str) and "\n" in spec) else None
    if path is not None:
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise ConfigError(f"no sweep file {path}", "give the path of a TOML sweep file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the sweep file {path} ({exc})") from None
    else:
        text = str(spec)
    source = str(path) if path else "<spec>"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message names the line and column: "Expected '=' ... (at line 3, column 7)".
        raise ConfigError(f"{source} is not valid TOML: {exc}", "fix the line named") from None
    return parse_spec(data, source)


def parse_spec(data: dict[str, Any], source: str = "<spec>") -> Spec:
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r}",
                          "a sweep file has command, options, grid, zip and/or [[stage]] tables")
    if "stage" in data:
        if "command" in data:
            raise ConfigError(f"{source}: both a top-level command and [[stage]] tables",
                              "put the command into a [[stage]] table, or drop the stages")
        tables = data["stage"]
        if not isinstance(tables, list) or not tables:
            raise ConfigError(f"{source}: `stage` must be [[stage]] tables")
    elif "command" in data:
        tables = [{k: v for k, v in data.items() if k in STAGE_KEYS}]
    else:
        raise ConfigError(f"{source}: no command", 'name one, e.g. command = "train", or give [[stage]] tables')
    stages: list[Stage] = []
    for index, table in enumerate(tables):
        stages.append(_stage(table, index, [s.name for s in stages], source))
    return Spec(tuple(stages), source, str(data.get("description", "")))


def _stage(table: Any, index: int, earlier: list[str], source: str) -> Stage:
    where = f"{source}: stage {index + 1}"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} is not a table")
    unknown = sorted(set(table) - STAGE_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}", "a stage has name, command, options, grid and zip")
    command = table.get("command")
    if not isinstance(command, str) or not command:
        raise ConfigError(f"{where} has no command", 'name one, e.g. command = "imp"')
    name = str(table.get("name") or (command if index == 0 else f"stage{index + 1}"))
    if name in earlier:
        raise ConfigError(f"{where}: a stage named {name!r} already exists", "give each stage its own name")
    if "name" in table and not re.fullmatch(r"[A-Za-z_][\w-]*", name):
        raise ConfigError(f"{where}: stage name {name!r}", "use letters, digits, - and _")
    options = _table(table.get("options", {}), f"{where} [options]")
    grid = _table(table.get("grid", {}), f"{where} [grid]")
    for key, values in grid.items():
        if not isinstance(values, list):
            raise ConfigError(f"{where}: grid entry {key} = {values!r} is not a list",
                              f"write {key} = [{values!r}], or move it to [options]")
        if not values:
            raise ConfigError(f"{where}: grid entry {key} is empty, so the grid has no points",
                              "give it at least one value")
    zips_raw = table.get("zip", [])
    zips_raw = [zips_raw] if isinstance(zips_raw, dict) else zips_raw
    zips = []
    for group in zips_raw:
        group = _table(group, f"{where} [[zip]]")
        lengths = {k: len(v) if isinstance(v, list) else -1 for k, v in group.items()}
        if any(n < 0 for n in lengths.values()):
            bad = next(k for k, n in lengths.items() if n < 0)
            raise ConfigError(f"{where}: zipped entry {bad} is not a list", "zipped options are lists of equal length")
        if len(set(lengths.values())) > 1 or 0 in lengths.values():
            raise ConfigError(f"{where}: zipped lists differ in length or are empty ({lengths})",
                              "options that vary together need one value each per point")
        zips.append(group)
    keys = list(options) + list(grid) + [k for z in zips for k in z]
    twice = sorted({_norm(k) for k in keys if [_norm(x) for x in keys].count(_norm(k)) > 1})
    if twice:
        raise ConfigError(f"{where}: option {twice[0]!r} is given more than once (options, grid, zip)",
                          "give each option in one place")
    refs = []
    own = {_norm(k) for k in keys}
    for value in _strings(options, grid, zips):
        for match in TEMPLATE.finditer(value):
            head, attr = match.group(1), match.group(2)
            if attr is None and _norm(head) in own:
                continue
            if head not in earlier:
                what = "stage" if attr else "option or stage"
                raise ConfigError(f"{where}: {match.group(0)} refers to no earlier {what} named {head!r}",
                                  f"earlier stages: {', '.join(earlier) or 'none'}")
            if head not in refs:
                refs.append(head)
    return Stage(name, command, options, grid, tuple(zips), tuple(refs))


def _norm(key: str) -> str:
    return key.replace("-", "_")


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} is not a table")
    return dict(value)


def _strings(options: dict, grid: dict, zips: list[dict]):
    for value in [*options.values(), *(v for vs in grid.values() for v in vs),
                  *(v for z in zips for vs in z.values() for v in vs)]:
        if isinstance(value, str):
            yield value


def fill_own(point: dict[str, Any]) -> dict[str, Any]:
    """`{option}` templates filled with this point's own values (names, paths)."""
    own = {_norm(k): v for k, v in point.items()}

    def fill(value):
        if not isinstance(value, str):
            return value
        return TEMPLATE.sub(lambda m: str(own[_norm(m.group(1))]) if m.group(2) is None and _norm(m.group(1)) in own
                            else m.group(0), value)
    return {k: fill(v) for k, v in point.items()}


@dataclass(frozen=True)
class Produced:
    """What one task of an earlier stage offers to templates: its options and its runs."""

    point: dict[str, Any]
    runs: tuple[str, ...]


def fill_refs(point: dict[str, Any], refs: tuple[str, ...], produced: dict[str, list[Produced]],
              where: str) -> list[dict[str, Any]]:
    """The points a templated point expands to, given the tasks of the stages it refers to."""
    if not refs:
        return [point]
    choices = [list(enumerate(produced[name])) for name in refs]
    out = []
    for picked in itertools.product(*choices):
        tasks = dict(zip(refs, (t for _, t in picked)))
        # `{S.run}` expands over the runs of the picked task of S (all `.run` of S move together).
        run_counts = [len(tasks[s].runs) for s in refs if _uses_each_run(point, s)]
        for r in range(max(run_counts, default=1) if run_counts else 1):
            out.append({k: _fill_value(v, tasks, r, where) for k, v in point.items()})
    return out


def _uses_each_run(point: dict[str, Any], stage: str) -> bool:
    return any(isinstance(v, str) and f"{{{stage}.run}}" in v for v in point.values())


def _fill_value(value: Any, tasks: dict[str, Produced], r: int, where: str) -> Any:
    if not isinstance(value, str):
        return value

    def sub(m: re.Match) -> str:
        head, attr, index = m.group(1), m.group(2), m.group(3)
        if head not in tasks:
            return m.group(0)
        task = tasks[head]
        if attr == "run":
            return task.runs[r]
        if attr in ("runs", "id"):
            i = int(index or 0) if attr == "runs" else 0
            if i >= len(task.runs):
                raise ConfigError(f"{where}: {m.group(0)} asks for run {i} of a task of stage {head!r}, "
                                  f"which made {len(task.runs)} run(s)", "refer to a run that the stage makes")
            return task.runs[i]
        own = {_norm(k): v for k, v in task.point.items()}
        if attr is None or _norm(attr) not in own:
            raise ConfigError(f"{where}: {m.group(0)} names no option of stage {head!r}",
                              f"use {{{head}.run}}, {{{head}.runs[I]}}, {{{head}.id}} or one of its options")
        return str(own[_norm(attr)])

    whole = TEMPLATE.fullmatch(value)
    filled = TEMPLATE.sub(sub, value)
    if whole and whole.group(2) not in (None, "run", "runs", "id"):
        # `{S.seed}` alone keeps the type of the option it copies (an integer stays an integer).
        own = {_norm(k): v for k, v in tasks[whole.group(1)].point.items()} if whole.group(1) in tasks else {}
        return own.get(_norm(whole.group(2)), filled)
    return filled


def with_overrides(spec: Spec, overrides: dict[str, Any]) -> Spec:
    """Every stage's fixed options with `overrides` (e.g. shorter steps for a trial run) put in."""
    from dataclasses import replace

    stages = []
    for stage in spec.stages:
        varied = {_norm(k) for k in list(stage.grid) + [k for z in stage.zips for k in z]}
        clash = sorted(_norm(k) for k in overrides if _norm(k) in varied)
        if clash:
            raise ConfigError(f"--set {clash[0]} overrides an option that stage {stage.name} varies",
                              "edit the grid in the sweep file instead")
        options = {k: v for k, v in stage.options.items() if _norm(k) not in {_norm(o) for o in overrides}}
        stages.append(replace(stage, options={**options, **overrides}))
    return replace(spec, stages=tuple(stages))


def parse_override(text: str) -> tuple[str, Any]:
    """`KEY=VALUE`, the value read as TOML (`levels=2`, `lr=0.1`) or else as a string (`steps=300it`)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"cannot read --set {text!r}", "write KEY=VALUE, e.g. --set steps=300it")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    return key.strip(), parsed
