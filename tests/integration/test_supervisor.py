"""``make run``'s supervisor (tools/supervisor.py) with small stand-in programs: restarts with
backoff, readiness after every start, and a shutdown that restarts nothing."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

from support import PYTHON, REPO, Process, base_env, eventually

#: Runs a Supervisor over the programs given as JSON: [{"name", "code", "ready"}].
DRIVER = """
import json, os, re, sys
sys.path.insert(0, sys.argv[1])
from supervisor import Backoff, Program, Supervisor, command
supervisor = Supervisor(
    grace=float(sys.argv[2]), backoff=Backoff(first=0.2, cap=0.8, stable_after=10.0)
)
for spec in json.loads(sys.argv[3]):
    ready = re.compile(spec["ready"]) if spec.get("ready") else None
    launch = command([sys.executable, "-u", "-c", spec["code"]], os.environ)
    supervisor.add(Program(spec["name"], launch, ready_line=ready))
sys.exit(supervisor.run())
"""
#: A program that stops cleanly on SIGTERM, after printing its ready line.
STEADY = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
    "print('steady: serving')\n"
    "while True: time.sleep(1)\n"
)
CRASHER = "print('crasher: serving'); raise SystemExit(1)"
STUBBORN = (
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('stubborn: ignoring SIGTERM')\n"
    "time.sleep(600)\n"
)
PARENT = (
    "import subprocess, time\n"
    "child = subprocess.Popen(['sleep', '600'])\n"
    "print(f'parent: serving, child {child.pid}', flush=True)\n"
    "time.sleep(600)\n"
)


def supervise(tmp_path: Path, programs: list[dict[str, str]], grace: float = 10.0) -> Process:
    args = [PYTHON, "-c", DRIVER, str(REPO / "tools"), str(grace), json.dumps(programs)]
    return Process(args, base_env(), tmp_path / "supervisor.log")


def pid_of(process: Process, name: str) -> int:
    pids = re.findall(
        rf"\| {re.escape(name)} started(?: \(restart\))? \(pid (\d+)\)", process.output()
    )
    return int(pids[-1])


def test_a_process_that_exits_is_restarted_with_growing_waits_while_the_others_keep_running(
    tmp_path: Path,
) -> None:
    stack = supervise(
        tmp_path,
        [
            {"name": "steady", "code": STEADY, "ready": "serving"},
            {"name": "crasher", "code": CRASHER, "ready": "serving"},
        ],
    )
    try:
        stack.wait_for_output("crasher exited (rc=1); restarting in 0.8 s", timeout=30)
        output = stack.output()
        waits = re.findall(r"crasher exited \(rc=1\); restarting in ([\d.]+) s", output)
        assert waits[:3] == ["0.2", "0.4", "0.8"]
        assert "crasher ready again" in output
        assert output.count("steady started") == 1
        assert "steady exited" not in output
        stack.signal(signal.SIGTERM)
        assert stack.wait(timeout=15) in (0, 1)
        assert "steady stopped (rc=0)" in stack.output()
    finally:
        stack.close()


def test_nothing_is_restarted_once_a_stop_was_asked_for(tmp_path: Path) -> None:
    stack = supervise(
        tmp_path,
        [
            {"name": "steady", "code": STEADY, "ready": "serving"},
            {"name": "crasher", "code": CRASHER, "ready": "serving"},
        ],
    )
    try:
        stack.wait_for_output("crasher exited (rc=1); restarting in 0.4 s", timeout=30)
        stack.signal(signal.SIGINT)
        stack.wait(timeout=15)
        output = stack.output()
        after_stop = output[output.index("SIGINT received") :]
        assert "started" not in after_stop
        assert "steady stopped (rc=0)" in after_stop
    finally:
        stack.close()


def test_a_second_ctrl_c_kills_a_process_that_ignores_the_first_at_once(tmp_path: Path) -> None:
    stubborn = {"name": "stubborn", "code": STUBBORN, "ready": "ignoring SIGTERM"}
    stack = supervise(tmp_path, [stubborn], grace=120.0)
    try:
        stack.wait_for_output("stubborn ready", timeout=30)
        stack.signal(signal.SIGINT)
        stack.wait_for_output("SIGINT received", timeout=10)
        began = time.monotonic()
        stack.signal(signal.SIGINT)
        assert stack.wait(timeout=10) == 1
        assert time.monotonic() - began < 5
        assert "stubborn did not stop in time: killing it" in stack.output()
    finally:
        stack.close()


def test_what_a_killed_process_leaves_behind_in_its_group_is_killed_before_its_restart(
    tmp_path: Path,
) -> None:
    stack = supervise(tmp_path, [{"name": "parent", "code": PARENT, "ready": "serving"}])
    try:
        output = stack.wait_for_output("parent ready", timeout=30)
        child = int(re.findall(r"child (\d+)", output)[0])
        os.kill(pid_of(stack, "parent"), signal.SIGKILL)
        stack.wait_for_output("parent exited (rc=-9, killed by SIGKILL); restarting in", 10)

        def gone() -> bool:
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                return True
            return False

        eventually(gone, timeout=10, what="the killed parent's child is gone")
        stack.wait_for_output("parent ready again", timeout=30)
    finally:
        stack.close()
