"""The headers every answer carries so a browser treats it as what it is, and nothing more.

Every answer: ``X-Content-Type-Options: nosniff`` (a file is never run as another type) and
``Referrer-Policy: no-referrer``. An HTML page also gets ``X-Frame-Options: DENY`` and a
Content-Security-Policy that runs scripts only from this server's files, never inline, and lets
no other site frame it (``frame-ancestors 'none'``). A page shipped with inline scripts or
styles (the API docs, the turn queue page) names each by its SHA-256 hash, computed once from
the page as packaged, never from an answer (a script injected into an answer would otherwise
be allowed too). Every other answer (JSON, files, streams, the static files themselves) gets a
policy that allows nothing, in case a browser is made to open it as a page.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Iterable
from importlib.resources import files as resources_files
from typing import Final

from flask import Flask, Response

CSP: Final = "Content-Security-Policy"
#: Scripts and styles from this server's files only; data: images (the pages' icons).
PAGE_DIRECTIVES: Final = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
#: For anything that is not a page: nothing may load, nothing may frame it.
NOTHING: Final = "default-src 'none'; frame-ancestors 'none'; sandbox"
#: Answers that are pages.
HTML_TYPES: Final = frozenset({"text/html"})

#: An element whose content the browser runs or applies: ``<script>`` without ``src`` (and
#: of a script type) or ``<style>``; its content ends at the first closing tag (HTML's rule).
_INLINE = re.compile(r"<(script|style)\b([^>]*)>", re.IGNORECASE)
_SRC = re.compile(r"\bsrc\s*=", re.IGNORECASE)
_TYPE = re.compile(r"""\btype\s*=\s*["']?([^"'\s>]+)""", re.IGNORECASE)
_SCRIPT_TYPES: Final = frozenset({"", "module", "text/javascript", "application/javascript"})


def _hash(text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def _runs(tag: str, attributes: str) -> bool:
    """True for an inline element a browser runs: a style, or a script block of a script
    type (a ``type="application/json"`` block is data, and never runs)."""
    if tag == "style":
        return True
    kind = _TYPE.search(attributes)
    return not _SRC.search(attributes) and (kind.group(1).lower() if kind else "") in _SCRIPT_TYPES


def inline_hashes(html: str) -> dict[str, list[str]]:
    """The CSP hash sources of the scripts and styles ``html`` carries inline, by tag."""
    found: dict[str, list[str]] = {"script": [], "style": []}
    position = 0
    while match := _INLINE.search(html, position):
        tag = match.group(1).lower()
        start = match.end()
        closing = re.compile(f"</{tag}", re.IGNORECASE).search(html, start)
        end = closing.start() if closing else len(html)
        if _runs(tag, match.group(2)):
            found[tag].append(_hash(html[start:end]))
        position = end
    return found


def page_policy(html: str = "", created_styles: Iterable[str] = ()) -> str:
    """The Content-Security-Policy of a page: :data:`PAGE_DIRECTIVES`, plus the hash of each
    inline script and style of ``html`` (a trusted page: as shipped, not as answered) and of
    each of ``created_styles`` (the text of a ``<style>`` its own scripts add as they run)."""
    directives = dict(PAGE_DIRECTIVES)
    hashed = inline_hashes(html)
    hashed["style"] += [_hash(style) for style in created_styles]
    for tag, hashes in hashed.items():
        if hashes:
            directives[f"{tag}-src"] += " " + " ".join(hashes)
    return "; ".join(f"{name} {value}" for name, value in directives.items())


@functools.cache
def packaged_page(name: str) -> tuple[str, str]:
    """The page ``pages/<name>`` of this package and its policy (read once)."""
    html = resources_files("yardmaster.api").joinpath(f"pages/{name}").read_text()
    return html, page_policy(html)


def html_answer(html: str, policy: str) -> Response:
    """``html`` answered as a page under ``policy`` (see :func:`page_policy`)."""
    response = Response(html, mimetype="text/html")
    response.headers[CSP] = policy
    return response


def add_headers(response: Response) -> Response:
    """``response`` with the headers of this module's description (a policy the view set,
    such as a page's hashes, is kept)."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if response.mimetype in HTML_TYPES:
        headers.setdefault(CSP, page_policy())
        headers.setdefault("X-Frame-Options", "DENY")
    else:
        headers.setdefault(CSP, NOTHING)
    return response


def register(app: Flask) -> None:
    """Give every answer of ``app`` these headers (error answers and refusals included)."""
    app.after_request(add_headers)
