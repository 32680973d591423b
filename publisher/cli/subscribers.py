"""Command line: `publisher subscribers ...`, the subscriber list by hand and by CSV."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click

from publisher import tokens
from publisher.cli import cli, instance_option, warn_line
from publisher.cli.bounces import event_line
from publisher.delivery import deliver, make_transport
from publisher.errors import AddressError, ConfigError
from publisher.instance import Instance
from publisher.ops.progress import progress
from publisher.preflight import require_ready
from publisher.store.subscribers import FREQUENCIES, STATUSES, Subscriber
from publisher.subscribers.csv_io import export_file, export_rows, import_file
from publisher.subscribers.formats import FORMATS
from publisher.subscribers.rules import (
    MAX_MAIL_BYTES,
    Preferences,
    add_subscriber,
    clean_preferences,
    existing_sections,
    find,
    handle_unsubscribe_mail,
    update_subscriber,
)
from publisher.words import counted


@cli.group()
def subscribers() -> None:
    """Add, list, change, remove, import and export subscribers."""


frequency_option = click.option(
    "--frequency", type=click.Choice(FREQUENCIES), help="How often digests come.")
sections_option = click.option(
    "--sections", metavar="A,B", help="Sections to receive, comma-separated; "
    "empty: every section.")
deliver_at_option = click.option(
    "--deliver-at", metavar="HH:MM", help="When daily and weekly digests arrive, in their "
    "time zone, e.g. 18:00; empty: [digest] daily_at.")
timezone_option = click.option(
    "--timezone", metavar="ZONE", help="IANA time zone for delivery times, e.g. "
    "Europe/Berlin; empty: the default.")


@subscribers.command()
@click.argument("email")
@click.option("--name", default="", help="The person's name (used in the To: header).")
@frequency_option
@sections_option
@timezone_option
@deliver_at_option
@click.option("--confirmed", is_flag=True, help="Active at once: you vouch that they opted "
              "in. Without it they are sent a confirmation link and stay pending until "
              "they follow it.")
@click.option("--force", is_flag=True, help="Add an address on the suppression list "
              "(bounced or complained) again.")
@click.option("--no-welcome", "no_welcome", is_flag=True, help="With --confirmed: send no "
              "welcome mail (one goes out by default; see [digest] welcome).")
@instance_option
def add(instance: Instance, email: str, name: str, frequency: str | None,
        sections: str | None, timezone: str | None, deliver_at: str | None,
        confirmed: bool, force: bool, no_welcome: bool) -> None:
    """Add EMAIL to the list (a bounced or complained address only with --force)."""
    settings, store, now = instance.settings, instance.store, instance.now()
    prefs = clean_preferences(name, frequency or "", sections or "", timezone or "",
                              known=existing_sections(settings, store),
                              deliver_at=deliver_at or "")
    welcome = confirmed and not no_welcome and settings.digest.welcome
    if not confirmed or welcome:  # a message must be able to go out before anyone waits
        require_ready(settings, warn_line)
    subscriber = add_subscriber(settings, store, email, prefs, now, confirmed, force=force,
                                welcome=not no_welcome)
    click.echo(f"added {subscriber.email} ({subscriber.status})")
    if not confirmed or welcome:
        # Sent now, as the web form does; if it cannot go out, `publisher send` retries.
        kind = "welcome" if confirmed else "confirm"
        report = asyncio.run(deliver(settings, store, make_transport(settings), now,
                                     kind=kind))
        click.echo(f"{'welcome mail' if confirmed else 'confirmation link'}: {report.line()}")


@subscribers.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line.")
@click.option("--status", type=click.Choice(STATUSES), help="Only subscribers in this state.")
@instance_option
def list_command(instance: Instance, as_json: bool, status: str | None) -> None:
    """List subscribers, oldest first."""
    count = 0
    for subscriber in instance.store.subscribers.stream(status=status):
        if as_json:
            click.echo(json.dumps(as_dict(subscriber), ensure_ascii=False))
        else:
            if count == 0:
                click.echo(f"{'EMAIL':<40} {'STATUS':<12} {'FREQUENCY':<9} {'TIME ZONE':<20} "
                           "SECTIONS")
            click.echo(f"{subscriber.email:<40} {subscriber.status:<12} "
                       f"{subscriber.frequency:<9} {subscriber.timezone or '(default)':<20} "
                       f"{','.join(subscriber.sections) or '(all)'}")
        count += 1
    if not as_json:
        click.echo(f"{count} subscriber{'' if count == 1 else 's'}", err=True)


@subscribers.command()
@click.argument("email")
@instance_option
def show(instance: Instance, email: str) -> None:
    """Everything stored about EMAIL, and their personal links."""
    subscriber = find(instance.store, email)
    for key, value in as_dict(subscriber).items():
        shown = ", ".join(value) if isinstance(value, list) else value
        click.echo(f"{key + ':':<17} {shown if shown not in ('', None) else '-'}")
    click.echo(f"{'digests:':<17} {instance.store.subscribers.digest_count(subscriber.id)}")
    history = instance.store.bounces.events(subscriber.id, subscriber.email, limit=20)
    click.echo(f"{'bounce history:':<17} {len(history) or 'none'}")
    for event in history:
        click.echo(f"  {event_line(event)}")
    try:
        for purpose in ("preferences", "unsubscribe", "feed"):
            link = tokens.link(instance.settings, purpose, subscriber.id,
                               subscriber.token_version, now=instance.now())
            click.echo(f"{purpose + ' link:':<17} {link}")
    except ConfigError as exc:
        click.echo(f"links: none ({exc})")


@subscribers.command(name="set")
@click.argument("email")
@click.option("--name", help="The person's name.")
@frequency_option
@sections_option
@timezone_option
@deliver_at_option
@click.option("--status", type=click.Choice(STATUSES), help="Change the state by hand.")
@click.option("--new-links", is_flag=True, help="Revoke every link sent to them so far "
              "(unsubscribe, preferences, feed); later mail carries new ones.")
@instance_option
def set_command(instance: Instance, email: str, name: str | None, frequency: str | None,
                sections: str | None, timezone: str | None, deliver_at: str | None,
                status: str | None, new_links: bool) -> None:
    """Change EMAIL's preferences or state."""
    store, now = instance.store, instance.now()
    subscriber = find(store, email)
    if name is None and frequency is None and sections is None and timezone is None \
            and deliver_at is None and status is None and not new_links:
        raise AddressError("nothing to change: give --name, --frequency, --sections, "
                           "--timezone, --deliver-at, --status or --new-links")
    prefs = clean_preferences(name, frequency, sections, timezone,
                              default=Preferences.of(subscriber),
                              known=existing_sections(instance.settings, store),
                              deliver_at=deliver_at)
    if status == "active" and subscriber.status == "complained":
        raise AddressError(f"{subscriber.email} reported our mail as spam; only a new "
                           "opt-in brings them back: `publisher subscribers add --force` "
                           "sends them a confirmation link")
    subscriber = update_subscriber(instance.settings, store, subscriber, prefs, status, now,
                                   new_links)
    click.echo(f"changed {subscriber.email} ({subscriber.status})")


