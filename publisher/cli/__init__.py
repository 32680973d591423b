"""Command line: `publisher [-C DIR] COMMAND`; each command lives in a module of this package.

A user's mistake (any PublisherError) is printed on one line and exits non-zero, with no
traceback; the exit code is 2 for bad settings, 1 otherwise.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from pathlib import Path

import click

from publisher import __version__
from publisher.clock import Clock, parse_instant, starting_at, system_clock
from publisher.errors import PublisherError
from publisher.instance import Instance, require_instance


class UserError(click.ClickException):
    def __init__(self, error: PublisherError):
        super().__init__(str(error))
        self.exit_code = error.exit_code

    def show(self, file=None) -> None:
        click.echo(f"publisher: {self.message}", err=True)


class PublisherGroup(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PublisherError as error:
            raise UserError(error) from error


def counted(n: int, noun: str) -> str:
    """"1 subscriber", "3 subscribers": the commands' lines in plain English."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def instance_option(command):
    """Adds -C DIR to a command (as git and make take it) and passes the Instance."""

    @click.option("-C", "directory", type=click.Path(file_okay=False, path_type=Path),
                  help="Run as if started in DIR (the instance folder).")
    @click.pass_context
    @functools.wraps(command)
    def wrapper(ctx: click.Context, directory: Path | None, **kwargs):
        root = ctx.find_root()
        if directory is not None:
            change_directory(root, directory)
        if root.obj is None:
            root.obj = Instance(require_instance(Path.cwd()), clock=root_clock(root))
            root.call_on_close(root.obj.close)
        return ctx.invoke(command, root.obj, **kwargs)

    return wrapper


def warn_line(line: str) -> None:
    click.echo(f"warning: {line}", err=True)


def change_directory(ctx: click.Context, directory: Path) -> None:
    """Change into DIR as git -C does, so relative paths in arguments are read from there;
    the previous folder comes back when the command ends (it matters in tests)."""
    if not directory.is_dir():
        raise click.BadParameter(f"{directory} is not a folder", param_hint="-C")
    previous = Path.cwd()
    os.chdir(directory)
    ctx.call_on_close(lambda: os.chdir(previous))


def root_clock(ctx: click.Context) -> Clock:
    """The clock every command reads `now` from: the system's, or one started at --time."""
    return ctx.find_root().meta.get("publisher.clock", system_clock)


def start_clock(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        try:
            ctx.meta["publisher.clock"] = starting_at(parse_instant(value))
        except PublisherError as error:
            raise click.BadParameter(str(error), ctx=ctx, param_hint="--time") from error


@click.group(cls=PublisherGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-C", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Run as if started in DIR (the instance folder).")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("--time", envvar="PUBLISHER_TIME", metavar="TIME", is_eager=True,
              callback=start_clock, expose_value=False,
              help="Run as if the time were TIME (ISO 8601 with its offset); the clock "
                   "runs on from there. Also PUBLISHER_TIME.")
@click.version_option(__version__, prog_name="publisher")
@click.pass_context
def cli(ctx: click.Context, directory: Path | None, verbose: int) -> None:
    """Publish articles as RSS, Atom and JSON feeds, archive pages and email digests."""
    ctx.obj = None  # the Instance, made by the command (init needs none)
    if directory:
        change_directory(ctx, directory)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main() -> None:
    cli(prog_name="publisher")


from publisher.cli import (  # noqa: E402, F401  (registers the commands)
    admin,
    api_tokens,
    bounces,
    core,
    editions,
    feeds,
    mail,
    ops,
    setup,
    subscribers,
    web,
)
