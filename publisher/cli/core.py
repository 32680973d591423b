"""Command line: instance set-up, settings, parsing, ingest and the one-pass run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from publisher.cli import cli, instance_option
from publisher.delivery import make_transport
from publisher.errors import InputError, item_errors
from publisher.ingest.inbox import ingest, parse_bytes, read_input
from publisher.instance import Instance, init_instance, render_toml
from publisher.schedule.lock import Busy, run_lock
from publisher.schedule.pipeline import run_once


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
def init(folder: Path) -> None:
    """Create an instance in FOLDER: publisher.toml and the folders it uses."""
    config = init_instance(folder)
    click.echo(f"created {config} and {folder}/articles, templates, feeds, subscribers")


@cli.command()
@instance_option
def config(instance: Instance) -> None:
    """Print the settings in force (file, defaults and environment), as TOML."""
    click.echo(render_toml(instance.settings), nl=False)


@cli.command()
@click.argument("files", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
@instance_option
def parse(instance: Instance, files: tuple[Path, ...]) -> None:
    """Print the articles found in FILES, one JSON object a line; stores nothing."""
    settings = instance.settings
    inbox = settings.path(settings.ingest.inbox)
    failed = False
    for path in files:
        key = source_key(path, inbox)
        try:
            if not path.is_file():
                raise InputError(str(path), "no such file")
            with item_errors(key):  # the same rule as ingest's: a parser's error is the file's
                articles = parse_bytes(read_input(path, key, settings.ingest.max_bytes),
                                       key, settings)
            for article in articles:
                click.echo(json.dumps(article.to_json(), ensure_ascii=False))
        except InputError as exc:
            click.echo(f"{path}: {exc.reason}", err=True)
            failed = True
    sys.exit(1 if failed else 0)


def source_key(path: Path, inbox: Path) -> str:
    """The name ingest would give the file, so `parse` prints the ids ingest stores."""
    try:
        return path.resolve().relative_to(inbox).as_posix()
    except ValueError:
        return path.name


@cli.command(name="ingest")
@instance_option
def ingest_command(instance: Instance) -> None:
    """Store new and edited articles from the inbox; quarantine files that fail."""
    report = ingest(instance.settings, instance.store, instance.now())
    click.echo(report.line())


@cli.command()
@instance_option
def run(instance: Instance) -> None:
    """One pass of every stage (for cron; safe to start every minute).

    Holds the run lock for the pass: when another run holds it, says so and exits 0.
    """
    lock = run_lock(instance.store.engine, instance.clock)
    try:
        lock.acquire()
    except Busy as busy:
        click.echo(f"{busy}; nothing done")
        return
    try:
        report = run_once(instance.settings, instance.store,
                          make_transport(instance.settings), instance.clock)
    finally:
        lock.release()
    for line in report.lines():
        click.echo(line)
