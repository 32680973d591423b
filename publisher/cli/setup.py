"""Command line: the first hour — `publisher init` (asks who the site is) and
`publisher check` (the settings against the world, before anything is written)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from email.utils import formataddr, parseaddr
from ipaddress import ip_address
from pathlib import Path
from urllib.parse import urlsplit

import click

from publisher.cli import cli, instance_option
from publisher.config import check_http_url, check_mailbox, check_timezone
from publisher.errors import ConfigError
from publisher.instance import Identity, Instance, init_instance, refuse_existing
from publisher.preflight import preflight

DEFAULT_URL = "http://127.0.0.1:8080/"


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--title", help="The site's name, shown in feeds, pages and mail.")
@click.option("--url", help="The public address the site is served at, e.g. "
              "https://news.example.org/.")
@click.option("--from", "sender", metavar="ADDRESS",
              help='The sender of every message, e.g. "Daily News <news@example.org>".')
@click.option("--timezone", help="IANA time zone for dates and delivery times, "
              "e.g. Europe/Berlin.")
def init(folder: Path, title: str | None, url: str | None, sender: str | None,
         timezone: str | None) -> None:
    """Create an instance in FOLDER: publisher.toml (with a fresh secret) and the
    folders it uses. On a terminal it asks for what is not given as an option."""
    refuse_existing(folder)  # before asking anything
    ask = sys.stdin.isatty()
    title = answer("Site title", title, folder.resolve().name.replace("-", " ").title()
                   or "News", lambda v: None if v.strip() else "a name", ask)
    url = answer("Public URL", url, DEFAULT_URL, check_http_url, ask)
    url = url if url.endswith("/") else url + "/"
    sender = answer("Sender address", sender, default_sender(title, url), check_mailbox, ask)
    timezone = answer("Time zone", timezone, local_zone(), check_timezone, ask)
    config = init_instance(folder, Identity(title=title.strip(), url=url, sender=sender,
                                            timezone=timezone))
    here = "" if folder.resolve() == Path.cwd() else f" -C {folder}"
    click.echo(f"created {config} (with a new secret) and {folder}/articles, templates, "
               "feeds, subscribers")
    click.echo("Next:")
    click.echo(f"  1. Put articles in {folder}/articles/ (.txt or .md) and run "
               f"`publisher{here} run`: feeds go to {folder}/feeds/, mail to "
               f"{folder}/outbox/ until you set up SMTP.")
    click.echo(f"  2. To send real mail, set [mail] transport = \"smtp\" and smtp_url in "
               f"{config}, then run `publisher{here} check`.")
    click.echo(f"  3. Run `publisher{here} serve` (or put a web server in front of "
               f"{folder}/feeds/) so {url} shows the site and its subscribe form.")


def answer(question: str, given: str | None, default: str,
           problem: Callable[[str], str | None], ask: bool) -> str:
    """An option's value, else the answer on a terminal (asked again until it is valid),
    else the default. A bad option is one line naming it."""
    if given is not None:
        bad = problem(given)
        if bad:
            raise ConfigError(f"--{question.split()[-1].lower()}", given, bad)
        return given
    if not ask:
        return default

    def valid(text: str) -> str:
        bad = problem(text)
        if bad:
            raise click.BadParameter(f"expected {bad}")
        return text

    return click.prompt(question, default=default, value_proc=valid)


def default_sender(title: str, url: str) -> str:
    """news@ the site's domain; example.org (a reserved domain, which `check` names)
    when the site has no domain name yet."""
    host = urlsplit(url).hostname or ""
    try:
        ip_address(host)
        host = ""
    except ValueError:
        pass
    domain = host if "." in host else "example.org"
    return formataddr((title.strip(), f"news@{domain}"))


def local_zone() -> str:
    """This machine's IANA zone (from /etc/localtime's link), else UTC."""
    try:
        target = str(Path("/etc/localtime").resolve())
    except OSError:
        return "UTC"
    name = target.partition("/zoneinfo/")[2]
    return name if name and not check_timezone(name) else "UTC"


@cli.command()
@instance_option
def check(instance: Instance) -> None:
    """Check the settings against the world: DKIM key (and its DNS record, when DNS
    answers), SMTP server (TLS, login), publish folder, templates, site URL, secret.
    One line per problem; exit 2 if there is any."""
    found = preflight(instance.settings)
    for line in found.warnings:
        click.echo(f"warning: {line}", err=True)
    for line in found.problems:
        click.echo(f"publisher: {line}", err=True)
    if found.problems:
        sys.exit(2)
    click.echo(f"check: {instance.folder} is ready "
               f"(mail by {instance.settings.mail.transport} from "
               f"{parseaddr(instance.settings.mail.from_)[1]})")
