"""Container healthcheck: ``python -m yardmaster.shared.liveness SERVICE [--max-age S]``.

Exits 0 when some process of SERVICE touched its liveness file within S seconds, 1 otherwise.
It reads only the local filesystem, so it answers even when Redis is down.
"""

from __future__ import annotations

import argparse
import sys
import time

from yardmaster.shared.errors import ConfigurationError
from yardmaster.shared.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    """Check the freshness of SERVICE's liveness file; print why when it is stale."""
    parser = argparse.ArgumentParser(prog="python -m yardmaster.shared.liveness")
    parser.add_argument("service")
    parser.add_argument("--max-age", type=float, default=60.0)
    args = parser.parse_args(argv)
    try:
        run_dir = load_settings().run_dir
    except ConfigurationError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    files = list(run_dir.glob(f"{args.service}.*.alive"))
    if not files:
        print(f"no liveness file for {args.service} in {run_dir}")
        return 1
    age = time.time() - max(f.stat().st_mtime for f in files)
    if age > args.max_age:
        print(f"{args.service}: last beat {age:.0f} s ago (limit {args.max_age:.0f} s)")
        return 1
    print(f"{args.service}: alive, last beat {age:.1f} s ago")
    return 0


if __name__ == "__main__":
    sys.exit(main())
