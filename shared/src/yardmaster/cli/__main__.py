"""``python -m yardmaster.cli`` (the ``yardmaster`` command)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from yardmaster.cli.client import ApiClient
from yardmaster.cli.commands import Context
from yardmaster.cli.errors import CliError
from yardmaster.cli.parser import build_parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit code (see ``yardmaster --help``)."""
    args = build_parser(os.environ).parse_args(argv)
    context = Context(
        ApiClient(args.api, args.token, args.timeout), sys.stdout, sys.stderr, args.json
    )
    try:
        return int(args.run(context, args))
    except CliError as exc:
        print(f"yardmaster: {exc.message}", file=sys.stderr)
        return int(exc.code)
    except KeyboardInterrupt:
        return 130
    finally:
        context.client.session.close()


if __name__ == "__main__":
    sys.exit(main())
