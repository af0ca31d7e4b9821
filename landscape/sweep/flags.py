"""A grid point as the flags of its command, read by the command's own CLI parser.

The options of a sweep file are the command's flags by name (`batch_size` or `batch-size`, `from`
for `--from`), so a grid point means exactly what the same command line means: the same defaults,
types and refusals, and a command added to the CLI later is sweepable with no change here.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from ..errors import ConfigError

NOT_SWEPT = {"ls", "show", "report", "models", "data", "sweep"}


@lru_cache(maxsize=1)
def _commands() -> dict[str, Any]:
    import typer

    from landscape.cli.main import app

    group = typer.main.get_command(app)
    return {name: cmd for name, cmd in group.commands.items() if name not in NOT_SWEPT}


def sweepable() -> list[str]:
    from ..calls import commands

    return sorted(set(_commands()) & set(commands()))


def _cli_command(name: str):
    if name not in sweepable():
        raise ConfigError(f"unknown command {name!r}", f"a sweep runs one of {', '.join(sweepable())}")
    return _commands()[name]


def _options_by_key(cmd) -> dict[str, Any]:
    keys = {}
    for param in cmd.params:
        if getattr(param, "param_type_name", "") != "option":
            continue
        keys[param.name] = param
        for opt in list(param.opts) + list(param.secondary_opts):
            if opt.startswith("--"):
                keys[opt[2:].replace("-", "_")] = param
    return keys


def _text(value: Any, key: str, command: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise ConfigError(f"{command}: option {key} = {value!r} is not a single value",
                      "a list belongs in [grid] (crossed) or a [[zip]] group")


def to_argv(command: str, point: dict[str, Any]) -> list[str]:
    cmd = _cli_command(command)
    by_key = _options_by_key(cmd)
    argv: list[str] = []
    for key, value in point.items():
        param = by_key.get(key.replace("-", "_"))
        if param is None:
            raise ConfigError(f"{command} has no option {key!r}",
                              f"options are the flags of `landscape {command} --help`, by name")
        long = next((o for o in param.opts if o.startswith("--")), param.opts[0])
        if getattr(param, "is_flag", False):
            if not isinstance(value, bool):
                raise ConfigError(f"{command}: option {key} = {value!r} must be true or false")
            if value:
                argv.append(long)
            elif param.secondary_opts:
                argv.append(param.secondary_opts[0])
        elif getattr(param, "multiple", False):
            for item in value if isinstance(value, list) else [value]:
                argv += [long, _text(item, key, command)]
        else:
            argv += [long, _text(value, key, command)]
    return argv


def parse_flags(command: str, point: dict[str, Any]) -> dict[str, Any]:
    """The flags dictionary `landscape COMMAND` builds from the command line this point spells."""
    cmd = _cli_command(command)
    argv = to_argv(command, point)
    try:
        ctx = cmd.make_context(command, argv)
    except Exception as exc:  # click's usage errors, recognised by interface (typer vendors click)
        if not hasattr(exc, "format_message"):
            raise
        raise ConfigError(f"{command}: {exc.format_message()}",
                          f"see `landscape {command} --help`") from None
    return dict(ctx.params)
