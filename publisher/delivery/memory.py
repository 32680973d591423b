"""Delivery: an in-memory transport for tests; `outcome` can script a server's replies."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from publisher.delivery.transport import SENT, BaseTransport, Envelope, Result


class MemoryTransport(BaseTransport):
    name = "memory"

    def __init__(self, outcome: Callable[[Envelope], Result] | None = None,
                 concurrency: int = 4):
        self.outcome = outcome
        self.concurrency = concurrency
        self.sent: list[Envelope] = []
        self.attempts: list[Envelope] = []
        self.closed = 0

    async def send(self, envelopes: Sequence[Envelope],
                   report: Callable[[Envelope, Result], None]) -> None:
        for envelope in envelopes:
            self.attempts.append(envelope)
            result = self.outcome(envelope) if self.outcome else Result(SENT, 250, "ok")
            if result.status == SENT:
                self.sent.append(envelope)
            report(envelope, result)

    async def close(self) -> None:
        self.closed += 1
