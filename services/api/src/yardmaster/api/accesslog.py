"""gunicorn's access log without secrets: ``?access_token=`` values (refused, but a client may
still send one) are replaced by ``***``, and a signed URL's ``signature`` keeps its principal
and expiry but not its MAC."""

from __future__ import annotations

import re
from typing import Any

from gunicorn.glogging import Logger

from yardmaster.api.policy import QUERY_TOKEN
from yardmaster.api.signing import SIGNATURE
from yardmaster.api.signing import redact as redact_signature

_TOKEN_IN_QUERY = re.compile(rf"((?:^|[?&]){QUERY_TOKEN}=)[^&\s]*")
_SIGNATURE_IN_QUERY = re.compile(rf"((?:^|[?&]){SIGNATURE}=)([^&\s]*)")


def redact(text: str) -> str:
    """``text`` (a request line or query string) with every access token and MAC hidden."""
    text = _TOKEN_IN_QUERY.sub(r"\1***", text)
    return _SIGNATURE_IN_QUERY.sub(lambda m: m.group(1) + redact_signature(m.group(2)), text)


class RedactingLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger, with the request line and query string atoms redacted."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for key in ("r", "q"):
            if isinstance(atoms.get(key), str):
                atoms[key] = redact(atoms[key])
        return atoms
