"""Bounces stage: what one message returned to the bounce address is.

A hard bounce (the address is dead: 5.x.x), a soft one (4.x.x, a full mailbox, a
policy block), a complaint (an ARF report, RFC 5965), or not a bounce at all (an
out-of-office reply, a person writing back), which is never counted. The standard
formats are read here: DSNs (RFC 3464) and ARF reports. Everything else (Exim, qmail,
Exchange, Yahoo, ... in their own words) goes to flufl.bounce, Mailman's detectors for
the formats found in the wild. Any exception a detector raises on a stranger's message
makes that message unreadable, never the pass.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32

from flufl.bounce import all_failures

log = logging.getLogger(__name__)
# flufl.bounce logs a detector's exception with its traceback before re-raising it; we
# catch it and report the message as unreadable ourselves, on one line.
logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)

HARD, SOFT, COMPLAINT, NONE = "hard", "soft", "complaint", "none"
# A message is read up to this size: reports put their fields first, and a bigger
# bounce (a returned attachment) costs no more than this.
MAX_BYTES = 2 << 20
STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
# Not the address's fault: a full mailbox, a message too big, a policy or spam block.
SOFT_STATUSES = re.compile(r"^5\.(2\.[23]|3\.4|7\.\d+)$")
SOFT_WORDS = re.compile(r"quota|mailbox (is )?full|insufficient (system )?storage|"
                        r"out of storage|over ?quota", re.IGNORECASE)
DAEMON = re.compile(r"mailer-daemon|postmaster|mail delivery (sub)?system|"
                    r"system administrator|^<?>?$", re.IGNORECASE)
AUTO_SUBJECT = re.compile(
    r"out of (the )?office|automatic reply|auto(matic)?[- ]?(reply|response|antwort)|"
    r"^auto:|abwesenheit|vacation|r[ée]ponse automatique|away from", re.IGNORECASE)
RETURNED_COPY = re.compile(
    r"^[ \t]*-{2,}[ \t]*(this is a copy|below this line is a copy|original message|"
    r"the header of the original message)", re.IGNORECASE | re.MULTILINE)
MESSAGE_ID = re.compile(r"^message-id:\s*(<[^>\s]{3,250}>)", re.IGNORECASE | re.MULTILINE)
ADDRESS = re.compile(r"<?([^\s<>;\"]+@[^\s<>;\"]+?)>?$")


@dataclass(frozen=True)
class Finding:
    kind: str  # hard, soft, complaint or none
    why: str  # how we know: "DSN 5.1.1", "ARF abuse report", "auto-reply (...)", ...
    status: str = ""  # the enhanced status code, when one was given
    detail: str = ""  # the diagnostic, one line
    recipients: tuple[str, ...] = ()  # the failing addresses the report names
    message_ids: tuple[str, ...] = ()  # Message-IDs of the returned message
    headers: dict[str, str] = field(default_factory=dict)  # outer headers, for the tag


def parse(data: bytes) -> Message:
    return BytesParser(policy=compat32).parsebytes(data[:MAX_BYTES])


def classify(data: bytes) -> Finding:
    """What the message is, and whom it names."""
    message = parse(data)
    headers = {name: str(message.get(name, "")) for name in
               ("to", "delivered-to", "x-original-to", "envelope-to", "x-envelope-to",
                "x-delivered-to", "return-path", "from", "subject")}
    finding = report(message) or not_bounce(message) or detected(message)
    ids = tuple(dict.fromkeys(i for i in returned_ids(message, data)
                              if i != message.get("message-id", "").strip()))
    return Finding(finding.kind, finding.why, finding.status, finding.detail,
                   finding.recipients, ids, headers)


# ------------------------------------------------------------- standard reports
def report(message: Message) -> Finding | None:
    """A DSN or an ARF report; some senders leave out the report-type parameter, so the
    parts decide."""
    if message.get_content_type() != "multipart/report":
        return None
    parts = list(message.walk())
    for part in parts:
        if part.get_content_type() == "message/feedback-report":
            return feedback(message, part)
    for part in parts:
        if part.get_content_type() == "message/delivery-status":
            found = delivery_status(part)
            if found:
                return found
    return None


def feedback(message: Message, part: Message) -> Finding:
    fields = first_block(part)
    kind = fields.get("feedback-type", "abuse").strip().lower()
    recipients = addresses(fields.get_all("original-rcpt-to", [])
                           + fields.get_all("removal-recipient", []))
    if not recipients:
        recipients = addresses(returned_header(message, "to"))
    if kind in {"not-spam", "auth-failure", "dkim", "spf"}:
        return Finding(NONE, f"ARF {kind} report, not a complaint", recipients=recipients)
    return Finding(COMPLAINT, f"ARF {kind} report", detail=one_line(
        fields.get("user-agent", "")), recipients=recipients)


def delivery_status(part: Message) -> Finding | None:
    blocks = part.get_payload()
    if not isinstance(blocks, list):
        return None
    failed: list[tuple[str, str, str]] = []
    delayed = False
    for block in blocks[1:]:
        action = str(block.get("action", "")).strip().lower()
        status = STATUS.search(str(block.get("status", "")))
        code = ".".join(status.groups()) if status else ""
        recipient = addresses([str(block.get("original-recipient", "")),
                               str(block.get("final-recipient", ""))])
        diagnostic = one_line(str(block.get("diagnostic-code", "")))
        if action == "failed" or (not action and code[:1] in {"4", "5"}):
            failed.append((code or "5.0.0", diagnostic, recipient[0] if recipient else ""))
        elif action == "delayed":
            delayed = True
    if not failed:
        return Finding(NONE, "DSN delay warning, still being tried") if delayed else None
    code, diagnostic, _ = failed[0]
    kind = kind_of(code, diagnostic)
    return Finding(kind, f"DSN {code}", code, diagnostic,
                   tuple(dict.fromkeys(r for *_, r in failed if r)))


def first_block(part: Message) -> Message:
    payload = part.get_payload()
    if isinstance(payload, list) and payload:
        return payload[0]
    return BytesParser(policy=compat32).parsebytes(
        payload.encode("utf-8", "replace") if isinstance(payload, str) else b"")


def kind_of(code: str, text: str) -> str:
    if code.startswith("4") or SOFT_STATUSES.match(code) or SOFT_WORDS.search(text):
        return SOFT
    return HARD


# ------------------------------------------------------------- not a bounce
def not_bounce(message: Message) -> Finding | None:
    """Auto-replies and people: never counted. A message from a mailer daemon is
    left to the detectors, since some (Exim) mark their bounces auto-replied too."""
    if from_daemon(message):
        return None
    auto = str(message.get("auto-submitted", "no")).strip().lower()
    subject = str(message.get("subject", ""))
    if auto and auto != "no":
        return Finding(NONE, f"auto-reply (Auto-Submitted: {auto})")
    for name in ("x-autoreply", "x-autorespond", "x-auto-response-suppress"):
        if message.get(name):
            return Finding(NONE, f"auto-reply ({name})")
    if str(message.get("precedence", "")).strip().lower() == "auto_reply" or \
            AUTO_SUBJECT.search(subject):
        return Finding(NONE, "auto-reply (subject or Precedence)")
    return None


# ------------------------------------------------------------- everything else
def detected(message: Message) -> Finding:
    try:
        temporary, permanent = all_failures(message)
    except Exception as exc:  # a detector failing on a stranger's message
        log.debug("flufl.bounce failed: %s", exc)
        temporary, permanent = frozenset(), frozenset()
    text = body_text(message)
    status = next((m.group(0) for m in STATUS.finditer(text) if m.group(1) != "2"), "")
    if permanent:
        kind = SOFT if SOFT_WORDS.search(text) or SOFT_STATUSES.match(status) else HARD
        return Finding(kind, "flufl.bounce: permanent failure", status,
                       diagnostic_line(text), decoded(permanent))
    if temporary:
        return Finding(SOFT, "flufl.bounce: temporary failure", status,
                       diagnostic_line(text), decoded(temporary))
    if status and from_daemon(message):
        # A mail server's own report in a layout no detector knows (Exchange 2003):
        # its status code says how it failed; the recipient comes from the tag, the
        # returned Message-ID or X-Failed-Recipients, never from guessing in the text.
        failed = addresses(message.get_all("x-failed-recipients", []))
        return Finding(kind_of(status, text), f"status {status} from a mail server", status,
                       diagnostic_line(text), failed)
    return Finding(NONE, "no bounce found")


def from_daemon(message: Message) -> bool:
    return bool(DAEMON.search(str(message.get("from", "")).strip() or "<>"))


def decoded(found: frozenset) -> tuple[str, ...]:
    return addresses([a.decode("utf-8", "replace") if isinstance(a, bytes) else str(a)
                      for a in found])


# ------------------------------------------------------------- helpers
def addresses(values: list[str]) -> tuple[str, ...]:
    """The addresses of DSN/ARF fields ("rfc822; ada@example.org") and headers."""
    found = []
    for value in values:
        value = str(value).split(";", 1)[-1].strip()
        for piece in value.split(","):
            match = ADDRESS.search(piece.strip())
            if match:
                found.append(match.group(1).strip().lower())
    return tuple(dict.fromkeys(found))


def returned_header(message: Message, name: str) -> list[str]:
    for part in message.walk():
        if part.get_content_type() in {"message/rfc822", "text/rfc822-headers"}:
            inner = part.get_payload()
            if isinstance(inner, list) and inner:
                return [str(v) for v in inner[0].get_all(name, [])]
            if isinstance(inner, str):
                return [str(v) for v in BytesParser(policy=compat32).parsebytes(
                    inner.encode("utf-8", "replace"), headersonly=True).get_all(name, [])]
    return []


def returned_ids(message: Message, data: bytes) -> list[str]:
    found = returned_header(message, "message-id")
    text = data[:MAX_BYTES].decode("utf-8", "replace")
    return [i.strip() for i in found] + MESSAGE_ID.findall(text)


def body_text(message: Message, limit: int = 200_000) -> str:
    """The report's own words: its text parts, without the message it returns (an
    attached message/rfc822, or the copy after "--- Below this line is a copy ...")."""
    pieces, size = [], 0
    for part in own_parts(message):
        if part.get_content_maintype() != "text" or part.get_content_type() == \
                "text/rfc822-headers":
            continue
        try:
            payload = part.get_payload(decode=True) or b""
        except Exception:
            continue
        text = payload[:limit - size].decode("utf-8", "replace")
        pieces.append(RETURNED_COPY.split(text, maxsplit=1)[0])
        size += len(pieces[-1])
        if size >= limit:
            break
    return "\n".join(pieces)


def own_parts(message: Message):
    """Every part, but not those inside an attached message."""
    yield message
    if message.get_content_type() == "message/rfc822":
        return
    payload = message.get_payload()
    if message.is_multipart() and isinstance(payload, list):
        for part in payload:
            yield from own_parts(part)


def diagnostic_line(text: str) -> str:
    for line in text.splitlines():
        if STATUS.search(line) or re.search(r"\b[45]\d\d\b", line):
            return one_line(line)
    return ""


def one_line(text: str, limit: int = 300) -> str:
    return " ".join(text.split())[:limit]
