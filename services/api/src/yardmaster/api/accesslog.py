"""gunicorn's access log without secrets: ``?access_token=`` values are replaced by ``***``."""

from __future__ import annotations

import re
from typing import Any

from gunicorn.glogging import Logger

_TOKEN_IN_QUERY = re.compile(r"((?:^|[?&])access_token=)[^&\s]*")


def redact(text: str) -> str:
    """``text`` (a request line or query string) with every access token hidden."""
    return _TOKEN_IN_QUERY.sub(r"\1***", text)


class RedactingLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger, with the request line and query string atoms redacted."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for key in ("r", "q"):
            if isinstance(atoms.get(key), str):
                atoms[key] = redact(atoms[key])
        return atoms
