"""A small process supervisor for ``make run``: prefixed output, warm shutdown of every child.

Unlike Procfile runners that signal whole process groups (which would kill an RQ work
horse mid-job), each child gets SIGTERM on its main process only and ``grace`` seconds to
finish; only then is its group killed. A second Ctrl-C kills at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import FrameType
from typing import IO


@dataclass
class Child:
    """One supervised process."""

    name: str
    popen: subprocess.Popen[bytes]
    pump: threading.Thread


class Supervisor:
    """Runs named commands until one exits or a signal arrives, then stops them all."""

    def __init__(self, out: IO[str] = sys.stdout, grace: float = 30.0) -> None:
        self.out = out
        self.grace = grace
        self.children: list[Child] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._force = False
        self.width = 8

    def say(self, name: str, line: str) -> None:
        """Print one line, prefixed by the time and the name of who said it."""
        with self._lock:
            stamp = time.strftime("%H:%M:%S")
            self.out.write(f"{stamp} {name:<{self.width}} | {line}\n")
            self.out.flush()

    def start(self, name: str, command: list[str], env: Mapping[str, str]) -> None:
        """Start ``command`` in a session of its own, its output prefixed by ``name``."""
        self.width = max(self.width, len(name))
        popen = subprocess.Popen(
            command,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        pump = threading.Thread(target=self._pump, args=(name, popen), daemon=True)
        pump.start()
        self.children.append(Child(name, popen, pump))
        self.say("system", f"{name} started (pid {popen.pid})")

    def _pump(self, name: str, popen: subprocess.Popen[bytes]) -> None:
        assert popen.stdout is not None
        for raw in popen.stdout:
            self.say(name, raw.decode(errors="replace").rstrip("\n"))

    def run(self) -> int:
        """Wait for a signal or for a child to exit, then stop everyone; 0 if all ended well."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        first_exit: int | None = None
        while not self._stop.wait(0.2):
            ended = [c for c in self.children if c.popen.poll() is not None]
            if ended:
                first_exit = ended[0].popen.returncode
                self.say("system", f"{ended[0].name} exited (rc={first_exit}); stopping the rest")
                break
        self.stop_all()
        return first_exit or 0

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self._stop.is_set():
            self._force = True
            self.say("system", "second signal: killing every process now")
            return
        self.say("system", f"{signal.Signals(signum).name} received: stopping every process")
        self._stop.set()

    def stop_all(self) -> None:
        """SIGTERM each child's main process, wait up to ``grace`` s, then kill what is left."""
        for child in self.children:
            if child.popen.poll() is None:
                child.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while time.monotonic() < deadline and not self._force:
            if all(c.popen.poll() is not None for c in self.children):
                break
            time.sleep(0.1)
        for child in self.children:
            if child.popen.poll() is None:
                self.say("system", f"{child.name} did not stop in time: killing it")
                os.killpg(child.popen.pid, signal.SIGKILL)
            child.popen.wait()
            child.pump.join(timeout=5)
            self.say("system", f"{child.name} stopped (rc={child.popen.returncode})")
