"""Keeping a store sound: verify every checksum, remove runs (minding what depends on them), and
collect what killed writers left behind. None of this imports torch.

Dependencies are found, not declared: a run depends on every other run of the store whose ID it
mentions — its parent, run IDs in its configuration (a start point, pre-trainings, a scores run),
and run IDs in its sections (an IMP run's members, an LMC run's endpoints). So a new kind of run
that records the runs it used is covered without a change here.
"""
from __future__ import annotations

import contextlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from ..errors import StoreError
from .files import Damaged, holder_of, is_temp, try_lock, verify_file
from .run import RESERVED, States, _run_attrs, _short, lock_path, open_index, parts_dir
from .store import Store, summarize

_ID = re.compile(r"\b[0-9a-f]{12}\b")


# ------------------------------------------------------------------------------------------------
# verify
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    id: str
    name: str
    state: str  # "ok", "damaged", "unverified" (format 1: no checksums to check)
    problem: str = ""
    bytes: int = 0


def verify_run(path: Path) -> Verdict:
    """Check every byte of one run: its index and each part it lists."""
    name, size = "?", 0
    try:
        size = path.stat().st_size
        with open_index(path) as f:
            attrs = _run_attrs(f)
            name = attrs["name"]
            states = States.read(f)
            sealed = int(attrs.get("format", 1)) >= 2
        for step, part in sorted(states.parts.items()):
            if part["file"] not in states.referenced():
                continue
            file = parts_dir(path) / part["file"]
            try:
                size += file.stat().st_size
                verify_file(file, part["sha256"])
            except FileNotFoundError:
                return Verdict(path.stem, name, "damaged", f"its weights at {step}it ({part['file']}) are missing", size)
            except Damaged as exc:
                return Verdict(path.stem, name, "damaged", f"its weights at {step}it ({part['file']}): {exc}", size)
    except Damaged as exc:
        return Verdict(path.stem, name, "damaged", f"{path.name}: {exc}", size)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is damage to report, not a crash
        return Verdict(path.stem, name, "damaged", f"{path.name} cannot be read ({_short(exc)})", size)
    if not sealed and (states.inline_checkpoints or states.inline_resume is not None or not states.parts):
        return Verdict(path.stem, name, "unverified", "written before checksums (format 1); readable", size)
    return Verdict(path.stem, name, "ok", "", size)


def verify(store: Store, refs: Iterable[str] = (), progress: Callable[[int, int], None] | None = None) -> list[Verdict]:
    """Verdicts for the named runs (default: every run in the store)."""
    paths = [store.path_for(_resolve_any(store, r)) for r in refs] or list(store._files())
    out = []
    for i, path in enumerate(paths):
        out.append(verify_run(path))
        if progress:
            progress(i + 1, len(paths))
    return out


def _resolve_any(store: Store, ref: str) -> str:
    """A reference to a run, damaged ones included (those resolve by exact ID)."""
    if _ID.fullmatch(ref.strip()) and store.exists(ref.strip()):
        return ref.strip()
    return store.resolve(ref)


# ------------------------------------------------------------------------------------------------
# dependencies and rm
# ------------------------------------------------------------------------------------------------

