"""Parse stage, on every core: a pass with many files to parse sends their bytes to
worker processes in chunks and takes back each file's Articles (or why it cannot become
any), in the files' order. Reading (files.py's checks), hashing, reconciling, storing and
quarantining stay in this process, so a parallel pass stores what a serial one does.

- Engines: workers render Markdown with cmark-gfm where it agrees with markdown-it
  (cmark.py); this process parses with markdown-it alone (pure Python: it raises, it
  cannot crash). So C code only ever runs where its crash is contained.
- Only a pass with at least PARALLEL_FILES files to parse starts workers: starting them
  costs more than parsing a few files here (bench/ingest.py measures the crossover), and
  a cron pass with one new file must not pay it.
- Workers are started by `forkserver` (`spawn` where there is none), never `fork`: the
  daemon has threads, and forking a process that has threads is unsafe.
- A worker that dies (a crash in C code, the OOM killer) breaks the pool: the chunks it
  had are parsed again here, file by file, by markdown-it, and a new pool takes the next
  chunks (after MAX_RESTARTS, this process parses the rest). A crash costs time, never
  the pass and never a file.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from publisher.article import Article
from publisher.errors import InputError, item_errors
from publisher.ingest.parse import ParseOptions, parse_with

log = logging.getLogger(__name__)

PARALLEL_FILES = 400  # files to parse in a pass before workers pay for their start
CHUNK_FILES = 40  # files a worker parses per round trip
MAX_RESTARTS = 2
CRASH_ON: str | None = None  # tests only: a worker dies (os._exit) on a file named so...

Outcome = list[Article] | str  # a file's Articles, or the reason it cannot become any


class Job(Protocol):
    """A file read: `data` is set while it waits for a parse, then `parsed` or `error`."""

    key: str
    data: bytes | None
    parsed: list[Article] | None
    error: InputError | None


def worker_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Parsing:
    """Parses a pass's files in their order: here, or in workers when there are many.
    A context manager: the workers are stopped however the pass ends."""

    def __init__(self, options: ParseOptions, files: int,
                 parse_here: Callable[[bytes, str], list[Article]]):
        self.options = options
        self.parse_here = parse_here  # markdown-it, in this process
        workers = worker_count()
        self.workers = workers if files >= PARALLEL_FILES and workers > 1 else 0
        self.pool: ProcessPoolExecutor | None = None
        self.started = False
        self.restarts = 0  # pools started again after a worker died

    def __enter__(self) -> Parsing:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start_once(self) -> None:
        """Workers, once a chunk is ready for them: files only touched, not changed, are
        hashed here and need none."""
        if not self.started:
            self.started = True
            log.info("parsing in %d worker processes", self.workers)
            self.pool = self.start()

    def start(self) -> ProcessPoolExecutor:
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context(
            "forkserver" if "forkserver" in methods else "spawn")
        if context.get_start_method() == "forkserver":
            # Forked from a server that has the parsers imported: a worker starts in ms.
            context.set_forkserver_preload([__name__])
        return ProcessPoolExecutor(self.workers, mp_context=context,
                                   initializer=start_worker,
                                   initargs=(self.options, CRASH_ON))

    def stop(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def run(self, jobs: Iterable[Job | None]) -> Iterator[Job | None]:
        """Each job as it came, parsed where its `data` asked for it, in order."""
        if not self.workers:
            for job in jobs:
                self.here(job)
                yield job
            return
        pending: deque[tuple[list, list[Job], Future | None, int]] = deque()
        chunk: list[Job | None] = []
        sent: list[Job] = []
        for job in jobs:
            chunk.append(job)
            if job is not None and job.data is not None:
                sent.append(job)
                if len(sent) >= CHUNK_FILES:
                    self.start_once()
                    pending.append((chunk, sent, self.submit(sent), self.restarts))
                    chunk, sent = [], []
                    # Two chunks a worker ahead: workers busy, a bounded number of bytes held.
                    while len(pending) > 2 * self.workers:
                        yield from self.settle(*pending.popleft())
        if chunk:
            pending.append((chunk, sent, self.submit(sent), self.restarts))
        while pending:
            yield from self.settle(*pending.popleft())

    def submit(self, sent: list[Job]) -> Future | None:
        if not sent or self.pool is None:
            return None
        try:
            return self.pool.submit(parse_chunk, [(job.key, job.data) for job in sent])
        except (BrokenProcessPool, OSError):
            # A worker died since the last chunk was settled. OSError ("handle is closed"):
            # the same, caught while the pool was replacing it (seen once in the suite).
            self.broken(self.restarts)
            return self.submit(sent)

    def settle(self, chunk: list[Job | None], sent: list[Job], future: Future | None,
               pool: int) -> Iterator[Job | None]:
        outcomes = None
        if future is not None:
            try:
                outcomes = future.result()
            except BrokenProcessPool:
                self.broken(pool)
            except Exception:  # the chunk or its answer did not cross: parse it here
                log.exception("a chunk of files came back from a worker broken")
        for index, job in enumerate(sent):
            if outcomes is None:
                self.here(job)
            elif isinstance(outcomes[index], str):
                job.error, job.data = InputError(job.key, outcomes[index]), None
            else:
                job.parsed, job.data = outcomes[index], None
        yield from chunk

    def broken(self, pool: int) -> None:
        """A worker of the pool-th pool died: its chunks go to markdown-it here (settle),
        and a new pool takes the next chunks."""
        if self.pool is None or pool != self.restarts:  # that pool was replaced already
            return
        log.error("a Markdown parsing worker died (a crash in the C parser?); its files "
                  "are parsed again by markdown-it")
        self.stop()
        if self.restarts < MAX_RESTARTS:
            self.pool = self.start()
        self.restarts += 1

    def here(self, job: Job | None) -> None:
        if job is None or job.data is None:
            return
        try:
            with item_errors(job.key):
                job.parsed = self.parse_here(job.data, job.key)
        except InputError as exc:
            job.error = exc
        job.data = None


def start_worker(options: ParseOptions, crash_on: str | None) -> None:
    global OPTIONS, CRASH_ON
    # Ctrl-C reaches the whole process group: the pass's process decides, and stops us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    OPTIONS, CRASH_ON = options, crash_on
    # What the server had imported stays: the collector need not walk it again and again.
    gc.freeze()


OPTIONS: ParseOptions | None = None


def parse_chunk(files: list[tuple[str, bytes]]) -> list[Outcome]:
    """In a worker: each file's Articles, or the reason it cannot become any."""
    outcomes: list[Outcome] = []
    for key, data in files:
        if CRASH_ON is not None and key.rsplit("/", 1)[-1].startswith(CRASH_ON):
            os._exit(70)
        try:
            with item_errors(key):
                outcomes.append(parse_with(data, key, OPTIONS))
        except InputError as exc:
            outcomes.append(exc.reason)
    return outcomes
