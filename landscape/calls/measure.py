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


def _siblings(args: Flags, progress=None, notify=None) -> list:
    from ..api.siblings import siblings

    return siblings(args["source"], args["count"], options(args, progress, notify))


def _check_siblings(args: Flags) -> None:
    if args["count"] < 1:
        raise ConfigError(f"-k {args['count']} must be at least 1")


def align_settings(args: Flags, method: str):
    """`--align`'s settings (lmc, instability; `landscape align` reads its flags here too)."""
    from ..api.align import AlignSettings

    return AlignSettings(method=method, seed=args["seed"], examples=args["examples"],
                         max_passes=args["max_passes"], batch_size=args["batch_size"])


def _lmc(args: Flags, progress=None, notify=None) -> list:
    # No steps to report: `progress` is not passed on (the CLI shows a busy bar instead).
    if args.get("align") is not None or args.get("repair"):
        from ..api.align import lmc_aligned

        _check_repair(args)  # the api validates the settings
        return [lmc_aligned(args["run_a"], args["run_b"], args["align"], bool(args.get("repair")), lmc_settings(args),
                            align_settings(args, args["align"]), options(args, notify=notify))]
    from ..api.lmc import lmc

    return [lmc(args["run_a"], args["run_b"], lmc_settings(args), options(args, notify=notify))]


def _check_repair(args: Flags) -> None:
    if args.get("repair") and args.get("align") is None:
        raise ConfigError("--repair corrects the aligned path: it needs --align", "add --align weights (or activations)")


def _check_lmc(args: Flags) -> None:
    _check_repair(args)
    lmc_settings(args).validate()


def _instability(args: Flags, progress=None, notify=None, on_point=None, on_measured=None) -> list:
    """The analysis, and with --align the aligned one built on it; `on_measured(analysis)` comes between."""
    from ..api.instability import instability

    result = instability(args["run"], at_steps(args["at"]), siblings=args["siblings"], find_onset=args["find_onset"],
                         threshold=args["threshold"], settings=lmc_settings(args),
                         options=options(args, progress, notify), on_point=on_point)
    if on_measured is not None:
        on_measured(result)
    if args.get("align") is not None:
        from ..api.instability_align import align_instability

        result = align_instability(result, args["align"], align_settings(args, args["align"]), options(args, notify=notify))
    return [result]


def _check_instability(args: Flags) -> None:
    lmc_settings(args).validate()
    if args["siblings"] < 2:
        raise ConfigError(f"--siblings {args['siblings']}: at least 2 siblings are needed for a pair")
    if not 0 < args["threshold"] < 1:
        raise ConfigError(f"--threshold {args['threshold']!r} must be between 0 and 1", "Frankle et al. use 0.02 (2%)")


COMMANDS: dict[str, Any] = {
    "siblings": Command(run=_siblings, check=_check_siblings,
                        title=lambda a: f"{a['count']} siblings from {a['source']}"),
    "lmc": Command(run=_lmc, check=_check_lmc,
                   title=lambda a: f"LMC {a['run_a']} – {a['run_b']}"),
    "instability": Command(run=_instability, check=_check_instability, title=lambda a: f"instability of {a['run']}"),
}
