"""Operations: progress of long operations (an import, a large send, a rebuild).

On a terminal it is a rich progress bar (gone when the work is done: the command's own
summary follows). Anywhere else (cron mail, a log file, a journal) it is a plain line
every few seconds and one at the end, and nothing at all for work done before the first
line was due, so quick commands print exactly what they did before.

A long operation takes a display (`show`, default `quiet`), opens it around the work and
calls `advance`; the command line passes `progress`:

    def import_rows(rows, show: ProgressDisplay = quiet):
        with show("import", total=len(rows)) as bar:
            for row in rows:
                ...
                bar.advance()
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress

PLAIN_EVERY_SECONDS = 5.0


class Progress(Protocol):
    def advance(self, n: int = 1) -> None: ...


class Silent:
    def advance(self, n: int = 1) -> None:
        pass


SILENT = Silent()

# What long operations take: `progress` from the command line, `quiet` elsewhere.
ProgressDisplay = Callable[..., AbstractContextManager[Progress]]


@contextmanager
def quiet(description: str, total: int | None = None) -> Iterator[Progress]:
    """No display: the default for long operations called from code, not a command."""
    yield SILENT


def on_terminal(stream: TextIO) -> bool:
    return stream.isatty() and os.environ.get("TERM", "") != "dumb"


@contextmanager
def progress(description: str, total: int | None = None, *, stream: TextIO | None = None,
             clock: Callable[[], float] = time.monotonic,
             every: float = PLAIN_EVERY_SECONDS) -> Iterator[Progress]:
    """A progress display for `total` steps (None: unknown) on `stream` (stderr)."""
    stream = stream or sys.stderr
    if on_terminal(stream):
        with RichProgress(TextColumn("{task.description}"), BarColumn(),
                          MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                          console=Console(file=stream), transient=True) as bar:
            yield RichTask(bar, bar.add_task(description, total=total))
        return
    lines = PlainLines(description, total, stream, clock, every)
    try:
        yield lines
    except BaseException:
        if lines.said:
            lines.write("stopped at")
        raise
    if lines.said:
        lines.write("done:")


class RichTask:
    def __init__(self, bar: RichProgress, task):
        self.bar, self.task = bar, task

    def advance(self, n: int = 1) -> None:
        self.bar.advance(self.task, n)


class PlainLines:
    """`description: 1,200/10,000 (12%)` at most every `every` seconds, and at the end."""

    def __init__(self, description: str, total: int | None, stream: TextIO,
                 clock: Callable[[], float], every: float):
        self.description, self.total, self.stream = description, total, stream
        self.clock, self.every = clock, every
        self.done = 0
        self.said = False
        self.started = self.last = clock()

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.clock() - self.last >= self.every:
            self.write("")

    def write(self, word: str) -> None:
        self.said = True
        self.last = self.clock()
        count = f"{self.done:,}" + (f"/{self.total:,}" if self.total is not None else "")
        share = f" ({self.done / self.total:.0%})" if self.total else ""
        took = f" in {self.last - self.started:.1f}s" if word else ""
        print(f"{self.description}: {word + ' ' if word else ''}{count}{share}{took}",
              file=self.stream, flush=True)
