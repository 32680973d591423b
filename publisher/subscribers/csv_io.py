"""Subscribers: CSV import and export (email, name, frequency, sections, timezone, status,
created, confirmed); exports of other tools are read through publisher.subscribers.formats.

Import checks every row, reports each bad one with its line number and reason, and
stores the rest in batches (one transaction each). A column present in the file sets
that field, an absent one leaves it alone, and an empty frequency or status cell keeps
what is stored (new rows: daily, active). Importing the same file twice changes nothing;
someone who unsubscribed or bounced is never made pending or active again unless the
caller passes resubscribe=True. Importing vouches for consent: rows without a status
become active, so import only people who opted in.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from functools import lru_cache
from pathlib import Path
from typing import TextIO

from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import DOT_ATOM_TEXT, EMAIL_MAX_LENGTH

from publisher.addresses import LINE_BREAK, normalize_address
from publisher.config import Settings
from publisher.errors import AddressError, InputError
from publisher.ops.progress import ProgressDisplay, quiet
from publisher.store import Store
from publisher.store.subscribers import MUTABLE, SUPPRESSED
from publisher.subscribers import formats
from publisher.subscribers.rules import (
    clean_frequency,
    clean_name,
    clean_sections,
    clean_status,
    clean_timezone,
    first_cursor,
)

log = logging.getLogger(__name__)

COLUMNS = ("email", "name", "frequency", "sections", "timezone", "status", "created",
           "confirmed")
ALIASES = {"email address": "email", "e-mail": "email", "mail": "email",
           "time zone": "timezone", "tz": "timezone", "created_at": "created",
           "confirmed_at": "confirmed"}
BATCH = 5000
# Where a subscriber's digests start, given their sections (publisher.digests.planner decides).
CursorFor = Callable[[tuple[str, ...]], int]
LEFT_SUBSCRIBED = ("unsubscribed", "bounced", "complained")


@dataclass
class BadRow:
    line: int
    reason: str


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    kept: int = 0  # rows asking to re-subscribe someone who left, refused
    # Of those, the suppressed addresses (bounced, complained): (line, address, status).
    # A complaint stays suppressed even with --resubscribe: only a new opt-in lifts it.
    suppressed: list[tuple[int, str, str]] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    encoding: str = "utf-8"
    format: str = "publisher CSV"
    columns: list[tuple[str, str]] = field(default_factory=list)  # (header, what it became)

    def line(self) -> str:
        return (f"import: {self.added} added, {self.updated} updated, "
                f"{self.unchanged} unchanged, {self.kept} left unsubscribed or bounced, "
                f"{len(self.bad)} bad rows")


@dataclass(frozen=True)
class Incoming:
    """A checked row: its address and only the fields its file gives."""

    line: int
    email: str
    given: dict
    created: datetime | None
    confirmed: datetime | None = None


def read_text(path: Path) -> tuple[str, str]:
    """The file's text and the encoding it was read in (UTF-8, else Windows-1252, which
    is what spreadsheet programs often save CSV as)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    return decode_text(data, str(path))


def decode_text(data: bytes, source: str) -> tuple[str, str]:
    """Bytes of a CSV file (read from disk or uploaded) as text, and their encoding."""
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "windows-1252"
    except UnicodeDecodeError as exc:
        raise InputError(source, "is neither UTF-8 nor Windows-1252 text") from exc


def import_file(settings: Settings, store: Store, path: Path, now: datetime,
                resubscribe: bool = False, show: ProgressDisplay = quiet,
                source_format: str | None = None) -> ImportReport:
    text, encoding = read_text(path)
    report = import_text(settings, store, text, str(path), now, resubscribe, show,
                         source_format)
    report.encoding = encoding
    return report


