"""Exceptions shared by every Yardmaster process."""


class YardmasterError(Exception):
    """Base of every error Yardmaster raises on purpose."""


class ConfigurationError(YardmasterError):
    """A setting is missing, malformed or points at something unreachable.

    The message is one line that names the environment variable, so a process can print
    it and exit.
    """

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem
