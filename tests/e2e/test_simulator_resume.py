"""A restarted simulator goes on after the newest file in its bucket (``--resume``)."""

from __future__ import annotations

from pathlib import Path

from e2e.stack import Start
from yardmaster.shared.bucket import oldest_first


def test_a_resumed_simulator_keeps_the_files_written_and_writes_the_rest_of_the_day(
    start: Start, redis_url: str, migrated_database_url: str, tmp_path: Path
) -> None:
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    for name in ("2018_06_28_00_00.txt", "2018_06_28_00_15.txt"):
        (bucket / name).write_text("written before the restart\n")
    settings = {"redis_url": redis_url, "database_url": migrated_database_url}

    simulator = start(
        "yardmaster.simulator", "--dir", str(bucket), "--seconds-in-min", "0.001", "--resume",
        **settings,
    )  # fmt: skip

    assert simulator.wait(timeout=60) == 0
    assert "resuming after 2018_06_28_00_15.txt" in simulator.output()
    names = oldest_first(p.name for p in bucket.iterdir())
    assert len(names) == 96
    assert (bucket / "2018_06_28_00_15.txt").read_text() == "written before the restart\n"
    assert (bucket / "2018_06_28_00_30.txt").read_text() != "written before the restart\n"


def test_without_resume_a_used_bucket_is_refused_in_one_line(
    start: Start, redis_url: str, migrated_database_url: str, tmp_path: Path
) -> None:
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    (bucket / "2018_06_28_00_00.txt").write_text("1.0\n")
    settings = {"redis_url": redis_url, "database_url": migrated_database_url}

    simulator = start("yardmaster.simulator", "--dir", str(bucket), **settings)

    assert simulator.wait(timeout=60) == 1
    assert "already holds 1 schedule file(s)" in simulator.output()
    assert "Traceback" not in simulator.output()
