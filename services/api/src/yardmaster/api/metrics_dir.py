"""The folder through which gunicorn's workers share their in-process metrics.

prometheus-client chooses how it stores values when it is first imported, by reading
``PROMETHEUS_MULTIPROC_DIR``. So the server's main process sets that variable (and empties the
folder) before anything imports prometheus-client: this module must not import it at the top,
nor must anything the main process imports before :func:`use_multiprocess_dir` runs.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

#: prometheus-client's own variable: the folder its multiprocess mode shares values through.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def use_multiprocess_dir(directory: Path) -> None:
    """Make every process started from now on share its in-process metrics through ``directory``
    (emptied first: an earlier run's files would add to this run's counts)."""
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before its multiprocess folder was set")
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(directory)
    log.info("request metrics of the workers shared through %s", directory)


def mark_worker_dead(pid: int) -> None:
    """Tell the multiprocess mode a worker is gone (gunicorn's ``child_exit`` hook)."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def multiprocess_enabled() -> bool:
    """True when this process writes its metrics to the shared folder."""
    return bool(os.environ.get(MULTIPROC_ENV))
