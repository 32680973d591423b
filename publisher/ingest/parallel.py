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
- Each worker has a pipe of its own and one chunk at a time, and this process waits on
  the pipe and the process's exit at once: a worker that dies (a crash in C code, the
  OOM killer) is seen at once, its chunk is parsed again here, file by file, by
  markdown-it, and a new worker takes its place (MAX_RESTARTS in a pass). A crash costs
  time, never the pass and never a file. Not concurrent.futures' ProcessPoolExecutor:
  in Python 3.11 a chunk submitted while the pool marks itself broken can be left
  unanswered, and the pass waited on it forever (seen in CI, a worker dying each chunk).
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Protocol

from publisher.article import Article
from publisher.errors import InputError, item_errors
from publisher.ingest.parse import ParseOptions, parse_with

log = logging.getLogger(__name__)

PARALLEL_FILES = 400  # files to parse in a pass before workers pay for their start
CHUNK_FILES = 40  # files a worker parses per round trip
MAX_RESTARTS = 2  # workers started again in a pass, after others died
CRASH_ON: str | None = None  # tests only: a worker dies (os._exit) on a file named so...

Outcome = list[Article] | str  # a file's Articles, or the reason it cannot become any
DIED, FAILED = "died", "failed"  # a chunk's answer when there is none


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


class Worker:
    """One worker process and the pipe to it; it parses one chunk at a time."""

    def __init__(self, context, options: ParseOptions) -> None:
        self.pipe, theirs = context.Pipe()
        # parse_chunk as this module has it now: a test may put another in its place.
        self.process = context.Process(target=serve, daemon=True, name="publisher-parse",
                                       args=(theirs, options, CRASH_ON, parse_chunk))
        self.process.start()
        theirs.close()  # only the worker holds its end: its exit ends the pipe
        self.busy = False

    def send(self, files: list[tuple[str, bytes]]) -> bool:
        """Hands the worker a chunk (it is idle, reading its pipe); False if it is gone."""
        try:
            self.pipe.send(files)
        except (OSError, ValueError):  # BrokenPipeError: it died since its last answer
            return False
        self.busy = True
        return True

    def answer(self) -> list[Outcome] | str:
        """The chunk's outcomes; DIED if the worker exited first, FAILED if the chunk or
        its answer did not cross."""
        self.busy = False
        wait([self.pipe, self.process.sentinel])  # whichever comes first: both end it
        try:
            if self.pipe.poll():
                return self.pipe.recv()
        except (EOFError, OSError):  # it died before or while writing its answer
            return DIED
        except Exception:  # an answer that cannot be unpickled here
            return FAILED
        return DIED

    def stop(self) -> None:
        if self.busy:  # mid-chunk (the pass failed): its answer is not wanted
            self.process.terminate()
        self.pipe.close()  # an idle worker reads the end of its pipe, and exits
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


@dataclass
class Chunk:
    """Jobs in order; `sent`, those with bytes to parse; `worker`, whoever parses them
    (None: this process, when the chunk is settled)."""

    jobs: list
    sent: list
    worker: Worker | None = None
    outcomes: list[Outcome] | str | None = None


