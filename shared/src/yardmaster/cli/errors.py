"""Exit codes, and the errors that end a command with one of them."""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    """What a ``yardmaster`` command's exit status means (listed in ``--help``)."""

    OK = 0
    REFUSED = 1  # the API refused the request (a 4xx not listed below), or the job failed
    USAGE = 2  # argparse's own
    UNREACHABLE = 3  # connection error, timeout, or a 5xx
    AUTH = 4  # 401, 403
    NOT_FOUND = 5  # 404
    CONFLICT = 6  # 409: not allowed in the job's current state
    RUNNING = 7  # ``report get``: the report is still running


def exit_code_for_status(status: int) -> ExitCode:
    """The exit code of a command whose request was answered with HTTP ``status``."""
    if status < 400:
        return ExitCode.OK
    if status >= 500:
        return ExitCode.UNREACHABLE
    return {
        401: ExitCode.AUTH,
        403: ExitCode.AUTH,
        404: ExitCode.NOT_FOUND,
        409: ExitCode.CONFLICT,
    }.get(status, ExitCode.REFUSED)


class CliError(Exception):
    """A command cannot go on: ``message`` goes to stderr, the process exits with ``code``."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class ApiError(CliError):
    """The API answered with an error status; ``problem`` is its problem document (or {})."""

    def __init__(self, message: str, status: int, problem: dict[str, Any]) -> None:
        super().__init__(message, exit_code_for_status(status))
        self.status = status
        self.problem = problem


class UnreachableError(CliError):
    """The API could not be reached, or did not answer in time."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.UNREACHABLE)
