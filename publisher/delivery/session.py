"""Delivery: one SMTP connection's transactions, pipelined (RFC 2920), replies parsed.

`Pipeline` takes over a connection aiosmtplib opened and reads every reply in the buffer;
`Session` sends a message's content, its end and the next message's MAIL, RCPT and DATA
in one write when the server offers PIPELINING (one round trip a message), or one
command at a time when it does not. What a reply means for the message (sent, try again,
give up, never tried) is decided here, in `judge_envelope` and `classify`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import NamedTuple

from publisher.delivery.transport import PERMANENT, SENT, TEMPORARY, UNTRIED, Envelope, Result

# A 4xx that says "too fast" is the pool's problem, not the message's.
THROTTLE_TEXT = re.compile(r"\b(rate|ratelimit\w*|too many|throttl\w*|slow down|exceeded)\b",
                           re.I)
MESSAGES_PER_CONNECTION = 1000  # then reconnect: many servers cap a session
# A wait a reply names: "try again in 30 seconds", "retry after 2 min", "Retry-After: 30".
# Only a number with a unit (or after "Retry-After:"), next to the words that ask for it.
RETRY_AFTER = re.compile(
    r"\b(?:(?:try(?:\s+again)?|retry)\s+(?:in|after)\s+(\d{1,5})\s*"
    r"(seconds?|secs?|s|minutes?|mins?|m)\b|retry-after:\s*(\d{1,5})\b)", re.I)
LONGEST_WAIT = 24 * 3600.0  # a longer wait named is not believed


class Reply(NamedTuple):
    code: int
    text: str


class Lost(Exception):
    """The connection broke; `replies` are those that arrived before it did."""

    def __init__(self, detail: str, replies: list[Reply]):
        super().__init__(detail)
        self.replies = replies


class Pipeline(asyncio.Protocol):
    """Reads SMTP replies from a connection aiosmtplib opened; one exchange at a time."""

    def __init__(self, transport: asyncio.Transport, timeout: float):
        self.transport = transport
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()
        self.buffer = bytearray()
        self.lines: list[bytes] = []
        self.replies: list[Reply] = []
        self.waiter: asyncio.Future | None = None
        self.wanted = 0
        self.timer: asyncio.TimerHandle | None = None
        self.lost: str | None = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        start = 0
        while (end := self.buffer.find(b"\n", start)) >= 0:
            line = bytes(self.buffer[start:end]).rstrip(b"\r")
            start = end + 1
            self.lines.append(line)
            if line[3:4] != b"-":  # the last line of a reply
                try:
                    code = int(line[:3])
                except ValueError:
                    code = 0
                text = b"\n".join(part[4:] for part in self.lines)
                self.replies.append(Reply(code, text.decode("utf-8", "replace")))
                self.lines = []
        del self.buffer[:start]
        if self.waiter is not None and len(self.replies) >= self.wanted:
            replies = self.replies[:self.wanted]
            del self.replies[:self.wanted]
            self.settle().set_result(replies)

    def exchange(self, data: bytes, count: int) -> asyncio.Future:
        """Write `data`; a future for the next `count` replies (Lost if they never come)."""
        self.waiter = self.loop.create_future()
        self.wanted = count
        self.timer = self.loop.call_later(self.timeout, self.timed_out)
        if self.lost:
            self.fail(self.lost)
        else:
            self.transport.write(data)
        return self.waiter

    def settle(self) -> asyncio.Future:
        waiter, self.waiter = self.waiter, None
        if self.timer:
            self.timer.cancel()
            self.timer = None
        return waiter

    def fail(self, detail: str) -> None:
        if self.waiter is not None and not self.waiter.done():
            replies, self.replies = self.replies, []
            self.settle().set_exception(Lost(detail, replies))

    def timed_out(self) -> None:
        self.lost = f"no reply from the server in {self.timeout:g} s"
        self.fail(self.lost)
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = self.lost or f"connection lost{f': {exc}' if exc else ''}"
        self.fail(self.lost)

    def eof_received(self) -> bool:
        self.lost = "the server closed the connection"
        self.fail(self.lost)
        return False


class Tally:
    """A send's messages and how far it got: each Result is reported as soon as it is
    known, so the drain loop records it without waiting for the rest."""

    def __init__(self, envelopes: list[Envelope], report: Callable[[Envelope, Result], None]):
        self.envelopes = envelopes
        self.report = report
        self.count = 0

    @property
    def left(self) -> int:
        return len(self.envelopes) - self.count

    def add(self, result: Result) -> None:
        self.report(self.envelopes[self.count], result)
        self.count += 1


class Session:
    """One open connection. Pipelined (RFC 2920), one message's content, its end and
    the next message's MAIL, RCPT and DATA go out in one write: one round trip a message."""

    def __init__(self, pipeline: Pipeline, extensions: dict[str, str]):
        self.pipeline = pipeline
        self.pipelining = "pipelining" in extensions
        self.smtputf8 = "smtputf8" in extensions
        self.sent = 0
        self.broken = False
        self.pushback: str | None = None  # a 421 or "slow down" reply seen

    @property
    def usable(self) -> bool:
        return (not self.broken and not self.pipeline.lost
                and not self.pipeline.transport.is_closing()
                and self.sent < MESSAGES_PER_CONNECTION)

    async def exchange(self, data: bytes, count: int) -> list[Reply]:
        try:
            return await self.pipeline.exchange(data, count)
        except Lost:
            self.broken = True
            raise

    def commands(self, envelope: Envelope) -> bytes:
        utf8 = " SMTPUTF8" if not envelope.sender.isascii() or not all(
            r.isascii() for r in envelope.recipients) else ""
        rcpt = "".join(f"RCPT TO:<{r}>\r\n" for r in envelope.recipients)
        return f"MAIL FROM:<{envelope.sender}>{utf8}\r\n{rcpt}DATA\r\n".encode()

    async def run(self, tally: Tally, budget: int | None = None) -> None:
        """Send tally's remaining messages in order while the connection lasts; at most
        `budget` of them when given (a paced pool starts one message at a time)."""
        end = len(tally.envelopes) if budget is None else tally.count + budget
        while tally.count < end and self.usable:
            todo = tally.envelopes[tally.count:end]
            if self.refuses(todo[0]):
                tally.add(Result(PERMANENT, None, "the server does not accept "
                                                  "internationalized addresses (no SMTPUTF8)"))
                continue
            done = await (self.pipelined(todo, tally) if self.pipelining
                          else self.lockstep(todo[0], tally))
            if not done:
                break

    async def pipelined(self, todo: list[Envelope], tally: Tally) -> int:
        """Run transactions from the head of `todo` until one needs attention; returns
        how many messages got their Result."""
        done = 0
        current: Envelope | None = todo[0]
        carry: Envelope | None = None  # the message whose content is in this write
        out, count = self.commands(current), len(current.recipients) + 2
        while True:
            try:
                replies = await self.exchange(out, count)
            except Lost as lost:
                replies = lost.replies
                if carry is not None and not replies:
                    # Its content went out and no reply came: it may have arrived.
                    tally.add(Result(TEMPORARY, None, f"network error: {lost}"))
                    done += 1
                    carry = None
            if carry is not None:
                tally.add(self.content_reply(replies.pop(0)))
                done += 1
                carry = None
            if current is None or self.broken:
                return done  # `current` sent nothing but commands: it goes out elsewhere
            verdict = judge_envelope(replies, len(current.recipients))
            if verdict is not None:
                tally.add(verdict)
                done += 1
                self.note(replies)
                await self.abort(replies)
                return done
            following = todo[done + 1] if done + 1 < len(todo) else None
            if following is not None and (not self.usable or self.refuses(following)):
                following = None
            out = dot_safe(current) + b".\r\n"
            count = 1
            if following is not None:
                out += self.commands(following)
                count += len(following.recipients) + 2
            carry, current = current, following

    def refuses(self, envelope: Envelope) -> bool:
        return not self.smtputf8 and not (envelope.sender.isascii()
                                          and all(r.isascii() for r in envelope.recipients))

    async def lockstep(self, envelope: Envelope, tally: Tally) -> int:
        """One transaction, each command awaiting its reply (no PIPELINING offered)."""
        replies: list[Reply] = []
        try:
            commands = self.commands(envelope).split(b"\r\n")[:-1]
            for command in commands:
                replies += await self.exchange(command + b"\r\n", 1)
                if replies[-1].code >= 400 and not command.startswith(b"RCPT"):
                    break
        except Lost:
            return 0  # nothing of it went out: the caller hands it on untried
        verdict = judge_envelope(replies, len(envelope.recipients))
        if verdict is not None:
            tally.add(verdict)
            self.note(replies)
            await self.abort(replies)
            return 1
        try:
            (reply,) = await self.exchange(dot_safe(envelope) + b".\r\n", 1)
        except Lost as lost:
            tally.add(Result(TEMPORARY, None, f"network error: {lost}"))
            return 1
        tally.add(self.content_reply(reply))
        return 1

    def content_reply(self, reply: Reply) -> Result:
        self.sent += 1
        if reply.code == 250:
            return Result(SENT, 250, reply.text)
        self.note([reply])
        return classify(reply, "end of data", mailbox_codes=True)

    def note(self, replies: list[Reply]) -> None:
        """A 421 closes the session; it and "slow down" replies slow the pool."""
        for reply in replies:
            if reply.code == 421:
                self.broken = True
            if reply.code == 421 or (400 <= reply.code < 500
                                     and THROTTLE_TEXT.search(reply.text)):
                self.pushback = f"{reply.code} {reply.text}"

    async def abort(self, replies: list[Reply]) -> None:
        """Leave the server ready for the next transaction."""
        if self.broken:
            return
        try:
            if len(replies) > 1 and replies[-1].code == 354:
                # A server that said 354 with no recipient left: end the empty data.
                await self.exchange(b".\r\n", 1)
            if replies and 200 <= replies[0].code < 300:
                await self.exchange(b"RSET\r\n", 1)
        except Lost:
            pass

    def close(self) -> None:
        transport = self.pipeline.transport
        if not transport.is_closing():
            if not self.pipeline.lost:
                transport.write(b"QUIT\r\n")
            transport.close()


