"""Simulated work: sleeps for ``execution_time`` seconds (times the configured work time
scale) in checkpointed slices."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import Connection

from yardmaster.report_worker.tasks.base import Result, Task, TaskError
from yardmaster.shared.jobstore import Progress

#: Longest single sleep, so a pause is noticed quickly.
SLICE_SECONDS = 0.02


class WorkTask(Task):
    """``params = {"execution_time": seconds}``; the result is a small JSON summary."""

    elapsed = 0.0

    @property
    def total(self) -> float:
        value = self.job.params.get("execution_time")
        if not isinstance(value, int | float) or value <= 0:
            raise TaskError(f"execution_time must be a positive number of seconds, not {value!r}")
        return float(value)

    def restore(self, checkpoint: dict[str, Any] | None) -> None:
        self.elapsed = float((checkpoint or {}).get("elapsed", 0.0))

    def step(self, connection: Connection) -> bool:
        scale = self.context.work_time_scale
        piece = min(SLICE_SECONDS / scale, self.total - self.elapsed)  # in declared seconds
        if piece > 0:
            time.sleep(piece * scale)
            self.elapsed = min(self.total, self.elapsed + piece)
        return self.elapsed >= self.total

    def checkpoint(self) -> dict[str, Any]:
        return {"elapsed": self.elapsed}

    def progress(self) -> Progress:
        return Progress(self.elapsed / self.total, f"{self.elapsed:.2f} of {self.total:g} s")

    def finish(self, connection: Connection) -> Result:
        directory = self.context.result_dir(self.job.id)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "result.json"
        # Only the job's own input: identical however often the job was paused and resumed.
        path.write_text(json.dumps({"kind": "work", "execution_time": self.total}) + "\n")
        return Result(path, f"work-{self.job.id}.json", "application/json")
