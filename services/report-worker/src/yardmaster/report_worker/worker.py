"""The RQ worker, reconnecting instead of crashing when Redis goes away."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import redis
from redis.exceptions import RedisError
from rq import Worker

from yardmaster.shared import lifecycle, queues
from yardmaster.shared.heartbeat import Heartbeat
from yardmaster.shared.jobbus import SEGMENT_FUNCTION, Control, send_control
from yardmaster.shared.redis_client import redact, wait_for_redis
from yardmaster.shared.settings import Settings

log = logging.getLogger(__name__)

#: RQ worker key TTL; RQ blocks on the queues for (this - 15) s between heartbeats.
WORKER_TTL_SECONDS = 20
#: How often a busy worker's parent process beats while its job runs.
JOB_MONITORING_INTERVAL_SECONDS = 5


class YardmasterWorker(Worker):
    """An RQ worker whose heartbeats also reach Yardmaster's heartbeat (Redis key and file)."""

    yardmaster_heartbeat: Heartbeat | None = None
    shutdown_requested = False
    #: Set by our own signal handler, which is in charge until RQ installs its handlers.
    stop_event: threading.Event | None = None
    #: The process's first RQ worker (later ones replace it after a lost Redis) says "ready".
    first_of_process = False

    def _install_signal_handlers(self) -> None:
        super()._install_signal_handlers()  # type: ignore[no-untyped-call]
        if self.stop_event is not None and self.stop_event.is_set():
            # A SIGTERM arrived while RQ was still starting: honour it at the first turn.
            self.shutdown_requested = True
            self._stop_requested = True

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        super().bootstrap(*args, **kwargs)
        if self.first_of_process:
            lifecycle.log_ready(log, "listening to %s", ", ".join(self.queue_names()))

    def handle_warm_shutdown_request(self) -> None:
        self.shutdown_requested = True
        super().handle_warm_shutdown_request()  # type: ignore[no-untyped-call]
        self._preempt_current_job()

    def _preempt_current_job(self) -> None:
        """Ask the running segment to checkpoint and requeue its job, so a deploy loses nothing."""
        try:
            current = self.get_current_job()
            if current is not None and current.func_name == SEGMENT_FUNCTION and current.args:
                send_control(self.connection, str(current.args[0]), Control.PREEMPT)
                log.info("job %s: asked to checkpoint and requeue before shutdown", current.args[0])
        except RedisError as exc:
            log.warning("could not pre-empt the current job (%s)", exc)

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        super().heartbeat(timeout, pipeline)
        if self.yardmaster_heartbeat is not None:
            self.yardmaster_heartbeat.beat(state=str(self.get_state()), rq_worker=self.name)


def build_worker(client: redis.Redis, name: str, heartbeat: Heartbeat) -> YardmasterWorker:
    """An RQ worker listening to the platform's queues, most urgent first."""
    worker = YardmasterWorker(
        list(queues.PRIORITY_ORDER),
        name=name,
        connection=client,
        worker_ttl=WORKER_TTL_SECONDS,
        job_monitoring_interval=JOB_MONITORING_INTERVAL_SECONDS,
    )
    worker.yardmaster_heartbeat = heartbeat
    return worker


def serve(settings: Settings, client: redis.Redis, heartbeat: Heartbeat) -> None:
    """Work until asked to stop, starting a fresh RQ worker whenever Redis was lost.

    RQ's own loop retries a failed dequeue, but quits on errors elsewhere (registration,
    maintenance). Each time it quits without a stop request, this waits for Redis with
    backoff and starts a new RQ worker (a new name: the old one's registration may linger).
    """
    stop = threading.Event()
    generation = 0
    while not stop.is_set():
        lifecycle.install_shutdown_handlers(stop)
        heartbeat.beat(force=True, state="connecting")
        if not wait_for_redis(
            client, stop, f"report worker (Redis at {redact(settings.redis_url)})"
        ):
            break
        # The pid too: a process killed with SIGKILL leaves its RQ name registered for a while,
        # and its restart (make run, Compose) must not be refused that name.
        name = f"{settings.instance}.{os.getpid()}.{generation}"
        worker = build_worker(client, name, heartbeat)
        worker.stop_event = stop
        worker.first_of_process = generation == 0
        try:
            worker.work(logging_level=settings.log_level)
        except RedisError as exc:
            log.warning("lost Redis while starting or stopping (%s)", exc)
        if worker.shutdown_requested:
            break
        generation += 1
        log.warning("RQ worker loop ended without a stop request; reconnecting")
        stop.wait(1.0)
    heartbeat.retire()
    log.info("stopped")
