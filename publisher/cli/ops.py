"""Command line: operations — status and the daemon."""

from __future__ import annotations

import asyncio
import logging
import sys

import click

from publisher.cli import cli, instance_option
from publisher.instance import Instance
from publisher.ops.logs import FORMATS, configure_logging
from publisher.schedule.daemon import Daemon
from publisher.schedule.status import collect_status, status_json, status_lines


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts and monitors.")
@instance_option
def status(instance: Instance, as_json: bool) -> None:
    """Articles, subscribers, the last run of each stage, the outbox and source health."""
    report = collect_status(instance.settings, instance.store, instance.now())
    if as_json:
        click.echo(status_json(report))
    else:
        for line in status_lines(report):
            click.echo(line)


@cli.command()
@click.option("--log-format", type=click.Choice(FORMATS), default="text", show_default=True,
              help="text: one readable line per event; json: one JSON object per line.")
@instance_option
def daemon(instance: Instance, log_format: str) -> None:
    """Run every stage on a schedule until SIGTERM: ingest as files land, feeds, digests
    at their times, sending and upstream sources. Logs go to stderr."""
    verbose = click.get_current_context().find_root().params.get("verbose") or 0
    configure_logging(log_format, logging.DEBUG if verbose >= 2 else logging.INFO)
    settings, store = instance.settings, instance.store
    sys.exit(asyncio.run(Daemon(settings, store, clock=instance.clock).run()))