def import_text(settings: Settings, store: Store, text: str, source: str, now: datetime,
                resubscribe: bool = False, show: ProgressDisplay = quiet,
                source_format: str | None = None) -> ImportReport:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise InputError(source, "is empty: expected a header line such as "
                         + ",".join(COLUMNS))
    fmt = formats.detect(header, source_format, source)
    if fmt is not None:
        columns, convert = list(formats.CANONICAL), formats.converter(fmt, header)
        described = fmt.describe(header)
        report = ImportReport(format=fmt.label, columns=described, ignored_columns=[
            name for name, role in described if role == "ignored"])
    else:
        columns = [ALIASES.get(name.strip().lower(), name.strip().lower()) for name in header]
        convert = None
        report = ImportReport(
            ignored_columns=[ours for ours in columns if ours not in COLUMNS],
            columns=[(name, ours if ours in COLUMNS else "ignored")
                     for name, ours in zip(header, columns, strict=True)])
    if "email" not in columns:
        raise InputError(source, f"has no email column (header: {','.join(header)}); "
                         f"expected {','.join(COLUMNS)} or an export of "
                         f"{', '.join(formats.FORMATS)}")
    cursors: dict[tuple[str, ...], int] = {}

    def cursor(sections: tuple[str, ...]) -> int:
        """Where digests start for someone with these sections (asked once each)."""
        if sections not in cursors:
            cursors[sections] = first_cursor(settings, store, sections)
        return cursors[sections]

    batch: list[Incoming] = []
    # Progress in lines of the file (a quoted cell may span lines; rows would not add up).
    with show("import", total=max(text.count("\n") - 1, 0)) as bar:
        shown = 0
        for incoming in checked_rows(reader, columns, report, convert):
            batch.append(incoming)
            if len(batch) >= BATCH:
                store_batch(store, batch, report, now, cursor, resubscribe)
                batch = []
                bar.advance(reader.line_num - 1 - shown)
                shown = reader.line_num - 1
        if batch:
            store_batch(store, batch, report, now, cursor, resubscribe)
        bar.advance(reader.line_num - 1 - shown)
    return report


def checked_rows(reader, columns: list[str], report: ImportReport,
                 convert: Callable[[list[str]], list[str]] | None = None
                 ) -> Iterator[Incoming]:
    first_line: dict[str, int] = {}
    line = reader.line_num + 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                try:
                    if convert is not None:
                        cells = convert(cells)
                    incoming = check_row(line, cells, columns)
                    if incoming.email in first_line:
                        raise AddressError(f"{incoming.email} is already on line "
                                           f"{first_line[incoming.email]}")
                    first_line[incoming.email] = line
                    yield incoming
                except AddressError as exc:
                    report.bad.append(BadRow(line, str(exc)))
            line = reader.line_num + 1
    except csv.Error as exc:
        report.bad.append(BadRow(line, f"not valid CSV ({exc}); the rest of the file "
                                 "was not read"))


def check_row(line: int, cells: list[str], columns: list[str]) -> Incoming:
    if len(cells) > len(columns):
        raise AddressError(f"has {len(cells)} fields; the header has {len(columns)}")
    values = dict(zip(columns, cells, strict=False))
    if not values.get("email", "").strip():
        raise AddressError("email is empty")
    email = normalize_listed_address(values["email"])
    given: dict = {}
    if "name" in values:
        given["name"] = clean_name(values["name"])
    if values.get("frequency", "").strip():
        given["frequency"] = clean_frequency(values["frequency"])
    if "sections" in values:
        given["sections"] = clean_sections(values["sections"])
    if "timezone" in values:
        given["timezone"] = clean_timezone(values["timezone"])
    if values.get("status", "").strip():
        given["status"] = clean_status(values["status"])
    created = read_created(values.get("created", ""))
    confirmed = read_created(values.get("confirmed", ""), "confirmed")
    if confirmed is not None:
        given["confirmed_at"] = confirmed
    return Incoming(line, email, given, created, confirmed)


def normalize_listed_address(text: str) -> str:
    """normalize_address, with each domain checked once per import.

    email-validator spends two thirds of its time on the domain, and a list holds few
    distinct domains. A plain ASCII local part (its dot-atom rule, which it accepts as
    is) joined to a domain it accepted gives the same answer it would; anything else
    (quotes, Unicode, odd lengths, errors) goes through normalize_address itself, so
    messages and edge cases are the library's own. tests/test_subscriber_csv.py checks
    the two agree on generated addresses."""
    address = text.strip()
    local, at, domain = address.rpartition("@")
    if at and DOT_ATOM_TEXT.match(local):
        known = checked_domain(domain)
        if known and len(local) + 1 + known[1] <= EMAIL_MAX_LENGTH:
            return f"{local.lower()}@{known[0]}"
    return normalize_address(text)


@lru_cache(maxsize=4096)
def checked_domain(domain: str) -> tuple[str, int] | None:
    """The normalized domain and the byte length of its longest form (as given, as
    normalized, as IDNA ASCII: email-validator limits the address in each), or None."""
    if LINE_BREAK.search(domain):
        return None
    try:
        valid = validate_email(f"x@{domain}", check_deliverability=False)
    except EmailNotValidError:
        return None
    longest = max(len(domain.encode()), len(valid.domain.encode()), len(valid.ascii_domain))
    return valid.domain.lower(), longest