def _mentions(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(_ID.findall(value))
    if isinstance(value, (list, tuple)):
        return set().union(*(_mentions(v) for v in value)) if value else set()
    if isinstance(value, dict):
        return _mentions(list(value.values()))
    return set()


def references(path: Path) -> set[str]:
    """The run IDs a run mentions: parent, configuration, section attributes."""
    from . import layout

    found: set[str] = set()
    with open_index(path) as f:
        attrs = layout.read_attrs(f)
        found |= _mentions(attrs.get("parent") or "") | _mentions(json.loads(attrs.get("config_json", "{}")))

        def visit(name: str, obj) -> None:
            if hasattr(obj, "keys"):  # a group: its attributes
                found.update(_mentions(list(layout.read_attrs(obj).values())))

        for key in f:
            if key not in RESERVED and hasattr(f[key], "visititems"):
                visit(key, f[key])
                f[key].visititems(visit)
    found.discard(path.stem)
    return found


def dependents_map(store: Store) -> dict[str, set[str]]:
    """For each run ID, the runs of the store that mention it."""
    ids = {p.stem for p in store._files()}
    users: dict[str, set[str]] = {i: set() for i in ids}
    for path in store._files():
        try:
            mentioned = references(path)
        except Exception:  # noqa: BLE001 - a damaged run depends on nothing we can read
            continue
        for other in mentioned & ids:
            users[other].add(path.stem)
    return users


def closure(start: set[str], users: dict[str, set[str]]) -> set[str]:
    out, todo = set(start), list(start)
    while todo:
        for user in users.get(todo.pop(), ()):
            if user not in out:
                out.add(user)
                todo.append(user)
    return out


def _run_bytes(store: Store, run_id: str) -> int:
    total = 0
    for path in [store.path_for(run_id), *(parts_dir(store.path_for(run_id)).glob("*"))]:
        with contextlib.suppress(OSError):
            total += path.stat().st_size
    return total


@dataclass(frozen=True)
class Removal:
    ids: list[str]  # in removal order: dependents first
    bytes: int
    kept_dependents: dict[str, list[str]]  # damaged runs removed alone: who still mentions them


def plan_removal(store: Store, refs: Iterable[str], with_dependents: bool) -> Removal:
    """What `landscape rm` would remove, or a StoreError saying what depends on the runs named.

    A damaged run may always be removed on its own: the runs that used it were computed from it
    while it was sound, and rerunning the command that made it recomputes it bit for bit."""
    targets = {_resolve_any(store, r) for r in refs}
    users = dependents_map(store)
    damaged = {t for t in targets if summarize(store.path_for(t)).damaged}
    if with_dependents:
        chosen = closure(targets, users)
    else:
        chosen = set(targets)
        blocked = {t: sorted(users.get(t, set()) - targets) for t in targets - damaged}
        blocked = {t: u for t, u in blocked.items() if u}
        if blocked:
            t, u = next(iter(sorted(blocked.items())))
            more = f" and {len(u) - 3} more" if len(u) > 3 else ""
            raise StoreError(f"run {t} is used by {', '.join(u[:3])}{more}",
                             "remove those too with --with-dependents (see what with --dry-run), or keep it")
    kept = {t: sorted(users.get(t, set()) - chosen) for t in damaged if users.get(t, set()) - chosen}
    # Dependents before what they depend on, so an interrupted rm never leaves a dangling user.
    return Removal(_users_first(chosen, users), sum(_run_bytes(store, i) for i in chosen), kept)


def _users_first(ids: set[str], users: dict[str, set[str]]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()

    def visit(i: str) -> None:
        if i in seen:
            return
        seen.add(i)
        for u in sorted(users.get(i, ())):
            if u in ids:
                visit(u)
        out.append(i)

    for i in sorted(ids):
        visit(i)
    return out


def remove_run(store: Store, run_id: str) -> int:
    """Delete one run (index first, so it vanishes at once; then its parts); the bytes freed."""
    path = store.path_for(run_id)
    lock = try_lock(lock_path(path), run_id)
    if lock is None:
        raise StoreError(f"run {run_id} is being written by {holder_of(lock_path(path)) or 'another process'}",
                         "stop that process first, or wait for it to finish")
    try:
        freed = _run_bytes(store, run_id)
        path.unlink(missing_ok=True)
        shutil.rmtree(parts_dir(path), ignore_errors=True)
        return freed
    finally:
        lock.release()


# ------------------------------------------------------------------------------------------------
# gc
# ------------------------------------------------------------------------------------------------

@dataclass
class Collected:
    temps: int = 0
    parts: int = 0
    locks: int = 0
    bytes: int = 0


def _run_of(name: str) -> str | None:
    m = re.match(r"\.?([0-9a-f]{12})\.", name)
    return m.group(1) if m else None


def collect(store: Store, dry_run: bool = False) -> Collected:
    """Remove what killed writers left: temporary files, part files no index lists, and lock files
    nobody holds. Runs a live process is writing are left alone."""
    out = Collected()
    root = store.root
    if not root.is_dir():
        return out

    def drop(path: Path, counter: str) -> None:
        with contextlib.suppress(OSError):
            size = path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.glob("*"))
            if not dry_run:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
            out.bytes += size
            setattr(out, counter, getattr(out, counter) + 1)

    candidates: dict[str, list[tuple[Path, str]]] = {}
    for path in root.iterdir():
        run_id = _run_of(path.name)
        if is_temp(path) and run_id:
            candidates.setdefault(run_id, []).append((path, "temps"))
        elif is_temp(path) or path.name.startswith(".write-test."):
            drop(path, "temps")
        elif path.is_dir() and path.name.endswith(".parts") and run_id:
            candidates.setdefault(run_id, []).append((path, "parts"))
    for run_id, items in sorted(candidates.items()):
        lock = try_lock(lock_path(store.path_for(run_id)), run_id)
        if lock is None:
            continue  # being written: its files are in use
        try:
            keep = _listed_parts(store.path_for(run_id))
            for path, kind in items:
                if kind == "temps":
                    drop(path, "temps")
                elif keep is None:
                    drop(path, "parts")  # no index: the whole folder is an orphan
                else:
                    for part in path.iterdir():
                        if part.name not in keep:
                            drop(part, "temps" if is_temp(part) else "parts")
        finally:
            lock.release()
    locks = root / ".locks"
    if locks.is_dir():
        for path in sorted(locks.glob("*.lock")):
            lock = try_lock(path, path.stem)
            if lock is not None:
                out.locks += 1
                lock.release(remove=not dry_run)
    return out


def _listed_parts(index: Path) -> set[str] | None:
    """The part files a run's index lists (None without an index; everything when unreadable)."""
    if not index.exists():
        return None
    try:
        with open_index(index) as f:
            states = States.read(f)
        return states.referenced()
    except Exception:  # noqa: BLE001 - never delete the weights of a run we cannot read
        return {p.name for p in parts_dir(index).glob("*")}
