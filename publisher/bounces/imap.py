"""Bounces stage: a bounce mailbox over IMAP ([bounces] imap_url), for bounce addresses
that live at a mail provider. `publisher run` reads it each pass, the daemon every
[bounces] imap_minutes.

Messages are fetched with BODY.PEEK, so reading marks nothing read. A bounce or a
complaint is handled, marked read and moved to [bounces] done_folder; anything else (an
auto-reply, a person writing back) stays where it was, unread, with a keyword of ours
so later passes skip it. (Unlike a POP reader that deletes the whole mailbox.)
stdlib imaplib: the protocol subset needed is small, and it handles STARTTLS and TLS.
"""

from __future__ import annotations

import imaplib
import ipaddress
import logging
import re
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import unquote, urlsplit

from publisher.bounces.classify import MAX_BYTES, NONE
from publisher.bounces.handle import event_of_message, handle
from publisher.config import Settings
from publisher.store import Store

log = logging.getLogger(__name__)

KEYWORD = "PublisherNotBounce"
PER_PASS = 500  # messages looked at in one pass; the rest wait for the next
TIMEOUT = 30.0


@dataclass
class ImapReport:
    handled: int = 0  # bounces and complaints, moved to the done folder
    left: int = 0  # not bounces, left unread where they were
    failed: int = 0  # could not be read or moved; tried again next pass
    pruned: int = 0  # events older than [bounces] keep_days deleted
    error: str = ""  # the mailbox itself could not be read
    mailbox: bool = False  # whether there is a mailbox to read

    def line(self) -> str:
        pruned = f", {self.pruned} old events deleted" if self.pruned else ""
        if not self.mailbox:
            return f"bounces: no bounce mailbox{pruned}"
        if self.error and not (self.handled or self.left or self.failed):
            return f"bounces: mailbox not read ({self.error}){pruned}"
        return (f"bounces: {self.handled} handled, {self.left} left alone"
                + (f", {self.failed} failed ({self.error})" if self.failed else "") + pruned)


def bounces_stage(settings: Settings, store: Store, now: datetime) -> ImapReport:
    """The pipeline's bounces stage: forget events older than [bounces] keep_days, then
    read the bounce mailbox, if there is one."""
    pruned = store.bounces.prune(now - timedelta(days=settings.bounces.keep_days))
    report = fetch_imap(settings, store, now)
    report.pruned = pruned
    return report


def fetch_imap(settings: Settings, store: Store, now: datetime) -> ImapReport:
    """One pass over the bounce mailbox; an unreachable server is the report's error."""
    report = ImapReport(mailbox=bool(settings.bounces.imap_url))
    if not report.mailbox:
        return report
    try:
        with Mailbox(settings.bounces.imap_url, settings.bounces.done_folder) as box:
            for uid in box.waiting():
                handle_one(settings, store, box, uid, now, report)
    except (TimeoutError, imaplib.IMAP4.error, OSError, ssl.SSLError) as exc:
        report.error = text_of(exc)
        log.warning("bounce mailbox: %s", report.error)
    return report


def handle_one(settings: Settings, store: Store, box: Mailbox, uid: bytes, now: datetime,
               report: ImapReport) -> None:
    data = box.fetch(uid)
    if data is None:
        report.failed += 1
        return
    try:
        outcome = handle(settings, store, event_of_message(data, "imap"), now)
    except Exception as exc:  # a stranger's message: its own failure, left for a person
        log.warning("bounce mailbox: message %s unreadable (%s); left alone",
                    uid.decode(), exc)
        outcome = None
    if outcome is None or outcome.kind == NONE:
        box.mark_left(uid)
        report.left += 1
        return
    log.info("bounce mailbox: %s", outcome.line)
    try:
        box.move_done(uid)
    except imaplib.IMAP4.error as exc:  # recorded already: the next pass only moves it
        log.warning("bounce mailbox: message %s not moved: %s", uid.decode(), exc)
        report.failed += 1
        report.error = report.error or text_of(exc)
        return
    report.handled += 1


