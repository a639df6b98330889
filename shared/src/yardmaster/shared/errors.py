"""Exceptions shared by every Yardmaster process."""


class YardmasterError(Exception):
    """Base of every error Yardmaster raises on purpose."""


class ConfigurationError(YardmasterError):
    """A setting is missing, malformed or points at something unusable (a database that
    refuses this role, password or name for good; not one that is merely down).

    The message is one line that names the environment variable, so a process can print
    it and exit.
    """

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


class DatabaseUnavailableError(YardmasterError):
    """The database stayed busy or unreachable until the caller stopped waiting for it.

    Raised by :func:`yardmaster.shared.outage.wait_out` when the process is stopping, or has
    lost the right to finish the work (its lease), before the database answered again.
    """
