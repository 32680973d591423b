"""Settings: typed, frozen, validated once at load from publisher.toml and the environment.

Every key is declared once below with its default and its documentation; `publisher init`
writes the commented file from these declarations, so the docs cannot drift from the code.
`PUBLISHER_<SECTION>__<KEY>` environment variables override the file. Raw dicts never
leave this module.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from publisher.config.checks import (
    check_database_url,
    check_folders,
    check_postal_address,
    check_subject,
    check_value,
)
from publisher.errors import ConfigError, SettingsFileError, setting_errors

CONFIG_NAME = "publisher.toml"
ENV_PREFIX = "PUBLISHER_"


def setting(default: Any, doc: str, check: str | None = None) -> Any:
    """Declare a key: its default, one line of documentation, and an optional check name."""
    return field(default=default, metadata={"doc": doc, "check": check})


@dataclass(frozen=True)
class SiteSettings:
    title: str = setting("Publisher demo", "Site name, used in feeds, pages and mail.")
    url: str = setting("http://127.0.0.1:8080/", "Public base URL of the site.", "http_url")
    description: str = setting("News from the Publisher demo.", "One line about the site.")
    language: str = setting("en", "Language tag of the content (BCP 47).", "language")
    author: str = setting("", "Author of articles that name none; empty: pages show no "
                          "byline for them and feeds name the site.")
    timezone: str = setting("UTC", "Time zone for dates shown to readers.", "timezone")
    icon: str = setting("", "The site's icon: a URL, or a path in the publish folder; "
                        "empty: a letter mark made from the title (favicon.svg).")

    @property
    def base_url(self) -> str:
        """[site] url ending in "/", so a relative path joins under it (every link we make)."""
        return self.url if self.url.endswith("/") else self.url + "/"


@dataclass(frozen=True)
class StoreSettings:
    url: str = setting(
        "",
        "SQLAlchemy URL; empty means publisher.db in the instance. "
        "PostgreSQL: postgresql+psycopg://user:pass@host/db",
        "database_url",
    )


@dataclass(frozen=True)
class IngestSettings:
    inbox: str = setting("articles", "Folder scanned for new .txt and .md articles.")
    max_bytes: int = setting(10_000_000, "Larger inbox files are quarantined.", "positive")
    max_markdown_bytes: int = setting(
        262_144, "Larger Markdown files are quarantined: rendering Markdown costs up to "
        "100 microseconds a byte on hostile input.", "positive")
    recheck_per_pass: int = setting(
        1000, "Inbox files each full pass stats again in case they were edited in place "
        "(a folder's unchanged listing is not read); an inbox of up to this many files is "
        "checked whole on every pass, a bigger one within ceil(files / this) passes; "
        "0: only `publisher ingest --rescan`.", "non_negative")


@dataclass(frozen=True)
class FeedsSettings:
    folder: str = setting("feeds", "Publish folder for feeds and archive pages.")
    items: int = setting(50, "Articles in each live feed; older ones go to archive pages.",
                         "positive")
    hub: str = setting("", "WebSub hub URL to ping after a feed changes; empty: none.",
                       "http_url_or_empty")
    processes: int = setting(2, "Processes a long build pass (archive and article pages) "
                             "may run in; 1: never fork.", "positive")


@dataclass(frozen=True)
class MailSettings:
    transport: str = setting("maildir", "How mail leaves: maildir (files) or smtp.", "transport")
    from_: str = setting("Publisher demo <news@example.org>", "From header of every message.",
                         "mailbox")
    reply_to: str = setting("", "Reply-To header; empty: none.", "mailbox_or_empty")
    bounce: str = setting("", "Envelope sender (Return-Path); empty: the From address.",
                          "mailbox_or_empty")
    smtp_url: str = setting("smtp://127.0.0.1:25", "smtp://user:pass@host:port "
                            "(STARTTLS when offered) or smtps:// (implicit TLS).", "smtp_url")
    maildir: str = setting("outbox", "Maildir folder the maildir transport writes to.")
    connections: int = setting(10, "SMTP connections kept open and reused.", "positive")
    rate: float = setting(0.0, "Messages per second at most; 0: no limit.", "non_negative")
    timeout: float = setting(30.0, "Seconds to wait for the SMTP server.", "positive")
    max_attempts: int = setting(10, "Attempts before a deferred message fails.", "positive")
    bounce_after: int = setting(3, "Consecutive 5xx failures that mark a subscriber bounced.",
                                "positive")
    lease_seconds: int = setting(600, "A message left 'sending' this long is sent again.",
                                 "positive")
    keep_days: int = setting(30, "Days sent messages stay in the outbox ledger; 0: forever.",
                             "non_negative")
    feedback_id: str = setting("", "Feedback-ID header value; empty: none.")
    dkim_key: str = setting("", "Path of a PEM private key to DKIM-sign with; empty: off.")
    dkim_selector: str = setting("", "DKIM selector (the DNS name's first label).")
    dkim_domain: str = setting("", "DKIM signing domain (d=); empty: the From domain.")
    postal_address: str = setting("", "Postal address shown in the footer of every digest "
                                  "and welcome mail (CAN-SPAM asks one of commercial mail); "
                                  "empty: none.", "postal_address")


@dataclass(frozen=True)
class DigestSettings:
    daily_at: str = setting("07:00", "Local time daily digests go out (HH:MM).", "clock")
    weekly_on: str = setting("monday", "Day weekly digests go out.", "weekday")
    timezone: str = setting("", "Default subscriber time zone; empty: [site] timezone.",
                            "timezone_or_empty")
    max_articles: int = setting(20, "Articles in one digest; the rest are linked.", "positive")
    first_digest_recent: int = setting(0, "Recent articles a new subscriber's first digest "
                                       "holds; 0: only what arrives after they join.",
                                       "non_negative")
    subject: str = setting("", "Subject; empty: the template digest_subject.txt (\"1 new "
                           "article\", \"3 new articles\"); else text with {site_title} and "
                           "{n} filled in.", "subject")
    welcome: bool = setting(True, "Send a welcome mail when someone confirms (or is added "
                            "confirmed by `subscribers add` or the API).")
    welcome_articles: int = setting(3, "Latest articles (of their sections) the welcome mail "
                                    "shows; 0: none.", "welcome_articles")


@dataclass(frozen=True)
class WebSettings:
    host: str = setting("127.0.0.1", "Address `publisher serve` listens on.")
    port: int = setting(8080, "Port `publisher serve` listens on.", "port")
    secret: str = setting("", "Key that signs every token a link carries; "
                          "`publisher init` writes a random one.")
    confirm_hours: int = setting(72, "Hours a confirmation link stays valid.", "positive")
    subscribe_per_minute: int = setting(5, "Subscribe requests one client (an IPv4 address, "
                                        "an IPv6 /64) may make a minute.", "positive")
    trusted_proxies: tuple[str, ...] = setting(
        (), "Addresses or networks of reverse proxies whose X-Forwarded-For names the "
        "client; empty: trust no forwarding header.", "networks")
    confirmations_per_hour: int = setting(500, "Confirmation mails sent an hour at most; "
                                          "further sign-ups are refused.", "positive")
    confirmations_per_domain_hour: int = setting(
        100, "Confirmation mails to one recipient domain an hour at most.", "positive")
    pending_days: int = setting(7, "Days an unconfirmed sign-up is kept before it is "
                                "forgotten.", "positive")
    challenge: bool = setting(False, "Ask the subscribe form for a proof of work (ALTCHA: "
                              "a small self-hosted script finds a number whose SHA-256 "
                              "matches); needs JavaScript in the subscriber's browser.")
    challenge_difficulty: int = setting(
        50_000, "Largest secret number of the challenge (ALTCHA maxnumber): a browser tries "
        "half of them on average, while the person types (bench/challenge.py measures it).",
        "challenge_difficulty")
    metrics: bool = setting(True, "Serve Prometheus metrics at /metrics; turn off when the "
                            "site faces the internet with no proxy keeping /metrics private.")
    allowed_origins: tuple[str, ...] = setting(
        (), "Other origins (https://www.example.org) whose pages may post the subscribe "
        "form or call it with fetch (CORS); the site's own origin is always allowed.",
        "origins")
    api_per_minute: int = setting(600, "JSON API requests one token may make a minute.",
                                  "positive")
    admin_session_hours: int = setting(12, "Hours a console (/admin/) login lasts.",
                                       "positive")


@dataclass(frozen=True)
class DaemonSettings:
    poll_seconds: float = setting(2.0, "Seconds between inbox polls (watch = poll, or when "
                                  "file events are unavailable).", "positive")
    metrics_port: int = setting(0, "Port for Prometheus /metrics; 0: off.", "port_or_zero")
    metrics_host: str = setting("127.0.0.1", "Address the metrics port listens on.")
    watch: str = setting("events", "How the daemon notices inbox files: events (inotify; "
                         "polls when unavailable) or poll (network file systems).", "watch")
    drain_seconds: float = setting(30.0, "On SIGTERM, seconds to let in-flight sends finish.",
                                   "positive")
    send_batch: int = setting(200, "Messages the daemon sends per batch; a stop waits for the "
                              "batch in flight.", "positive")


@dataclass(frozen=True)
class BouncesSettings:
    verp: bool = setting(True, "Envelope sender bounce+TAG@domain, a short signed tag naming "
                         "the message, so a bounce names its subscriber without being read.")
    soft_limit: int = setting(3, "Soft bounces (mailbox full, 4.x.x) within soft_days that "
                              "mark a subscriber bounced.", "positive")
    soft_days: int = setting(14, "Days the soft bounces counted towards soft_limit span.",
                             "positive")
    keep_days: int = setting(90, "Days bounce events (with their raw message) are kept.",
                             "positive")
    imap_url: str = setting("", "Bounce mailbox read by `publisher run` and the daemon: "
                            "imaps://user:pass@host[:port]/FOLDER (imap://: STARTTLS, needed "
                            "unless the host is this machine); empty: none.", "imap_url_or_empty")
    done_folder: str = setting("Processed", "IMAP folder handled bounces are moved to; "
                               "other messages stay where they are, unread.", "imap_folder")
    imap_minutes: int = setting(5, "Minutes between the daemon's reads of imap_url.",
                                "positive")
    webhook_secret: str = setting("", "Key of the generic HMAC-SHA256 webhook "
                                  "(POST /webhooks/bounces); empty: that webhook is off.")
    sns_topics: tuple[str, ...] = setting((), "Amazon SNS topic ARNs whose SES notifications "
                                          "POST /webhooks/ses accepts; empty: that webhook "
                                          "is off.")
    postmark_secret: str = setting("", "Password Postmark sends with HTTP basic auth on "
                                   "POST /webhooks/postmark; empty: that webhook is off.")
    mailgun_signing_key: str = setting("", "Mailgun's webhook signing key, checking "
                                       "POST /webhooks/mailgun; empty: that webhook is off.")


@dataclass(frozen=True)
class SourceSettings:
    url: str = setting("", "Feed URL to fetch.", "http_url")
    name: str = setting("", "Name shown in logs and status.")
    sections: tuple[str, ...] = setting((), "Sections given to its articles.")
    interval: int = setting(900, "Seconds between fetches.", "positive")
    timeout: float = setting(30.0, "Seconds the whole fetch may take (connect, redirects, "
                             "body).", "positive")
    follow_redirects: str = setting("host", "Redirects followed: host (the source's own "
                                    "host and port) or any (any http/https URL).", "redirects")
    unhealthy_after: int = setting(3, "Consecutive failures before status calls it unhealthy.",
                                   "positive")


WEBHOOK_EVENTS = ("subscriber.confirmed", "subscriber.unsubscribed", "subscriber.bounced",
                  "digest.sent")


@dataclass(frozen=True)
class WebhookSettings:
    url: str = setting("", "Receiver URL events are POSTed to.", "http_url")
    secret: str = setting("", "Shared secret the HMAC-SHA256 signature is made with.",
                          "webhook_secret")
    events: tuple[str, ...] = setting(WEBHOOK_EVENTS, "Events to send; default: all.",
                                      "webhook_events")
    timeout: float = setting(10.0, "Seconds to wait for the receiver.", "positive")


SECTIONS: dict[str, type] = {
    "site": SiteSettings,
    "store": StoreSettings,
    "ingest": IngestSettings,
    "feeds": FeedsSettings,
    "mail": MailSettings,
    "digest": DigestSettings,
    "web": WebSettings,
    "daemon": DaemonSettings,
    "bounces": BouncesSettings,
}


@dataclass(frozen=True)
class Settings:
    instance: Path
    site: SiteSettings = SiteSettings()
    store: StoreSettings = StoreSettings()
    ingest: IngestSettings = IngestSettings()
    feeds: FeedsSettings = FeedsSettings()
    mail: MailSettings = MailSettings()
    digest: DigestSettings = DigestSettings()
    web: WebSettings = WebSettings()
    daemon: DaemonSettings = DaemonSettings()
    bounces: BouncesSettings = BouncesSettings()
    sources: tuple[SourceSettings, ...] = ()
    webhooks: tuple[WebhookSettings, ...] = ()

    def path(self, relative: str) -> Path:
        """A setting's folder, resolved against the instance unless absolute."""
        return (self.instance / relative).resolve()

    @property
    def database_url(self) -> str:
        return self.store.url or f"sqlite:///{self.instance.resolve() / 'publisher.db'}"

    @property
    def digest_timezone(self) -> str:
        return self.digest.timezone or self.site.timezone


