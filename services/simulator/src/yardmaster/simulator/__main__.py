"""``python -m yardmaster.simulator --dir DIR [--seconds-in-min S] [--days N] [--payload stores]``

Writes the provider's files into DIR at their scheduled times: file k after (k+1)·15
simulated minutes, one simulated minute lasting S real seconds (default 60). The default
schedule is the 96 files of the original brief, shipped inside this package. With --days N
the day repeats N times (0: forever), each repetition named for the next date.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from yardmaster.shared import lifecycle
from yardmaster.shared.heartbeat import Heartbeat
from yardmaster.shared.models import StoreTimezone, visible_store_status
from yardmaster.shared.redis_client import make_redis
from yardmaster.shared.services import Service
from yardmaster.simulator.core.schedule import ScheduleError, parse_schedule, releases
from yardmaster.simulator.run import Simulation
from yardmaster.simulator.writer import (
    BucketNotEmptyError,
    newest_file,
    refuse_used_bucket,
    write_atomically,
    write_in_place,
)

log = logging.getLogger("yardmaster.simulator")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m yardmaster.simulator",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dir", type=Path, help="bucket directory (default YARDMASTER_BUCKET_DIR)")
    parser.add_argument(
        "--seconds-in-min",
        help="real seconds per simulated minute "
        "(default YARDMASTER_SECONDS_IN_MIN, 60); 0.001 runs the day in ~1.5 s",
    )
    parser.add_argument("--schedule", type=Path, help="CSV of filename,processing_minutes")
    parser.add_argument(
        "--days",
        type=int,
        default=1,
        help="how many simulated days to write (default 1; 0 = until stopped)",
    )
    parser.add_argument(
        "--payload",
        choices=["stores"],
        help="stores: add JSON store polls for the stores in the database to each file",
    )
    parser.add_argument(
        "--non-atomic",
        action="store_true",
        help="write files in place like the original simulator (for tests)",
    )
    parser.add_argument("--name", help="instance name in logs and heartbeats")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="accept a bucket that holds schedule files (a restart): go on after the newest",
    )
    args = parser.parse_args(argv)
    if args.days < 0:
        parser.error("--days must be 0 (forever) or more")
    return args


def read_schedule_text(path: Path | None) -> str:
    """The schedule CSV: the given file, else the one shipped with the package."""
    if path is None:
        return (
            resources.files("yardmaster.simulator").joinpath("data/file-schedule.csv").read_text()
        )
    return path.read_text(encoding="utf-8")


def known_stores(engine: Engine) -> list[str]:
    """Every store id the database knows (polls, hours or time zones), sorted."""
    with engine.connect() as connection:
        ids = set(connection.scalars(select(visible_store_status.c.store_id).distinct()))
        ids.update(connection.scalars(select(StoreTimezone.store_id)))
    return sorted(ids)


def main(argv: list[str] | None = None) -> int:
    """Run the simulator; 0 when the schedule completed or was stopped cleanly."""
    args = parse_args(argv)
    overrides: dict[str, Any] = {
        "bucket_dir": args.dir,
        "seconds_in_min": args.seconds_in_min,
        "instance": args.name,
    }
    settings = lifecycle.start(Service.SIMULATOR, **{k: v for k, v in overrides.items() if v})
    try:
        files = parse_schedule(read_schedule_text(args.schedule))
        newest = newest_file(settings.bucket) if args.resume else None
        if not args.resume:
            refuse_used_bucket(settings.bucket)
    except (OSError, ScheduleError, BucketNotEmptyError) as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 1
    engine = lifecycle.connect_database(Service.SIMULATOR, settings)
    stores = known_stores(engine) if args.payload == "stores" else None
    engine.dispose()
    settings.bucket.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    lifecycle.install_shutdown_handlers(stop)
    heartbeat = Heartbeat(
        make_redis(settings.redis_url, settings.connect_timeout),
        Service.SIMULATOR,
        settings.instance,
        settings.run_dir,
        settings.heartbeat_interval,
    )
    simulation = Simulation(
        settings.bucket,
        releases(files, settings.seconds_in_min, args.days or None),
        write_in_place if args.non_atomic else write_atomically,
        heartbeat,
        stop,
        stores,
        resume_after=newest,
    )
    if newest is not None:
        log.info("resuming after %s, the newest file in %s", newest, settings.bucket)
    lifecycle.log_ready(
        log,
        "writing the schedule's files into %s (%g s per simulated minute)",
        settings.bucket,
        settings.seconds_in_min,
    )
    try:
        simulation.run()
    finally:
        heartbeat.retire()
    return 0


if __name__ == "__main__":
    sys.exit(main())
