"""Access tokens: who a token speaks for (a principal), and the table parsed from the settings.

``YARDMASTER_API_TOKENS`` holds comma-separated ``principal=token`` entries, where the
principal is ``admin`` or ``customer-<id>``::

    YARDMASTER_API_TOKENS=admin=ym-admin-secret,customer-7=ym-c7-secret

Shared because the settings parse it (every process agrees on what is a valid value); what a
principal may do is the API's policy (``yardmaster.api.policy``).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

ADMIN = "admin"
CUSTOMER_PREFIX = "customer-"
#: RFC 6750 ``b64token``: what may follow ``Bearer`` in an Authorization header unquoted.
TOKEN_SYNTAX = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_CUSTOMER_NAME = re.compile(r"customer-([1-9][0-9]{0,17})")


@dataclass(frozen=True)
class Principal:
    """Who a request speaks for: the admin (``customer_id`` None) or one customer."""

    customer_id: int | None = None

    @property
    def is_admin(self) -> bool:
        """True for the admin, who may do everything."""
        return self.customer_id is None

    @property
    def name(self) -> str:
        """``admin`` or ``customer-<id>``, as written in ``YARDMASTER_API_TOKENS``."""
        return ADMIN if self.customer_id is None else f"{CUSTOMER_PREFIX}{self.customer_id}"

    @property
    def owner(self) -> str | None:
        """The ``owner`` of the jobs this principal creates and is limited to (None: admin)."""
        return None if self.customer_id is None else str(self.customer_id)

    @classmethod
    def parse(cls, name: str) -> Principal:
        """The principal called ``name``; ValueError unless ``admin`` or ``customer-<id>``."""
        if name == ADMIN:
            return cls()
        match = _CUSTOMER_NAME.fullmatch(name)
        if match is None:
            raise ValueError(f"unknown principal {name!r}: use admin or customer-<id>")
        return cls(int(match.group(1)))


@dataclass(frozen=True, eq=False)
class TokenTable:
    """Tokens and the principal each speaks for; never shows a token in its repr."""

    _entries: Mapping[str, Principal]

    @classmethod
    def empty(cls) -> TokenTable:
        """No tokens at all."""
        return cls(MappingProxyType({}))

    @classmethod
    def parse(cls, text: str) -> TokenTable:
        """Parse ``principal=token,...``; ValueError naming the bad entry (never its token).

        Strict: an empty or malformed entry, an unknown principal, a token outside the
        RFC 6750 syntax or a token given twice is refused. Whitespace around entries is
        ignored; one principal may have several tokens (rotation).
        """
        entries: dict[str, Principal] = {}
        if not text.strip():
            return cls.empty()
        for number, entry in enumerate(text.split(","), start=1):
            name, token = _split_entry(entry.strip(), number)
            try:
                principal = Principal.parse(name)
            except ValueError as exc:
                raise ValueError(f"entry {number}: {exc}") from None
            if token in entries:
                raise ValueError(
                    f"entry {number} ({name}): the same token is already given to "
                    f"{entries[token].name}; every token must be different"
                )
            entries[token] = principal
        return cls(MappingProxyType(entries))

    def with_admin_token(self, token: str) -> TokenTable:
        """This table plus ``token`` (when not empty) for the admin; ValueError if it is
        already some customer's token."""
        if not token:
            return self
        held = self._entries.get(token)
        if held is not None and not held.is_admin:
            raise ValueError(f"the admin token is also {held.name}'s token")
        return TokenTable(MappingProxyType({**self._entries, token: Principal()}))

    def identify(self, token: str | None) -> Principal | None:
        """The principal ``token`` speaks for, or None.

        Compares against every token in constant time per token, so the answer's timing
        does not tell how much of a guess was right.
        """
        if not token:
            return None
        found = None
        for known, principal in self._entries.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                found = principal
        return found

    def derive_key(self, purpose: str) -> bytes:
        """A secret key for ``purpose``, derived from every token with HMAC-SHA256 (b"" for
        no tokens): the same in every process given the same table, whatever its order, and
        useless for finding any token."""
        if not self._entries:
            return b""
        material = "\n".join(sorted(f"{p.name}={t}" for t, p in self._entries.items()))
        return hmac.digest(purpose.encode(), material.encode(), "sha256")

    def speaks_for(self, principal: Principal) -> bool:
        """True if some token of this table speaks for ``principal``."""
        return principal in self._entries.values()

    @property
    def has_admin(self) -> bool:
        """True if some token speaks for the admin."""
        return any(p.is_admin for p in self._entries.values())

    def principals(self) -> list[str]:
        """The principals' names, sorted, each once (safe to log)."""
        return sorted({p.name for p in self._entries.values()})

    def __bool__(self) -> bool:
        return bool(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TokenTable) and dict(self._entries) == dict(other._entries)

    def __hash__(self) -> int:
        return hash(frozenset(self._entries.items()))

    def __repr__(self) -> str:
        return f"TokenTable(principals={self.principals()!r})"

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(cls._coerce)

    @classmethod
    def _coerce(cls, value: Any) -> TokenTable:
        if isinstance(value, TokenTable):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        raise ValueError("must be comma-separated principal=token entries")


def _split_entry(entry: str, number: int) -> tuple[str, str]:
    name, equals, token = entry.partition("=")
    name, token = name.strip(), token.strip()
    if not equals or not name or not token:
        shown = f" ({name})" if name else ""
        raise ValueError(
            f"entry {number}{shown} is not principal=token "
            "(like admin=ym-admin-secret,customer-7=ym-c7-secret)"
        )
    if TOKEN_SYNTAX.fullmatch(token) is None:
        raise ValueError(
            f"entry {number} ({name}): a token may hold only letters, digits and -._~+/ "
            "(then = padding)"
        )
    return name, token
