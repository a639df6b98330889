"""``python -m yardmaster.file_worker --dir DIR [--seconds-in-min S] [--name NAME]``

Watches the bucket directory DIR (default YARDMASTER_BUCKET_DIR) for the provider's files
and announces itself to the platform. Any number of replicas may share DIR and Redis.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path
from typing import Any

from yardmaster.file_worker.discovery import Discovery
from yardmaster.shared import lifecycle
from yardmaster.shared.heartbeat import Heartbeat
from yardmaster.shared.redis_client import make_redis, redact, wait_for_redis
from yardmaster.shared.services import Service
from yardmaster.shared.settings import Settings

log = logging.getLogger("yardmaster.file_worker")

#: How often the main loop turns (discovery, heartbeat) when there is nothing to do.
IDLE_TICK_SECONDS = 0.5


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
    return parser.parse_args(argv)


def serve(settings: Settings, stop: threading.Event) -> None:
    """Watch the bucket until ``stop`` is set, reporting each new file once."""
    client = make_redis(settings.redis_url, settings.connect_timeout)
    heartbeat = Heartbeat(
        client,
        Service.FILE_WORKER,
        settings.instance,
        settings.run_dir,
        settings.heartbeat_interval,
    )
    heartbeat.beat(force=True, state="connecting")
    if not wait_for_redis(client, stop, f"file worker (Redis at {redact(settings.redis_url)})"):
        return
    settings.bucket.mkdir(parents=True, exist_ok=True)
    discovery = Discovery(settings.bucket)
    discovery.start()
    log.info("watching %s (%g s per simulated minute)", settings.bucket, settings.seconds_in_min)
    try:
        while not stop.is_set():
            heartbeat.beat(state="watching", bucket=str(settings.bucket))
            for name in discovery.new_files():
                log.info("discovered %s", name)
            stop.wait(IDLE_TICK_SECONDS)
    finally:
        discovery.stop()
        heartbeat.retire()
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
    lifecycle.connect_database(Service.FILE_WORKER, settings).dispose()
    stop = threading.Event()
    lifecycle.install_shutdown_handlers(stop)
    serve(settings, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
