"""Command line: operations — status (and the daemon)."""

from __future__ import annotations

import click

from publisher.cli import cli, instance_option, utc_now
from publisher.instance import Instance
from publisher.status import collect_status, status_json, status_lines


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts and monitors.")
@instance_option
def status(instance: Instance, as_json: bool) -> None:
    """Articles, subscribers, the last run of each stage, the outbox and source health."""
    report = collect_status(instance.settings, instance.store, utc_now())
    if as_json:
        click.echo(status_json(report))
    else:
        for line in status_lines(report):
            click.echo(line)