def dot_safe(envelope: Envelope) -> bytes:
    """The data with SMTP dot-stuffing and a final CRLF. Our own messages never need it
    (no encoded line starts with "."; Envelope.dot_safe says so): no pass over them."""
    data = envelope.data
    if envelope.dot_safe:
        return data
    if data.startswith(b".") or b"\n." in data:
        data = re.sub(rb"(?m)^\.", b"..", data)
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def judge_envelope(replies: list[Reply], recipients: int) -> Result | None:
    """None when MAIL, RCPT and DATA went through; else what to make of the refusal."""
    if len(replies) < 1 or not 200 <= replies[0].code < 300:
        return classify(replies[0], "MAIL FROM") if replies else \
            Result(TEMPORARY, None, "no reply to MAIL FROM")
    rcpt = replies[1:1 + recipients]
    if len(rcpt) < recipients or not any(200 <= r.code < 300 for r in rcpt):
        refused = next((r for r in rcpt if r.code >= 400), None)
        if refused is None:
            return Result(TEMPORARY, None, "no reply to RCPT TO")
        return classify(refused, "RCPT TO", mailbox_codes=True, on_recipient=True)
    data = replies[1 + recipients] if len(replies) > 1 + recipients else None
    if data is None or data.code != 354:
        return classify(data, "DATA") if data else Result(TEMPORARY, None, "no reply to DATA")
    return None


def retry_after(text: str) -> float | None:
    """The seconds a reply asks us to wait, if it names a wait (and a believable one)."""
    match = RETRY_AFTER.search(text)
    if match is None:
        return None
    if match[3] is not None:
        seconds = float(match[3])
    else:
        seconds = float(match[1]) * (60 if match[2].lower().startswith("m") else 1)
    return seconds if seconds <= LONGEST_WAIT else None


def classify(reply: Reply, stage: str, mailbox_codes: bool = False,
             on_recipient: bool = False) -> Result:
    detail = f"{stage}: {reply.code} {reply.text}".strip()
    if reply.code == 421 or (400 <= reply.code < 500 and THROTTLE_TEXT.search(reply.text)):
        return Result(UNTRIED, reply.code, detail)
    if 400 <= reply.code < 500 or reply.code == 0:
        return Result(TEMPORARY, reply.code or None, detail)
    # A 5xx on the recipient, or a 5.1.x status later on, says the mailbox is bad.
    bounce = on_recipient or (mailbox_codes and reply.text.startswith("5.1."))
    return Result(PERMANENT, reply.code, detail, bounce=bounce)