@subscribers.command()
@click.argument("email")
@click.option("--forget", is_flag=True, help="Delete every trace of them (their row, "
              "digests and messages), for erasure requests.")
@instance_option
def remove(instance: Instance, email: str, forget: bool) -> None:
    """Unsubscribe EMAIL (or, with --forget, erase them)."""
    store = instance.store
    subscriber = find(store, email)
    if forget:
        gone = store.subscribers.forget(subscriber.id)
        click.echo(f"forgot {subscriber.email}: {counted(gone.digests, 'digest')} and "
                   f"{counted(gone.messages, 'message')} deleted")
    else:
        store.subscribers.unsubscribe(subscriber.id, instance.now())
        click.echo(f"unsubscribed {subscriber.email}")


@subscribers.command(name="import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--resubscribe", is_flag=True, help="Let the file make people who "
              "unsubscribed or bounced pending or active again.")
@click.option("--from", "source_format", type=click.Choice(sorted(FORMATS)),
              help="The tool FILE was exported from; default: recognised by its header.")
@instance_option
def import_command(instance: Instance, file: Path, resubscribe: bool,
                   source_format: str | None) -> None:
    """Add and update subscribers from FILE: our CSV, or an export of Mailchimp,
    Substack, Buttondown or listmonk (names and consent times kept; people who left
    are imported as unsubscribed or bounced)."""
    report = import_file(instance.settings, instance.store, file, instance.now(), resubscribe,
                         show=progress, source_format=source_format)
    if report.encoding != "utf-8":
        click.echo(f"{file}: read as {report.encoding} (not UTF-8)", err=True)
    if report.format != "publisher CSV":
        click.echo(f"{file}: read as {report.format}: " + "; ".join(
            f"{name} -> {role}" for name, role in report.columns), err=True)
    elif report.ignored_columns:
        click.echo(f"{file}: ignored column(s) {', '.join(report.ignored_columns)}", err=True)
    for bad in report.bad:
        click.echo(f"{file}:{bad.line}: {bad.reason}", err=True)
    for line, email, status in report.suppressed:
        click.echo(f"{file}:{line}: {email} is on the suppression list ({status}); "
                   "not made active", err=True)
    click.echo(report.line())
    sys.exit(1 if report.bad else 0)