class Parsing:
    """Parses a pass's files in their order: here, or in workers when there are many.
    A context manager: the workers are stopped however the pass ends."""

    def __init__(self, options: ParseOptions, files: int,
                 parse_here: Callable[[bytes, str], list[Article]]):
        self.options = options
        self.parse_here = parse_here  # markdown-it, in this process
        workers = worker_count()
        self.workers = workers if files >= PARALLEL_FILES and workers > 1 else 0
        self.live: list[Worker] = []
        self.started = False
        self.restarts = 0  # workers started again after others died

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
            self.start()

    def start(self) -> None:
        methods = multiprocessing.get_all_start_methods()
        self.context = multiprocessing.get_context(
            "forkserver" if "forkserver" in methods else "spawn")
        if self.context.get_start_method() == "forkserver":
            # Forked from a server that has the parsers imported: a worker starts in ms.
            self.context.set_forkserver_preload([__name__])
        self.live = [self.spawn() for _ in range(self.workers)]

    def spawn(self) -> Worker:
        return Worker(self.context, self.options)

    def pids(self) -> list[int]:
        return [worker.process.pid for worker in self.live]

    def stop(self) -> None:
        workers, self.live = self.live, []
        for worker in workers:
            worker.stop()

    def run(self, jobs: Iterable[Job | None]) -> Iterator[Job | None]:
        """Each job as it came, parsed where its `data` asked for it, in order."""
        if not self.workers:
            for job in jobs:
                self.here(job)
                yield job
            return
        pending: deque[Chunk] = deque()
        chunk = Chunk([], [])
        for job in jobs:
            chunk.jobs.append(job)
            if job is not None and job.data is not None:
                chunk.sent.append(job)
                if len(chunk.sent) >= CHUNK_FILES:
                    self.start_once()
                    self.dispatch(chunk, pending)
                    pending.append(chunk)
                    chunk = Chunk([], [])
                    # Chunks answered, in order: stored while the workers parse the next.
                    while pending and pending[0].worker is None:
                        yield from self.settle(pending.popleft())
        if chunk.sent and self.started:
            self.dispatch(chunk, pending)
        pending.append(chunk)
        while pending:
            yield from self.settle(pending.popleft())

    def dispatch(self, chunk: Chunk, pending: deque[Chunk]) -> None:
        """To an idle worker, once the oldest chunk out has been answered if none is."""
        while self.live:
            idle = [worker for worker in self.live if not worker.busy]
            if not idle:
                self.collect(next(c for c in pending if c.worker is not None))
                continue
            if idle[0].send([(job.key, job.data) for job in chunk.sent]):
                chunk.worker = idle[0]
                return
            self.died(idle[0])
        # No worker left: this process parses the chunk as it settles it.

    def collect(self, chunk: Chunk) -> None:
        worker, chunk.worker = chunk.worker, None
        chunk.outcomes = worker.answer()
        if chunk.outcomes == DIED:
            self.died(worker)
        elif chunk.outcomes == FAILED:
            log.error("a chunk of files came back from a worker broken; they are parsed "
                      "here")

    def died(self, worker: Worker) -> None:
        """Its chunk goes to markdown-it here (settle); a new worker takes its place."""
        log.error("a Markdown parsing worker died (a crash in the C parser?); its files "
                  "are parsed again by markdown-it")
        self.live.remove(worker)
        worker.stop()
        if self.restarts < MAX_RESTARTS:
            self.restarts += 1
            self.live.append(self.spawn())

    def settle(self, chunk: Chunk) -> Iterator[Job | None]:
        if chunk.worker is not None:
            self.collect(chunk)
        outcomes = chunk.outcomes
        for index, job in enumerate(chunk.sent):
            if not isinstance(outcomes, list):  # parsed by no worker: here
                self.here(job)
            elif isinstance(outcomes[index], str):
                job.error, job.data = InputError(job.key, outcomes[index]), None
            else:
                job.parsed, job.data = outcomes[index], None
        yield from chunk.jobs

    def here(self, job: Job | None) -> None:
        if job is None or job.data is None:
            return
        try:
            with item_errors(job.key):
                job.parsed = self.parse_here(job.data, job.key)
        except InputError as exc:
            job.error = exc
        job.data = None


def serve(pipe: Connection, options: ParseOptions, crash_on: str | None,
          parse: Callable[[list[tuple[str, bytes]]], list[Outcome]]) -> None:
    """A worker's life: chunks from its pipe, answers back, until the pipe ends."""
    start_worker(options, crash_on)
    while True:
        try:
            files = pipe.recv()
        except (EOFError, OSError):  # the pass is over (or gone)
            return
        try:
            answer = parse(files)
        except Exception:  # not one file's error (those are in the outcomes): the chunk's
            log.exception("a parsing worker could not answer a chunk")
            answer = FAILED
        try:
            pipe.send(answer)
        except (OSError, ValueError):
            return
        except Exception:  # an answer that does not pickle: the chunk goes back whole
            log.exception("a parsing worker could not send its answer")
            pipe.send(FAILED)


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
