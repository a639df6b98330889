"""Smoke test of a running Compose stack (run on the host by ``compose-check --smoke``).

Waits until ``/readyz`` answers 200 through the published port and ``/status`` lists the
expected number of live processes of each kind; exits 1 with what it last saw otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request

EXPECTED = {"report-worker": 1, "simulator": 1}


def fetch(url: str) -> tuple[int, str]:
    """Status and body of a GET, (0, reason) when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--file-workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    expected = {**EXPECTED, "file-worker": args.file_workers}
    deadline = time.monotonic() + args.timeout
    seen = "nothing yet"
    while time.monotonic() < deadline:
        status, body = fetch(args.base + "/readyz")
        if status == 200:
            status, body = fetch(args.base + "/status")
            live = (
                {k: len(v) for k, v in json.loads(body)["services"].items()}
                if status == 200
                else {}
            )
            seen = f"/readyz 200; live processes {live}"
            if all(live.get(k, 0) == n for k, n in expected.items()):
                print(f"smoke: ok: {seen}")
                return 0
        else:
            seen = f"/readyz {status}: {body[:300]}"
        time.sleep(1)
    print(f"smoke: failed after {args.timeout:.0f} s: expected {expected}, saw {seen}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
