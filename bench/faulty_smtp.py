"""Bench helper: an aiosmtpd server on 127.0.0.1 that misbehaves at random, on purpose.

At each RCPT, with the given probabilities: 451 (try later), 421 and close the
connection, drop the connection with no reply, 550 (no such user); everything else is
taken. With every probability 0 it is a clean sink, so a bench compares the two with the
same server code. Each message taken appends its Message-ID to --log (if given), one a
line, so a bench can count what arrived and what arrived twice. It listens on --port, or
by default on a port the kernel picks (port 0), and prints `port N` once it listens.

    python bench/faulty_smtp.py --p451 0.15 --p421 0.05 --drop 0.05 --p550 0.01
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import signal
import socket

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>]+>)", re.I | re.M)


class Listening(Controller):
    """aiosmtpd's Controller on a socket bound here (port 0: the kernel picks a free one
    and no other process can take it before we listen)."""

    def __init__(self, handler, port: int, **kwargs):
        self.sock = socket.create_server(("127.0.0.1", port))
        super().__init__(handler, hostname="127.0.0.1", port=self.sock.getsockname()[1],
                         **kwargs)

    def _create_server(self):
        return self.loop.create_server(self._factory_invoker, sock=self.sock,
                                       ssl=self.ssl_context)


class Faulty:
    def __init__(self, p451: float, p421: float, drop: float, p550: float, seed: int,
                 log: str | None):
        self.p451, self.p421, self.drop, self.p550 = p451, p421, drop, p550
        self.rng = random.Random(seed)
        self.log = open(log, "ab", buffering=0) if log else None  # noqa: SIM115

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        responses.insert(1, "250-PIPELINING")  # as Postfix and most servers offer
        return responses

    async def handle_RCPT(self, server: SMTP, session, envelope, address, rcpt_options):
        roll = self.rng.random()
        if roll < self.p451:
            return "451 4.7.1 Temporary local problem, try later"
        roll -= self.p451
        if roll < self.p421:
            server.transport.write(b"421 4.7.0 Service busy, closing transmission channel\r\n")
            server.transport.close()
            return "421 4.7.0 closing"  # never arrives: the connection is gone
        roll -= self.p421
        if roll < self.drop:
            server.transport.abort()
            return "250 OK"  # never arrives
        roll -= self.drop
        if roll < self.p550:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.log is not None:
            match = MESSAGE_ID.search(envelope.original_content or b"")
            self.log.write((match[1] if match else b"<none>") + b"\n")
        return "250 2.0.0 OK"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="default: any free port")
    parser.add_argument("--p451", type=float, default=0.0)
    parser.add_argument("--p421", type=float, default=0.0)
    parser.add_argument("--drop", type=float, default=0.0)
    parser.add_argument("--p550", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--log")
    args = parser.parse_args()
    handler = Faulty(args.p451, args.p421, args.drop, args.p550, args.seed, args.log)
    controller = Listening(handler, args.port, data_size_limit=10_000_000)
    controller.start()
    print(f"port {controller.port}", flush=True)
    stop = asyncio.Event()

    async def wait() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        await stop.wait()

    try:
        asyncio.run(wait())
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
