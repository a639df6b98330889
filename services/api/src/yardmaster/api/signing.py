"""Signed URLs: a GET URL that carries its own short-lived authorisation (values in, values out).

A browser cannot send ``Authorization`` with a download link or an ``EventSource``, and a
token in a query string lives on in logs and histories. So a caller that holds a token asks
for a signed URL instead (``POST /signed-urls``): the path and query it wants to read, plus
one ``signature`` argument::

    /jobs/8d0c.../result?signature=customer-7.1767225600.2Kx...

which reads ``<principal>.<expires>.<mac>``: who it speaks for, until when (Unix seconds),
and the HMAC-SHA256, under the API's signing key, of the method (GET), the path (decoded),
the query as sent without the signature, the principal and the expiry. Changing any of them
(another job, another principal, a later expiry) breaks the MAC; the URL authorises that one
read, as that principal, until it expires. A stream is checked once, when it connects.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote, urlsplit

#: The query argument carrying the signature.
SIGNATURE: Final = "signature"
#: The method a signature is made for; HEAD may use a GET signature (it reads the same).
SIGNED_METHOD: Final = "GET"
#: The longest path and query that may be signed (a URL must still fit a request line).
MAX_TARGET: Final = 2048


class SignatureError(ValueError):
    """A signed URL that does not authorise the request; the message says why."""


class TargetError(ValueError):
    """A path and query that cannot be signed; the message says why."""


@dataclass(frozen=True)
class Signed:
    """Who a valid signature speaks for, and until when (Unix seconds)."""

    principal: str
    expires: int


def _mac(key: bytes, method: str, path: str, query: str, principal: str, expires: int) -> str:
    message = "\n".join((method, path, query, principal, str(expires))).encode()
    digest = hmac.digest(key, message, hashlib.sha256)
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def checked_target(target: str) -> tuple[str, str]:
    """``target`` (a path and query on this server, as it will be requested) split into path
    and query (without empty items); TargetError if it is not one, or already carries a
    signature."""
    if len(target) > MAX_TARGET:
        raise TargetError(f"a path and query longer than {MAX_TARGET} characters")
    if not target.startswith("/") or target.startswith("//"):
        raise TargetError("give a path on this server, starting with a single /")
    if not target.isascii() or not target.isprintable() or " " in target or "#" in target:
        raise TargetError("give the path as it is requested: percent-encoded, no fragment")
    parts = urlsplit(target)
    arguments = _raw_arguments(parts.query)
    if any(name == SIGNATURE for name, _ in arguments):
        raise TargetError(f"the path already carries a {SIGNATURE} argument")
    return parts.path, "&".join(raw for _, raw in arguments)


def sign(key: bytes, target: str, principal: str, expires: int) -> str:
    """``target`` (see :func:`checked_target`) with its signature for ``principal`` until
    ``expires`` (Unix seconds) appended as the last query argument."""
    path, query = checked_target(target)
    mac = _mac(key, SIGNED_METHOD, unquote(path), query, principal, expires)
    separator = "&" if query else "?"
    return f"{path}{'?' + query if query else ''}{separator}{SIGNATURE}={principal}.{expires}.{mac}"


def verify(key: bytes, method: str, path: str, raw_query: str, now: float) -> Signed:
    """Who the signature in ``raw_query`` (the request's query string as sent) speaks for,
    if it was made with ``key`` for this ``method``, ``path`` (decoded, as routed) and the
    rest of the query and has not expired at ``now``; else SignatureError. The MAC is
    compared in constant time."""
    if method.upper() not in (SIGNED_METHOD, "HEAD"):
        raise SignatureError(f"a signed URL is for {SIGNED_METHOD} requests only")
    arguments = _arguments(raw_query)
    values = [value for name, value in arguments if name == SIGNATURE]
    if len(values) != 1:
        raise SignatureError(f"give one {SIGNATURE} argument")
    principal, expires, mac = _parts(values[0])
    rest = "&".join(raw for name, raw in _raw_arguments(raw_query) if name != SIGNATURE)
    expected = _mac(key, SIGNED_METHOD, path, rest, principal, expires)
    if not key or not hmac.compare_digest(expected.encode(), mac.encode()):
        raise SignatureError("the signature does not match this URL")
    if now >= expires:
        raise SignatureError("the signed URL has expired: ask POST /signed-urls for a new one")
    return Signed(principal, expires)


def redact(value: str) -> str:
    """A signature as it may be logged: its principal and expiry, not its MAC."""
    principal, dot, rest = value.partition(".")
    expires, dot2, _ = rest.partition(".")
    return f"{principal}.{expires}.***" if dot and dot2 else "***"


def _parts(value: str) -> tuple[str, int, str]:
    principal, _, rest = value.partition(".")
    expires, _, mac = rest.partition(".")
    if not (principal and expires.isascii() and expires.isdigit() and mac) or len(expires) > 12:
        raise SignatureError(f"the {SIGNATURE} argument is not <principal>.<expires>.<mac>")
    return principal, int(expires), mac


def _raw_arguments(query: str) -> list[tuple[str, str]]:
    """Each ``name=value`` item of ``query`` as (its name, the item as sent)."""
    return [(item.partition("=")[0], item) for item in query.split("&") if item]


def _arguments(query: str) -> list[tuple[str, str]]:
    """Each ``name=value`` item of ``query`` as (name, value), neither decoded."""
    return [(name, raw.partition("=")[2]) for name, raw in _raw_arguments(query)]
