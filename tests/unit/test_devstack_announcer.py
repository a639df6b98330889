"""``make run``'s own lines: "API on ..." once the API is ready, with the time it took; a
"not ready after 60 s" line, once, only while it is not."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from types import ModuleType

import pytest

from support import eventually

TOOLS = Path(__file__).resolve().parents[2] / "tools"


@pytest.fixture
def devstack(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(TOOLS))
    import devstack as module  # tools/devstack.py, beside tools/supervisor.py

    monkeypatch.setattr(module, "SLOW_START_SECONDS", 0.05)
    return module


class Lines:
    """Stands in for the supervisor: collects what the announcer says."""

    def __init__(self) -> None:
        self.said: list[str] = []
        self.lock = threading.Lock()

    def announce(self, line: str) -> None:
        with self.lock:
            self.said.append(line)


def announcer(devstack: ModuleType, lines: Lines, began: float = 0.0) -> object:
    return devstack.Announcer(lines, "http://127.0.0.1:8000", Path("/tmp/bucket"), began)


def test_a_slow_api_gets_one_still_waiting_line(devstack: ModuleType) -> None:
    lines = Lines()
    stack = announcer(devstack, lines)

    stack.waiting()  # type: ignore[attr-defined]

    eventually(lambda: any("not ready after" in line for line in lines.said), 10, "the line")
    assert lines.said[0] == "devstack: starting; waiting for the API to be ready"
    assert "still waiting (the lines above say why)" in lines.said[-1]


def test_api_on_is_said_once_the_api_is_ready_with_the_time_it_took(
    devstack: ModuleType,
) -> None:
    lines = Lines()
    stack = announcer(devstack, lines, began=time.monotonic() - 3.0)

    stack.on_ready("report-worker-1", 1, 0.1)  # type: ignore[attr-defined]
    stack.on_ready("api", 1, 2.0)  # type: ignore[attr-defined]
    stack.on_ready("api", 2, 2.0)  # type: ignore[attr-defined]  # a restart: said elsewhere
    stack._still_waiting()  # type: ignore[attr-defined]  # the slow-start timer, now silent

    assert len(lines.said) == 1
    assert re.fullmatch(
        r"devstack: API on http://127\.0\.0\.1:8000 \(ready in 3\.\d s\), "
        r"bucket /tmp/bucket; Ctrl-C stops all",
        lines.said[0],
    )
