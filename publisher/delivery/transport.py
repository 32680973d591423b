"""Delivery: the one interface every way of sending mail implements (smtp, maildir, memory).

The drain loop only ever calls `send` and `close`; how a message leaves is the
transport's business. `send` takes a few messages at once (so SMTP can pipeline one
message's end with the next one's start) and reports each one's Result as soon as it is
known (so the outcome is recorded at once, and a crash repeats as little as possible).
It never raises for a message the server refused, so one bad address never stops a run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Envelope:
    """One message ready to leave: raw RFC 5322 bytes and the explicit envelope."""

    outbox_id: int
    message_id: str
    sender: str  # MAIL FROM: the [mail] bounce address
    recipients: tuple[str, ...]  # RCPT TO, always given, never read from the headers
    data: bytes  # CRLF line ends
    # True when no line starts with "." and the data ends in CRLF (our composer makes
    # sure of both), so SMTP needs no dot-stuffing pass over it.
    dot_safe: bool = False


# Result.status values
SENT = "sent"  # the server took responsibility for the message
TEMPORARY = "temporary"  # 4xx or a network error: try again later
PERMANENT = "permanent"  # 5xx: do not try again
UNTRIED = "untried"  # its content never reached a server: send again, no attempt counted


@dataclass(frozen=True)
class Result:
    status: str
    code: int | None = None
    detail: str = ""
    bounce: bool = False  # a permanent failure of the recipient's mailbox (5xx on RCPT)


@runtime_checkable
class Transport(Protocol):
    name: str
    concurrency: int  # how many sends the drain loop may run at once

    async def send(self, envelopes: Sequence[Envelope],
                   report: Callable[[Envelope, Result], None]) -> None:
        """Deliver messages; call `report` once for each, as soon as its Result is known."""
        ...

    async def close(self) -> None:
        """Close connections; the transport may be used again afterwards."""
        ...

    @property
    def gave_up(self) -> bool:
        """True when the transport stopped trying for this run (a server that stayed
        unavailable); the drain loop then hands the rest back for later."""
        ...

    problem: str | None  # why it gave up, for the report
    fatal: bool  # it gave up on something only the operator can fix (a refused login)


class BaseTransport:
    """The state every transport starts with: it has not given up, and closing it has
    nothing to release. A transport that can give up sets `problem` (and `fatal`)."""

    name = "base"
    concurrency = 1
    problem: str | None = None
    fatal = False

    @property
    def gave_up(self) -> bool:
        return self.problem is not None

    async def close(self) -> None:
        return None
