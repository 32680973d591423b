"""Command line: build the feeds and pages alone (`publisher run` builds them too)."""

from __future__ import annotations

import click

from publisher.cli import cli, instance_option
from publisher.feeds import build_feeds
from publisher.instance import Instance
from publisher.ops.progress import progress


@cli.command(name="feeds")
@instance_option
def feeds_command(instance: Instance) -> None:
    """Write the RSS, Atom and JSON feeds, archive pages and article pages.

    Only files whose bytes change are written; a second run in a row writes nothing.
    """
    report = build_feeds(instance.settings, instance.store, instance.now(), show=progress)
    click.echo(report.line())
