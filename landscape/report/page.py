"""The page of a report: its HTML template and style, and writing it to a file atomically.

`framework.Report.to_html()` fills the template; `write_report` (re-exported by `framework`) puts
the result on disk so that a reader never sees half a report.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol

from ..errors import UserError


class _Renders(Protocol):
    def to_html(self) -> str: ...


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

def write_report(report: _Renders, path: str | os.PathLike) -> Path:
    """Write `report` as one HTML file at `path`, atomically; returns the path.

    The page is rendered first, written to a temporary file beside `path` and moved into place
    with `os.replace`, so `path` never holds a half-written report (a reader sees the old file or
    the new one). Missing parent directories are created.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a directory", "give a file name ending in .html")
    page = report.to_html()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the directory {path.parent}: {exc.strerror}") from exc
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise UserError(f"cannot write in {path.parent}: {exc.strerror}",
                        "choose a writable location for the report") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(page)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a report is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


# --------------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------------

_CSS = """
:root {
  --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa; --accent: #0969da;
  --ok: #1a7f37; --warn: #9a6700;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
    "Noto Sans", "Liberation Sans", sans-serif;
  color: var(--fg); background: #fff; line-height: 1.5; font-size: 15px;
}
* { box-sizing: border-box; }
body { margin: 0; }
header.top { background: var(--soft); border-bottom: 1px solid var(--line); }
header.top .inner, main { max-width: 1200px; margin: 0 auto; padding: 0 24px; }
header.top .inner { padding-top: 20px; padding-bottom: 16px; }
h1 { font-size: 1.7rem; margin: 0 0 4px; overflow-wrap: anywhere; }
.subtitle { margin: 0; font-size: 1rem; }
.meta { margin: 2px 0 0; color: var(--muted); font-size: 0.85rem; }
nav.toc { margin: 20px 0 8px; padding: 10px 16px; border: 1px solid var(--line);
  border-radius: 6px; background: #fff; }
nav.toc h2 { font-size: 0.8rem; text-transform: uppercase; letter-spacing: 0.05em;
  color: var(--muted); margin: 0 0 4px; border: 0; padding: 0; }
nav.toc ol { margin: 0; padding: 0; list-style-position: inside; display: flex;
  flex-wrap: wrap; gap: 2px 28px; }
nav.toc a { color: var(--accent); text-decoration: none; }
nav.toc a:hover { text-decoration: underline; }
section { margin: 28px 0 36px; }
h2 { font-size: 1.3rem; margin: 0 0 10px; padding-bottom: 6px; border-bottom: 1px solid var(--line);
  overflow-wrap: anywhere; }
p.intro { margin: 0 0 12px; max-width: 80ch; color: var(--fg); }
div.intro { margin: 0 0 12px; }
.figure { margin: 12px 0 20px; border: 1px solid var(--line); border-radius: 6px; padding: 6px;
  min-width: 0; }
.table-wrap { overflow-x: auto; margin: 12px 0 20px; }
table { border-collapse: collapse; font-size: 0.9rem; min-width: 50%; }
caption { text-align: left; font-weight: 600; padding: 4px 0 6px; overflow-wrap: anywhere; }
th, td { padding: 5px 12px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
thead th { background: var(--soft); border-bottom: 2px solid var(--line); white-space: nowrap; }
tbody th { font-weight: 600; color: var(--muted); white-space: nowrap; width: 1%; }
tbody tr:nth-child(even) td, tbody tr:nth-child(even) th { background: #fbfcfd; }
td { overflow-wrap: break-word; }
td code { white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.na { color: var(--muted); }
code, pre { font-family: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas,
  "Liberation Mono", monospace; font-size: 0.85rem; }
pre { background: var(--soft); padding: 10px 12px; border-radius: 6px; overflow-x: auto; margin: 6px 0; }
details.raw { margin: -12px 0 20px; }
details.raw summary { cursor: pointer; color: var(--accent); font-size: 0.85rem; }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 0.8rem;
  font-weight: 600; border: 1px solid currentColor; white-space: nowrap; }
.badge.ok { color: var(--ok); }
.badge.warn { color: var(--warn); }
.empty { color: var(--muted); }
footer { max-width: 1200px; margin: 0 auto; padding: 16px 24px 32px; color: var(--muted);
  font-size: 0.8rem; border-top: 1px solid var(--line); }
@media print { .figure { break-inside: avoid; } nav.toc { display: none; } }
"""

# The favicon is an empty data URL so that the browser does not ask for /favicon.ico; the
# Content-Security-Policy forbids fetching anything from the network (scripts and styles are
# inline, images are data:/blob: URLs that plotly makes for its PNG export).
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data: blob:; font-src data:">
<meta name="generator" content="landscape">
<title>{title}</title>
<link rel="icon" href="data:,">
<style>{css}</style>
<script>{plotly_config}</script>
<script>{plotlyjs}</script>
</head>
<body>
<header class="top"><div class="inner">
<h1>{title}</h1>
{subtitle}
<p class="meta">{meta}</p>
</div></header>
<main>
{nav}
{body}
</main>
<footer>Self-contained report: everything it needs is in this file; it opens offline.</footer>
</body>
</html>
"""
