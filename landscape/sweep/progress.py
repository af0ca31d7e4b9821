"""What a sweep shows while it runs: a live table on a terminal, one status line every N seconds
in a log, and the summary table at the end (done, reused, failed, with run IDs)."""
from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

STATES = ("pending", "running", "done", "reused", "failed")


class Board:
    """Each task's state and, while it runs, its step (from the events its task reports)."""

    def __init__(self, labels: dict[str, str], stream: TextIO | None = None, every_s: float = 30.0,
                 live: bool | None = None):
        self.labels = dict(labels)
        self.state = {k: "pending" for k in labels}
        self.step: dict[str, str] = {}
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self.live_enabled = self.stream.isatty() if live is None else live
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.last_line = self.started
        self._live = None

    # -- updates ---------------------------------------------------------------------------------
    def add(self, key: str, label: str, state: str = "pending") -> None:
        with self.lock:
            self.labels[key], self.state[key] = label, state

    def event(self, message: dict[str, Any]) -> None:
        key = message.get("key")
        with self.lock:
            if key not in self.state or self.state[key] in ("done", "reused", "failed"):
                return
            self.state[key] = "running"
            if "done" in message and "total" in message:
                self.step[key] = f"{message['done']}/{message['total']} it"

    def finish(self, key: str, state: str) -> None:
        with self.lock:
            self.state[key] = state
            self.step.pop(key, None)

    # -- display ---------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        with self.lock:
            return {s: sum(1 for v in self.state.values() if v == s) for s in STATES}

    def line(self) -> str:
        c = self.counts()
        running = [f"{self.labels[k]} {self.step[k]}" for k, s in self.state.items() if s == "running" and k in self.step]
        return (f"sweep {time.monotonic() - self.started:5.0f}s: " + ", ".join(f"{c[s]} {s}" for s in STATES)
                + (f"; {'; '.join(running[:4])}" if running else ""))

    def _table(self):
        from rich.table import Table

        c = self.counts()
        table = Table(title=" ".join(f"{s} {c[s]}" for s in STATES), title_justify="left", box=None)
        for col in ("task", "state", "progress"):
            table.add_column(col)
        with self.lock:
            rows = [(self.labels[k], s, self.step.get(k, "")) for k, s in self.state.items() if s == "running"]
        for row in rows[:20]:
            table.add_row(*row)
        return table

    def start(self) -> None:
        if self.live_enabled:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(self._table(), console=Console(file=self.stream), refresh_per_second=2, transient=True)
            self._live.start()

    def tick(self) -> None:
        if self._live is not None:
            self._live.update(self._table())
        elif self.every_s and time.monotonic() - self.last_line >= self.every_s:
            self.last_line = time.monotonic()
            print(self.line(), file=self.stream, flush=True)

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
