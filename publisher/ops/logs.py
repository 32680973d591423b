"""Operations: log lines for long-running processes, one line per event.

`text` is for people and journald: `2026-11-24T12:00:00Z INFO publisher.schedule.daemon: message`.
`json` is for log collectors: one object a line with ts, level, logger, msg, any
`extra=` fields the call passed, and the traceback (if any) as one string, so an error
never spreads over several lines a collector would read as separate events.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

FORMATS = ("text", "json")
# Attributes every LogRecord has; anything else on a record came from `extra=`.
STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
# Libraries that log every request or job at INFO; their warnings still show.
CHATTY = ("apscheduler", "httpx", "httpcore", "watchfiles", "uvicorn.access", "aiosmtplib")


def timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = f"{timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += " | " + self.formatException(record.exc_info).replace("\n", " | ")
        return line.replace("\n", " | ")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {"ts": timestamp(record), "level": record.levelname, "logger": record.name,
                "msg": record.getMessage()}
        data.update((key, value) for key, value in vars(record).items()
                    if key not in STANDARD and not key.startswith("_"))
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)


def configure_logging(fmt: str = "text", level: int = logging.INFO,
                      stream: TextIO | None = None) -> None:
    """Send every log record to `stream` (stderr) in the chosen format, one line each."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in CHATTY:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
