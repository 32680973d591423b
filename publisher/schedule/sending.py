"""Schedule: the daemon's sender — the delivery stage run continuously, on every node.

One task sends whatever is due, a batch of at most [daemon] send_batch messages at a
time. Every daemon on the database runs one, leader or not: each batch claims its rows
under a lease (FOR UPDATE SKIP LOCKED on PostgreSQL), so no two nodes hold the same
message. On a stop it claims nothing more (the daemon's `stopping` event reaches the
delivery pass) and the messages in flight are sent and recorded before the daemon exits.
When nothing is sendable it sleeps, a quarter of a second at first, doubling up to five
seconds (one cheap count query each time), and wakes at once when this node queues
digests. Rows whose sender died count as sendable once their lease has run out: the next
pass queues them again, so a follower finishes what a killed leader had in flight. Every
minute it runs a pass even when nothing looks due, and once an hour it forgets sent
messages older than [mail] keep_days.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from publisher.config import Settings
from publisher.delivery import DeliveryReport, deliver, make_transport
from publisher.errors import PublisherError
from publisher.schedule.pipeline import astage
from publisher.store import Store

log = logging.getLogger(__name__)

FIRST_PAUSE, LONGEST_PAUSE = 0.25, 5.0
AFTER_ERROR_PAUSE = 60.0
SWEEP_SECONDS = 60.0
PRUNE_SECONDS = 3600.0


class OutboxSender:
    def __init__(self, settings: Settings, store: Store, clock: Callable[[], datetime],
                 stopping: asyncio.Event):
        self.settings, self.store, self.clock = settings, store, clock
        self.stopping = stopping
        self.wake = asyncio.Event()
        self.last_error = ""

    def wake_up(self) -> None:
        """Digests were queued: look now rather than after the current pause."""
        self.wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        transport = make_transport(self.settings)
        pause, sweep_at, prune_at = FIRST_PAUSE, 0.0, 0.0
        while not self.stopping.is_set():
            self.wake.clear()
            now = self.clock()
            try:
                sendable = await asyncio.to_thread(self.store.ledger.sendable_count, now)
            except Exception as exc:  # the database is away: say so, look again later
                self.failed(exc)
                await self.sleep(AFTER_ERROR_PAUSE)
                continue
            if sendable or loop.time() >= sweep_at:
                sweep_at = loop.time() + SWEEP_SECONDS
                if loop.time() >= prune_at:
                    prune_at = loop.time() + PRUNE_SECONDS
                    await self.prune(now)
                report = await self.send_batch(transport, now)
                if report is None:
                    pause = AFTER_ERROR_PAUSE
                elif report.sent + report.deferred + report.failed + report.released:
                    pause = FIRST_PAUSE
                    continue  # more may be due: no pause between batches
            await self.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE)

    async def sleep(self, seconds: float) -> None:
        stop = asyncio.ensure_future(self.stopping.wait())
        wake = asyncio.ensure_future(self.wake.wait())
        await asyncio.wait([stop, wake], timeout=seconds,
                           return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        wake.cancel()

    async def send_batch(self, transport, now: datetime) -> DeliveryReport | None:
        """One delivery pass of at most send_batch messages, recorded as a stage run."""
        try:
            report = await astage(self.store, "delivery", self.clock, lambda: deliver(
                self.settings, self.store, transport, now,
                limit=self.settings.daemon.send_batch, stopping=self.stopping, tidy=False))
        except Exception as exc:
            self.failed(exc)
            return None
        self.last_error = ""
        return report

    async def prune(self, now: datetime) -> None:
        """Forget sent messages older than [mail] keep_days, as a full pass of `publisher
        run` does; the daemon's small batches leave it to this, once an hour."""
        keep = self.settings.mail.keep_days
        if keep:
            try:
                await asyncio.to_thread(self.store.ledger.prune, now - timedelta(days=keep))
            except Exception:  # tidying up must never stop the sending
                log.exception("pruning the outbox failed")

    def failed(self, exc: Exception) -> None:
        """Say why sending stopped; the same reason again (every minute) only in debug."""
        message = str(exc)
        if message == self.last_error:
            log.debug("delivery still failing: %s", message)
        elif isinstance(exc, PublisherError):  # a template or the mail server, as set up
            log.error("delivery stopped: %s; trying again every %.0fs", message,
                      AFTER_ERROR_PAUSE)
        else:
            log.error("delivery failed; trying again every %.0fs", AFTER_ERROR_PAUSE,
                      exc_info=exc)
        self.last_error = message
