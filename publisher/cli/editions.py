"""Command line: editions (mail an editor writes in editions/): preview, test, list.

`publisher run` (and the daemon) sends an edition once it is due; these commands show
it before then and say where each one stands.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from publisher.addresses import normalize_address
from publisher.cli import cli, counted, instance_option
from publisher.delivery import make_transport
from publisher.delivery.edition_preview import EditionPreview, preview_edition
from publisher.delivery.preview import SAMPLE_EMAIL, send_test, sent
from publisher.editions import edited_after_start, edition_status, resolve
from publisher.editions.audience import in_audience
from publisher.editions.files import parse_edition
from publisher.errors import DeliveryError, InputError, PublisherError
from publisher.instance import Instance
from publisher.store.editions import StoredEdition


@cli.group()
def edition() -> None:
    """Write to subscribers: preview, test and list the editions in editions/."""


def load_file(instance: Instance, file: Path) -> StoredEdition:
    """The edition FILE would be sent as now; refused if it was edited after it started."""
    settings = instance.settings
    source = str(file)
    try:
        with file.open("rb") as handle:
            data = handle.read(settings.ingest.max_markdown_bytes + 1)
    except OSError as exc:
        raise InputError(source, f"cannot be read ({exc.strerror})") from exc
    if len(data) > settings.ingest.max_markdown_bytes:
        raise InputError(source, "is over [ingest] max_markdown_bytes")
    parsed = parse_edition(data, file.stem, source, ZoneInfo(settings.site.timezone))
    known = instance.store.editions.by_slug().get(parsed.slug)
    if known is not None:
        if known.content_hash != parsed.content_hash:
            raise PublisherError(edited_after_start(parsed, known).line())
        return known  # as it was sent
    # Dated as if it started now (its date is send_at when it has one).
    return dataclasses.replace(resolve(settings, instance.store, parsed),
                               queued_at=instance.now())


def render_for(instance: Instance, edition: StoredEdition, address: str | None
               ) -> EditionPreview:
    """As the subscriber at `address` gets it when they are one; else a sample reader."""
    subscriber = None
    if address:
        address = normalize_address(address)
        subscriber = instance.store.subscribers.by_email(address)
    return preview_edition(instance.settings, instance.store, edition, subscriber,
                           instance.now(), address or SAMPLE_EMAIL)


def when_line(instance: Instance, edition: StoredEdition) -> str:
    if edition.id:  # started: the stored edition
        return f"started sending on {edition.queued_at:%Y-%m-%d %H:%M} UTC"
    if edition.send_at is None:
        return "sends with the next run"
    local = edition.send_at.astimezone(ZoneInfo(instance.settings.site.timezone))
    due = "due now" if edition.send_at <= instance.now() else "scheduled"
    return f"send_at {local:%Y-%m-%d %H:%M %Z} ({due})"


@edition.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--to", "address", metavar="ADDR",
              help="Render it as this subscriber gets it (name and links).")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default=True, help="Folder to write the files to.")
@instance_option
def preview(instance: Instance, file: Path, address: str | None, output: Path) -> None:
    """Write FILE's edition as .eml and .html; sends nothing, queues nothing."""
    edition = load_file(instance, file)
    shown = render_for(instance, edition, address)
    output.mkdir(parents=True, exist_ok=True)
    stem = output / f"edition-{edition.slug}"
    stem.with_suffix(".eml").write_bytes(shown.envelope.data)
    stem.with_suffix(".html").write_text(shown.part("html"), encoding="utf-8")
    readers = instance.store.editions.audience_size(
        lambda reader: in_audience(reader, edition.sections, edition.frequencies))
    cards = len(edition.article_seqs)
    click.echo(f"{edition.subject!r}: {counted(cards, 'article card')}, "
               f"to {counted(readers, 'subscriber')} now, {when_line(instance, edition)}; "
               f"wrote {stem}.eml and {stem}.html")


@edition.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("address")
@instance_option
def test(instance: Instance, file: Path, address: str) -> None:
    """Send FILE's edition to ADDR only, subject "[TEST] ..."; records nothing."""
    edition = load_file(instance, file)
    envelope = render_for(instance, edition, address).test(address, instance.now())
    result = asyncio.run(send_test(make_transport(instance.settings), envelope))
    if not sent(result):
        raise DeliveryError(f"test not sent to {envelope.recipients[0]}: "
                            f"{result.detail or result.status}")
    click.echo(f"test of {edition.slug} sent to {envelope.recipients[0]}")


@edition.command(name="list")
@instance_option
def list_editions(instance: Instance) -> None:
    """Every edition: its state (scheduled, due, sending, sent, invalid) and deliveries."""
    zone = ZoneInfo(instance.settings.site.timezone)
    rows = edition_status(instance.settings, instance.store, instance.now())
    if not rows:
        click.echo("no editions: write one as editions/NAME.md (see the README)")
    for row in rows:
        when = f"{row.when.astimezone(zone):%Y-%m-%d %H:%M}" if row.when else "-"
        counts = (f"queued {row.queued}, sent {row.sent}, failed {row.failed}"
                  if row.state in ("sending", "sent") else "")
        click.echo(f"{row.state:9}  {when:16}  {row.slug}  {row.subject!r}"
                   + (f"  ({counts})" if counts else ""))
        if row.problem:
            click.echo(f"           {row.problem}")
