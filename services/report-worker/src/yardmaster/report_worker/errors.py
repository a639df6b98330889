"""Exceptions of the report worker: a job that cannot complete, whatever attempt runs it."""

from __future__ import annotations

from yardmaster.shared.errors import YardmasterError


class TaskError(YardmasterError):
    """The job cannot complete (bad input, ...): it fails at once with this message, and is
    not retried (another attempt would meet the same problem)."""


class BadInputError(TaskError):
    """The input file is not what the job accepts: the message says where and why, in words
    a user can act on (``line 12: 4 fields, expected 3``), never a parser's or database's."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        #: The first bad line of the file (1 is the header), when one is to blame.
        self.line = line
