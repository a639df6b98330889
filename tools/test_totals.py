"""Print a pytest JUnit XML report's totals as one line: ``tests: N passed, M failed``.

CI ends with this line, so a run that executed no test cannot pass for one that did: the exit
status is 1 when nothing passed or anything failed (errors count as failures).

    python tools/test_totals.py test-output/junit.xml
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path


def totals(report: Path) -> tuple[int, int]:
    """(passed, failed) summed over every test suite of the report; skipped tests are neither."""
    root = ElementTree.parse(report).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    ran = failed = skipped = 0
    for suite in suites:
        ran += int(suite.get("tests", 0))
        failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped += int(suite.get("skipped", 0))
    return ran - failed - skipped, failed


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: test_totals.py JUNIT_XML", file=sys.stderr)
        return 2
    report = Path(argv[0])
    if not report.is_file():
        print(f"tests: no report at {report}; 0 passed", file=sys.stderr)
        return 1
    passed, failed = totals(report)
    print(f"tests: {passed} passed, {failed} failed")
    return 0 if passed > 0 and failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
