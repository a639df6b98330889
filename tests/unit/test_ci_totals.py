"""CI's last line: the suite's totals read from pytest's JUnit XML (tools/test_totals.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TOTALS = Path(__file__).resolve().parents[2] / "tools" / "test_totals.py"


def run_totals(report: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOTALS), str(report)], capture_output=True, text=True, check=False
    )


def junit(tests: int, failures: int = 0, errors: int = 0, skipped: int = 0) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" '
        f'tests="{tests}" failures="{failures}" errors="{errors}" skipped="{skipped}"/>'
        "</testsuites>"
    )


def test_a_green_run_prints_its_passed_count_without_the_skipped_ones(tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    report.write_text(junit(tests=12, skipped=2))
    result = run_totals(report)
    assert result.returncode == 0
    assert result.stdout == "tests: 10 passed, 0 failed\n"


@pytest.mark.parametrize(
    ("counts", "line"),
    [
        ({"tests": 0}, "tests: 0 passed, 0 failed\n"),
        ({"tests": 5, "failures": 1}, "tests: 4 passed, 1 failed\n"),
        ({"tests": 5, "errors": 2}, "tests: 3 passed, 2 failed\n"),
    ],
)
def test_a_run_with_nothing_passed_or_anything_failed_fails(
    tmp_path: Path, counts: dict[str, int], line: str
) -> None:
    report = tmp_path / "junit.xml"
    report.write_text(junit(**counts))
    result = run_totals(report)
    assert result.returncode == 1
    assert result.stdout == line


def test_a_missing_report_fails(tmp_path: Path) -> None:
    assert run_totals(tmp_path / "absent.xml").returncode == 1
