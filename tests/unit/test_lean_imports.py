"""Each process imports only what it uses: the file worker, the simulator and the API load no
pandas or numpy (seconds of every start); the report worker loads pandas once, in the parent
process that forks its work horses, so no job pays for it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("pandas", "numpy", "pyarrow")


def modules_loaded_by(*imports: str) -> set[str]:
    """The heavy modules a fresh interpreter holds after ``imports`` (what a start imports)."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {list(imports)!r}: importlib.import_module(name)\n"
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout))


@pytest.mark.parametrize(
    "imports",
    [
        ("yardmaster.file_worker.__main__",),
        ("yardmaster.simulator.__main__",),
        ("yardmaster.api.__main__", "yardmaster.api.app"),
    ],
    ids=["file worker", "simulator", "api"],
)
def test_these_processes_import_no_pandas_or_numpy(imports: tuple[str, ...]) -> None:
    assert modules_loaded_by(*imports) == set()


def test_the_report_worker_loads_pandas_before_it_forks_any_job() -> None:
    assert "pandas" in modules_loaded_by("yardmaster.report_worker.__main__")
