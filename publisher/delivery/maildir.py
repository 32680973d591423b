"""Delivery: the maildir transport, one file per message: the default, so a new instance
shows real messages with no mail server. Point a mail reader at the folder.

A file is named after its Message-ID, so a message sent again after a crash replaces
itself instead of arriving twice. Written to tmp/, flushed to disk, renamed into new/,
as the Maildir format asks, so a reader never sees half a message.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path

from publisher.delivery.transport import SENT, TEMPORARY, BaseTransport, Envelope, Result
from publisher.errors import DeliveryError


class MaildirTransport(BaseTransport):
    name = "maildir"
    concurrency = 4  # files are written in threads; fsync waits overlap

    def __init__(self, folder: Path):
        self.folder = folder
        self.host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")
        self._ready = False

    def prepare(self) -> None:
        try:
            for sub in ("tmp", "new", "cur"):
                (self.folder / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeliveryError(f"cannot create the maildir {self.folder}: {exc}") from exc
        self._ready = True

    async def send(self, envelopes: Sequence[Envelope],
                   report: Callable[[Envelope, Result], None]) -> None:
        if not self._ready:
            self.prepare()
        for envelope in envelopes:
            report(envelope, await asyncio.to_thread(self.deliver, envelope))

    def deliver(self, envelope: Envelope) -> Result:
        try:
            written = self.write(envelope)
        except OSError as exc:
            return Result(TEMPORARY, None, f"cannot write to {self.folder}: {exc}")
        return Result(SENT, 250, "written" if written else "already in the maildir")

    def write(self, envelope: Envelope) -> bool:
        name = f"{hashlib.sha256(envelope.message_id.encode()).hexdigest()[:24]}.{self.host}"
        final = self.folder / "new" / name
        if final.exists():
            return False
        # What an MTA adds on local delivery; the signed headers stay untouched.
        trace = (f"Return-Path: <{envelope.sender}>\r\n"
                 f"Delivered-To: {', '.join(envelope.recipients)}\r\n").encode()
        temporary = self.folder / "tmp" / f"{name}.{os.getpid()}"
        with open(temporary, "wb") as handle:
            handle.write((trace + envelope.data).replace(b"\r\n", b"\n"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
        return True
