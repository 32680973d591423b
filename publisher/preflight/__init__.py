"""Preflight: the settings checked against the world before a command writes anything.

Loading settings checks each value alone (a URL's shape, a number's range); this checks
what only the world can tell: the DKIM key file and its published record, the SMTP
server and its TLS and login, the publish folder, the templates, the secret. Each
problem is one line saying what to fix. `publisher check` prints them all; `run`,
`daemon` and `serve` call the same function first and stop on any problem.

Some problems are passing ones (the SMTP server is down right now): `check` reports
them, but a `run` under cron must still ingest and build feeds while mail waits in the
outbox, so for it they are warnings.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import jinja2

from publisher.addresses import domain_of, mailbox
from publisher.config import Settings, check_http_url
from publisher.delivery.templates import check_templates
from publisher.errors import PublisherError
from publisher.preflight.dns import TxtLookup, system_lookup
from publisher.preflight.smtp import probe_smtp
from publisher.templating import INSTANCE_TEMPLATES, shipped_templates, template_env

log = logging.getLogger(__name__)

# Domains no mail server accepts mail from (RFC 2606, RFC 6761).
RESERVED = ("example.org", "example.com", "example.net", "localhost", "invalid", "test")
# Hosts browsers treat as secure without https (crypto.subtle is there).
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)  # stop: fix the settings
    warnings: list[str] = field(default_factory=list)  # passing: worth saying, no stop


class NotReady(PublisherError):
    """Preflight found problems; the message holds one line per problem."""

    exit_code = 2

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\npublisher: ".join(problems))


def preflight(settings: Settings, lookup: TxtLookup | None = system_lookup,
              strict: bool = True) -> Findings:
    """Every check; `lookup` None skips the DNS one (runs under cron do not query DNS
    each time); `strict` counts a passing problem (server down) as a problem."""
    found = Findings()
    check_site(settings, found)
    check_challenge(settings, found)
    check_folders(settings, found)
    check_all_templates(settings, found)
    check_dkim(settings, found, lookup)
    if settings.mail.transport == "smtp":
        check_sender(settings, found)
        problem, passing = probe_smtp(settings)
        if problem:
            (found.warnings if passing and not strict else found.problems).append(problem)
    return found


def require_ready(settings: Settings, warn: Callable[[str], None]) -> None:
    """What run, daemon and serve do first: stop on a problem, pass on the warnings."""
    found = preflight(settings, lookup=None, strict=False)
    for line in found.warnings:
        warn(line)
    if found.problems:
        raise NotReady(found.problems)


def check_site(settings: Settings, found: Findings) -> None:
    bad = check_http_url(settings.site.url)
    if bad:
        found.problems.append(f"[site] url {settings.site.url!r} must be {bad}: links in "
                              "feeds and mail are made from it")
    if not settings.web.secret:
        found.problems.append("[web] secret is empty: it signs every link in our mail; "
                              "put a long random string there (python3 -c \"import "
                              "secrets; print(secrets.token_urlsafe(32))\")")


def check_challenge(settings: Settings, found: Findings) -> None:
    """[web] challenge needs what the browser's script needs: an https page (browsers
    give crypto.subtle to secure pages only) and forms that load it."""
    if not settings.web.challenge:
        return
    url = urlsplit(settings.site.url)
    if url.scheme != "https" and url.hostname not in LOCAL_HOSTS:
        found.warnings.append(f"[web] challenge is on but [site] url {settings.site.url!r} "
                              "is not https: browsers solve the challenge on https pages "
                              "only, so every sign-up would be refused")
    own = settings.path(INSTANCE_TEMPLATES)
    for name in ("web/subscribe.html", "pages/_macros.html"):
        path = own / name
        if path.is_file() and "data-challenge" not in path.read_text(errors="replace"):
            found.warnings.append(f"[web] challenge is on but {path} (your own template) "
                                  "has no data-challenge form: its sign-ups would be "
                                  "refused; see the shipped template")


def check_folders(settings: Settings, found: Findings) -> None:
    for key, relative in (("[feeds] folder", settings.feeds.folder),
                          ("[mail] maildir", settings.mail.maildir)):
        if key == "[mail] maildir" and settings.mail.transport != "maildir":
            continue
        problem = writable(settings.path(relative))
        if problem:
            found.problems.append(f"{key} {relative!r}: {problem}")


def writable(folder: Path) -> str | None:
    """Whether we could write in FOLDER (or create it), found without writing anything."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            return "no such folder"
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable by this user"
    return None


def check_all_templates(settings: Settings, found: Findings) -> None:
    """Mail templates render against sample data; the instance's own page and form
    templates compile. (The shipped ones are tested with Publisher; compiling them all
    would cost a cron run most of a second.)"""
    found.problems.extend(f"template {line}" for line in check_templates(settings))
    own = settings.path(INSTANCE_TEMPLATES)
    if own == shipped_templates().resolve():  # the repository's demo: nothing of its own
        return
    names = sorted(path.relative_to(own).as_posix() for sub in ("pages", "web")
                   if (own / sub).is_dir() for path in (own / sub).glob("*.html"))
    if not names:
        return
    from publisher.feeds.model import Site
    from publisher.feeds.pages import Pages

    envs = {"pages": Pages(template_env(settings), Site.from_settings(settings)).env,
            "web": template_env(settings)}
    for name in names:
        try:
            envs[name.split("/")[0]].get_template(name)
        except jinja2.TemplateSyntaxError as exc:
            found.problems.append(f"template {exc.filename or name}:{exc.lineno}: "
                                  f"{exc.message}")


def check_dkim(settings: Settings, found: Findings, lookup: TxtLookup | None) -> None:
    from publisher.delivery.dkim import load_signer

    try:
        signer = load_signer(settings)
    except PublisherError as exc:
        found.problems.append(str(exc))
        return
    if signer is None or lookup is None:
        return
    records = lookup(signer.dns_name)
    if records is None:
        log.info("no DNS answer for %s; the DKIM record was not compared", signer.dns_name)
        return
    published = [r for r in records if "p=" in r]
    if not published:
        found.problems.append(f"no DKIM record at {signer.dns_name}: publish the TXT "
                              f"record {signer.dns_record()!r}")
    elif not any(public_key(r) == public_key(signer.dns_record()) for r in published):
        found.problems.append(f"the DKIM record at {signer.dns_name} does not match "
                              f"[mail] dkim_key: publish {signer.dns_record()!r}")


def public_key(record: str) -> str:
    tags = dict(part.strip().partition("=")[::2] for part in record.split(";") if "=" in part)
    return "".join(tags.get("p", "").split())


def check_sender(settings: Settings, found: Findings) -> None:
    domain = domain_of(mailbox(settings.mail.from_)[1]).lower()
    if domain in RESERVED or domain.endswith(tuple("." + d for d in RESERVED)):
        found.warnings.append(f"[mail] from {settings.mail.from_!r} uses {domain}, a "
                              "reserved domain real mail servers refuse: use your own")
