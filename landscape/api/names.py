"""Run names: readable handles for runs, which a user can trust.

- A name is at most 100 characters of letters, digits and `-_.@`.
- A name given with `--name` is an alias: asking for a configuration that already exists under
  another name adds the name to that run (and says so). A name that already belongs to another run
  is refused unless `rename` moves it (the other run keeps its other names, or its ID).
- A generated name (from the configuration or the request) never lands on a second run: if another
  run holds it, the new run's ID prefix is appended.

Aliases live in each run's `names` section; `open_run` resolves them where the store's own
resolution (IDs, prefixes, primary names) finds nothing.
"""
from __future__ import annotations

import re

from ..errors import ConfigError, StoreError
from ..store import Run, Store

MAX_LENGTH = 100
_VALID = re.compile(r"[A-Za-z0-9_.@-]+")
SECTION = "names"


def check_name(name: str | None) -> str | None:
    """`name` if it is a valid run name (None passes); a one-line error otherwise."""
    if name is None:
        return None
    if not isinstance(name, str) or not name:
        raise ConfigError("--name is empty", "give the run a name of letters, digits and -_.@")
    if len(name) > MAX_LENGTH:
        raise ConfigError(f"--name is {len(name)} characters long; names are at most {MAX_LENGTH}",
                          "choose a shorter name")
    if not _VALID.fullmatch(name):
        bad = next(c for c in name if not _VALID.fullmatch(c))
        raise ConfigError(f"--name {name!r} contains {bad!r}; names are letters, digits and -_.@ only",
                          "choose a name without it")
    return name


def aliases(run: Run) -> list[str]:
    return list(run.section(SECTION).get("aliases") or [])


def _alias_owners(store: Store, name: str) -> list[str]:
    out = []
    for summary in store.list():
        if summary.status != "damaged" and name in aliases(Run(summary.path)):
            out.append(summary.id)
    return out


def owners(store: Store, name: str) -> list[str]:
    """The IDs of the runs that hold `name`, as their name or an alias."""
    primary = [s.id for s in store.list() if s.name == name]
    return sorted(set(primary + _alias_owners(store, name)))


def claim(store: Store, run_id: str, name: str | None, rename: bool = False) -> None:
    """Before computing `run_id` under the user's `name`: refuse (one line, nothing written) if the
    name belongs to another run, unless `rename` (then the name moves once the run exists)."""
    if check_name(name) is None or rename:
        return
    others = [o for o in owners(store, name) if o != run_id]
    if others:
        raise ConfigError(f"the name {name!r} already belongs to run {others[0]}",
                          "choose another name, or pass --rename to move it to this run")


def adopt(store: Store, run: Run, name: str | None, rename: bool = False) -> str | None:
    """After `run` exists: make `name` one of its names (moving it from other runs with `rename`).
    Returns what was done, in words, or None if the run already had the name."""
    if name is None:
        return None
    moved = []
    if rename:
        for other in owners(store, name):
            if other != run.id:
                _drop_name(store, store.open(other), name)
                moved.append(other)
    run = store.open(run.id)
    if name == run.name or name in aliases(run):
        return f"moved the name {name!r} from run {', '.join(moved)}" if moved else None
    with store.writer(run.id) as writer:
        writer.write_section(SECTION, attrs={"aliases": aliases(run) + [name]})
    note = f"run {run.id} already exists as {run.name!r}: added the name {name!r}"
    return note + (f" (moved from run {', '.join(moved)})" if moved else "")


def _drop_name(store: Store, run: Run, name: str) -> None:
    keep = [a for a in aliases(run) if a != name]
    with store.writer(run.id) as writer:
        # The run keeps a name: its first remaining alias, else its ID.
        primary = run.name if run.name != name else (keep.pop(0) if keep else run.id)
        writer.write_section(SECTION, attrs={"aliases": keep}, run_attrs={"name": primary})


def generated(store: Store, run_id: str, base: str) -> str:
    """`base`, or `base-<ID prefix>` when another run already holds `base`."""
    taken = [s.id for s in store.list() if s.name == base and s.id != run_id]
    return f"{base}-{run_id[:6]}" if taken else base


def open_run(store: Store, ref: str) -> Run:
    """The run `ref` names: an ID, a unique ID prefix, a name or an alias."""
    try:
        return store.open(ref)
    except StoreError as exc:
        if not isinstance(ref, str) or not ref.strip():
            raise
        found = _alias_owners(store, ref.strip())
        if len(found) == 1:
            return store.open(found[0])
        if len(found) > 1:
            raise StoreError(f"run reference {ref!r} is ambiguous: it names {', '.join(found)}",
                             "use a run ID") from None
        raise exc from None


__all__ = ["MAX_LENGTH", "check_name", "aliases", "owners", "claim", "adopt", "generated", "open_run"]
