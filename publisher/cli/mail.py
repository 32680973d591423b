"""Command line: digests and delivery: send, outbox, outbox retry, digest check, preview."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from publisher.addresses import normalize_address
from publisher.cli import cli, instance_option
from publisher.delivery import deliver_blocking, make_transport
from publisher.delivery.dkim import load_signer
from publisher.delivery.preview import preview_digest
from publisher.delivery.templates import (
    MESSAGE_TEMPLATES,
    check_templates,
    require_templates,
    shipped_templates,
)
from publisher.digests.planner import queue_digests
from publisher.errors import AddressError
from publisher.instance import Instance
from publisher.ops.progress import progress
from publisher.schedule.pipeline import stage
from publisher.words import counted


@cli.command()
@click.option("--now", "everyone", is_flag=True,
              help="Treat every active subscriber as due (still only what is new to them).")
@click.option("--limit", type=click.IntRange(min=1), help="Send at most N messages.")
@instance_option
def send(instance: Instance, everyone: bool, limit: int | None) -> None:
    """Queue the digests that are due and deliver the outbox (no ingest)."""
    settings, store, now = instance.settings, instance.store, instance.now()
    require_templates(settings)
    digests = stage(store, "digests", instance.clock,
                    lambda: queue_digests(settings, store, now, everyone=everyone))
    click.echo(digests.line())
    delivery = stage(store, "delivery", instance.clock, lambda: deliver_blocking(
        settings, store, make_transport(settings), now, limit, show=progress))
    click.echo(delivery.line())


@cli.group(invoke_without_command=True)
@click.option("-n", "--errors", "error_count", default=10, show_default=True,
              help="How many of the latest errors to show.")
@instance_option
def outbox(instance: Instance, error_count: int) -> None:
    """Show the outbox: messages by state and the latest errors."""
    if click.get_current_context().invoked_subcommand is None:
        show_outbox(instance, error_count)


def show_outbox(instance: Instance, error_count: int) -> None:
    ledger = instance.store.ledger
    counts = ledger.counts()
    click.echo("  ".join(f"{state} {count}" for state, count in counts.items()))
    errors = ledger.latest_errors(error_count)
    if errors:
        click.echo("latest errors:")
    for row in errors:
        when = row["last_attempt_at"].strftime("%Y-%m-%d %H:%M") if row["last_attempt_at"] \
            else "-"
        retry = (f", next try {row['next_attempt_at']:%Y-%m-%d %H:%M}"
                 if row["state"] in ("deferred", "queued") else "")
        click.echo(f"  {when}  {row['state']:8}  {row['recipient']}  "
                   f"attempts {row['attempts']}{retry}: {row['last_error']}")


@outbox.command(name="retry")
@instance_option
def outbox_retry(instance: Instance) -> None:
    """Queue every failed message again; the next run or `publisher send` sends them."""
    count = instance.store.ledger.retry_failed(instance.now())
    click.echo(f"{count} failed messages queued again")


@cli.group()
def digest() -> None:
    """Check the digest templates, preview a subscriber's next digest."""


@digest.command()
@instance_option
def check(instance: Instance) -> None:
    """Render every mail template against sample data; exit 1 naming file:line."""
    settings = instance.settings
    problems = check_templates(settings)
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        sys.exit(1)
    names = ", ".join(name for names in MESSAGE_TEMPLATES.values() for name in names)
    click.echo(f"templates ok: {names} "
               f"(yours in {settings.path('templates')}, defaults in {shipped_templates()})")
    signer = load_signer(settings)
    if signer:
        click.echo(f"DKIM on: publish TXT {signer.dns_name} \"{signer.dns_record()}\"")


@digest.command()
@click.argument("email", required=False)
@click.option("--sample", is_flag=True, help="Use the newest articles (of EMAIL's sections) "
              "even if nothing is new; without EMAIL, a sample reader's digest.")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default=True, help="Folder to write the files to.")
@instance_option
def preview(instance: Instance, email: str | None, sample: bool, output: Path) -> None:
    """Write EMAIL's next digest as .eml and .html; sends nothing, moves no cursor."""
    settings, store = instance.settings, instance.store
    subscriber = None
    if email is not None:
        subscriber = store.subscribers.by_email(normalize_address(email))
        if subscriber is None:
            raise AddressError(f"{email} is not on the subscriber list")
    elif not sample:
        raise click.UsageError("give a subscriber's EMAIL, or --sample")
    shown = preview_digest(settings, store, subscriber, instance.now(), sample)
    if shown is None:
        if subscriber is not None and not sample:
            click.echo(f"nothing new for {subscriber.email} after article "
                       f"{subscriber.cursor}: no digest would be sent (try --sample)")
        else:
            click.echo("no articles are stored: nothing to preview")
        return
    output.mkdir(parents=True, exist_ok=True)
    stem = output / (f"digest-{subscriber.id}" if subscriber else "digest-sample")
    stem.with_suffix(".eml").write_bytes(shown.envelope.data)
    stem.with_suffix(".html").write_text(shown.part("html"), encoding="utf-8")
    who = f"{subscriber.email} ({subscriber.status})" if subscriber else "a sample reader"
    kind = "sample, newest articles: " if shown.sample else ""
    count = counted(len(shown.plan.article_seqs), "article")
    click.echo(f"{kind}{count} (+{shown.plan.more} more) "
               f"for {who}: wrote {stem}.eml and {stem}.html")
