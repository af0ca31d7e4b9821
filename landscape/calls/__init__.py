"""Each command's flags as one call into the api: the one mapping `landscape CMD` and a sweep share.

The CLI (cli/) parses a command line into a flags dictionary and calls `run_call(command, flags)`;
a grid point of `landscape sweep` is parsed into the same dictionary by the same parser (see
sweep/flags.py) and makes the same call on a Dask worker. Every flag's translation (defaults left to
the api, refusals, config building) lives here once; the CLI only adds progress and printing, which
it passes in as hooks (`notify`, `on_level`, `on_point`, `on_measured`). `check_call` builds and
validates the request without computing anything; `predict_runs` names the runs a call will store,
when that is known beforehand (train, imp, scores), so a sweep can key its tasks by run ID and skip
what is stored.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..errors import ConfigError

Flags = dict[str, Any]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Command:
    """What a command does with its flags."""

    run: Callable[..., list]                    # (flags, progress, notify=..., **hooks) -> stored runs
    check: Callable[[Flags], None]              # raises a UserError if the call would be refused
    predict: Callable[[Flags], list[str] | None] | None = None  # the run IDs it stores, when knowable
    complete: Callable[[Any, list[str], Flags], bool] | None = None  # (store, ids, flags): nothing to do
    title: Callable[[Flags], str] = lambda flags: ""  # what the progress display calls the work
    shares: Callable[[Flags], list[str]] | None = None  # runs it needs that other requests may need too


def shared_runs(name: str, flags: Flags) -> list[str]:
    """Runs the call needs that other calls may share (an IMP run's dense level 0); [] if none known."""
    c = command(name)
    return list(c.shares(flags)) if c.shares else []


def commands() -> dict[str, Command]:
    from . import measure, training

    return {**training.COMMANDS, **measure.COMMANDS}


def command(name: str) -> Command:
    table = commands()
    if name not in table:
        raise ConfigError(f"unknown command {name!r}", f"choose one of {', '.join(sorted(table))}")
    return table[name]


def run_call(name: str, flags: Flags, progress: Progress | None = None, **hooks) -> list:
    """Make the api call that `landscape NAME` makes with these flags; return the runs it stored.

    `hooks` are the command's own callbacks (`notify` for every command: what to do with a note
    such as a name added to a run; imp, diet: `on_level`; instability: `on_point`, `on_measured`)."""
    return command(name).run(flags, progress, **hooks)


def title(name: str, flags: Flags) -> str:
    """What the call is, in a few words: `landscape NAME`'s progress line."""
    return command(name).title(flags)


def check_call(name: str, flags: Flags) -> None:
    command(name).check(flags)


def predict_runs(name: str, flags: Flags) -> list[str] | None:
    c = command(name)
    return c.predict(flags) if c.predict else None


def stored_complete(name: str, flags: Flags, store, run_ids: list[str] | None) -> bool:
    """Whether the store already holds everything the call would compute (False when unknown)."""
    if not run_ids:
        return False
    c = command(name)
    if c.complete is not None:
        return c.complete(store, run_ids, flags)
    return all(store.exists(i) and store.open(i).complete for i in run_ids)


def options(flags: Flags, progress: Progress | None = None, notify: Callable[[str], None] | None = None):
    """Where and how to compute (store, data, device, layout, name): the same for every command.

    Commands without a flag (lmc has no --population-path or --wait) get the api's default."""
    from ..api import TrainOptions

    return TrainOptions(store=flags.get("store"), data_dir=flags.get("data_dir"), device=flags.get("device", "auto"),
                        path=flags.get("population_path", "auto"), name=flags.get("name"), progress=progress,
                        wait_s=flags["wait"] if flags.get("wait") is not None else "default",
                        rename=flags.get("rename", False), notify=notify or note)


def note(text: str) -> None:
    """`note: ...` on stderr (a name added to a run...): a worker's log line; the CLI passes its own."""
    import sys

    print(f"note: {text}", file=sys.stderr, flush=True)


__all__ = ["Command", "commands", "command", "run_call", "title", "check_call", "predict_runs", "stored_complete",
           "options", "shared_runs"]