@subscribers.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--status", type=click.Choice(STATUSES), help="Only subscribers in this state.")
@instance_option
def export(instance: Instance, file: Path | None, status: str | None) -> None:
    """Write subscribers as CSV to FILE (or to standard output)."""
    if file is None:
        export_rows(instance.store, sys.stdout, status)
        return
    count = export_file(instance.store, file, status)
    click.echo(f"exported {count} subscriber{'' if count == 1 else 's'} to {file}")


@subscribers.command(name="unsubscribe-mail")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@instance_option
def unsubscribe_mail(instance: Instance, files: tuple[Path, ...]) -> None:
    """Act on mail sent to the List-Unsubscribe mailto address: each FILE (or standard
    input) is one message; its subject carries the signed token. Exits 0 so a mail
    server piping to it never bounces the request back."""
    for name, source in [(str(path), path) for path in files] or [("-", None)]:
        line = handle_unsubscribe_mail(instance.settings, instance.store, name,
                                       lambda source=source: read_bounded(source),
                                       instance.now())
        click.echo(line if name == "-" else f"{name}: {line}")


def read_bounded(path: Path | None) -> bytes:
    """The first MAX_MAIL_BYTES of the file (None: standard input, the rest of which is
    read and dropped, so the mail server piping it in sees it all taken)."""
    if path is not None:
        with path.open("rb") as handle:
            return handle.read(MAX_MAIL_BYTES)
    data = sys.stdin.buffer.read(MAX_MAIL_BYTES)
    while sys.stdin.buffer.read(1 << 20):
        pass
    return data


def as_dict(subscriber: Subscriber) -> dict:
    return {
        "email": subscriber.email, "name": subscriber.name, "status": subscriber.status,
        "frequency": subscriber.frequency, "sections": list(subscriber.sections),
        "timezone": subscriber.timezone, "deliver_at": subscriber.deliver_at,
        "created": subscriber.created_at.isoformat(),
        "confirmed": subscriber.confirmed_at.isoformat() if subscriber.confirmed_at else None,
        "last_digest": subscriber.last_digest_at.isoformat()
        if subscriber.last_digest_at else None,
        "bounces": subscriber.bounce_count,
    }
