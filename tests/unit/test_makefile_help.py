"""``make help`` is generated from the Makefile's own comments: every target is listed, with
what it does, so the list cannot drift from the targets."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def makefile_targets() -> list[str]:
    text = (REPO / "Makefile").read_text()
    return re.findall(r"^([a-z][a-z-]*):", text, flags=re.MULTILINE)


def test_make_help_lists_every_target_with_a_description() -> None:
    shown = subprocess.run(
        ["make", "--no-print-directory", "help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    described = dict(re.findall(r"^make (\S+)\s+(.+)$", shown, flags=re.MULTILINE))

    assert set(makefile_targets()) == set(described)
    assert all(description.strip() for description in described.values())
    assert {"test", "test-unit", "test-fast", "run", "install"} <= set(described)
