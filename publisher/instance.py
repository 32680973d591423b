"""Instances: a folder with publisher.toml; `publisher init` makes one.

`Instance` is what every command gets: the folder, its settings loaded once, the store
opened on first use, and the clock every command reads `now` from (publisher.clock).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from datetime import datetime
from functools import cached_property
from pathlib import Path

from publisher.clock import Clock, system_clock
from publisher.config import CONFIG_NAME, SECTIONS, Settings, load_settings, toml_key
from publisher.errors import ConfigError
from publisher.store import Store, open_store

FOLDERS = ("articles", "templates", "feeds", "subscribers")


class Instance:
    def __init__(self, folder: Path, clock: Clock = system_clock):
        self.folder = folder
        self.clock = clock

    def now(self) -> datetime:
        return self.clock()

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.folder)

    @cached_property
    def store(self) -> Store:
        return open_store(self.settings.database_url, clock=self.clock)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()


def init_instance(folder: Path) -> Path:
    """Create an instance: settings with every key, and the empty folders."""
    config = folder / CONFIG_NAME
    if config.exists():
        raise ConfigError(str(config), "(exists)", "a folder without publisher.toml; "
                          "edit the existing file instead")
    folder.mkdir(parents=True, exist_ok=True)
    for name in FOLDERS:
        (folder / name).mkdir(exist_ok=True)
    config.write_text(render_toml(None, secret=secrets.token_urlsafe(32)), encoding="utf-8")
    return config


def render_toml(settings: Settings | None, secret: str = "") -> str:
    """The settings as a commented TOML file: every key, its documentation, its value."""
    lines = [
        "# Publisher settings. Every key is shown with its default; edit what you need.",
        "# Any key can also be set by the environment: PUBLISHER_<SECTION>__<KEY>,",
        "# for example PUBLISHER_MAIL__TRANSPORT=smtp.",
        "",
    ]
    for name, cls in SECTIONS.items():
        section = getattr(settings, name) if settings else cls()
        lines.append(f"[{name}]")
        for f in dataclasses.fields(cls):
            value = getattr(section, f.name)
            if name == "web" and f.name == "secret" and secret:
                value = secret
            lines += [f"# {f.metadata['doc']}", f"{toml_key(f)} = {toml_value(value)}"]
        lines.append("")
    lines += [
        "# Upstream feeds to take articles from; one [[sources]] table each.",
        "# [[sources]]",
        '# url = "https://example.org/feed.xml"',
        '# name = "example"',
        '# sections = ["world"]',
        "# interval = 900          # seconds between fetches",
        "# timeout = 30.0          # seconds to wait for the server",
        "# unhealthy_after = 3     # failures in a row before status says unhealthy",
    ]
    lines += [
        "",
        "# Receivers of events (subscriber.confirmed, subscriber.unsubscribed,",
        "# subscriber.bounced, digest.sent), POSTed as JSON with an HMAC-SHA256 signature.",
        "# [[webhooks]]",
        '# url = "https://crm.example.org/hooks/publisher"',
        '# secret = "a long random string shared with the receiver"',
        '# events = ["subscriber.confirmed", "subscriber.unsubscribed"]   # default: all',
        "# timeout = 10.0          # seconds to wait for the receiver",
    ]
    for source in settings.sources if settings else ():
        lines += ["", "[[sources]]"] + [
            f"{toml_key(f)} = {toml_value(getattr(source, f.name))}"
            for f in dataclasses.fields(source)]
    for hook in settings.webhooks if settings else ():
        lines += ["", "[[webhooks]]"] + [
            f"{toml_key(f)} = {toml_value(getattr(hook, f.name))}"
            for f in dataclasses.fields(hook)]
    return "\n".join(lines) + "\n"


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        value = list(value)
    # JSON strings, numbers and arrays of strings are valid TOML as written.
    return json.dumps(value, ensure_ascii=False)
