"""The names of Yardmaster's processes, as they appear in logs, heartbeats and Compose."""

from enum import StrEnum


class Service(StrEnum):
    """One kind of Yardmaster process."""

    API = "api"
    REPORT_WORKER = "report-worker"
    FILE_WORKER = "file-worker"
    SIMULATOR = "simulator"
    MIGRATE = "migrate"
