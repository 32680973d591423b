"""Instances: a folder with publisher.toml; `publisher init` makes one.

`Instance` is what every command gets: the folder, its settings loaded once, the store
opened on first use, and the clock every command reads `now` from (publisher.clock).
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
from datetime import datetime
from functools import cached_property
from pathlib import Path

from publisher.clock import Clock, system_clock
from publisher.config import CONFIG_NAME, SECTIONS, Settings, load_settings, toml_key
from publisher.errors import PublisherError, SettingsFileError
from publisher.store import Store, open_store

FOLDERS = ("articles", "templates", "feeds", "subscribers")


@dataclasses.dataclass(frozen=True)
class Identity:
    """What `publisher init` asks: who the site is. None keeps the built-in default."""

    title: str | None = None
    url: str | None = None
    sender: str | None = None
    timezone: str | None = None


class NotAnInstance(PublisherError):
    exit_code = 2

    def __init__(self, folder: Path):
        super().__init__(
            f"not a Publisher instance: no {CONFIG_NAME} in {folder}; "
            "run `publisher init DIR` or pass -C DIR")


def require_instance(folder: Path) -> Path:
    """Commands other than init work only in an instance, and create nothing elsewhere."""
    if not (folder / CONFIG_NAME).is_file():
        raise NotAnInstance(folder)
    return folder


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


def init_instance(folder: Path, identity: Identity = Identity()) -> Path:
    """Create an instance: settings with every key (the identity filled in), and the
    empty folders."""
    config = refuse_existing(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in FOLDERS:
        (folder / name).mkdir(exist_ok=True)
    settings = identified(Settings(instance=folder), identity)
    config.write_text(render_toml(settings, secret=secrets.token_urlsafe(32)),
                      encoding="utf-8")
    return config


def refuse_existing(folder: Path) -> Path:
    """The settings file to write; an error if there is one already (nothing asked)."""
    config = folder / CONFIG_NAME
    if config.exists():
        raise SettingsFileError(str(config), f"{config} already exists: edit the existing "
                                "file instead")
    return config


def identified(settings: Settings, identity: Identity) -> Settings:
    site = {k: v for k, v in (("title", identity.title), ("url", identity.url),
                              ("timezone", identity.timezone)) if v is not None}
    if identity.title is not None:
        site["description"] = f"News from {identity.title}."
    mail = {"from_": identity.sender} if identity.sender is not None else {}
    return dataclasses.replace(settings, site=dataclasses.replace(settings.site, **site),
                               mail=dataclasses.replace(settings.mail, **mail))


def render_toml(settings: Settings | None, secret: str = "", masked: bool = False) -> str:
    """The settings as a commented TOML file: every key, its documentation, its value;
    `masked` hides secrets and the passwords in URLs (what `publisher config` prints)."""
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
            if masked:
                value = mask(name, f.name, value)
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
        shown = [(f, getattr(source, f.name)) for f in dataclasses.fields(source)]
        lines += ["", "[[sources]]"] + [
            f"{toml_key(f)} = {toml_value(mask('sources', f.name, v) if masked else v)}"
            for f, v in shown]
    for hook in settings.webhooks if settings else ():
        shown = [(f, getattr(hook, f.name)) for f in dataclasses.fields(hook)]
        lines += ["", "[[webhooks]]"] + [
            f"{toml_key(f)} = {toml_value(mask('webhooks', f.name, v) if masked else v)}"
            for f, v in shown]
    return "\n".join(lines) + "\n"


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        value = list(value)
    # JSON strings, numbers and arrays of strings are valid TOML as written.
    return json.dumps(value, ensure_ascii=False)


SECRET_KEYS = {("web", "secret"), ("webhooks", "secret")}
URL_PASSWORD = re.compile(r"^([a-z][a-z0-9+.-]*://[^:/@]*:)([^@/]*)(@)", re.I)


def mask(section: str, key: str, value: object) -> object:
    """A secret shown as '********' (its length hidden too); a URL's password likewise."""
    if not isinstance(value, str) or not value:
        return value
    if (section, key) in SECRET_KEYS:
        return "********"
    return URL_PASSWORD.sub(r"\1********\3", value)
