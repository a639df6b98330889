"""The file worker's ledger in a real database: caught up with Redis after a crash."""

from __future__ import annotations

import threading
from pathlib import Path

import redis
from sqlalchemy import Engine, insert, select

from support import eventually
from yardmaster.file_worker.core.tunables import Tunables
from yardmaster.file_worker.worker import FileWorker
from yardmaster.shared.fileclaims import FileClaims, Lease, bucket_id
from yardmaster.shared.jobstore import utcnow
from yardmaster.shared.migrate import upgrade_to_head
from yardmaster.shared.models import FileLedger

FILE = "2018_06_28_00_00.txt"


def test_a_file_completed_just_before_a_crash_is_marked_done_at_the_next_start(
    redis_url: str, engine: Engine, tmp_path: Path
) -> None:
    upgrade_to_head(engine)
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    (bucket / FILE).write_text("3\n")
    claims = FileClaims(redis.Redis.from_url(redis_url), bucket)
    # The crashed worker: loaded the file, completed it in Redis, died before the ledger said so.
    lease = claims.claim(FILE, "crashed", ttl=10)
    assert isinstance(lease, Lease)
    with engine.begin() as connection:
        connection.execute(
            insert(FileLedger).values(
                bucket=bucket_id(bucket), name=FILE, state="loaded", worker="crashed", rows=0
            )
        )
    finished = utcnow()
    claims.complete(lease, {"worker": "crashed", "minutes": 3, "finished_at": finished.isoformat()})

    stop = threading.Event()
    worker = FileWorker(
        bucket, "next", claims, engine, Tunables.for_speed(0.01), 0.01, stop, say=lambda _: None
    )
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:

        def ledger_row() -> tuple[str, str | None] | None:
            with engine.connect() as connection:
                row = connection.execute(select(FileLedger.state, FileLedger.worker)).one()
            return (row.state, row.worker) if row.state == "done" else None

        assert eventually(ledger_row, 10, "the ledger caught up") == ("done", "crashed")
    finally:
        stop.set()
        thread.join(timeout=10)
    assert worker.stats.files == 0  # the crashed worker's file is not counted by its successor
