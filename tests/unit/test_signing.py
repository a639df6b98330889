"""Signed URLs: a signature authorises one GET of one path and query, as one principal, until
it expires; anything changed breaks it. The key is shared by every API process."""

from __future__ import annotations

import pytest

from yardmaster.api.signing import (
    SignatureError,
    Signed,
    TargetError,
    checked_target,
    redact,
    sign,
    verify,
)
from yardmaster.shared.errors import ConfigurationError
from yardmaster.shared.settings import load_settings

KEY = b"k" * 32
NOW = 1_700_000_000
LATER = NOW + 300


def split(url: str) -> tuple[str, str]:
    path, _, query = url.partition("?")
    return path, query


def test_a_signed_url_speaks_for_its_principal_until_it_expires() -> None:
    url = sign(KEY, "/jobs/abc/result", "customer-7", LATER)

    assert url.startswith("/jobs/abc/result?signature=customer-7.1700000300.")
    assert verify(KEY, "GET", *split(url), now=NOW) == Signed("customer-7", LATER)
    assert verify(KEY, "HEAD", *split(url), now=LATER - 1).principal == "customer-7"
    with pytest.raises(SignatureError, match="expired"):
        verify(KEY, "GET", *split(url), now=LATER)


def test_the_query_is_signed_and_the_signature_comes_last() -> None:
    url = sign(KEY, "/jobs/events?job=abc&&x=1", "admin", LATER)

    assert url == f"/jobs/events?job=abc&x=1&signature={url.rsplit('signature=', 1)[1]}"
    assert verify(KEY, "GET", *split(url), now=NOW).principal == "admin"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda u: u.replace("/jobs/abc/", "/jobs/abd/"), "does not match"),  # another path
        (lambda u: u.replace("?", "?job=x&"), "does not match"),  # another query
        (lambda u: u.replace("customer-7.", "customer-8."), "does not match"),  # another principal
        (lambda u: u.replace("customer-7.", "admin."), "does not match"),
        (lambda u: u.replace(".1700000300.", ".1900000000."), "does not match"),  # a later expiry
        (lambda u: u[:-3] + ("AAA" if not u.endswith("AAA") else "BBB"), "does not match"),
        (lambda u: u.split("?")[0] + "?signature=nonsense", "not <principal>"),
        (lambda u: u + "&signature=" + u.rsplit("=", 1)[1], "one signature"),
        (lambda u: u.split("?")[0], "one signature"),
    ],
)
def test_anything_changed_in_a_signed_url_breaks_it(change: object, why: str) -> None:
    url = sign(KEY, "/jobs/abc/result", "customer-7", LATER)
    assert callable(change)

    with pytest.raises(SignatureError, match=why):
        verify(KEY, "GET", *split(change(url)), now=NOW)


def test_a_signature_is_for_get_only_and_under_its_own_key() -> None:
    url = sign(KEY, "/jobs", "admin", LATER)

    with pytest.raises(SignatureError, match="GET requests only"):
        verify(KEY, "POST", *split(url), now=NOW)
    with pytest.raises(SignatureError, match="does not match"):
        verify(b"another key" * 3, "GET", *split(url), now=NOW)
    with pytest.raises(SignatureError, match="does not match"):
        verify(b"", "GET", *split(url), now=NOW)


def test_the_path_is_signed_as_routed_so_an_encoded_path_verifies_decoded() -> None:
    url = sign(KEY, "/sites/caf%C3%A9", "admin", LATER)

    assert verify(KEY, "GET", "/sites/café", split(url)[1], now=NOW).principal == "admin"


@pytest.mark.parametrize(
    "target",
    [
        "jobs",
        "//evil.example/jobs",
        "https://evil.example/jobs",
        "/jobs#top",
        "/jobs?a=b c",
        "/jobs/é",
        "/jobs?signature=x",
        "/" + "a" * 3000,
    ],
)
def test_only_a_path_on_this_server_without_a_signature_can_be_signed(target: str) -> None:
    with pytest.raises(TargetError):
        checked_target(target)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("customer-7.1700000300.2KxAbC_-9", "customer-7.1700000300.***"),
        ("admin.1.x", "admin.1.***"),
        ("forged", "***"),
        ("", "***"),
    ],
)
def test_a_logged_signature_keeps_who_and_until_when_but_never_its_mac(
    value: str, shown: str
) -> None:
    assert redact(value) == shown


def test_every_api_process_given_the_same_tokens_derives_the_same_key() -> None:
    one = load_settings({}, api_tokens="admin=ym-admin-secret,customer-7=ym-c7-secret")
    other = load_settings({}, api_tokens="customer-7=ym-c7-secret, admin=ym-admin-secret")
    rotated = load_settings({}, api_tokens="admin=ym-admin-secret,customer-7=ym-c7-next")

    assert len(one.signing_key) == 32
    assert one.signing_key == other.signing_key
    assert rotated.signing_key != one.signing_key
    assert b"ym-admin-secret" not in one.signing_key
    assert load_settings({}).signing_key == b""


def test_an_explicit_signing_key_wins_and_must_be_long_enough() -> None:
    key = "s" * 16
    settings = load_settings(
        {"YARDMASTER_URL_SIGNING_KEY": key, "YARDMASTER_API_TOKENS": "admin=ym-admin-secret"}
    )

    assert settings.signing_key == key.encode()
    with pytest.raises(ConfigurationError, match="YARDMASTER_URL_SIGNING_KEY") as refused:
        load_settings({"YARDMASTER_URL_SIGNING_KEY": "short"})
    assert "short" not in str(refused.value)  # a secret is never repeated
