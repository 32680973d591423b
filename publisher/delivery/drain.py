"""Delivery stage: drain the outbox through a transport, each message once.

One producer claims due rows in batches under a lease (database work runs on one ledger
thread); `transport.concurrency` workers each take a few rows, compose them (DKIM
signatures in threads: OpenSSL signs without the GIL) and hand them to the transport;
outcomes are written back in batches every fraction of a second. A message is marked
sent only after the server took it, so a crash can only repeat the messages that were
in flight: claimed, perhaps delivered, not yet recorded. Their lease runs out and the
next run sends them again, with the same Message-ID.

Retries: a 4xx or a network error defers the message (exponential backoff with jitter,
[mail] max_attempts spread over at least 24 hours); a 5xx fails it, and a 5xx on the
recipient counts towards [mail] bounce_after. A message the pool never tried (the server
asked it to slow down) costs no attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from publisher.config import Settings
from publisher.delivery.compose import Composer
from publisher.delivery.dkim import load_signer
from publisher.delivery.templates import require_templates
from publisher.delivery.transport import (
    PERMANENT,
    SENT,
    TEMPORARY,
    UNTRIED,
    Envelope,
    Result,
    Transport,
)
from publisher.errors import DeliveryError, PublisherError
from publisher.ops.metrics import record_message
from publisher.ops.progress import SILENT, Progress, ProgressDisplay, quiet
from publisher.store import Store
from publisher.store.ledger import Claimed, Outcome
from publisher.store.runs import NODE

log = logging.getLogger(__name__)

BATCH = 500  # rows claimed, and outcomes recorded, together
IN_FLIGHT = 1000  # claimed rows not yet recorded, at most
FLUSH_SECONDS = 0.1  # outcomes wait at most this long to be written
SPREAD = timedelta(hours=24)  # the retries of one message last at least this long
MIN_RETRY, MAX_RETRY = 60.0, 24 * 3600.0
HAND_BACK_DELAY = timedelta(minutes=5)  # untried messages wait this long for the next run
UNTRIED_PER_RUN = 20  # times one message may be handed back to the queue in a run
PER_SEND = 16  # messages one worker hands the transport at once (pipelined by SMTP)
SIGNERS = 2  # threads making DKIM signatures (OpenSSL signs without the GIL)


@dataclass
class DeliveryReport:
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    waiting: int = 0  # handed back untried: the server stayed unavailable
    released: int = 0  # left 'sending' by a crashed run, queued again
    problem: str = ""

    def line(self) -> str:
        line = f"delivery: {self.sent} sent, {self.deferred} deferred, {self.failed} failed"
        if self.released:
            line += f" ({self.released} left 'sending' by an earlier run, sent again)"
        if self.waiting:
            line += f", {self.waiting} waiting ({self.problem})"
        return line


def retry_delay(attempt: int, max_attempts: int, rng: random.Random) -> timedelta:
    """How long to wait after the `attempt`-th failed try: doubling each time, with up to
    25% jitter added (never removed), from a base chosen so that the first
    max_attempts - 1 delays add up to at least 24 hours."""
    retries = max(1, max_attempts - 1)
    base = max(MIN_RETRY, SPREAD.total_seconds() / (2 ** min(retries, 60) - 1))
    delay = min(base * 2 ** min(attempt - 1, 60), MAX_RETRY)
    return timedelta(seconds=delay * rng.uniform(1.0, 1.25))


async def deliver(settings: Settings, store: Store, transport: Transport, now: datetime,
                  limit: int | None = None, *, kind: str | None = None,
                  rng: random.Random | None = None, show: ProgressDisplay = quiet,
                  stopping: asyncio.Event | None = None, tidy: bool = True
                  ) -> DeliveryReport:
    """Send the due outbox rows (all of them, or at most `limit`; only those of `kind`,
    "digest" or "confirm", when given) through `transport`; returns what happened.

    Used by `publisher run` and `publisher send`, and by the web stage right after a
    subscribe form is posted: `await deliver(settings, store, make_transport(settings),
    now, kind="confirm")` sends the confirmation at once without waiting for digests.
    Refuses to send, with a TemplateError naming file:line, when a mail template is
    broken. Closes the transport's connections when done; it can be used again.

    `show` displays progress (the CLI). A full pass prunes old sent messages at the end;
    `tidy=False` leaves that to the caller (the daemon, which sends many small batches,
    prunes hourly). Once `stopping` is set nothing more is claimed; messages in flight
    are sent and recorded (the daemon's SIGTERM)."""
    require_templates(settings)
    composer = Composer(settings, store, load_signer(settings))
    total = None
    if show is not quiet:  # a display wants a total: one count, only then
        total = await asyncio.to_thread(store.ledger.due_count, now)
        total = min(total, limit) if limit else total
    try:
        with show("send", total=total) as bar:
            drain = Drain(settings, store, transport, composer, now, limit, kind,
                          rng or random.Random(), bar, tidy, stopping)
            return await drain.run()
    finally:
        await transport.close()


class Drain:
    def __init__(self, settings: Settings, store: Store, transport: Transport,
                 composer: Composer, now: datetime, limit: int | None, kind: str | None,
                 rng: random.Random, bar: Progress = SILENT, tidy: bool = True,
                 stopping: asyncio.Event | None = None):
        self.settings = settings
        self.store = store
        self.transport = transport
        self.composer = composer
        self.start_time, self.start_clock = now, time.monotonic()
        self.limit = limit
        self.kind = kind
        self.rng = rng
        self.bar = bar
        self.tidy = tidy and kind is None  # prune old sent messages at the end
        self.stopping = stopping or asyncio.Event()  # set: claim nothing more
        self.report = DeliveryReport()
        self.queue: asyncio.Queue = asyncio.Queue()
        self.outcomes: list[Outcome] = []
        self.in_flight: set[int] = set()
        self.room = asyncio.Event()
        self.done_producing = False
        self.finished = asyncio.Event()
        self.workers = max(1, transport.concurrency)
        self.ledger_thread = ThreadPoolExecutor(1, thread_name_prefix="ledger")
        self.signers = ThreadPoolExecutor(SIGNERS, thread_name_prefix="dkim")

    async def ledger(self, work, *args):
        """Database work, on the run's one ledger thread: writes queue up there rather
        than on SQLite's lock, one pooled connection stays warm, and the rows' memory
        comes from one malloc arena instead of one per pool thread."""
        return await asyncio.get_running_loop().run_in_executor(self.ledger_thread, work,
                                                                *args)

    def now(self) -> datetime:
        """The run's `now`, moved on by the time the run has taken."""
        return self.start_time + timedelta(seconds=time.monotonic() - self.start_clock)

    async def run(self) -> DeliveryReport:
        try:
            return await self.drain()
        finally:
            self.ledger_thread.shutdown(wait=False)
            self.signers.shutdown(wait=False)

    async def drain(self) -> DeliveryReport:
        self.report.released = await self.ledger(self.store.ledger.release_expired,
                                                       self.now())
        tasks = [asyncio.create_task(self.produce()),
                 *(asyncio.create_task(self.work()) for _ in range(self.workers))]
        flusher = asyncio.create_task(self.flush_often())
        renewer = asyncio.create_task(self.renew_leases())
        try:
            await asyncio.gather(*tasks)
        finally:  # whatever happened, what is known so far gets recorded
            for task in tasks:
                task.cancel()
            renewer.cancel()
            self.finished.set()
            await flusher
        if self.transport.gave_up:
            self.report.problem = self.transport.problem or "the transport gave up"
            if self.transport.fatal:
                raise DeliveryError(f"{self.report.problem}; {self.report.waiting} "
                                    f"messages wait in the outbox")
        keep = self.settings.mail.keep_days
        if keep and self.tidy:  # a full pass tidies up; a quick one does not
            await self.ledger(self.store.ledger.prune,
                                    self.now() - timedelta(days=keep))
        busy = self.report.sent or self.report.deferred or self.report.failed \
            or self.report.waiting or self.report.released
        log.log(logging.INFO if busy else logging.DEBUG, "%s", self.report.line())
        return self.report

    # ---------------------------------------------------------------- producing
    async def produce(self) -> None:
        claimed = 0
        lease = timedelta(seconds=self.settings.mail.lease_seconds)
        while not self.transport.gave_up and not self.stopping.is_set():
            size = BATCH if self.limit is None else min(BATCH, self.limit - claimed)
            if size <= 0:
                break
            while len(self.in_flight) > IN_FLIGHT - size:
                self.room.clear()
                await self.room.wait()
            now = self.now()
            rows = await self.ledger(self.store.ledger.claim, now, size, now + lease,
                                           NODE, self.kind)
            if not rows:
                break
            claimed += len(rows)
            self.in_flight.update(row.id for row in rows)
            for row in rows:
                self.queue.put_nowait((row, None, 0))
        self.done_producing = True
        self.maybe_stop()

    async def compose_all(self, batch: list[tuple[Claimed, Envelope | None, int]]
                          ) -> list[tuple[Claimed, Envelope, int]]:
        """Messages are composed just before they are sent, a worker's batch at a time,
        so only the messages in flight are in memory. Composing runs on the event loop's
        thread; DKIM signatures are made in threads, where OpenSSL runs without the GIL.
        A row that cannot be composed fails (saying why) and the run goes on."""
        ready, drafts = [], []
        for row, envelope, untried in batch:
            if envelope is not None:  # handed back untried: already composed
                ready.append((row, envelope, untried))
                continue
            try:
                drafts.append((row, self.composer.compose(row, self.now()), untried))
            except PublisherError as exc:
                log.warning("message %s to %s not composed: %s", row.id, row.recipient, exc)
                self.settle(row, Outcome(row.id, row.subscriber_id, "failed", error=str(exc),
                                         attempts=row.attempts))
        signatures: list[bytes | None] = [None] * len(drafts)
        if self.composer.dkim is not None and drafts:
            now = self.now()
            signatures = await asyncio.get_running_loop().run_in_executor(
                self.signers, lambda: [self.composer.signature(d, now) for _, d, _ in drafts])
        return ready + [(row, self.composer.envelope(draft, signature), untried)
                        for (row, draft, untried), signature in zip(drafts, signatures,
                                                                     strict=True)]

    # ---------------------------------------------------------------- sending
    async def work(self) -> None:
        while True:
            item = await self.queue.get()
            if item is None:
                return
            batch, last = [item], False
            while len(batch) < PER_SEND and not self.queue.empty():
                item = self.queue.get_nowait()
                if item is None:
                    last = True
                    break
                batch.append(item)
            await self.send(batch)
            if last:
                return

    async def send(self, batch: list[tuple[Claimed, Envelope | None, int]]) -> None:
        if self.transport.gave_up:
            for row, _, _ in batch:
                self.hand_back(row)
            return
        batch = await self.compose_all(batch)
        if not batch:
            return
        waiting = {id(envelope): (row, envelope, untried) for row, envelope, untried in batch}

        def report(envelope: Envelope, result: Result) -> None:
            self.take(*waiting.pop(id(envelope)), result)

        try:
            await self.transport.send([envelope for _, envelope, _ in batch], report)
        except Exception as exc:  # a transport bug must not lose the messages
            log.exception("transport %s failed", self.transport.name)
            for item in list(waiting.values()):
                self.take(*item, Result(TEMPORARY, None, f"transport error: {exc}"))
            waiting.clear()
        for item in list(waiting.values()):  # a transport that forgot some
            self.take(*item, Result(UNTRIED, None, "not reported by the transport"))

    def take(self, row: Claimed, envelope: Envelope, untried: int, result: Result) -> None:
        if result.status != UNTRIED:
            self.settle(row, self.outcome(row, result))
        elif self.transport.gave_up or untried + 1 >= UNTRIED_PER_RUN:
            self.report.problem = result.detail
            self.hand_back(row)
        else:  # never sent: back in the queue, no attempt counted
            self.queue.put_nowait((row, envelope, untried + 1))

    def outcome(self, row: Claimed, result: Result) -> Outcome:
        if result.status == SENT:
            return Outcome(row.id, row.subscriber_id, "sent", code=result.code,
                           attempts=row.attempts + 1)
        attempts = row.attempts + 1
        if result.status == PERMANENT or attempts >= self.settings.mail.max_attempts:
            return Outcome(row.id, row.subscriber_id, "failed", result.code, result.detail,
                           attempts=attempts, bounce=result.bounce)
        delay = retry_delay(attempts, self.settings.mail.max_attempts, self.rng)
        return Outcome(row.id, row.subscriber_id, "deferred", result.code, result.detail,
                       self.now() + delay, attempts)

    def hand_back(self, row: Claimed) -> None:
        self.settle(row, Outcome(row.id, row.subscriber_id, "queued", None,
                                 self.report.problem or "server unavailable",
                                 self.now() + HAND_BACK_DELAY, row.attempts))

    def settle(self, row: Claimed, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        if outcome.state != "queued":  # handed back untried: not an attempt
            record_message(outcome.state, outcome.code)
        self.bar.advance()
        counter = {"sent": "sent", "deferred": "deferred", "failed": "failed",
                   "queued": "waiting"}[outcome.state]
        setattr(self.report, counter, getattr(self.report, counter) + 1)
        self.in_flight.discard(row.id)
        if len(self.in_flight) <= IN_FLIGHT - BATCH:
            self.room.set()
        self.maybe_stop()

    def maybe_stop(self) -> None:
        if self.done_producing and not self.in_flight:
            for _ in range(self.workers):
                self.queue.put_nowait(None)

    # ---------------------------------------------------------------- recording
    async def flush_often(self) -> None:
        while not self.finished.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.finished.wait(), FLUSH_SECONDS)
            await self.flush()
        await self.flush()

    async def flush(self) -> None:
        while self.outcomes:
            batch, self.outcomes = self.outcomes[:BATCH], self.outcomes[BATCH:]
            await self.ledger(self.store.ledger.record, batch, self.now(), NODE,
                                    self.settings.mail.bounce_after)

    async def renew_leases(self) -> None:
        lease = self.settings.mail.lease_seconds
        while True:
            await asyncio.sleep(lease / 3)
            if self.in_flight:
                await self.ledger(self.store.ledger.extend_leases, list(self.in_flight),
                                        self.now() + timedelta(seconds=lease), NODE)


def deliver_blocking(settings: Settings, store: Store, transport: Transport | None,
                     now: datetime, limit: int | None = None,
                     show: ProgressDisplay = quiet) -> DeliveryReport:
    """`deliver` for synchronous callers (the pipeline, the CLI): runs its own event loop,
    in a thread of its own when the caller already runs one. No transport: the
    configured one."""
    if transport is None:
        from publisher.delivery import make_transport

        transport = make_transport(settings)
    work = deliver(settings, store, transport, now, limit, show=show)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()
