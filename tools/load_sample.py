"""``make load-sample``: generate realistic store data and import it through the running API.

Writes the three files with ``python -m yardmaster.simulator.stores`` (14,092 stores, about
1.8 M polls; ``--stores`` for fewer) into ``.data/sample/``, then uploads each to
``POST /imports`` of the API (``--api``, default http://127.0.0.1:8000, so run ``make run``
first) and follows the import jobs until they finish.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import requests

FILES = [("store_status.csv", "store_status"), ("menu_hours.csv", "business_hours"),
         ("timezones.csv", "timezones")]  # fmt: skip


def follow(api: str, job_id: str, label: str) -> bool:
    """Print the job's progress until it ends; True if it finished."""
    shown = ""
    while True:
        job = requests.get(f"{api}/jobs/{job_id}", timeout=10).json()
        line = f"  {label}: {job['state']}, {job['progress']['message']}"
        if line != shown:
            print(line, flush=True)
            shown = line
        if job["state"] in ("finished", "failed", "stopped"):
            if job["error"]:
                print(f"  {label}: {job['error']}")
            return bool(job["state"] == "finished")
        time.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="make load-sample",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--out", type=Path, default=Path(".data/sample"))
    parser.add_argument("--stores", type=int, default=14_092)
    args = parser.parse_args()
    try:
        requests.get(f"{args.api}/readyz", timeout=5).raise_for_status()
    except requests.RequestException as exc:
        print(f"load-sample: the API at {args.api} is not ready ({exc}); start it with make run")
        return 1
    subprocess.run(
        [
            sys.executable,
            "-m",
            "yardmaster.simulator.stores",
            "--out",
            str(args.out),
            "--stores",
            str(args.stores),
        ],
        check=True,
    )
    for name, table in FILES:
        with open(args.out / name, "rb") as handle:
            response = requests.post(
                f"{args.api}/imports",
                data={"table": table},
                files={"file": (name, handle)},
                timeout=600,
            )
        if response.status_code != 202:
            print(f"load-sample: {name} refused: {response.status_code} {response.text}")
            return 1
        if not follow(args.api, response.json()["id"], table):
            return 1
    print("load-sample: done. Now: curl -X POST http://127.0.0.1:8000/trigger_report")
    return 0


if __name__ == "__main__":
    sys.exit(main())
