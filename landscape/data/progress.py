"""A progress bar for slow data work, shown on stderr only where someone is watching."""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def progress_bar(description: str, total: int, *, min_total: int = 0) -> Iterator[Callable[[int], None]]:
    """Yield `advance(n)`. Draws a rich bar on stderr when it is a terminal and `total >= min_total`.

    Logs, CI output and test captures get nothing: a bar redrawn into a file is just noise.
    """
    if total < min_total or not sys.stderr.isatty():
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)
