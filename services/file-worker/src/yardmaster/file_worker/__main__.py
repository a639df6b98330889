"""``python -m yardmaster.file_worker --dir DIR [--seconds-in-min S] [--name NAME]``

Claims each of the provider's files in the bucket directory DIR (default YARDMASTER_BUCKET_DIR)
through a Redis lease, loads its store polls into the database, works for its processing time,
and completes it exactly once; prints its statistics every 5 files. Any number of replicas may
share DIR, Redis and the database.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path
from typing import Any

from yardmaster.file_worker.core.tunables import Tunables
from yardmaster.file_worker.worker import FileWorker
from yardmaster.shared import lifecycle
from yardmaster.shared.db import make_engine
from yardmaster.shared.errors import ConfigurationError
from yardmaster.shared.fileclaims import FileClaims
from yardmaster.shared.heartbeat import Heartbeat
from yardmaster.shared.redis_client import make_redis, redact, wait_for_redis
from yardmaster.shared.services import Service
from yardmaster.shared.settings import Settings

log = logging.getLogger("yardmaster.file_worker")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m yardmaster.file_worker",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dir", type=Path, help="bucket directory (default YARDMASTER_BUCKET_DIR)")
    parser.add_argument(
        "--seconds-in-min",
        help="real seconds per simulated minute (default YARDMASTER_SECONDS_IN_MIN, 60)",
    )
    parser.add_argument("--name", help="instance name in logs, heartbeats and statistics")
    parser.add_argument(
        "--lease-ttl",
        type=float,
        help="seconds a claim lasts without renewal (default 2 simulated minutes, within 0.2-30 s)",
    )
    parser.add_argument(
        "--heartbeat",
        type=float,
        help="seconds between lease renewals (default a quarter of the lease TTL)",
    )
    parser.add_argument(
        "--poll",
        type=float,
        help="seconds between scans when idle "
        "(default a quarter simulated minute, within 0.002-1 s)",
    )
    parser.add_argument(
        "--max-attempts", type=int, help="claims before a file is quarantined (default 5)"
    )
    return parser.parse_args(argv)


def tunables_for(settings: Settings, args: argparse.Namespace) -> Tunables:
    """Flags first, then YARDMASTER_FILE_* settings, then the speed-derived defaults."""
    defaults = Tunables.for_speed(settings.seconds_in_min)
    ttl = args.lease_ttl or settings.file_lease_ttl or defaults.lease_ttl
    heartbeat = args.heartbeat or settings.file_heartbeat or ttl / 4
    if heartbeat >= ttl - ttl / 4:
        raise ConfigurationError(
            "YARDMASTER_FILE_HEARTBEAT",
            f"{heartbeat:g} s leaves no time to renew a {ttl:g} s lease; "
            f"use less than {ttl * 3 / 4:g}",
        )
    return Tunables(
        lease_ttl=ttl,
        heartbeat=heartbeat,
        margin=ttl / 4,
        poll=args.poll or settings.file_poll or defaults.poll,
        max_attempts=args.max_attempts or settings.file_max_attempts,
    )


def serve(settings: Settings, stop: threading.Event, tunables: Tunables) -> None:
    """Claim and process bucket files until ``stop`` is set."""
    client = make_redis(settings.redis_url, settings.connect_timeout)
    heartbeat = Heartbeat(
        client,
        Service.FILE_WORKER,
        settings.instance,
        settings.run_dir,
        settings.heartbeat_interval,
        announce_changes=True,  # the live Files view shows each file as it is taken and done
    )
    heartbeat.beat(force=True, state="connecting")
    if not wait_for_redis(client, stop, f"file worker (Redis at {redact(settings.redis_url)})"):
        return
    settings.bucket.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url, settings.connect_timeout)
    worker = FileWorker(
        settings.bucket,
        settings.instance,
        FileClaims(client, settings.bucket),
        engine,
        tunables,
        settings.seconds_in_min,
        stop,
        say=lambda line: print(line, flush=True),
        tick=lambda w: heartbeat.beat(
            state="working",
            bucket=str(settings.bucket),
            current_file=w.current,
            files=w.stats.files,
            total_time=w.stats.total,
            sum_of_squares=w.stats.sum_of_squares,
        ),
    )
    lifecycle.log_ready(
        log,
        "watching %s (%g s per simulated minute, lease %.3g s)",
        settings.bucket,
        settings.seconds_in_min,
        tunables.lease_ttl,
    )
    try:
        worker.run()
    finally:
        heartbeat.retire()
        engine.dispose()
        log.info("stopped")


def main(argv: list[str] | None = None) -> int:
    """Run one file worker until SIGTERM or SIGINT."""
    args = parse_args(argv)
    overrides: dict[str, Any] = {
        "bucket_dir": args.dir,
        "seconds_in_min": args.seconds_in_min,
        "instance": args.name,
    }
    settings = lifecycle.start(Service.FILE_WORKER, **{k: v for k, v in overrides.items() if v})
    try:
        tunables = tunables_for(settings, args)
    except ConfigurationError as exc:
        lifecycle.exit_on_configuration_error(Service.FILE_WORKER, exc)
    lifecycle.connect_database(Service.FILE_WORKER, settings).dispose()
    stop = threading.Event()
    lifecycle.install_shutdown_handlers(stop)
    serve(settings, stop, tunables)
    return 0


if __name__ == "__main__":
    sys.exit(main())
