"""The console lists editions with their state and delivery counts (queued, sent, failed)."""

from __future__ import annotations

import asyncio
import re

from publisher.delivery import deliver
from publisher.delivery.memory import MemoryTransport
from publisher.delivery.transport import PERMANENT, SENT, Result
from publisher.editions import queue_editions
from tests.support import NOW
from tests.support.console import EDITOR, login
from tests.support.editions import write_edition
from tests.support.mail import add_subscriber


def test_console_lists_editions_with_delivery_counts(console, instance):
    store = console.store
    for n in range(3):
        add_subscriber(store, f"r{n}@example.org", NOW)
    write_edition(instance, "letter", subject="Fish & <Chips>")
    write_edition(instance, "later", subject="Later on", extra="send_at: 2030-01-01 09:00")
    write_edition(instance, "broken", extra="frequency: hourly")
    queue_editions(console.settings, store, NOW)
    outcomes = iter([Result(SENT, 250), Result(PERMANENT, 550, "no such mailbox")])
    asyncio.run(deliver(console.settings, store, MemoryTransport(lambda env: next(outcomes)),
                        NOW, limit=2))
    login(console.client, EDITOR)  # editors see it too
    page = console.client.get("/admin/editions")
    assert page.status_code == 200
    text = page.text
    assert 'href="/admin/editions"' in text and "Fish &amp; &lt;Chips&gt;" in text
    row = text.split("Fish &amp; &lt;Chips&gt;")[1].split("</tr>")[0]
    numbers = re.findall(r'data-label="(Queued|Sent|Failed)">([\d,]+)<', row)
    assert numbers == [("Queued", "1"), ("Sent", "1"), ("Failed", "1")]
    assert ">sending<" in row
    assert "Later on" in text and ">scheduled<" in text and "2030-01-01 09:00" in text
    assert ">invalid<" in text and "frequency &#39;hourly&#39; is not one of" in text
