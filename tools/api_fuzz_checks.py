"""Checks ``make api-fuzz`` adds to schemathesis's own, run on every answer it gets (loaded
through ``SCHEMATHESIS_HOOKS`` by ``tools/api_fuzz.py``): no answer may be sniffed as another
type, and every page runs under its Content-Security-Policy and is never framed."""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis.core.transport import Response


def _header(response: Response, name: str) -> str:
    values = response.headers.get(name.lower()) or [""]
    return str(values[0])


@schemathesis.check
def answers_are_never_sniffed(ctx: Any, response: Response, case: Any) -> bool | None:
    """Every answer says ``X-Content-Type-Options: nosniff`` and sends no Referer on."""
    if _header(response, "X-Content-Type-Options") != "nosniff":
        raise AssertionError("the answer lacks X-Content-Type-Options: nosniff")
    if _header(response, "Referrer-Policy") != "no-referrer":
        raise AssertionError("the answer lacks Referrer-Policy: no-referrer")
    return None


@schemathesis.check
def pages_carry_their_content_security_policy(
    ctx: Any, response: Response, case: Any
) -> bool | None:
    """An HTML answer runs no inline script but by hash, loads scripts from this server only,
    and may not be framed (CSP ``frame-ancestors 'none'`` and ``X-Frame-Options: DENY``)."""
    if not _header(response, "Content-Type").startswith("text/html"):
        return None
    policy = _header(response, "Content-Security-Policy")
    directives = {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}
    if directives.get("frame-ancestors") != ["'none'"]:
        raise AssertionError(f"the page may be framed: {policy!r}")
    scripts = directives.get("script-src", directives.get("default-src", ["*"]))
    if scripts[:1] != ["'self'"] or any(not s.startswith("'sha256-") for s in scripts[1:]):
        raise AssertionError(f"the page may run scripts from elsewhere or inline: {policy!r}")
    if _header(response, "X-Frame-Options") != "DENY":
        raise AssertionError("the page lacks X-Frame-Options: DENY")
    return None
