"""Command line: build the feeds and pages alone (`publisher run` builds them too)."""

from __future__ import annotations

import click

from publisher.cli import cli, instance_option
from publisher.feeds import build_feeds
from publisher.instance import Instance
from publisher.ops.progress import progress


@cli.command(name="feeds")
@click.option("--full", is_flag=True,
              help="Look at every file, not only what changed since the last build "
                   "(writes again an article page damaged or deleted by hand).")
@instance_option
def feeds_command(instance: Instance, full: bool) -> None:
    """Write the RSS, Atom and JSON feeds, archive pages and article pages.

    Only what changed since the last build is looked at, and only files whose bytes
    change are written; a second run in a row writes nothing.
    """
    report = build_feeds(instance.settings, instance.store, instance.now(), show=progress,
                         full=full)
    click.echo(report.line())
