"""Who may make which request: values in, values out (no Flask, no settings, no clock).

Every request is classified by method and path into what it needs (:class:`Need`); the
decision then weighs that need against how the API runs (open or with tokens) and who the
request's token speaks for. What a customer may *see* (its own jobs only) is decided per
resource by :func:`may_see_owner`; the views answer 404 for anything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from yardmaster.shared.access import Principal


class Need(StrEnum):
    """What a request needs to be let through."""

    OPEN = "open"  # anyone, always
    TOKEN = "token"  # any valid token (customers are then limited to what they own)
    ADMIN = "admin"  # an admin token
    ADMIN_ALWAYS = "admin-always"  # an admin token even when the API runs open


class Access(StrEnum):
    """How the API runs: open to anyone, or behind tokens (``YARDMASTER_API_TOKENS`` set)."""

    OPEN = "open"
    TOKENS = "tokens"


@dataclass(frozen=True)
class Rule:
    """Requests whose method is in ``methods`` (empty: any) and whose path matches ``path``."""

    methods: frozenset[str]
    path: re.Pattern[str]
    need: Need

    def matches(self, method: str, path: str) -> bool:
        """True if this rule covers ``method path``."""
        return (not self.methods or method in self.methods) and bool(self.path.fullmatch(path))


def _rule(methods: str, path: str, need: Need) -> Rule:
    return Rule(frozenset(methods.split()), re.compile(path), need)


CHANGES = "POST PUT PATCH DELETE"
#: First match wins; a request no rule covers needs a token (closed by default).
RULES: tuple[Rule, ...] = (
    _rule("OPTIONS", r".*", Need.OPEN),
    _rule("DELETE", r"/queue/bans/[^/]+", Need.ADMIN_ALWAYS),
    _rule("", r"/queue(/.*)?", Need.OPEN),  # public; it has its own bans by address
    _rule("", r"/|/favicon\.ico|/static/.*", Need.OPEN),  # the dashboard and its files
    _rule("", r"/healthz|/readyz|/metrics|/whoami", Need.OPEN),
    _rule("", r"/openapi\.json|/docs(/.*)?|/apidoc(/.*)?", Need.OPEN),
    _rule(CHANGES, r"/imports(/.*)?", Need.ADMIN),  # store data is platform-wide
    _rule(CHANGES, r"/(sites|customers)(/.*)?", Need.ADMIN),
    _rule("GET HEAD", r"/customers/?", Need.ADMIN),  # every customer's personal data
)


def need_of(method: str, path: str) -> Need:
    """What ``method path`` needs; anything not listed needs a token."""
    method = method.upper()
    for rule in RULES:
        if rule.matches(method, path):
            return rule.need
    return Need.TOKEN


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused: 401 (no valid token) or 403 (not allowed with it)."""

    status: int
    detail: str


ASK_FOR_TOKEN = (
    "send Authorization: Bearer <token> (a link or stream that cannot send it: use the signed "
    "URL that POST /signed-urls gives)"
)
#: The query argument that once carried tokens: refused on every request, so that no token
#: lands in a log, a browser history or a Referer header.
QUERY_TOKEN = "access_token"
QUERY_TOKEN_REFUSAL = Refusal(
    400,
    f"tokens are not accepted in the query string (?{QUERY_TOKEN}=); {ASK_FOR_TOKEN}",
)


def refusal(
    need: Need,
    access: Access,
    principal: Principal | None,
    *,
    presented: bool,
    admin_exists: bool,
) -> Refusal | None:
    """Why a request needing ``need`` is refused, or None to let it through.

    ``principal`` is who the presented token speaks for (None: no token, or an unknown one;
    ``presented`` tells which); ``admin_exists`` whether any admin token is configured.
    """
    if need is Need.OPEN:
        return None
    if need is Need.ADMIN_ALWAYS and not admin_exists:
        return Refusal(
            403, "no admin token is configured (YARDMASTER_API_TOKENS or YARDMASTER_ADMIN_TOKEN)"
        )
    if access is Access.OPEN and need is not Need.ADMIN_ALWAYS:
        return None
    if principal is None:
        reason = "the token is not valid" if presented else "this request needs a token"
        return Refusal(401, f"{reason}: {ASK_FOR_TOKEN}")
    if need in (Need.ADMIN, Need.ADMIN_ALWAYS) and not principal.is_admin:
        return Refusal(403, f"this request needs an admin token, not {principal.name}'s")
    return None


def may_see_owner(principal: Principal | None, owner: str | None) -> bool:
    """True if ``principal`` may see and control what ``owner`` owns.

    None (the API runs open) and the admin see everything; a customer only its own.
    """
    return principal is None or principal.is_admin or owner == principal.owner


def presented_token(authorization: str | None) -> str | None:
    """The token a request presents, or None: the ``Bearer`` credentials of its
    Authorization header (other schemes present an empty token). Never the query string."""
    if authorization:
        scheme, _, credentials = authorization.strip().partition(" ")
        return credentials.strip() if scheme.lower() == "bearer" else ""
    return None