def toml_key(f: dataclasses.Field) -> str:
    # `from` is a Python keyword, so the field is `from_`; the file and env say `from`.
    return f.name.rstrip("_")


def load_settings(instance: Path, environ: dict[str, str] | None = None) -> Settings:
    """Read `instance/publisher.toml` (if any), apply environment overrides, validate."""
    environ = os.environ if environ is None else environ
    check_environment(environ)
    raw = read_toml(instance / CONFIG_NAME)
    unknown = set(raw) - set(SECTIONS) - {"sources", "webhooks"}
    if unknown:
        name = sorted(unknown)[0]
        raise SettingsFileError(f"[{name}]", f"{CONFIG_NAME}: unknown table [{name}]"
                                f"{did_you_mean(name, [*SECTIONS, 'sources'])}; the tables "
                                f"are {', '.join(SECTIONS)} and [[sources]]")
    sections = {
        name: build_section(name, cls, raw.get(name, {}), environ)
        for name, cls in SECTIONS.items()
    }
    sources = tuple(build_source(i, entry) for i, entry in enumerate(raw.get("sources", [])))
    webhooks = tuple(build_webhook(i, entry) for i, entry in enumerate(raw.get("webhooks", [])))
    settings = Settings(instance=instance, sources=sources, webhooks=webhooks, **sections)
    check_folders(settings)
    return settings


