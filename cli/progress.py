"""Progress bars for long work, on stderr so that stdout stays parseable."""
from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

stderr = Console(stderr=True)


@contextlib.contextmanager
def step_progress(description: str) -> Iterator[Callable[[int, int], None]]:
    """A callback `(done, total)` that drives one progress bar; quiet when stderr is not a terminal
    unless LANDSCAPE_PROGRESS=1, so logs of batch jobs are not flooded."""
    import os

    enabled = sys.stderr.isatty() or os.environ.get("LANDSCAPE_PROGRESS") == "1"
    if not enabled:
        yield lambda done, total: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("it"),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    # The bar starts at the first update, so that a request refused before any work prints its
    # one-line error alone, with no empty bar or blank line above it.
    bar = Progress(*columns, console=stderr, transient=False, refresh_per_second=4)
    task = None

    def update(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task(description, total=total)
        # rich takes a lock per update; every 20 steps is smooth enough and costs nothing.
        if done % 20 == 0 or done == total:
            bar.update(task, completed=done, total=total)

    try:
        yield update
    finally:
        if task is not None:
            bar.stop()
