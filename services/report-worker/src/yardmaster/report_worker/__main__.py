"""``python -m yardmaster.report_worker``: an RQ worker serving the platform's queues.

Listens to the queues of :mod:`yardmaster.shared.queues` in priority order. SIGTERM or
SIGINT: finish the current job, then exit; a second signal kills the job (cold shutdown).
"""

from __future__ import annotations

import argparse
import sys

from yardmaster.report_worker import runner
from yardmaster.report_worker.admission import Admission
from yardmaster.report_worker.reaper import Reaper, ReaperThread
from yardmaster.report_worker.tasks import TaskContext
from yardmaster.report_worker.worker import serve
from yardmaster.shared import lifecycle
from yardmaster.shared.heartbeat import Heartbeat
from yardmaster.shared.jobstore import JobStore
from yardmaster.shared.redis_client import make_redis
from yardmaster.shared.services import Service


def main(argv: list[str] | None = None) -> int:
    """Run one report worker until it is asked to stop."""
    parser = argparse.ArgumentParser(prog="python -m yardmaster.report_worker", description=__doc__)
    parser.add_argument("--name", help="instance name in logs and heartbeats")
    args = parser.parse_args(argv)
    settings = lifecycle.start(
        Service.REPORT_WORKER, **({"instance": args.name} if args.name else {})
    )
    engine = lifecycle.connect_database(Service.REPORT_WORKER, settings)
    client = make_redis(settings.redis_url, settings.connect_timeout)
    heartbeat = Heartbeat(
        client,
        Service.REPORT_WORKER,
        settings.instance,
        settings.run_dir,
        settings.heartbeat_interval,
    )
    tasks = TaskContext(engine, settings.files, settings.work_time_scale)
    admission = (
        Admission(JobStore(engine), client, settings.site_share, settings.aging_base_seconds)
        if settings.scheduling == "priority"
        else None
    )
    runner.configure(
        runner.Runtime(
            engine, client, tasks, settings.instance, settings.job_lease_seconds, admission
        )
    )
    reaper = ReaperThread(
        Reaper(JobStore(engine), client, tasks, settings.stop_grace_seconds, admission)
    )
    reaper.start()
    try:
        serve(settings, client, heartbeat)
    finally:
        reaper.stopping.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
