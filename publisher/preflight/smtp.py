"""Preflight: can we reach the SMTP server, with its TLS and our login accepted?

Opens one connection the way delivery does (publisher.delivery.smtp: implicit TLS or
STARTTLS when offered, AUTH with smtp_url's user and password) and says QUIT.
"""

from __future__ import annotations

import asyncio

from publisher.config import Settings
from publisher.delivery.smtp import ConnectionFailed, SmtpTransport


def probe_smtp(settings: Settings) -> tuple[str | None, bool]:
    """(problem or None, whether the problem may pass by itself: a server down or busy,
    rather than a refused login or certificate)."""
    return asyncio.run(probe(settings))


async def probe(settings: Settings) -> tuple[str | None, bool]:
    transport = SmtpTransport(settings)
    where = f"[mail] smtp_url {transport.host}:{transport.port}"
    try:
        session = await transport.connect()
    except ConnectionFailed as exc:
        return f"{where}: {exc}", not exc.fatal
    # aiosmtplib has already said EHLO, started TLS when offered and logged in.
    try:
        await session.exchange(b"QUIT\r\n", 1)
    except Exception as exc:
        return f"{where}: the connection failed after the greeting: {exc}", True
    finally:
        session.close()
    return None, False