def read_toml(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise SettingsFileError(path.name, f"{path.name}: not UTF-8 text (byte "
                                f"{exc.start})") from exc
    except tomllib.TOMLDecodeError as exc:
        # tomllib says "Expected '=' ... (at line 7, column 5)": lead with the line.
        where = re.search(r"^(.*) \(at (?:line (\d+), column (\d+)|end of document)\)$",
                          str(exc))
        if where and where[2]:
            message = f"{path.name} line {where[2]}: {where[1]} (column {where[3]})"
        else:
            message = f"{path.name}: {where[1] if where else exc} (at the end of the file)"
        raise SettingsFileError(path.name, message) from exc


def build_section(name: str, cls: type, table: Any, environ: dict[str, str]) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"[{name}]", table, "a table of settings")
    fields = {toml_key(f): f for f in dataclasses.fields(cls)}
    for key in table:
        if key not in fields:
            raise unknown_key(f"[{name}]", key, fields)
    values = {}
    for key, f in fields.items():
        env_name = f"{ENV_PREFIX}{name.upper()}__{key.upper()}"
        if env_name in environ:
            value = from_env(env_name, environ[env_name], f)
            where = f"{name}.{key} (from {env_name})"
        elif key in table:
            value, where = table[key], f"{name}.{key}"
        else:
            continue
        values[f.name] = validate(where, value, f)
    return cls(**values)


