"""The API fits its connections and stream cap to the open-files limit it may have."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

FIT = """
import resource
resource.setrlimit(resource.RLIMIT_NOFILE, ({limit}, {limit}))
from yardmaster.api.gunicorn_conf import within_open_files_limit
from yardmaster.shared.settings import load_settings
fitted = within_open_files_limit(load_settings({{}}))
print(fitted.api_connections, fitted.streams_per_process)
"""


def fitted(limit: int) -> tuple[int, int]:
    done = subprocess.run(
        [sys.executable, "-c", FIT.format(limit=limit)], capture_output=True, text=True, check=True
    )
    connections, streams = done.stdout.split()
    return int(connections), int(streams)


def test_a_low_limit_lowers_the_connections_and_keeps_room_beside_the_streams() -> None:
    connections, streams = fitted(1200)

    assert connections == 1000  # the limit less the files a worker keeps open besides
    assert streams == 800  # four fifths: other requests still find room


HARD = resource.getrlimit(resource.RLIMIT_NOFILE)[1]


@pytest.mark.skipif(
    HARD != resource.RLIM_INFINITY and HARD < 10_200, reason="this machine allows fewer files"
)
def test_a_limit_with_room_leaves_the_defaults_as_they_are() -> None:
    assert fitted(10_200) == (10_000, 8_000)
