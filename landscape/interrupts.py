"""SIGTERM and SIGINT as an orderly stop: nothing half-written, one line, the conventional exit code.

SLURM, Dask and `kill` send SIGTERM before they kill; Ctrl-C sends SIGINT. Either raises
`Interrupted` in the main thread at the next Python instruction, unless a store commit is in
progress (`deferred()`): then the commit finishes first, so a run's files are never left between
two states and no temporary file is left behind. Every store write is atomic anyway; deferring
only spares the next writer its cleanup.

The step a computation had reached (`note_step`) goes into the message, so a user knows how far it
got; rerunning the command continues from the last saved state.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

EXIT_CODES = {signal.SIGTERM: 143, signal.SIGINT: 130}
_NAMES = {signal.SIGTERM: "terminated", signal.SIGINT: "interrupted"}


class Interrupted(BaseException):
    """A stop asked for by a signal (a BaseException, like KeyboardInterrupt: `except Exception`
    blocks must not swallow it)."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(_NAMES.get(signum, "stopped"))

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.signum, 128 + int(self.signum))

    def line(self) -> str:
        where = f" at step {_state.step}" if _state.step is not None else ""
        return f"{_NAMES.get(self.signum, 'stopped')}{where}; rerun the same command to continue"


class _State(threading.local):
    pass


_state = _State()
_state.step = None
_depth = 0
_pending: int | None = None


def note_step(step: int | None) -> None:
    """Record how far the current computation has got (for the message on a stop)."""
    _state.step = step


def _handler(signum, frame) -> None:
    global _pending
    if _depth > 0:
        if _pending is None:
            _pending = signum
        return
    raise Interrupted(signum)


def install() -> None:
    """Route SIGTERM and SIGINT to `Interrupted` (call once, from the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _handler)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold back a stop until the block ends (store commits: part file, index, cleanup)."""
    global _depth, _pending
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _pending is not None:
            signum, _pending = _pending, None
            raise Interrupted(signum)
