"""Where decoded datasets are cached, and which cache entries no dataset can use any more.

Kept free of torch (like fileio.py) so that `landscape gc` starts in a blink. Each entry of the
decode cache (data/cache.py) has a sidecar `<entry>.sources` listing the files it was decoded
from; an entry whose source files are gone (a dataset deleted or moved) serves nothing and is
what `gc` removes. Entries without a sidecar (written before sidecars existed) are left alone:
nothing says what they came from.
"""
from __future__ import annotations

import json
import os
from pathlib import Path


def cache_dir() -> Path:
    """$LANDSCAPE_CACHE, else the platform's user cache folder (platformdirs; ~/.cache/landscape on
    Linux). Never the data folder: that is the user's, often shared or read-only."""
    override = os.environ.get("LANDSCAPE_CACHE")
    if override:
        return Path(override).expanduser()
    try:
        from platformdirs import user_cache_path
    except ImportError:   # platformdirs is a dependency; this keeps an odd install working
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "landscape"
    return Path(user_cache_path("landscape"))


def sources_file(entry: Path) -> Path:
    return entry.with_name(entry.name + ".sources")


def write_sources(entry: Path, sources: list[str]) -> None:
    """Record what `entry` was decoded from (after the entry itself is in place)."""
    temp = sources_file(entry).with_name(f".{entry.name}.sources.{os.getpid()}.tmp")
    temp.write_text(json.dumps([os.fspath(s) for s in sources]))
    os.replace(temp, sources_file(entry))


def orphaned_entries(directory: Path) -> list[Path]:
    """Cache entries (with their sidecars) whose recorded source files no longer all exist."""
    out: list[Path] = []
    if not directory.is_dir():
        return out
    for sidecar in sorted(directory.glob("*.pt.sources")):
        entry = sidecar.with_name(sidecar.name[:-len(".sources")])
        try:
            sources = json.loads(sidecar.read_text())
        except (OSError, ValueError):
            continue   # unreadable: say nothing rather than guess
        if not all(Path(s).exists() for s in sources):
            out += [p for p in (entry, sidecar) if p.exists()]
    return out
