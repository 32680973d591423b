"""Delivery: the smtp transport: a pool of reused aiosmtplib connections, pipelined.

aiosmtplib opens each connection: TCP or implicit TLS (smtps://), EHLO, STARTTLS when the
server offers it, AUTH with the user and password of [mail] smtp_url. The connection's
transport is then handed to session.Pipeline, a small protocol that pipelines the
transactions (RFC 2920) and parses every reply in the buffer. aiosmtplib's own sendmail
awaits each reply in turn and dot-stuffs each message with a regex: about 1,400
messages/s here, under half of what this stage needs.

The pool slows down instead of failing messages when the server pushes back: a 421, a
rate-limit reply or a refused connection pauses every sender (exponential, with jitter)
and halves the connections in use; successes open them up again. The message is handed
back untried. A server that stays unavailable for `give_up_after` seconds ends the run's
sending; what is left waits in the outbox for the next run.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import unquote, urlsplit

import aiosmtplib

from publisher.config import Settings
from publisher.delivery.session import Pipeline, Session, Tally
from publisher.delivery.transport import UNTRIED, BaseTransport, Envelope, Result

log = logging.getLogger(__name__)

MIN_PAUSE, MAX_PAUSE = 0.5, 30.0


class ConnectionFailed(Exception):
    def __init__(self, detail: str, fatal: bool):
        super().__init__(detail)
        self.fatal = fatal


class RateLimit:
    """[mail] rate: each message takes the next free slot, 1/rate seconds apart."""

    def __init__(self, per_second: float, clock: Callable[[], float] | None = None,
                 sleep: Callable[[float], Awaitable] = asyncio.sleep):
        self.interval = 1 / per_second if per_second > 0 else 0.0
        self.next_slot = 0.0
        self.clock = clock
        self.sleep = sleep

    async def wait(self) -> None:
        if not self.interval:
            return
        now = self.clock() if self.clock else asyncio.get_running_loop().time()
        slot = max(now, self.next_slot)
        self.next_slot = slot + self.interval
        if slot > now:
            await self.sleep(slot - now)


class SmtpTransport(BaseTransport):
    name = "smtp"

    def __init__(self, settings: Settings, give_up_after: float = 60.0,
                 pauses: tuple[float, float] = (MIN_PAUSE, MAX_PAUSE)):
        parts = urlsplit(settings.mail.smtp_url)
        self.implicit_tls = parts.scheme == "smtps"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (465 if self.implicit_tls else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.timeout = settings.mail.timeout
        self.concurrency = settings.mail.connections
        self.rate = RateLimit(settings.mail.rate)
        self.give_up_after = give_up_after
        self.min_pause, self.max_pause = pauses
        self.helo = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "localhost"
        self._tls: ssl.SSLContext | None = None
        self.reset()

    @property
    def tls(self) -> ssl.SSLContext:
        if self._tls is None:
            # The system's CA store; SSL_CERT_FILE points it elsewhere (a private CA).
            self._tls = ssl.create_default_context()
        return self._tls

    def reset(self) -> None:
        self.idle: list[Session] = []
        self.open_count = 0
        self.limit = self.concurrency
        self.pause_until = 0.0
        self.backoff = 0.0
        self.troubled_since: float | None = None
        self.problem: str | None = None  # why sending stopped for this run
        self.fatal = False
        self.successes = 0
        self.freed: asyncio.Event | None = None

    async def send(self, envelopes: Sequence[Envelope],
                   report: Callable[[Envelope, Result], None]) -> None:
        tally = Tally(list(envelopes), report)
        loop = asyncio.get_running_loop()
        while tally.left and not self.problem:
            if self.pause_until > loop.time():
                await asyncio.sleep(self.pause_until - loop.time())
            try:
                session = await self.acquire()
            except ConnectionFailed as exc:
                self.pushed_back(str(exc), fatal=exc.fatal)
                break
            for _ in range(tally.left):
                await self.rate.wait()
            before = tally.count
            try:
                await session.run(tally)
            finally:
                self.release(session)
            if session.pushback or session.broken:
                self.pushed_back(session.pushback or session.pipeline.lost or "connection lost")
                break
            if tally.count > before:
                self.went_through()
        # What never went out: the drain loop hands it to the next send, no attempt counted.
        while tally.left:
            tally.add(Result(UNTRIED, None, self.problem or "the server pushed back"))

    async def acquire(self) -> Session:
        while True:
            while self.idle:
                session = self.idle.pop()
                if session.usable:
                    return session
                self.discard(session)
            if self.open_count < self.limit:
                self.open_count += 1
                try:
                    return await self.connect()
                except ConnectionFailed:
                    self.open_count -= 1
                    self.notify()
                    raise
            self.freed = self.freed or asyncio.Event()
            self.freed.clear()
            await self.freed.wait()

    def release(self, session: Session) -> None:
        if session.usable and self.open_count <= self.limit:
            self.idle.append(session)
        else:
            self.discard(session)
        self.notify()

    def discard(self, session: Session) -> None:
        session.close()
        self.open_count -= 1

    def notify(self) -> None:
        if self.freed is not None:
            self.freed.set()

    async def connect(self) -> Session:
        smtp = aiosmtplib.SMTP(
            hostname=self.host, port=self.port, use_tls=self.implicit_tls,
            start_tls=False if self.implicit_tls else None, tls_context=self.tls,
            timeout=self.timeout, local_hostname=self.helo,
            username=self.username, password=self.password)
        try:
            await smtp.connect()
            if smtp.is_ehlo_or_helo_needed:
                await smtp.ehlo()
        except aiosmtplib.SMTPAuthenticationError as exc:
            smtp.close()
            raise ConnectionFailed(f"the SMTP server refused the login: {exc.code} "
                                   f"{exc.message}", fatal=True) from exc
        except aiosmtplib.SMTPConnectResponseError as exc:
            smtp.close()
            raise ConnectionFailed(f"{self.host}:{self.port} said {exc.code} {exc.message}",
                                   fatal=exc.code >= 500) from exc
        except ssl.SSLCertVerificationError as exc:
            smtp.close()
            raise ConnectionFailed(f"the TLS certificate of {self.host} does not verify: "
                                   f"{exc.verify_message}", fatal=True) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            smtp.close()
            fatal = isinstance(exc, aiosmtplib.SMTPException) and "not supported" in str(exc)
            raise ConnectionFailed(f"cannot connect to {self.host}:{self.port}: {exc}",
                                   fatal=fatal) from exc
        transport = smtp.transport
        pipeline = Pipeline(transport, self.timeout)
        transport.set_protocol(pipeline)
        return Session(pipeline, dict(smtp.esmtp_extensions))

    def pushed_back(self, detail: str, fatal: bool = False) -> None:
        """The server is unavailable or asks us to slow down: pause, use fewer connections."""
        now = asyncio.get_running_loop().time()
        if fatal:
            self.problem = detail
            self.fatal = True
            return
        self.backoff = min(self.max_pause, max(self.min_pause, self.backoff * 2))
        self.pause_until = max(self.pause_until, now + self.backoff * random.uniform(1, 1.5))
        self.limit = max(1, self.limit // 2)
        self.troubled_since = self.troubled_since or now
        log.warning("SMTP server pushed back (%s); pausing %.1f s, %d connections",
                    detail, self.backoff, self.limit)
        if now - self.troubled_since > self.give_up_after:
            self.problem = f"server unavailable for {self.give_up_after:g} s: {detail}"

    def went_through(self) -> None:
        self.troubled_since = None
        self.backoff = 0.0
        self.successes += 1
        if self.limit < self.concurrency and self.successes % 50 == 0:
            self.limit += 1

    async def close(self) -> None:
        for session in self.idle:
            session.close()
        self.reset()

