"""`siblings`, `lmc` and `instability`: their flags as one call into the measurement api each."""
from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from . import Command, Flags, options

_SETTINGS = ("points", "train_subset", "seed", "bn_recompute", "bn_batches", "batch_size", "per_example",
             "example_threshold", "alpha_chunk", "method")


def lmc_settings(args: Flags):
    from ..api.lmc import LmcSettings

    return LmcSettings(**{k: args[k] for k in _SETTINGS})


def at_steps(text: str | None) -> list[str]:
    return [s.strip() for s in (text or "").split(",") if s.strip()]


def _siblings(args: Flags, progress=None) -> list:
    from ..api.siblings import siblings

    return siblings(args["source"], args["count"], options(args, progress))


def _check_siblings(args: Flags) -> None:
    if args["count"] < 1:
        raise ConfigError(f"-k {args['count']} must be at least 1")


def _lmc(args: Flags, progress=None) -> list:
    from ..api.lmc import lmc

    return [lmc(args["run_a"], args["run_b"], lmc_settings(args), options(args))]


def _instability(args: Flags, progress=None, on_point=None) -> list:
    from ..api.instability import instability

    return [instability(args["run"], at_steps(args["at"]), siblings=args["siblings"], find_onset=args["find_onset"],
                        threshold=args["threshold"], settings=lmc_settings(args), options=options(args, progress),
                        on_point=on_point)]


def _check_instability(args: Flags) -> None:
    lmc_settings(args).validate()
    if args["siblings"] < 2:
        raise ConfigError(f"--siblings {args['siblings']}: at least 2 siblings are needed for a pair")
    if not 0 < args["threshold"] < 1:
        raise ConfigError(f"--threshold {args['threshold']!r} must be between 0 and 1", "Frankle et al. use 0.02 (2%)")


COMMANDS: dict[str, Any] = {
    "siblings": Command(run=_siblings, check=_check_siblings,
                        title=lambda a: f"{a['count']} siblings from {a['source']}"),
    "lmc": Command(run=_lmc, check=lambda a: lmc_settings(a).validate() and None,
                   title=lambda a: f"lmc {a['run_a']} - {a['run_b']}"),
    "instability": Command(run=_instability, check=_check_instability, title=lambda a: f"instability of {a['run']}"),
}
