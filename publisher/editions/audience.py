"""Editions stage, audience: who an edition goes to, and when it is due. Pure rules.

An edition goes to every active subscriber (suppressed ones, bounced, complained or
unsubscribed, are never active) whose frequency is one the edition names (none named:
any) and who reads one of its sections (none named: everyone; a subscriber who chose no
sections reads them all). It is due once `send_at` has passed, or at once without one.
"""

from __future__ import annotations

from datetime import datetime

from publisher.store.editions import Reader


def in_audience(reader: Reader, sections: tuple[str, ...],
                frequencies: tuple[str, ...]) -> bool:
    if frequencies and reader.frequency not in frequencies:
        return False
    if not sections or not reader.sections:
        return True
    return any(section in sections for section in reader.sections)


def is_due(send_at: datetime | None, now: datetime) -> bool:
    """Compared as aware instants, so the site's zone and its DST changes are already in
    `send_at` (read in [site] timezone when the file gives no offset)."""
    return send_at is None or send_at <= now
