"""A small typed client of the Yardmaster API over requests: one method per API call.

Every error answer is raised as :class:`ApiError` (with the problem document), every failure
to reach the API as :class:`UnreachableError`; callers only ever see successful answers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from yardmaster.cli.errors import ApiError, UnreachableError
from yardmaster.cli.formatting import problem_line

JSON = dict[str, Any]


class ApiClient:
    """The API at ``base`` (``http://host:port``), as ``token``'s bearer if one is given."""

    def __init__(
        self,
        base: str,
        token: str | None = None,
        timeout: float = 30.0,
        session: requests.Session | None = None,
    ) -> None:
        self.base = base.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send one request; a successful answer, or :class:`ApiError`/:class:`UnreachableError`."""
        try:
            response = self.session.request(
                method, self.base + path, timeout=self.timeout, **kwargs
            )
        except requests.Timeout:
            raise UnreachableError(
                f"{self.base} did not answer within {self.timeout:g} s"
            ) from None
        except requests.RequestException as exc:
            raise UnreachableError(f"cannot reach {self.base}: {_reason(exc)}") from None
        if response.status_code >= 400:
            raise api_error(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> JSON:
        """The JSON object of a successful answer."""
        body = self.request(method, path, **kwargs).json()
        return body if isinstance(body, dict) else {"items": body}

    def whoami(self) -> JSON:
        return self.json("GET", "/whoami")

    def list_jobs(
        self,
        states: list[str],
        kinds: list[str],
        owner: str | None,
        page: int = 1,
        per_page: int = 50,
    ) -> JSON:
        params: dict[str, Any] = {"page": page, "per_page": per_page}
        if states:
            params["state"] = ",".join(states)
        if kinds:
            params["kind"] = ",".join(kinds)
        if owner:
            params["owner"] = owner
        return self.json("GET", "/jobs", params=params)

    def job(self, job_id: str) -> JSON:
        return self.json("GET", f"/jobs/{_segment(job_id)}")

    def control(self, job_id: str, action: str) -> JSON:
        """``action`` is pause, resume or stop."""
        return self.json("POST", f"/jobs/{_segment(job_id)}/{action}")

    def result(self, job_id: str) -> requests.Response:
        """The finished job's result file, streamed."""
        return self.request("GET", f"/jobs/{_segment(job_id)}/result", stream=True)

    def trigger_report(self) -> JSON:
        return self.json("POST", "/trigger_report")

    def report(self, report_id: str) -> requests.Response:
        """``GET /get_report``: JSON while not complete, then the CSV (streamed)."""
        return self.request(
            "GET",
            "/get_report",
            params={"report_id": report_id},
            headers={"Accept": "text/csv, application/json;q=0.9"},
            stream=True,
        )

    def import_file(self, path: Path, table: str, mode: str | None) -> JSON:
        form = {"table": table, **({"mode": mode} if mode else {})}
        with open(path, "rb") as handle:
            return self.json("POST", "/imports", data=form, files={"file": (path.name, handle)})

    def export(self, start: str, till: str) -> JSON:
        return self.json("POST", "/exports", json={"from": start, "till": till})

    def take_token(self) -> JSON:
        return self.json("POST", "/queue/tokens")

    def redeem(self, token: str, claim: str) -> JSON:
        return self.json("POST", "/queue/redeem", json={"token": token, "claim": claim})

    def release(self, token: str, claim: str) -> JSON:
        return self.json("POST", "/queue/release", json={"token": token, "claim": claim})


def api_error(response: requests.Response) -> ApiError:
    """The error answer as an exception carrying its problem document."""
    try:
        body = response.json()
    except ValueError:
        body = None
    problem: JSON = body if isinstance(body, dict) else {}
    message = problem_line(response.status_code, response.reason or "", problem)
    return ApiError(message, response.status_code, problem)


def chunks(response: requests.Response) -> Iterator[bytes]:
    """A streamed answer's body, piece by piece (a cut connection is an UnreachableError)."""
    try:
        yield from response.iter_content(chunk_size=64 * 1024)
    except requests.RequestException as exc:
        raise UnreachableError(f"the download was cut off: {_reason(exc)}") from None
    finally:
        response.close()


def _segment(value: str) -> str:
    """``value`` as one URL path segment: a job id never reaches another path."""
    return quote(value, safe="")


def _reason(exc: requests.RequestException) -> str:
    """What went wrong in a few words ("Connection refused"), not urllib3's whole chain."""
    message = str(exc)
    errno = re.search(r"\[Errno -?\d+\] ([^'\")]+)", message)
    if errno:
        return errno.group(1).strip()
    return " ".join(message.split()) or type(exc).__name__
