"""Settings: the rules every value meets at load, beyond its own key's check.

Every value is checked once, when the settings load, so a bad one stops the command
with exit code 2 and one line, instead of a crash (or a refusal) later at run time:

- text is one line without control characters: a NUL stops any path or query, and a
  line break in a title, a URL or a Feedback-ID would end up in a feed or a header;
- numbers are finite and small enough for a date to be computed from them;
- folders the instance writes or reads are folders, never a file such as
  publisher.toml, never the instance itself (the publish folder is served to anyone);
- [digest] subject fills in only {site_title} and {n}, with short format specs.
"""

from __future__ import annotations

import math
import re
import string
from pathlib import Path
from typing import TYPE_CHECKING, Any

from publisher.errors import ConfigError, setting_errors

if TYPE_CHECKING:
    from publisher.config import Settings

CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_NUMBER = 10**9  # a billion seconds is 31 years: every date stays in the calendar
# Keys whose unit makes a billion too many for a date computed from now.
LIMITS = {"keep_days": 36_500, "confirm_hours": 24 * 36_500}
SUBJECT_FIELDS = {"site_title", "n"}
MAX_SPEC = re.compile(r"[<>=^]?[+ -]?\d{0,3}[,_]?[ds]?")  # e.g. >3, 03d; widths < 1000
MAX_SUBJECT_CHARS = 900  # one header line (998) with room for the title filled in


def check_value(name: str, value: Any) -> str | None:
    """What is wrong with any setting's value, whatever its key (`name`, the field's
    name, picks a tighter limit); None when nothing."""
    if isinstance(value, str) and CONTROL.search(value):
        return "text on one line, without control characters (no line breaks, no NUL)"
    if isinstance(value, tuple) and any(CONTROL.search(str(item)) for item in value):
        return "names without control characters"
    if isinstance(value, float) and not math.isfinite(value):
        return "a finite number"
    limit = LIMITS.get(name, MAX_NUMBER)
    if isinstance(value, int | float) and not isinstance(value, bool) and value > limit:
        return f"a number up to {limit:,}"
    return None


def check_database_url(value: str) -> str | None:
    from sqlalchemy.engine import make_url

    if not value:
        return None
    if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", value):
        return "empty, sqlite:///PATH or postgresql+psycopg://user:pass@host/db"
    url = make_url(value)
    if url.get_backend_name() == "sqlite" and (
            not url.database or url.database == ":memory:" or "mode=memory" in value):
        return "sqlite:///PATH naming a file (a database in memory forgets everything)"
    url.host  # noqa: B018 - a malformed host raises here, at load
    return None


def check_subject(value: str) -> str | None:
    """Only {site_title} and {n}, with short format specs: `{n:>999999999}` would build a
    gigabyte string for every digest, and `{site_title.__class__}` reads attributes."""
    accepted = "text with only {site_title} and {n} filled in, such as '{site_title}: {n} new'"
    try:
        fields = list(string.Formatter().parse(value))
    except ValueError:
        return accepted
    for _, name, spec, _ in fields:
        if name is None:
            continue
        if name not in SUBJECT_FIELDS or (spec and not MAX_SPEC.fullmatch(spec)):
            return accepted
    if len(value) > MAX_SUBJECT_CHARS or \
            len(value.format(site_title="S" * 60, n=12)) > MAX_SUBJECT_CHARS:
        return f"a subject under {MAX_SUBJECT_CHARS} characters once filled in"
    return None


def check_folders(settings: Settings) -> None:
    """The inbox, the publish folder and the maildir are folders of their own: never a
    file, never the instance, never one inside another (the publish folder is served to
    anyone; the inbox moves what it cannot read into quarantine)."""
    instance = settings.instance.resolve()
    folders = {"ingest.inbox": settings.ingest.inbox, "feeds.folder": settings.feeds.folder,
               "mail.maildir": settings.mail.maildir}
    seen: dict[str, Path] = {}
    for key, value in folders.items():
        with setting_errors(key, value, "a folder"):
            path = settings.path(value)
        problem = folder_problem(path, instance)
        for other, other_path in seen.items():
            if problem is None and (path == other_path or overlap(path, other_path)):
                problem = f"a folder apart from {other} (neither inside the other)"
        if problem:
            raise ConfigError(key, value, problem)
        seen[key] = path


def folder_problem(path: Path, instance: Path) -> str | None:
    if path.exists() and not path.is_dir():
        return "a folder, not a file"
    if path == instance or path in instance.parents:
        return "a folder inside the instance (or elsewhere), not the instance itself"
    return None


def overlap(one: Path, other: Path) -> bool:
    return one in other.parents or other in one.parents
