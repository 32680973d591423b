"""Command line: `publisher api-token create|list|revoke`, the bearer tokens of the JSON
API (/api/v1/). A token is printed once, when made; only its SHA-256 is stored."""

from __future__ import annotations

import click

from publisher.cli import cli, instance_option
from publisher.errors import InputError
from publisher.instance import Instance
from publisher.web.api.auth import create_token


@cli.group(name="api-token")
def api_token() -> None:
    """Make, list and revoke tokens for the JSON API."""


@api_token.command()
@click.argument("name")
@click.option("--read-only", is_flag=True, help="The token may read but change nothing.")
@instance_option
def create(instance: Instance, name: str, read_only: bool) -> None:
    """Make a token called NAME and print it (this one time only)."""
    token, secret = create_token(instance.store, name, read_only, instance.now())
    click.echo(secret)
    click.echo(f"API token {token.name!r} ({'read-only' if read_only else 'read and write'}) "
               "made. Keep it now: it is stored only as a hash and cannot be shown again.",
               err=True)


@api_token.command(name="list")
@instance_option
def list_command(instance: Instance) -> None:
    """List tokens: name, access, made, last used, revoked."""
    tokens = instance.store.api_tokens.all()
    if not tokens:
        click.echo("no API tokens (make one with `publisher api-token create NAME`)", err=True)
        return
    click.echo(f"{'NAME':<24} {'ACCESS':<10} {'CREATED':<20} {'LAST USED':<20} REVOKED")
    for token in tokens:
        click.echo(f"{token.name:<24} {'read' if token.read_only else 'read-write':<10} "
                   f"{when(token.created_at):<20} {when(token.last_used_at):<20} "
                   f"{when(token.revoked_at)}")


@api_token.command()
@click.argument("name")
@instance_option
def revoke(instance: Instance, name: str) -> None:
    """Revoke the token called NAME: it stops working at once."""
    if not instance.store.api_tokens.revoke(name, instance.now()):
        raise InputError(name, "no API token of this name is live (see `publisher "
                         "api-token list`)")
    click.echo(f"revoked API token {name!r}")


def when(moment) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "-"
