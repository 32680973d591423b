"""Settings: defaults, the file, environment overrides, and errors that name the key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from publisher.config import SECTIONS, load_settings
from publisher.errors import ConfigError
from publisher.instance import init_instance


def make(tmp_path: Path, toml: str = "") -> Path:
    (tmp_path / "publisher.toml").write_text(toml, encoding="utf-8")
    return tmp_path


def test_defaults_without_a_file(tmp_path):
    settings = load_settings(tmp_path, environ={})
    assert settings.mail.transport == "maildir" and settings.feeds.items == 50
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'publisher.db'}"


def test_init_writes_every_key_commented_and_a_secret(tmp_path):
    init_instance(tmp_path / "x")
    text = (tmp_path / "x" / "publisher.toml").read_text()
    data = tomllib.loads(text)
    for name, cls in SECTIONS.items():
        assert set(data[name]) == {f.name.rstrip("_") for f in cls.__dataclass_fields__.values()}
    assert len(data["web"]["secret"]) >= 32
    assert text.count("\n# ") >= sum(len(c.__dataclass_fields__) for c in SECTIONS.values())
    for folder in ("articles", "templates", "feeds", "subscribers"):
        assert (tmp_path / "x" / folder).is_dir()
    loaded = load_settings(tmp_path / "x", environ={})
    assert loaded.site.title == "Publisher demo"


def test_init_refuses_to_overwrite(tmp_path):
    init_instance(tmp_path)
    with pytest.raises(ConfigError, match="edit the existing file"):
        init_instance(tmp_path)


def test_environment_overrides_the_file(tmp_path):
    folder = make(tmp_path, '[mail]\ntransport = "maildir"\n[feeds]\nitems = 10\n')
    settings = load_settings(folder, environ={
        "PUBLISHER_MAIL__TRANSPORT": "smtp",
        "PUBLISHER_MAIL__SMTP_URL": "smtp://127.0.0.1:2525",
        "PUBLISHER_FEEDS__ITEMS": "7",
        "PUBLISHER_MAIL__RATE": "2.5",
    })
    assert settings.mail.transport == "smtp" and settings.mail.smtp_url.endswith(":2525")
    assert settings.feeds.items == 7 and settings.mail.rate == 2.5


def test_settings_are_frozen(tmp_path):
    settings = load_settings(tmp_path, environ={})
    with pytest.raises(AttributeError):
        settings.site.title = "x"  # type: ignore[misc]


@pytest.mark.parametrize("toml, env, message", [
    ('[mail]\ntransport = "pigeon"\n', {},
     "mail.transport = 'pigeon' is not valid: expected maildir or smtp"),
    ("[feeds]\nitems = 0\n", {}, "feeds.items = 0 is not valid: expected a number above 0"),
    ('[feeds]\nitems = "ten"\n', {}, "feeds.items = 'ten' is not valid: expected an integer"),
    ('[site]\ntimezone = "Mars/Olympus"\n', {}, "site.timezone = 'Mars/Olympus'"),
    ('[site]\nurl = "example.org"\n', {}, "expected an absolute http:// or https:// URL"),
    ('[site]\ntitel = "x"\n', {}, "unknown setting 'titel' in [site] (did you mean 'title'?)"),
    ('[sitee]\n', {}, "[sitee]"),
    ('[digest]\ndaily_at = "25:00"\n', {}, "a 24-hour time HH:MM"),
    ('[mail]\nfrom = "a@b.org\\nBcc: x@y.org"\n', {}, "on one line"),
    ("", {"PUBLISHER_FEEDS__ITEMS": "many"}, "PUBLISHER_FEEDS__ITEMS = 'many'"),
    ("", {"PUBLISHER_MAIL__SMTP_URL": "http://x"}, "mail.smtp_url (from PUBLISHER_MAIL__SMTP_URL)"),
    ("[site\n", {}, "publisher.toml line 1: Expected ']'"),
    ('[[sources]]\nname = "x"\n', {}, "sources[0].url"),
    ("[feeds]\nprocesses = true\n", {}, "expected an integer"),
    ('[mail]\nrate = "fast"\n', {}, "expected a number"),
    ("[web]\nmetrics = 1\n", {}, "expected true or false"),
    ("[site]\ntitle = 3\n", {}, "expected text in quotes"),
])
def test_bad_settings_name_the_key_value_and_what_is_accepted(tmp_path, toml, env, message):
    with pytest.raises(ConfigError) as caught:
        load_settings(make(tmp_path, toml), environ=env)
    assert message in str(caught.value)
    assert caught.value.exit_code == 2


def test_sources_are_read(tmp_path):
    folder = make(tmp_path, '[[sources]]\nurl = "http://127.0.0.1:9/feed.xml"\n'
                            'sections = ["world"]\ninterval = 60\n')
    (source,) = load_settings(folder, environ={}).sources
    assert source.name == source.url and source.sections == ("world",) and source.interval == 60