def build_source(index: int, entry: Any) -> SourceSettings:
    if not isinstance(entry, dict):
        raise ConfigError(f"sources[{index}]", entry, "a table with url, name, sections")
    fields = {toml_key(f): f for f in dataclasses.fields(SourceSettings)}
    values = {}
    for key, value in entry.items():
        if key not in fields:
            raise unknown_key(f"[[sources]] number {index + 1}", key, fields)
        values[fields[key].name] = validate(f"sources[{index}].{key}", value, fields[key])
    if not values.get("url"):
        raise ConfigError(f"sources[{index}].url", "", "the feed's http(s) URL")
    values.setdefault("name", values["url"])
    return SourceSettings(**values)


def unknown_key(table: str, key: str, fields) -> SettingsFileError:
    return SettingsFileError(key, f"{CONFIG_NAME}: unknown setting {key!r} in {table}"
                             f"{did_you_mean(key, fields)}; its settings are "
                             f"{', '.join(fields)}")


def did_you_mean(name: str, choices) -> str:
    close = difflib.get_close_matches(name.lower(), list(choices), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_environment(environ) -> None:
    """PUBLISHER_<SECTION>__<KEY> must name a setting, as a key in the file must. A name
    with one underscore after a section (PUBLISHER_MAIL_TRANSPORT) is a typo of that
    form; other PUBLISHER_ names (no section) belong to tools and tests, not to us."""
    known = {f"{ENV_PREFIX}{name.upper()}__{toml_key(f).upper()}"
             for name, cls in SECTIONS.items() for f in dataclasses.fields(cls)}
    sections = tuple(f"{ENV_PREFIX}{name.upper()}_" for name in SECTIONS)
    for variable in sorted(environ):
        if variable in known or not variable.startswith(ENV_PREFIX):
            continue
        if "__" in variable or variable.startswith(sections):
            plain = {k[len(ENV_PREFIX):].replace("__", "_"): k for k in known}
            close = difflib.get_close_matches(variable[len(ENV_PREFIX):].replace("__", "_"),
                                              list(plain), n=1, cutoff=0.75)
            guess = f" (did you mean {plain[close[0]]}?)" if close else ""
            raise SettingsFileError(variable, f"unknown environment variable {variable}"
                                    f"{guess}: settings are PUBLISHER_<SECTION>__<KEY>, "
                                    "such as PUBLISHER_MAIL__TRANSPORT")


def build_webhook(index: int, entry: Any) -> WebhookSettings:
    if not isinstance(entry, dict):
        raise ConfigError(f"webhooks[{index}]", entry, "a table with url and secret")
    fields = {toml_key(f): f for f in dataclasses.fields(WebhookSettings)}
    values = {}
    for key, value in entry.items():
        if key not in fields:
            raise unknown_key(f"[[webhooks]] number {index + 1}", key, fields)
        values[fields[key].name] = validate(f"webhooks[{index}].{key}", value, fields[key])
    for key in ("url", "secret"):
        if not values.get(key):
            raise ConfigError(f"webhooks[{index}].{key}", "",
                              "the receiver's http(s) URL" if key == "url"
                              else "a shared secret of 16 characters or more")
    return WebhookSettings(**values)


def check_origins(values: tuple[str, ...]) -> str | None:
    for value in values:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc or \
                parts.path not in {"", "/"} or parts.query or parts.fragment:
            return f"origins such as https://www.example.org (scheme and host only; {value!r} " \
                "is not one)"
    return None


def from_env(env_name: str, text: str, f: dataclasses.Field) -> Any:
    """Environment values are strings; convert them to the key's type."""
    kind = type(f.default)
    try:
        if kind is bool:
            if text.lower() not in {"1", "0", "true", "false", "yes", "no"}:
                raise ValueError(text)
            return text.lower() in {"1", "true", "yes"}
        if kind is tuple:
            return tuple(part.strip() for part in text.split(",") if part.strip())
        return kind(text)
    except ValueError as exc:
        raise ConfigError(env_name, text, TYPE_WORDS[kind]) from exc


def validate(key: str, value: Any, f: dataclasses.Field) -> Any:
    expected = type(f.default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if expected is tuple and isinstance(value, list | str):
        value = tuple(value) if isinstance(value, list) else (value,)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ConfigError(key, value, TYPE_WORDS[expected])
    problem = check_value(f.name, value)
    check = f.metadata.get("check")
    if check and not problem:
        # The boundary for a setting: whatever its check raises (urlsplit on
        # "http://[::1", ...) is this setting's error, one line, exit 2.
        with setting_errors(key, value, "a valid value"):
            problem = CHECKS[check](value)
    if problem:
        raise ConfigError(key, value, problem)
    return value


TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false",
              str: "text in quotes", tuple: 'a list of text such as ["world", "science"]'}
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
HEADER_BREAK = re.compile(r"[\r\n]")


def check_http_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname or \
            any(char.isspace() for char in value):
        return "an absolute http:// or https:// URL"
    parts.port  # noqa: B018 - raises on a bad port
    return None


def check_networks(value: tuple[str, ...]) -> str | None:
    import ipaddress

    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            return f"IP addresses or networks such as 127.0.0.1 or 10.0.0.0/8 ({item!r} is not)"
    return None


def check_timezone(value: str) -> str | None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return "an IANA time zone name such as UTC or Europe/Berlin"
    return None


def check_clock(value: str) -> str | None:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", value)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        return "a 24-hour time HH:MM such as 07:00"
    return None


def check_mailbox(value: str) -> str | None:
    from email.utils import parseaddr

    _, address = parseaddr(value)
    if HEADER_BREAK.search(value) or "@" not in address:
        return 'an address such as "Name <news@example.org>", on one line'
    return None


def check_smtp_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
        return "smtp://[user:pass@]host[:port] or smtps://..."
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return "a port number from 1 to 65535"
    return None


def check_imap_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in {"imap", "imaps"} or not parts.hostname or not parts.username:
        return "imaps://user:pass@host[:port]/FOLDER or imap://..."
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return "a port number from 1 to 65535"
    return None


CHECKS = {
    "http_url": check_http_url,
    "networks": check_networks,
    "http_url_or_empty": lambda v: check_http_url(v) if v else None,
    "language": lambda v: None if re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*", v)
    else "a language tag such as en or pt-BR",
    "timezone": check_timezone,
    "timezone_or_empty": lambda v: check_timezone(v) if v else None,
    "database_url": check_database_url,
    "positive": lambda v: None if v > 0 else "a number above 0",
    "non_negative": lambda v: None if v >= 0 else "a number of 0 or more",
    "port": lambda v: None if 0 < v < 65536 else "a port from 1 to 65535",
    "port_or_zero": lambda v: None if 0 <= v < 65536 else "0 or a port from 1 to 65535",
    "transport": lambda v: None if v in {"maildir", "smtp"} else "maildir or smtp",
    "watch": lambda v: None if v in {"events", "poll"} else "events or poll",
    "redirects": lambda v: None if v in {"host", "any"} else "host or any",
    "mailbox": check_mailbox,
    "mailbox_or_empty": lambda v: check_mailbox(v) if v else None,
    "smtp_url": check_smtp_url,
    "imap_url_or_empty": lambda v: check_imap_url(v) if v else None,
    "imap_folder": lambda v: None if v.strip() and not re.search(r'[\r\n"*%\\]', v)
    else "a folder name such as Processed",
    "clock": check_clock,
    "weekday": lambda v: None if v.lower() in WEEKDAYS else f"one of {', '.join(WEEKDAYS)}",
    "origins": check_origins,
    "webhook_secret": lambda v: None if len(v) >= 16 else "16 characters or more",
    "webhook_events": lambda v: None if v and set(v) <= set(WEBHOOK_EVENTS)
    else f"a list of events from {', '.join(WEBHOOK_EVENTS)}",
    "subject": check_subject,
    "challenge_difficulty": lambda v: None if 1_000 <= v <= 10_000_000
    else "a number from 1,000 to 10,000,000 (the default is 50,000)",
    "postal_address": check_postal_address,
    "welcome_articles": lambda v: None if 0 <= v <= 20 else "a number from 0 to 20",
}
