"""Command line: instance set-up, settings, parsing, ingest and the one-pass run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from publisher.cli import cli, instance_option, warn_line
from publisher.delivery import make_transport
from publisher.errors import InputError, item_errors
from publisher.ingest.inbox import ingest, parse_bytes, read_input
from publisher.instance import Instance, render_toml
from publisher.preflight import require_ready
from publisher.schedule.lock import Busy, run_lock
from publisher.schedule.pipeline import run_once


@cli.command()
@click.option("--show-secrets", is_flag=True, help="Print [web] secret and the passwords "
              "in URLs too (they are masked by default).")
@instance_option
def config(instance: Instance, show_secrets: bool) -> None:
    """Print the settings in force (file, defaults and environment), as TOML."""
    click.echo(render_toml(instance.settings, masked=not show_secrets), nl=False)


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
@click.option("--rescan", is_flag=True,
              help="List every folder and check every file now (a pass otherwise lists "
                   "only the folders that changed, and re-checks [ingest] "
                   "recheck_per_pass files for edits made in place).")
@instance_option
def ingest_command(instance: Instance, rescan: bool) -> None:
    """Store new and edited articles from the inbox; quarantine files that fail.

    Holds the run lock as `run` does (a run ingests too, and two ingests at once would
    both store the same new files): when another run holds it, says so and exits 0.
    """
    lock = run_lock(instance.store.engine)
    try:
        lock.acquire()
    except Busy as busy:
        click.echo(f"{busy}; nothing done")
        return
    try:
        report = ingest(instance.settings, instance.store, instance.now(), rescan=rescan)
    finally:
        lock.release()
    click.echo(report.line())


@cli.command()
@instance_option
def run(instance: Instance) -> None:
    """One pass of every stage (for cron; safe to start every minute).

    Checks the settings first (as `publisher check` does, without DNS) and stops on a
    problem. Holds the run lock for the pass: when another run holds it, says so and
    exits 0.
    """
    require_ready(instance.settings, warn_line)
    lock = run_lock(instance.store.engine, instance.clock)
    try:
        lock.acquire()
    except Busy as busy:
        click.echo(f"{busy}; nothing done")
        return
    try:
        run_once(instance.settings, instance.store, make_transport(instance.settings),
                 instance.clock, show=click.echo)
    finally:
        lock.release()
