"""Helpers for the editions tests: an edition file in an instance, a set of readers of
every kind (audiences, suppressed ones), and the edition rows of the outbox."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from publisher.store.schema import outbox
from tests.support import NOW
from tests.support.mail import add_subscriber

LETTER = """---
subject: {subject}
{extra}
---
Dear readers,

Thank you & **welcome**. <script>alert(1)</script>

<div onclick="steal()">A block of raw HTML</div>

## What comes next

More [on the site](https://news.example.org/).
"""


def write_edition(instance: Path, slug: str, subject: str = "Our spring letter",
                  extra: str = "") -> Path:
    folder = instance / "editions"
    folder.mkdir(exist_ok=True)
    path = folder / f"{slug}.md"
    path.write_text(LETTER.format(subject=subject, extra=extra), encoding="utf-8")
    return path


def readers(store):
    """a: daily, every section; b: weekly, world; c: daily, culture; d and e suppressed."""
    add_subscriber(store, "a@example.org", NOW, name="Ada")
    add_subscriber(store, "b@example.org", NOW, frequency="weekly", sections=("world",))
    add_subscriber(store, "c@example.org", NOW, sections=("culture",))
    add_subscriber(store, "d@example.org", NOW, status="unsubscribed")
    add_subscriber(store, "e@example.org", NOW, status="bounced")
    add_subscriber(store, "f@example.org", NOW, status="complained")


def edition_rows(store) -> list[dict]:
    with store.reading() as conn:
        return [dict(r._mapping) for r in conn.execute(
            select(outbox.c.recipient, outbox.c.message_id, outbox.c.state)
            .where(outbox.c.kind == "edition").order_by(outbox.c.recipient))]
