"""Signed link tokens, address normalization and header-text validation."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from publisher import tokens
from publisher.addresses import check_header_text, normalize_address
from publisher.config import load_settings
from publisher.errors import AddressError, ConfigError
from tests.support import NOW


@pytest.fixture
def settings(tmp_path):
    (tmp_path / "publisher.toml").write_text(
        '[web]\nsecret = "0123456789abcdef0123456789abcdef"\n'
        '[site]\nurl = "https://news.example.org/"\n')
    return load_settings(tmp_path, environ={})


def test_token_round_trip_and_link(settings):
    token = tokens.sign(settings, "unsubscribe", 42, 3, now=NOW)
    assert tokens.verify(settings, "unsubscribe", token, now=NOW) == tokens.TokenData(42, 3)
    url = tokens.link(settings, "preferences", 42, now=NOW)
    assert url.startswith("https://news.example.org/preferences/")


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
    lambda t: "x" + t,
    lambda t: "",
    lambda t: "not-a-token",
])
def test_altered_tokens_are_refused(settings, mangle):
    token = tokens.sign(settings, "unsubscribe", 42, now=NOW)
    with pytest.raises(tokens.TokenError):
        tokens.verify(settings, "unsubscribe", mangle(token), now=NOW)


def test_token_for_one_purpose_fails_for_another(settings):
    token = tokens.sign(settings, "unsubscribe", 42, now=NOW)
    with pytest.raises(tokens.TokenError):
        tokens.verify(settings, "preferences", token, now=NOW)


def test_token_from_another_secret_fails(settings):
    other = replace(settings, web=replace(settings.web, secret="another-secret-of-enough-length"))
    with pytest.raises(tokens.TokenError):
        tokens.verify(settings, "confirm", tokens.sign(other, "confirm", 1, now=NOW), now=NOW)


def test_a_token_expires_by_the_clock_it_is_given(settings):
    token = tokens.sign(settings, "confirm", 1, now=NOW)
    hour = timedelta(hours=1)
    assert tokens.verify(settings, "confirm", token, now=NOW + hour, max_age_seconds=3600) \
        == tokens.TokenData(1, 0)
    with pytest.raises(tokens.TokenError, match="expired"):
        tokens.verify(settings, "confirm", token, now=NOW + hour + timedelta(seconds=1),
                      max_age_seconds=3600)


def test_the_timestamp_is_the_given_now_not_the_system_clock(settings):
    # Signed at two instants years apart, checked at each: only the age counts.
    for when in (NOW, NOW.replace(year=2031)):
        token = tokens.sign(settings, "confirm", 1, now=when)
        assert tokens.verify(settings, "confirm", token, now=when, max_age_seconds=1) \
            == tokens.TokenData(1, 0)


def test_empty_secret_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"web\.secret"):
        tokens.sign(load_settings(tmp_path, environ={}), "confirm", 1, now=NOW)


def test_addresses_are_normalized_or_refused():
    assert normalize_address("  Ada@Example.ORG ") == "ada@example.org"
    for bad in ("no-at-sign", "a@b@c.org", "x@example.org\r\nBcc: y@z.org", "a b@example.org"):
        with pytest.raises(AddressError):
            normalize_address(bad)


@pytest.mark.parametrize("text", [
    "Eve\r\nBcc: victim@example.org",
    "=?UTF-8?Q?=0A?=Bcc: x@y.org",  # CVE-2024-6923: an encoded newline
    "=?utf-8?b?SGVsbG8KQmNjOiB4?=",
    "line\u2028separator",
])
def test_header_text_with_hidden_line_breaks_is_refused(text):
    with pytest.raises(AddressError):
        check_header_text("name", text)


def test_plain_and_encoded_names_pass():
    assert check_header_text("name", "José Martí") == "José Martí"
    assert check_header_text("name", "=?UTF-8?Q?Jos=C3=A9?=") == "=?UTF-8?Q?Jos=C3=A9?="


def test_subscriber_store_add_change_and_duplicates(store):
    added = store.subscribers.add("ada@example.org", NOW, name="Ada", sections=["world"])
    assert added.status == "pending" and added.sections == ("world",)
    assert added.created_at == NOW and added.confirmed_at is None
    with pytest.raises(AddressError, match="already subscribed"):
        store.subscribers.add("ada@example.org", NOW)
    active = store.subscribers.change(added.id, NOW, status="active", frequency="weekly")
    assert active.status == "active" and active.confirmed_at == NOW
    assert store.subscribers.by_email("ada@example.org").frequency == "weekly"
    assert store.subscribers.count_by_status() == {"active": 1}
    with pytest.raises(AddressError, match="frequency 'hourly'"):
        store.subscribers.change(added.id, NOW, frequency="hourly")
