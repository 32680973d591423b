"""Schedule: `publisher daemon` — the pipeline's stages on APScheduler, running for good.

What runs when:
- ingest, as files land in the inbox (publisher.schedule.watch), and once at start for files
  that landed while the daemon was down; then feeds and digests when it stored anything.
- digests: a job every minute on the minute asks the digests stage who is due at `now`.
  Due-ness is a function of `now` and each subscriber's last digest, so the schedule of
  every time zone falls out of the one job, and catching up after downtime is the first
  run at start (a daily digest missed at 07:00 goes out once, on start).
- each upstream source: a job at its next fetch time as the store has it (its interval,
  or its backoff after failures); a source overdue at start runs at once.
- webhooks: every WEBHOOK_SECONDS on the leader, beside the other stages (a slow
  receiver holds up nothing else); without [[webhooks]], an hourly pruning of events.
- the outbox: drained continuously, on every node, by one sender (publisher.schedule.sending), in
  batches of [daemon] send_batch; it sleeps with growing pauses while there is nothing
  to send and wakes at once when this node queues digests.

Stages that write (ingest, storing sources, feeds, digests) run one at a time in a worker
thread; requests for them coalesce, so a burst of files is one ingest. Sending and the
network half of source fetches run beside them. Jobs coalesce their misfires and run
however late (misfire_grace_time None): a machine that slept runs each job once.

Several daemons may run on one database (PostgreSQL; on SQLite, one machine). Every one
of them sends: outbox rows are claimed in batches under a lease (FOR UPDATE SKIP LOCKED
on PostgreSQL), so no two nodes hold the same message. One of them, the leader, holds the
run lock (publisher.schedule.lock: a session-level advisory lock on PostgreSQL, flock beside
SQLite) and alone runs the writing stages: ingest, sources, feeds and digest queuing. The
others stand by, retry the lock every few seconds and take over when the leader's
session ends (its process died or its connection dropped). A leader that finds its lock
gone stops (exit 1) before writing anything more, so two leaders never overlap; a
supervisor starts it again as a follower. A cron `publisher run` beside a leader does
nothing. SIGTERM or SIGINT: take no new work, let in-flight stages and sends finish (up to
[daemon] drain_seconds), release the lock, exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger

from publisher.clock import Clock, system_clock
from publisher.config import Settings
from publisher.ingest.sources import fetch_due, store_fetched
from publisher.ops.metrics import serve_metrics
from publisher.schedule.lock import Busy, RunLock, run_lock
from publisher.schedule.pipeline import stage, stages, webhooks_stage
from publisher.schedule.sending import OutboxSender
from publisher.schedule.watch import watch_inbox
from publisher.store import Store

log = logging.getLogger(__name__)

LOCK_RETRY_SECONDS = 2.0
LOCK_CHECK_SECONDS = 30
WEBHOOK_SECONDS = 10


class Daemon:
    def __init__(self, settings: Settings, store: Store,
                 clock: Clock = system_clock):
        self.settings, self.store, self.clock = settings, store, clock
        self.exit_code = 0
        self.wanted: set[str] = set()

    # --- life cycle ---------------------------------------------------------------
    async def run(self) -> int:
        self.stopping = asyncio.Event()
        self.hurry = asyncio.Event()  # a second signal: stop waiting for in-flight work
        self.work_ready = asyncio.Event()
        self.writing = asyncio.Lock()  # one writing stage at a time
        self.lock_checks = asyncio.Lock()
        self.lock: RunLock = run_lock(self.store.engine, self.clock)
        self.leading = False
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop, signal.Signals(signum).name)
        metrics = None
        try:
            if self.settings.daemon.metrics_port:
                metrics = serve_metrics(self.settings, self.store)
            self.start_scheduler()
            self.sender = OutboxSender(self.settings, self.store, self.clock, self.stopping)
            tasks = [asyncio.create_task(self.worker(), name="worker"),
                     asyncio.create_task(self.watch(), name="watch"),
                     asyncio.create_task(self.sender.run(), name="sender")]
            leader = asyncio.create_task(self.lead(), name="leader")
            self.announce()
            await self.stopping.wait()
            self.scheduler.shutdown(wait=False)
            leader.cancel()
            await self.finish(tasks)
        finally:
            if metrics:
                metrics.shutdown()
                metrics.server_close()
            await asyncio.to_thread(self.lock.release)
        log.info("stopped", extra={"event": "stopped"})
        return self.exit_code

    def stop(self, reason: str, exit_code: int = 0) -> None:
        if self.stopping.is_set():
            if not self.hurry.is_set():
                log.warning("%s again: cancelling in-flight work", reason)
                self.hurry.set()
            return
        log.info("stopping on %s: no new work; in-flight work may take up to %gs",
                 reason, self.settings.daemon.drain_seconds, extra={"event": "stopping"})
        self.exit_code = exit_code
        self.stopping.set()
        self.work_ready.set()

    async def finish(self, tasks: list[asyncio.Task]) -> None:
        """Wait for in-flight work, at most drain_seconds; cancel what is left."""
        tasks = [*tasks, asyncio.create_task(self.idle(), name="writing stage")]
        everything = asyncio.ensure_future(
            asyncio.wait(tasks, timeout=self.settings.daemon.drain_seconds))
        hurry = asyncio.create_task(self.hurry.wait())
        await asyncio.wait([everything, hurry], return_when=asyncio.FIRST_COMPLETED)
        hurry.cancel()
        late = [task for task in tasks if not task.done()]
        for task in late:
            log.warning("%s did not finish within %gs; cancelled", task.get_name(),
                        self.settings.daemon.drain_seconds)
            task.cancel()
        if late:
            await asyncio.wait(late)

    async def idle(self) -> None:
        """Returns once no writing stage is in flight (a source job's, say)."""
        async with self.writing:
            pass

    def announce(self) -> None:
        daemon = self.settings.daemon
        metrics = (f"metrics on http://{daemon.metrics_host}:{daemon.metrics_port}/metrics"
                   if daemon.metrics_port else "metrics off")
        log.info("daemon started (pid %d): inbox %s by %s, %d sources, %s", os.getpid(),
                 self.inbox, daemon.watch, len(self.settings.sources), metrics,
                 extra={"event": "started"})

    @property
    def inbox(self):
        return self.settings.path(self.settings.ingest.inbox)

    # --- leading: the run lock ------------------------------------------------------
    async def lead(self) -> None:
        """Take the run lock, standing by (and sending) while another node holds it;
        then do the leader's work: catch up, fetch sources, watch that the lock holds."""
        said = False
        while not await self.take_run_lock(said):
            said = True
            if await self.sleep(LOCK_RETRY_SECONDS):
                return
        if said:
            log.info("took over the run lock")
        self.leading = True
        log.info("leading: ingest, sources, feeds and digests run here",
                 extra={"event": "leading"})
        self.scheduler.add_job(self.check_run_lock, "interval", seconds=LOCK_CHECK_SECONDS,
                               id="run-lock", name="run lock held?")
        self.scheduler.add_job(self.webhooks, "interval",
                               seconds=WEBHOOK_SECONDS if self.settings.webhooks else 3600,
                               id="webhooks", name="webhooks", next_run_time=self.clock())
        states = await asyncio.to_thread(self.store.sources.states)
        for source in self.settings.sources:
            state = states.get(source.name)
            at = state.next_fetch_at if state and state.url == source.url else None
            self.schedule_source(self.scheduler, source.name, at)
        # The bounce mailbox and pruning old bounce events, every few minutes.
        self.scheduler.add_job(self.request, "interval", args=["bounces"],
                               minutes=self.settings.bounces.imap_minutes, id="bounces",
                               name="bounce mailbox")
        # Catch up: files that landed while no one led, feeds a stop left stale, digests,
        # and the bounce mailbox if there is one (pruning alone can wait for its timer).
        mailbox = ("bounces",) if self.settings.bounces.imap_url else ()
        self.request("ingest", "feeds", "digests", *mailbox)

    async def take_run_lock(self, said: bool) -> bool:
        try:
            await asyncio.to_thread(self.lock.acquire)
            return True
        except Busy as busy:
            if not said:
                log.warning("%s; standing by to lead, sending mail meanwhile", busy)
        except Exception as exc:  # the database is away; keep trying, as the sender does
            log.warning("cannot reach the database for the run lock: %s", exc)
        return False

    async def check_run_lock(self) -> bool:
        """Whether we still hold the run lock; if not, stop before doing anything more,
        since another process may hold it now."""
        async with self.lock_checks:  # the lock's connection serves one thread at a time
            if await asyncio.to_thread(self.lock.still_held):
                return True
        if not self.stopping.is_set():
            log.error("lost the run lock (database connection dropped?); stopping so "
                      "another process can take over")
            self.stop("lost run lock", exit_code=1)
        return False

    async def sleep(self, seconds: float) -> bool:
        """Sleep, cut short by stop; True when stopping."""
        try:
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True

    # --- jobs -----------------------------------------------------------------------
    def start_scheduler(self) -> None:
        """The digests job asks every minute; only the leader's worker acts on it."""
        self.scheduler = scheduler = AsyncIOScheduler(timezone=UTC, job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": None})
        scheduler.add_job(self.request, CronTrigger(second=0, timezone=UTC),
                          args=["digests"], id="digests", name="digests due?")
        scheduler.start()

    def schedule_source(self, scheduler: AsyncIOScheduler, name: str,
                        at: datetime | None) -> None:
        # APScheduler runs on the system's time; our clock may be set apart from it
        # (--time), so the job is placed by how long from now it is due.
        wait = max((at or self.clock()) - self.clock(), timedelta(0))
        run_date = datetime.now(UTC) + wait
        # The job places its own next run from inside the run; when that is already due
        # (a fetch slower than the interval), the next one starts before this returns. With
        # the scheduler's default of one instance, it would be skipped, and a one-shot
        # trigger never comes back: the source would not be fetched again.
        scheduler.add_job(self.fetch_source, DateTrigger(run_date=run_date, timezone=UTC),
                          args=[name], id=f"source:{name}", name=f"source {name}",
                          replace_existing=True, max_instances=2)

    async def fetch_source(self, name: str) -> None:
        """The network half runs beside the other stages; storing waits its turn."""
        now = self.clock()
        try:
            pending = await asyncio.to_thread(fetch_due, self.settings, self.store, now,
                                              {name})
            if pending and not self.stopping.is_set():
                report = await self.run_stage("sources",
                                              lambda: store_fetched(self.store, now, pending))
                if report and (report.new or report.updated):
                    self.request("feeds", "digests")
            state = (await asyncio.to_thread(self.store.sources.states)).get(name)
        except Exception:
            log.exception("source %s: fetch job failed", name)
            state = None
        if not self.stopping.is_set():
            self.schedule_source(self.scheduler, name, state.next_fetch_at if state else None)

    async def webhooks(self) -> None:
        """Outside the writing lock: its writes are a row per delivery, and a receiver
        that times out must not hold up ingest, feeds or digests."""
        if not self.leading or self.stopping.is_set():
            return
        now = self.clock()
        try:
            await asyncio.to_thread(webhooks_stage, self.settings, self.store, self.clock, now)
        except Exception:
            log.exception("webhooks failed", extra={"event": "stage-failed",
                                                    "stage": "webhooks"})

    # --- the writing stages ---------------------------------------------------------
    def request(self, *stages: str) -> None:
        """Ask the worker for stages; requests made while it is busy coalesce."""
        self.wanted.update(stages)
        self.work_ready.set()

    async def worker(self) -> None:
        while True:
            await self.work_ready.wait()
            if self.stopping.is_set():
                return
            self.work_ready.clear()
            wanted, self.wanted = self.wanted, set()
            await self.publish(wanted)

    async def publish(self, wanted: set[str]) -> None:
        """The wanted stages of the pipeline, in its order (sources and delivery have jobs
        of their own, so they are never wanted here)."""
        for name, work in stages(self.settings, self.store, self.clock()):
            if name not in wanted or self.stopping.is_set():
                continue
            report = await self.run_stage(name, work)
            if name == "ingest" and report and (report.new or report.updated):
                wanted |= {"feeds", "digests"}
            if name == "digests" and report and report.queued:
                self.sender.wake_up()  # this node sends them without waiting

    async def run_stage(self, name: str, work: Callable[[], Any]) -> Any:
        """One stage in a worker thread, recorded like cron's; a failure is logged and
        the daemon goes on (the next trigger tries again)."""
        async with self.writing:
            if not self.leading or self.stopping.is_set() or not await self.check_run_lock():
                return None
            try:
                return await asyncio.to_thread(stage, self.store, name, self.clock, work)
            except Exception:
                log.exception("%s failed", name, extra={"event": "stage-failed",
                                                        "stage": name})
                return None

    # --- the inbox ------------------------------------------------------------------
    async def watch(self) -> None:
        self.inbox.mkdir(parents=True, exist_ok=True)
        await watch_inbox(self.inbox, lambda: self.request("ingest"), self.stopping,
                          mode=self.settings.daemon.watch,
                          poll_seconds=self.settings.daemon.poll_seconds)
