"""Redis key templates: every key Yardmaster writes lives under :data:`PREFIX`, named here.

RQ keeps its own keys under ``rq:``; the queue names it uses are in :mod:`.queues`.
"""

PREFIX = "yardmaster:"

#: A live process announces itself here (JSON, expires after three missed beats).
HEARTBEAT = PREFIX + "heartbeat:{service}:{instance}"
HEARTBEAT_PATTERN = PREFIX + "heartbeat:*"


def heartbeat_key(service: str, instance: str) -> str:
    """The heartbeat key of one process."""
    return HEARTBEAT.format(service=service, instance=instance)
