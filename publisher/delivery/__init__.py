"""Delivery stage: the outbox drained through one Transport (smtp, maildir, memory).

What other stages call:

    make_transport(settings) -> Transport
    await deliver(settings, store, transport, now, limit=None) -> DeliveryReport
    deliver_blocking(settings, store, transport, now, limit=None) -> DeliveryReport
"""

from __future__ import annotations

from publisher.config import Settings
from publisher.delivery.drain import DeliveryReport, deliver, deliver_blocking
from publisher.delivery.transport import Envelope, Result, Transport

__all__ = ["DeliveryReport", "Envelope", "Result", "Transport", "deliver", "deliver_blocking",
           "make_transport"]


def make_transport(settings: Settings) -> Transport:
    """The transport [mail] transport names: "smtp" (an aiosmtplib pool to [mail]
    smtp_url) or "maildir" (files under [mail] maildir, the default). Nothing connects
    until the first message; `deliver` closes connections when it is done."""
    if settings.mail.transport == "smtp":
        from publisher.delivery.smtp import SmtpTransport

        return SmtpTransport(settings)
    from publisher.delivery.maildir import MaildirTransport

    return MaildirTransport(settings.path(settings.mail.maildir))
