"""One place where every failure a user can cause becomes one line and exit code 2."""
from __future__ import annotations

import sys
import warnings

import typer

from landscape import interrupts
from landscape.errors import LandscapeWarning, UserError

EXIT_USAGE = 2
INTERRUPTED = "interrupted: rerun the same command to continue where it stopped"


def _usage_error_line(exc: Exception) -> str | None:
    """click's usage errors (bad option, missing argument...), recognised by their interface:
    typer vendors click privately since 0.20, so its classes cannot be imported reliably."""
    if getattr(exc, "exit_code", None) != EXIT_USAGE or not hasattr(exc, "format_message"):
        return None
    ctx = getattr(exc, "ctx", None)
    where = f"landscape {ctx.command_path.partition(' ')[2]}".strip() if ctx is not None else "landscape"
    return f"error: {exc.format_message()} (see `{where} --help`)"


def _show_warning(message, category, filename, lineno, file=None, line=None, _default=warnings.showwarning):
    """landscape's own warnings as one line `warning: ...`; others as Python shows them."""
    if issubclass(category, LandscapeWarning):
        print(f"warning: {' '.join(str(message).split())}", file=sys.stderr)
    else:
        _default(message, category, filename, lineno, file, line)


def run_guarded(command, args: list[str] | None = None) -> int:
    # SIGTERM (SLURM, Dask, kill) and SIGINT stop at the next instruction outside a store commit:
    # nothing half-written, one line, exit 143 / 130.
    interrupts.install()
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            warnings.simplefilter("always", LandscapeWarning)
            result = command.main(args=args, prog_name="landscape", standalone_mode=False)
    except interrupts.Interrupted as exc:
        print(exc.line(), file=sys.stderr)
        return exc.exit_code
    except UserError as exc:
        return _fail(exc.line())
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        print(INTERRUPTED, file=sys.stderr)
        return 130
    except Exception as exc:
        line = _usage_error_line(exc)
        if line is None:
            raise
        return _fail(line)
    return result if isinstance(result, int) else 0


def _fail(line: str) -> int:
    print(" ".join(line.split("\n")), file=sys.stderr)
    return EXIT_USAGE
