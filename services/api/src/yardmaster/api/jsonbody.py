"""JSON request bodies parsed so that no body, however odd, becomes a server error."""

from __future__ import annotations

from typing import Any

from flask.json.provider import DefaultJSONProvider


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, except that a body nested too deeply to parse (``[[[[...``) is a
    ValueError like any other malformed body (so a 400 problem document), not a
    RecursionError (a 500)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("the JSON is nested too deeply") from None
