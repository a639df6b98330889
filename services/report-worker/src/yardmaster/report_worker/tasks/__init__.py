"""The long jobs a report worker runs, one module per kind, all behind :class:`Task`."""

from __future__ import annotations

from yardmaster.report_worker.tasks.base import Task, TaskContext
from yardmaster.report_worker.tasks.exports import ExportTask
from yardmaster.report_worker.tasks.imports import ImportTask
from yardmaster.report_worker.tasks.report import ReportTask
from yardmaster.report_worker.tasks.work import WorkTask
from yardmaster.shared.jobs import JobKind

#: Kind -> task class. A kind missing here fails its jobs with a clear error.
TASKS: dict[str, type[Task]] = {
    JobKind.WORK: WorkTask,
    JobKind.IMPORT: ImportTask,
    JobKind.EXPORT: ExportTask,
    JobKind.REPORT: ReportTask,
}

__all__ = ["TASKS", "Task", "TaskContext"]
