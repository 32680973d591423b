"""Command line: `publisher bounces ...`: read bounce mail, list what bounces did."""

from __future__ import annotations

import json
import sys

import click

from publisher.bounces import read_paths
from publisher.cli import cli, instance_option
from publisher.instance import Instance
from publisher.store.bounces import BounceEvent


@cli.group()
def bounces() -> None:
    """Bounces and complaints: read bounce mail, list what was recorded."""


@bounces.command()
@click.argument("paths", nargs=-1, required=True)
@instance_option
def read(instance: Instance, paths: tuple[str, ...]) -> None:
    """Read bounce mail from PATHS: message files, Maildir folders, mbox files, or - for
    one message on standard input (an MTA alias). One line per message; exits 0 unless
    the command itself is misused, so a mail server never bounces a bounce."""
    for _name, _outcome, line in read_paths(instance.settings, instance.store, list(paths),
                                            instance.now(), stdin=sys.stdin.buffer):
        click.echo(line)


@bounces.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line.")
@click.option("--limit", default=100, show_default=True, help="At most this many, newest "
              "first.")
@instance_option
def list_command(instance: Instance, as_json: bool, limit: int) -> None:
    """The bounce events stored, newest first."""
    events = instance.store.bounces.events(limit=limit)
    for event in events:
        if as_json:
            click.echo(json.dumps(event_dict(event), ensure_ascii=False))
        else:
            click.echo(event_line(event))
    if not as_json:
        click.echo(f"{len(events)} event{'' if len(events) == 1 else 's'}", err=True)


def event_dict(event: BounceEvent) -> dict:
    return {"id": event.id, "received": event.received_at.isoformat(), "kind": event.kind,
            "email": event.email, "origin": event.origin, "status": event.status,
            "detail": event.detail, "message_id": event.message_id, "action": event.action}


def event_line(event: BounceEvent) -> str:
    status = f" {event.status}" if event.status else ""
    return (f"{event.received_at:%Y-%m-%d %H:%M} {event.kind + status:<16} "
            f"{event.email or '(unknown)':<32} {event.origin:<8} {event.action}"
            + (f"  {event.detail[:80]}" if event.detail else ""))
