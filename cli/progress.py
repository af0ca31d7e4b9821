"""Progress on stderr (stdout stays parseable): a live bar on a terminal, a status line every N
seconds in logs, nothing when asked.

LANDSCAPE_PROGRESS chooses: `bar` (default on a terminal; `1` too), `lines` (default when stderr is
not a terminal: batch jobs, nohup, SLURM logs; one line every LANDSCAPE_PROGRESS_EVERY seconds,
30 by default), `off` (`0` too).

A command's progress is one `Tracker`: the library reports steps `(done, total)` of each training
segment and, through `phase(text)`, where it is ("level 3/10 · ticket + 2 controls"); the elapsed
time counts from the start of the command, across every segment.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn
from rich.text import Text

stderr = Console(stderr=True, highlight=False)

MODES = ("bar", "lines", "off")
DEFAULT_EVERY_S = 30.0


def mode() -> str:
    value = os.environ.get("LANDSCAPE_PROGRESS", "").strip().lower()
    value = {"1": "bar", "0": "off", "": ""}.get(value, value)
    if value in MODES:
        return value
    return "bar" if sys.stderr.isatty() else "lines"


def every_s() -> float:
    try:
        return max(0.0, float(os.environ.get("LANDSCAPE_PROGRESS_EVERY", DEFAULT_EVERY_S)))
    except ValueError:
        return DEFAULT_EVERY_S


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class _Elapsed(ProgressColumn):
    """Time since the command started (rich's own column stops when a segment completes)."""

    def __init__(self, tracker: "Tracker"):
        super().__init__()
        self.tracker = tracker

    def render(self, task) -> Text:
        return Text(_clock(self.tracker.elapsed), style="progress.elapsed")


class Tracker:
    """The progress of one command. Call it with `(done, total)`; `phase(text)` says where it is."""

    def __init__(self, description: str, how: str | None = None, every: float | None = None):
        self.description = description
        self.how = how or mode()
        self.every = every_s() if every is None else every
        self.started = time.monotonic()
        self.where = ""
        self.done = self.total = 0
        self._last_line = self.started
        self._bar: Progress | None = None
        self._task = None
        self._lock = threading.Lock()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def status(self) -> str:
        parts = [self.description] + ([self.where] if self.where else [])
        if self.total:
            parts.append(f"step {self.done:,}/{self.total:,}")
        return " · ".join(parts)

    # -- what the library calls ----------------------------------------------------------------
    def __call__(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        if self.how == "bar":
            # rich takes a lock per update; every 20 steps is smooth enough and costs nothing.
            if done % 20 == 0 or done == total:
                self._draw()
        elif self.how == "lines":
            self._maybe_line()

    def phase(self, text: str) -> None:
        self.where, self.done, self.total = text, 0, 0
        if self.how == "bar":
            self._draw()
        elif self.how == "lines":
            self._maybe_line(force=True)

    def line(self, text: str) -> None:
        """A result line (an IMP level's figures) on stdout, above the bar."""
        from .commands import out

        out.print(text, highlight=False, soft_wrap=True)   # a live bar redirects stdout above itself

    # -- drawing ---------------------------------------------------------------------------
    def _draw(self) -> None:
        with self._lock:
            if self._bar is None:
                # The bar starts at the first update, so that a request refused before any work
                # prints its one-line error alone, with no empty bar or blank line above it.
                self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                     TextColumn("{task.fields[steps]}"), _Elapsed(self),
                                     console=stderr, transient=False, refresh_per_second=4)
                self._bar.start()
                self._task = self._bar.add_task(self._label(), total=self.total or None, steps="")
            steps = f"{self.done:,}/{self.total:,} it" if self.total else ""
            self._bar.update(self._task, description=self._label(), completed=self.done,
                             total=self.total or None, steps=steps)

    def _label(self) -> str:
        return " · ".join([self.description] + ([self.where] if self.where else []))

    def _maybe_line(self, force: bool = False) -> None:
        now = time.monotonic()
        if now - self._last_line >= self.every or (force and self.every == 0):
            self._last_line = now
            print(f"[{_clock(now - self.started)}] {self.status()}", file=sys.stderr, flush=True)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


@contextlib.contextmanager
def step_progress(description: str) -> Iterator[Tracker]:
    """The progress of a command (a callable `(done, total)` with `phase`)."""
    tracker = Tracker(description)
    try:
        yield tracker
    finally:
        tracker.stop()


@contextlib.contextmanager
def busy(description: str, after_s: float = 1.5) -> Iterator[Tracker]:
    """Progress for work that reports no steps (an LMC path, a report): nothing if it ends within
    `after_s`, else a bar with the elapsed time (or, in logs, a status line every N seconds)."""
    tracker = Tracker(description)
    stop = threading.Event()

    def tick() -> None:
        if stop.wait(after_s):
            return
        while not stop.is_set():
            if tracker.how == "bar":
                tracker._draw()
            elif tracker.how == "lines":
                tracker._maybe_line()
            stop.wait(0.25)

    thread = threading.Thread(target=tick, daemon=True) if tracker.how != "off" else None
    if thread:
        thread.start()
    try:
        yield tracker
    finally:
        stop.set()
        if thread:
            thread.join()
        tracker.stop()