class Mailbox:
    """One IMAP session on the folder of an imap(s):// URL."""

    def __init__(self, url: str, done_folder: str):
        parts = urlsplit(url)
        self.host, self.tls = parts.hostname or "", parts.scheme == "imaps"
        self.port = parts.port or (993 if self.tls else 143)
        self.user, self.password = unquote(parts.username or ""), unquote(parts.password or "")
        self.folder = unquote(parts.path.lstrip("/")) or "INBOX"
        self.done = done_folder
        self.conn: imaplib.IMAP4 | None = None

    def __enter__(self) -> Mailbox:
        context = ssl.create_default_context()
        if self.tls:
            conn = imaplib.IMAP4_SSL(self.host, self.port, ssl_context=context,
                                     timeout=TIMEOUT)
        else:
            conn = imaplib.IMAP4(self.host, self.port, timeout=TIMEOUT)
            if "STARTTLS" in conn.capabilities:
                conn.starttls(context)
            elif not is_loopback(self.host):
                conn.logout()
                raise imaplib.IMAP4.error(f"{self.host} offers no STARTTLS: use imaps:// "
                                          "(the password is never sent in clear text)")
        self.conn = conn
        try:
            check(conn.login(self.user, self.password), "login")
        except imaplib.IMAP4.error as exc:
            raise imaplib.IMAP4.error(f"login as {self.user}: {text_of(exc)}") from exc
        # Servers say more after login (MOVE, UIDPLUS) than in their greeting.
        _status, data = conn.capability()
        capabilities = set((data[0] or b"").decode("ascii", "replace").upper().split())
        check(conn.select(quoted(self.folder)), f"select {self.folder}")
        self.keywords = b"\\*" in b" ".join(conn.untagged_responses.get("PERMANENTFLAGS", []))
        self.can_move = "MOVE" in capabilities | set(conn.capabilities)
        conn.create(quoted(self.done))  # NO when it exists already: fine
        return self

    def __exit__(self, *exc) -> None:
        if self.conn is None:
            return
        try:
            if not self.can_move:
                self.conn.expunge()
            self.conn.logout()
        except (imaplib.IMAP4.error, OSError):
            pass

    def waiting(self) -> list[bytes]:
        """UIDs not yet looked at (every message when the server keeps no keywords)."""
        query = ("UNKEYWORD", KEYWORD) if self.keywords else ("ALL",)
        status, data = self.conn.uid("SEARCH", None, *query)
        check((status, data), "search")
        return (data[0] or b"").split()[:PER_PASS]

    def fetch(self, uid: bytes) -> bytes | None:
        status, data = self.conn.uid("FETCH", uid, f"(BODY.PEEK[]<0.{MAX_BYTES}>)")
        if status != "OK":
            return None
        for item in data:
            if isinstance(item, tuple) and len(item) == 2:
                return item[1]
        return None

    def mark_left(self, uid: bytes) -> None:
        if self.keywords:
            self.conn.uid("STORE", uid, "+FLAGS.SILENT", f"({KEYWORD})")

    def move_done(self, uid: bytes) -> None:
        self.conn.uid("STORE", uid, "+FLAGS.SILENT", "(\\Seen)")
        if self.can_move:
            check(self.conn.uid("MOVE", uid, quoted(self.done)), "move")
            return
        check(self.conn.uid("COPY", uid, quoted(self.done)), "copy")
        self.conn.uid("STORE", uid, "+FLAGS.SILENT", "(\\Deleted)")


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def text_of(exc: BaseException) -> str:
    """imaplib's errors often carry the server's bytes: show them as text."""
    arg = exc.args[0] if exc.args else ""
    text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
    return text or type(exc).__name__


def quoted(folder: str) -> str:
    return '"' + re.sub(r'(["\\])', r"\\\1", folder) + '"'


def check(response: tuple, what: str) -> None:
    status, data = response
    if status != "OK":
        detail = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
        raise imaplib.IMAP4.error(f"{what}: {detail or status}")
