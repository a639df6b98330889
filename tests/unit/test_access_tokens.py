"""Access tokens: principals, the strict YARDMASTER_API_TOKENS syntax, and the admin token."""

from __future__ import annotations

import pytest

from yardmaster.shared.access import Principal, TokenTable
from yardmaster.shared.errors import ConfigurationError
from yardmaster.shared.settings import load_settings

ADMIN = Principal()
C7 = Principal(7)


@pytest.mark.parametrize(
    ("name", "principal"),
    [("admin", ADMIN), ("customer-7", C7), ("customer-123456", Principal(123456))],
)
def test_a_principal_is_the_admin_or_one_customer(name: str, principal: Principal) -> None:
    parsed = Principal.parse(name)

    assert parsed == principal
    assert parsed.name == name


@pytest.mark.parametrize(
    "name", ["Admin", "root", "customer-", "customer-0", "customer-07", "customer-x", "customer 7"]
)
def test_anything_else_is_an_unknown_principal(name: str) -> None:
    with pytest.raises(ValueError, match="unknown principal"):
        Principal.parse(name)


def test_a_customer_owns_the_jobs_of_its_id_and_the_admin_is_limited_to_none() -> None:
    assert (C7.owner, C7.is_admin) == ("7", False)
    assert (ADMIN.owner, ADMIN.is_admin) == (None, True)


def test_entries_name_a_principal_and_its_token() -> None:
    table = TokenTable.parse(" admin=ym-admin-secret , customer-7=ym-c7-secret,customer-7=c7.new")

    assert table.identify("ym-admin-secret") == ADMIN
    assert table.identify("ym-c7-secret") == C7
    assert table.identify("c7.new") == C7  # several tokens per principal: rotation
    assert table.principals() == ["admin", "customer-7"]
    assert len(table) == 3


@pytest.mark.parametrize("token", [None, "", "ym-c7", "ym-c7-secret2", "YM-C7-SECRET"])
def test_only_an_exact_token_identifies_a_principal(token: str | None) -> None:
    assert TokenTable.parse("customer-7=ym-c7-secret").identify(token) is None


def test_an_empty_setting_is_no_tokens_at_all() -> None:
    assert not TokenTable.parse("  ")
    assert not TokenTable.empty().has_admin


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("admin", "entry 1 (admin) is not principal=token"),
        ("admin=", "entry 1 (admin) is not principal=token"),
        ("=hidden9", "entry 1 is not principal=token"),
        ("admin=tok1,", "entry 2 is not principal=token"),
        ("admin=tok1,,customer-7=tok2", "entry 2 is not principal=token"),
        ("boss=tok1", "entry 1: unknown principal 'boss'"),
        ("customer-7=sp ace", "entry 1 (customer-7): a token may hold only"),
        ("customer-7=semi;colon", "entry 1 (customer-7): a token may hold only"),
        ("admin=dup9,customer-7=dup9", "entry 2 (customer-7): the same token is already given"),
    ],
)
def test_a_malformed_setting_names_the_entry_and_never_shows_a_token(
    value: str, complaint: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"YARDMASTER_API_TOKENS": value})

    message = str(caught.value)
    assert caught.value.variable == "YARDMASTER_API_TOKENS"
    assert complaint in message
    for secret in ("hidden9", "tok1", "tok2", "sp ace", "semi;colon", "dup9"):
        assert secret not in message


def test_the_settings_hold_the_parsed_table_and_their_repr_shows_no_token() -> None:
    settings = load_settings({"YARDMASTER_API_TOKENS": "admin=ym-admin-secret,customer-7=c7-tok"})

    assert settings.api_tokens.identify("c7-tok") == C7
    assert "ym-admin-secret" not in repr(settings)
    assert "c7-tok" not in repr(settings)


def test_the_admin_token_setting_is_one_more_admin_token() -> None:
    settings = load_settings(
        {"YARDMASTER_API_TOKENS": "customer-7=c7-tok", "YARDMASTER_ADMIN_TOKEN": "old-admin"}
    )

    assert settings.access_tokens.identify("old-admin") == ADMIN
    assert settings.access_tokens.identify("c7-tok") == C7
    assert settings.access_tokens.has_admin
    assert not settings.api_tokens.has_admin
    assert "old-admin" not in repr(settings)


def test_the_admin_token_may_not_be_a_customers_token() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(
            {"YARDMASTER_API_TOKENS": "customer-3=c3-tok", "YARDMASTER_ADMIN_TOKEN": "c3-tok"}
        )

    assert caught.value.variable == "YARDMASTER_ADMIN_TOKEN"
    assert "customer-3" in str(caught.value)
    assert "c3-tok" not in str(caught.value)


def test_the_tokens_are_read_from_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YARDMASTER_API_TOKENS", "admin=ym-admin-secret,customer-7=c7-tok")

    assert load_settings().api_tokens.identify("c7-tok") == C7
