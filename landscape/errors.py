"""Errors that a user can fix.

Every problem caused by input (a flag, a file, a run reference) raises a `UserError`. The CLI turns
it into one line on stderr and exit code 2; the Python API lets it propagate so notebooks see it.
The message says what is wrong and, where there is one, what to do about it.
"""
from __future__ import annotations


class UserError(Exception):
    """Bad input: printed as one line, exit code 2, no traceback."""

    def __init__(self, what: str, fix: str | None = None):
        self.what = what
        self.fix = fix
        super().__init__(f"{what} ({fix})" if fix else what)

    def line(self) -> str:
        return f"error: {self}"


class DataError(UserError):
    """A dataset is missing, malformed or unknown."""


class ConfigError(UserError):
    """A configuration value is invalid (a step string, a learning rate, a model name...)."""


class StoreError(UserError):
    """The store cannot be read or written, or a run reference does not resolve."""


class LandscapeWarning(UserWarning):
    """Something a user should know that does not stop the work (the CLI prints `warning: ...`)."""


class CodeChangedWarning(LandscapeWarning):
    """A stored run was built by a model or dataset whose code has changed since."""