def read_created(text: str, column: str = "created") -> datetime | None:
    """ISO 8601, a date or a date and time; a time without a zone is taken as UTC."""
    text = text.strip()
    if not text:
        return None
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise AddressError(f"{column} {text!r} is not an ISO 8601 date such as "
                           "2026-11-01T08:00:00+00:00") from exc
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def store_batch(store: Store, batch: list[Incoming], report: ImportReport, now: datetime,
                cursor: CursorFor, resubscribe: bool) -> None:
    counts = ImportReport()

    def plan(stored: dict[str, dict]) -> tuple[list[dict], list[dict]]:
        counts.added = counts.updated = counts.unchanged = counts.kept = 0
        counts.suppressed = []
        inserts, changes = [], []
        for row in batch:
            old = stored.get(row.email)
            if old is None:
                inserts.append(new_row(row, now, cursor))
                counts.added += 1
                continue
            lift = resubscribe and old["status"] != "complained"
            new, refused = merged(old, row, now, cursor, lift)
            counts.kept += refused
            if refused and old["status"] in SUPPRESSED:
                counts.suppressed.append((row.line, row.email, old["status"]))
            if new is None:
                counts.unchanged += 1
            else:
                changes.append(new)
                counts.updated += 1
        return inserts, changes

    store.subscribers.merge_batch([row.email for row in batch], plan, now)
    report.added += counts.added
    report.updated += counts.updated
    report.unchanged += counts.unchanged
    report.kept += counts.kept
    report.suppressed += counts.suppressed


def new_row(row: Incoming, now: datetime, cursor: CursorFor) -> dict:
    status = row.given.get("status", "active")
    created = row.created or now
    sections = row.given.get("sections", ())
    return {"email": row.email, "name": row.given.get("name", ""),
            "frequency": row.given.get("frequency", "daily"), "sections": sections,
            "timezone": row.given.get("timezone", ""), "status": status,
            "cursor": cursor(sections), "created_at": created,
            "confirmed_at": row.confirmed or (created if status == "active" else None)}


def merged(old: dict, row: Incoming, now: datetime, cursor: CursorFor,
           resubscribe: bool) -> tuple[dict | None, bool]:
    """The stored row with the file's values applied (None: nothing differs), and
    whether a re-subscription was refused."""
    new = {name: old[name] for name in MUTABLE} | {
        name: value for name, value in row.given.items() if name != "status"}
    wanted, refused = row.given.get("status", old["status"]), False
    if wanted != old["status"]:
        if old["status"] in LEFT_SUBSCRIBED and wanted not in LEFT_SUBSCRIBED \
                and not resubscribe:
            refused = True
        else:
            new["status"] = wanted
            if wanted == "active":
                # Digests start from now: no backlog of what they missed meanwhile.
                new["confirmed_at"] = new["confirmed_at"] or now
                new["cursor"] = cursor(new["sections"])
    if all(new[name] == old[name] for name in MUTABLE) and "cursor" not in new:
        return None, refused
    return {"id": old["id"], **new}, refused


# --- export ---------------------------------------------------------------------------

def export_rows(store: Store, out: TextIO, status: str | None = None) -> int:
    """Write every subscriber (or those with `status`) as CSV; returns the row count."""
    count = 0
    for text, rows in export_chunks(store, status):
        out.write(text)
        count += rows
    return count


def export_chunks(store: Store, status: str | None = None,
                  size: int = 2000) -> Iterator[tuple[str, int]]:
    """The CSV export in pieces of text (the header, then `size` rows at a time), each
    with its row count: what a streamed download sends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    rows = 0
    for sub in store.subscribers.stream(status=status):
        writer.writerow((sub.email, sub.name, sub.frequency, ";".join(sub.sections),
                         sub.timezone, sub.status, sub.created_at.isoformat(),
                         sub.confirmed_at.isoformat() if sub.confirmed_at else ""))
        rows += 1
        if rows == size:
            yield buffer.getvalue(), rows
            buffer.seek(0)
            buffer.truncate()
            rows = 0
    yield buffer.getvalue(), rows


def export_file(store: Store, path: Path, status: str | None = None) -> int:
    """Export to `path` atomically (a reader never sees half a file), readable by its
    owner only: it is a list of people's addresses."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            count = export_rows(store, out, status)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return count
