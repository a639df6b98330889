"""Yardmaster's report worker: an RQ worker serving the platform's queues in priority order."""
