"""Command line: `publisher admin ...`, the operator accounts of the console (/admin/)."""

from __future__ import annotations

import sys

import click

from publisher.cli import cli, instance_option
from publisher.instance import Instance
from publisher.store.accounts import ROLES
from publisher.web.admin.operators import (
    add_operator,
    change_password,
    find_operator,
    remove_operator,
)


@cli.group()
def admin() -> None:
    """Operator accounts of the web console under /admin/."""


def read_password(from_stdin: bool) -> str:
    """The password from standard input's first line, or from a hidden prompt twice."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


stdin_option = click.option("--password-stdin", "password_stdin", is_flag=True,
                            help="Read the password from standard input's first line "
                            "(for scripts) instead of prompting.")


@admin.command()
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), default="owner", show_default=True,
              help="owner: everything; editor: everything but accounts and settings.")
@stdin_option
@instance_option
def add(instance: Instance, email: str, role: str, password_stdin: bool) -> None:
    """Create a console account for EMAIL."""
    password = read_password(password_stdin)
    now = instance.now()
    account = add_operator(instance.store, email, role, password, now)
    instance.store.accounts.audit("cli", "account.add", now, f"account {account.id}",
                                  f"role {role}")
    click.echo(f"added {account.email} ({account.role}); log in at "
               f"{instance.settings.site.url}admin/")


@admin.command(name="list")
@instance_option
def list_command(instance: Instance) -> None:
    """List console accounts."""
    accounts = instance.store.accounts.all()
    for account in accounts:
        last = f"{account.last_login_at:%Y-%m-%d %H:%M}" if account.last_login_at else "never"
        click.echo(f"{account.email:<40} {account.role:<7} last login {last}")
    click.echo(f"{len(accounts)} account{'' if len(accounts) == 1 else 's'}", err=True)


@admin.command()
@click.argument("email")
@instance_option
def remove(instance: Instance, email: str) -> None:
    """Remove EMAIL's console account; its sessions end."""
    account = find_operator(instance.store, email)
    remove_operator(instance.store, account)
    instance.store.accounts.audit("cli", "account.remove", instance.now(),
                                  f"account {account.id}")
    click.echo(f"removed {account.email}")


@admin.command()
@click.argument("email")
@stdin_option
@instance_option
def password(instance: Instance, email: str, password_stdin: bool) -> None:
    """Set a new password for EMAIL; every session of that account ends."""
    account = find_operator(instance.store, email)
    now = instance.now()
    ended = change_password(instance.store, account, read_password(password_stdin), now)
    instance.store.accounts.audit("cli", "account.password", now, f"account {account.id}")
    click.echo(f"password changed for {account.email}; {ended} session"
               f"{'' if ended == 1 else 's'} ended")
