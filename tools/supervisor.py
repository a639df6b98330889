"""A small process supervisor for ``make run``: prefixed output, restarts, warm shutdown.

Like Compose's ``restart: unless-stopped``: a process that exits while the stack runs is
restarted after a backoff (:class:`Backoff`), with one line saying so, and the others keep
running. Each process says when it is ready (a line it prints, or a probe that answers), after
its first start and after every restart.

On SIGINT or SIGTERM nothing is restarted any more. Unlike Procfile runners that signal whole
process groups (which would kill an RQ work horse mid-job), each child gets SIGTERM on its main
process only and ``grace`` seconds to finish; only then is its group killed. Programs marked
``stops_last`` (the embedded Redis) are stopped after the others. A second signal kills at once.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import IO

Launch = Callable[[], subprocess.Popen[bytes]]
#: Called with (name, start number counting from 1, seconds from start to ready).
OnReady = Callable[[str, int, float], None]


@dataclass(frozen=True)
class Backoff:
    """When to restart a process that exited: 1 s, then doubling up to 30 s, per crash streak.

    A process that stayed up ``stable_after`` seconds before exiting starts a new streak, so
    one crash a day is always restarted after ``first`` seconds, while a process that exits
    at once is retried ever more slowly instead of in a tight loop.
    """

    first: float = 1.0
    cap: float = 30.0
    stable_after: float = 30.0

    def streak_after_exit(self, streak: int, uptime: float) -> int:
        """The crash streak once a process exits after ``uptime`` seconds up (1 = first crash)."""
        return 1 if uptime >= self.stable_after else streak + 1

    def delay(self, streak: int) -> float:
        """Seconds to wait before restarting the ``streak``-th crash in a row."""
        return float(min(self.cap, self.first * 2 ** min(max(streak, 1) - 1, 32)))


@dataclass(frozen=True)
class Program:
    """What to supervise: how to start it and how to tell it is ready.

    ``ready_probe`` is asked, every 0.1 s until it says yes, with the wall-clock time the
    process started. With neither ``ready_line`` nor ``ready_probe``, a program is ready once
    ``launch`` returns.
    """

    name: str
    launch: Launch
    ready_line: re.Pattern[str] | None = None
    ready_probe: Callable[[float], bool] | None = None
    stops_last: bool = False


def command(args: list[str], env: Mapping[str, str]) -> Launch:
    """A launcher for ``args`` in a session of its own, its output piped to the supervisor."""

    def launch() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            args,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    return launch


@dataclass
class Child:
    """One supervised program and its current process (None while it waits to restart)."""

    program: Program
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0
    started_at: float = 0.0
    started_wall: float = 0.0
    streak: int = 0
    restart_at: float | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.program.name

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


class Supervisor:
    """Runs programs, restarting those that exit, until a signal arrives; then stops them all."""

    def __init__(
        self,
        out: IO[str] = sys.stdout,
        grace: float = 30.0,
        backoff: Backoff = Backoff(),
        on_ready: OnReady | None = None,
    ) -> None:
        self.out = out
        self.grace = grace
        self.backoff = backoff
        self.on_ready = on_ready
        self.children: list[Child] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._force = False
        self.width = len("system")

    def say(self, name: str, line: str) -> None:
        """Print one line, prefixed by the time and the name of who said it."""
        with self._lock:
            stamp = time.strftime("%H:%M:%S")
            self.out.write(f"{stamp} {name:<{self.width}} | {line}\n")
            self.out.flush()

    def announce(self, line: str) -> None:
        """Print one line as it is (the stack's own messages), never inside another line."""
        with self._lock:
            self.out.write(f"{line}\n")
            self.out.flush()

    def add(self, program: Program) -> None:
        """Supervise ``program``; :meth:`run` starts the programs in the order they were added."""
        self.width = max(self.width, len(program.name))
        self.children.append(Child(program))

    def run(self) -> int:
        """Start the programs, keep them running until a signal; 0 if all then stopped well."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        for child in self.children:
            self._start(child)
        while not self._stop.wait(0.1):
            for child in self.children:
                self._tend(child, time.monotonic())
        return self.stop_all()

    def _tend(self, child: Child, now: float) -> None:
        """Notice an exit and schedule its restart; restart when the backoff has passed."""
        if child.popen is not None and child.popen.poll() is not None:
            self._on_exit(child, now)
        elif child.restart_at is not None and now >= child.restart_at:
            self._start(child)

    def _on_exit(self, child: Child, now: float) -> None:
        assert child.popen is not None
        rc = child.popen.returncode
        self._kill_leftovers(child.popen)  # its output pipe closes, so its pump thread ends
        child.threads.clear()
        child.popen = None
        child.streak = self.backoff.streak_after_exit(child.streak, now - child.started_at)
        delay = self.backoff.delay(child.streak)
        child.restart_at = now + delay
        self.say("system", f"{child.name} exited ({describe(rc)}); restarting in {delay:g} s")

    def _start(self, child: Child) -> None:
        if self._stop.is_set():
            return  # no restart during shutdown
        child.restart_at = None
        child.started_at, child.started_wall = time.monotonic(), time.time()
        try:
            popen = child.program.launch()
        except Exception as exc:  # a failed start counts as a crash: retried with backoff
            child.streak = self.backoff.streak_after_exit(child.streak, 0.0)
            delay = self.backoff.delay(child.streak)
            child.restart_at = time.monotonic() + delay
            self.say("system", f"{child.name} did not start ({exc}); retrying in {delay:g} s")
            return
        self._watch(child, popen)

    def _watch(self, child: Child, popen: subprocess.Popen[bytes]) -> None:
        """Follow a freshly started process: its output, and the moment it is ready."""
        child.popen = popen
        child.starts += 1
        child.ready = threading.Event()
        again = " (restart)" if child.starts > 1 else ""
        self.say("system", f"{child.name} started{again} (pid {popen.pid})")
        if popen.stdout is not None:
            self._thread(child, self._pump, popen)
        if child.program.ready_probe is not None:
            self._thread(child, self._probe, popen)
        elif child.program.ready_line is None:
            self._mark_ready(child, popen)

    def _thread(
        self,
        child: Child,
        target: Callable[[Child, subprocess.Popen[bytes]], None],
        popen: subprocess.Popen[bytes],
    ) -> None:
        thread = threading.Thread(target=target, args=(child, popen), daemon=True)
        thread.start()
        child.threads.append(thread)

    def _pump(self, child: Child, popen: subprocess.Popen[bytes]) -> None:
        assert popen.stdout is not None
        pattern = child.program.ready_line
        for raw in popen.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self.say(child.name, line)
            if pattern is not None and pattern.search(line):
                self._mark_ready(child, popen)

    def _probe(self, child: Child, popen: subprocess.Popen[bytes]) -> None:
        probe = child.program.ready_probe
        assert probe is not None
        while popen.poll() is None and not self._stop.is_set():
            try:
                ready = probe(child.started_wall)
            except Exception:  # a probe that cannot ask yet means "not ready"
                ready = False
            if ready:
                self._mark_ready(child, popen)
                return
            time.sleep(0.1)

    def _mark_ready(self, child: Child, popen: subprocess.Popen[bytes]) -> None:
        """Say, once per start, that the process is ready and how long it took."""
        if child.ready.is_set() or child.popen is not popen:
            return
        child.ready.set()
        seconds = time.monotonic() - child.started_at
        again = " again" if child.starts > 1 else ""
        self.say("system", f"{child.name} ready{again} ({seconds:.1f} s after its start)")
        if self.on_ready is not None:
            self.on_ready(child.name, child.starts, seconds)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self._stop.is_set():
            self._force = True
            self.say("system", "second signal: killing every process now")
            return
        self.say("system", f"{signal.Signals(signum).name} received: stopping every process")
        self._stop.set()

    def stop_all(self) -> int:
        """Stop every program (those marked ``stops_last`` after the others); 0 if all ended
        with status 0."""
        first = [c for c in self.children if not c.program.stops_last]
        last = [c for c in self.children if c.program.stops_last]
        statuses = [self._stop_wave(first), self._stop_wave(last)]
        return 0 if all(ok for ok in statuses) else 1

    def _stop_wave(self, children: list[Child]) -> bool:
        """SIGTERM each main process, wait up to ``grace`` s, then kill what is left."""
        running = [c for c in children if c.popen is not None]
        for child in running:
            if child.popen is not None and child.popen.poll() is None:
                child.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while time.monotonic() < deadline and not self._force:
            if not any(c.running() for c in running):
                break
            time.sleep(0.05)
        ok = True
        for child in children:
            ok = self._reap(child) and ok
        return ok

    def _reap(self, child: Child) -> bool:
        if child.popen is None:
            self.say("system", f"{child.name} stopped (it was waiting to restart)")
            return True
        if child.popen.poll() is None:
            self.say("system", f"{child.name} did not stop in time: killing it")
            self._kill_leftovers(child.popen)
        child.popen.wait()
        self._join(child)
        self.say("system", f"{child.name} stopped ({describe(child.popen.returncode)})")
        return child.popen.returncode == 0

    def _kill_leftovers(self, popen: subprocess.Popen[bytes]) -> None:
        """Kill what remains of a process's group (gunicorn workers, an RQ work horse)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(popen.pid, signal.SIGKILL)

    def _join(self, child: Child) -> None:
        for thread in child.threads:
            thread.join(timeout=5)
        child.threads.clear()


def describe(returncode: int) -> str:
    """``rc=1``, or ``rc=-9, killed by SIGKILL`` for a process ended by a signal."""
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"rc={returncode}, killed by {signal.Signals(-returncode).name}"
    return f"rc={returncode}"
