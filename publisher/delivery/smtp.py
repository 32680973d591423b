"""Delivery: the smtp transport: a pool of reused aiosmtplib connections, pipelined.

aiosmtplib opens each connection: TCP or implicit TLS (smtps://), EHLO, STARTTLS when the
server offers it, AUTH with the user and password of [mail] smtp_url. The connection's
transport is then handed to session.Pipeline, a small protocol that pipelines the
transactions (RFC 2920) and parses every reply in the buffer. aiosmtplib's own sendmail
awaits each reply in turn and dot-stuffs each message with a regex: about 1,400
messages/s here, under half of what this stage needs.

The pool slows down instead of failing messages when the server pushes back, and speeds
up again as it answers (pace.py: AIMD of the connections in use and of the rate; a
dropped connection is not a push-back; a wait the server names is kept). The rest of a
worker's messages go out on another connection at once; a message that never went out
costs no attempt. A server that stays unavailable for `give_up_after` seconds ends the
run's sending; what is left waits in the outbox for the next run.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import unquote, urlsplit

import aiosmtplib

from publisher.config import Settings
from publisher.delivery.pace import Pace
from publisher.delivery.session import Pipeline, Session, Tally, retry_after
from publisher.delivery.transport import UNTRIED, BaseTransport, Envelope, Result

log = logging.getLogger(__name__)


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

    def __init__(self, settings: Settings, give_up_after: float = 60.0):
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
        self.pace = Pace(self.concurrency, self.clock, self.give_up_after)
        self.fatal_problem: str | None = None
        self.fatal = False
        self.freed: asyncio.Event | None = None

    @staticmethod
    def clock() -> float:
        return asyncio.get_running_loop().time()

    @property
    def limit(self) -> int:
        """Connections that may be open now (the pace's window)."""
        return self.pace.limit

    @property
    def problem(self) -> str | None:
        """Why sending stopped for this run (None: it goes on)."""
        return self.fatal_problem or self.pace.problem

    @property
    def asked_wait(self) -> float | None:
        """Seconds the server asked us to wait, when that is why sending stopped."""
        return self.pace.asked

    async def send(self, envelopes: Sequence[Envelope],
                   report: Callable[[Envelope, Result], None]) -> None:
        tally = Tally(list(envelopes), self.answering(report))
        while tally.left and not self.problem:
            while (wait := self.pace.delay()) > 0 and not self.problem:
                await asyncio.sleep(wait)
            if self.problem:
                break
            try:
                session = await self.acquire()
            except ConnectionFailed as exc:
                if exc.fatal:
                    self.fatal_problem, self.fatal = str(exc), True
                else:
                    self.pace.pushed_back(str(exc))
                continue
            budget = 1 if self.pace.gap else tally.left  # a capped rate: one at a time
            for _ in range(budget):
                await self.rate.wait()
            try:
                await session.run(tally, budget)
            finally:
                self.release(session)
            # The rest of the batch goes out on another connection (after a wait, if any).
            if session.pushback:
                self.pace.pushed_back(session.pushback, retry_after(session.pushback))
            elif session.broken:
                self.pace.dropped(session.pipeline.lost or "connection lost")
        # What never went out: the drain loop hands it back for later, no attempt counted.
        while tally.left:
            tally.add(Result(UNTRIED, None, self.problem or "the server pushed back"))

    def answering(self, report: Callable[[Envelope, Result], None]
                  ) -> Callable[[Envelope, Result], None]:
        """`report`, telling the pace of each message the server answered."""
        def answered(envelope: Envelope, result: Result) -> None:
            if result.code is not None and result.status != UNTRIED:
                self.pace.answered()
            report(envelope, result)
        return answered

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

    async def close(self) -> None:
        for session in self.idle:
            session.close()
        self.reset()

