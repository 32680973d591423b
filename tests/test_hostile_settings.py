"""Settings that used to get past the checks: each is refused at load, with one line
naming the key, and exit code 2; none waits for run time (or for mail to be sent)."""

from __future__ import annotations

import json

import pytest

from publisher.config import load_settings
from publisher.errors import ConfigError


def toml_of(section: str, key: str, value) -> str:
    return f"[{section}]\n{key} = {json.dumps(value)}\n"


BAD = [
    ("site", "url", "http://[::1"),
    ("site", "url", "http://[::1]:99999/"),
    ("site", "url", "http://example.org/\r\nX-Injected: 1"),
    ("site", "url", "http://exa mple.org/"),
    ("feeds", "hub", "https://[v1.x/"),
    ("site", "title", "Daily\r\nBcc: victim@example.org"),
    ("site", "title", "Daily\x00News"),
    ("site", "description", "one\nline"),
    ("site", "author", "A\x00"),
    ("mail", "feedback_id", "a:b\r\nBcc: x@example.org"),
    ("ingest", "inbox", "articles\x00"),
    ("feeds", "folder", "feeds\x00/x"),
    ("mail", "maildir", "out\x00box"),
    ("mail", "dkim_key", "key\x00.pem"),
    ("mail", "lease_seconds", 10**20),
    ("mail", "lease_seconds", 2**63),
    ("mail", "keep_days", 10**9),
    ("mail", "keep_days", 3_000_000),
    ("web", "confirm_hours", 10**12),
    ("mail", "timeout", float("inf")),
    ("mail", "rate", float("nan")),
    ("daemon", "poll_seconds", float("inf")),
    ("feeds", "folder", "publisher.toml"),
    ("feeds", "folder", "."),
    ("feeds", "folder", ".."),
    ("feeds", "folder", "articles"),
    ("ingest", "inbox", "publisher.toml"),
    ("mail", "maildir", "publisher.toml"),
    ("store", "url", "sqlite://"),
    ("store", "url", "sqlite:///:memory:"),
    ("store", "url", "sqlite+pysqlite://"),
    ("store", "url", "postgresql+psycopg://[::1/db"),
    ("digest", "subject", "{x}"),
    ("digest", "subject", "{n:>999999999}"),
    ("digest", "subject", "{n:>{n}}"),
    ("digest", "subject", "{site_title.__class__}"),
    ("digest", "subject", "{site_title[0]}"),
    ("digest", "subject", "{0}"),
    ("digest", "subject", "{"),
    ("digest", "subject", "{n:d}" * 400),
]


@pytest.mark.parametrize(("section", "key", "value"), BAD,
                         ids=[f"{s}.{k}={v!r}"[:60] for s, k, v in BAD])
def test_a_bad_setting_is_refused_at_load(tmp_path, section, key, value):
    if (isinstance(value, float) and value != value) or value in (float("inf"),):
        text = f"[{section}]\n{key} = {'nan' if value != value else 'inf'}\n"
    else:
        text = toml_of(section, key, value)
    (tmp_path / "publisher.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, environ={})
    assert caught.value.exit_code == 2
    assert f"{section}.{key}" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_bad_setting_from_the_environment_is_refused_too(tmp_path):
    with pytest.raises(ConfigError, match="PUBLISHER_SITE__TITLE"):
        load_settings(tmp_path, environ={"PUBLISHER_SITE__TITLE": "a\r\nb"})


def test_a_bad_source_is_refused(tmp_path):
    (tmp_path / "publisher.toml").write_text('[[sources]]\nurl = "http://[::1"\n')
    with pytest.raises(ConfigError, match=r"sources\[0\]\.url"):
        load_settings(tmp_path, environ={})


GOOD = [
    ("digest", "subject", "{site_title}: {n} new articles"),
    ("digest", "subject", "{n:>3} new from {site_title!s}"),
    ("digest", "subject", "News {{braces}} {n}"),
    ("site", "title", "Le Monde — Édition du soir"),
    ("mail", "keep_days", 0),
    ("mail", "keep_days", 3650),
    ("mail", "lease_seconds", 86400),
    ("store", "url", "sqlite:///state/publisher.db"),
    ("feeds", "folder", "public/feeds"),
    ("site", "url", "http://[::1]:8080/"),
]


@pytest.mark.parametrize(("section", "key", "value"), GOOD)
def test_good_settings_still_load(tmp_path, section, key, value):
    (tmp_path / "publisher.toml").write_text(toml_of(section, key, value), encoding="utf-8")
    load_settings(tmp_path, environ={})


def test_the_cli_prints_one_line_and_exits_2(run_cli, tmp_path):
    (tmp_path / "publisher.toml").write_text(toml_of("site", "url", "http://[::1"))
    result = run_cli("-C", tmp_path, "run")
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "site.url" in result.stderr
