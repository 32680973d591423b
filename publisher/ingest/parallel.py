"""Parse stage, on every core: a pass with much to parse sends the files' bytes to worker
processes in chunks and takes back each file's Articles (or why it cannot become any),
in the files' order. Reading (files.py's checks), hashing, reconciling, storing and
quarantining stay in this process, so a parallel pass stores what a serial one does.

- Engines: workers render Markdown with cmark-gfm where it agrees with markdown-it
  (cmark.py); this process parses with markdown-it alone (pure Python: it raises, it
  cannot crash). So C code only ever runs where its crash is contained.
- Only a pass with at least PARALLEL_FILES files, or PARALLEL_BYTES bytes, to parse
  starts workers: starting them costs more than parsing a little here (bench/ingest.py
  measures the crossover), and a cron pass with one new file must not pay it.
- A worker is a fresh interpreter (subprocess, `python -c BOOT`), given this process's
  sys.path: never `fork` (the daemon has threads), and not multiprocessing's spawn or
  forkserver either, whose children import the main module again: under the `publisher`
  command that is the whole CLI and web app, about a second per worker before its first
  file (and a script without `if __name__ == "__main__":` would run again in each).
- Each worker has two pipes of its own. It holds up to DEPTH chunks: it reads its pipe
  and sends its answers from threads of its own, so it parses on while this process
  stores (a batch of a thousand articles) and is never left waiting for its next chunk.
- A worker that dies (a crash in C code, the OOM killer) ends its answer pipe, and that
  is seen at once: its chunks are parsed again here, file by file, by markdown-it, and
  a new worker takes its place (MAX_RESTARTS in a pass). A crash costs time, never the
  pass and never a file. Not concurrent.futures' ProcessPoolExecutor: in Python 3.11 a
  chunk submitted while the pool marks itself broken can be left unanswered, and the
  pass waited on it forever (seen in CI, a worker dying each chunk).
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Protocol

from publisher.article import Article
from publisher.errors import InputError, item_errors
from publisher.ingest.parse import ParseOptions, parse_with

log = logging.getLogger(__name__)

PARALLEL_FILES = 400  # files to parse in a pass before workers pay for their start
PARALLEL_BYTES = 2 * 1024 * 1024  # ... or bytes: a few big page-text dumps
CHUNK_FILES = 40  # files a worker parses per round trip, at most
CHUNK_BYTES = 256 * 1024  # ... and bytes, at most (but always one file)
DEPTH = 16  # chunks a worker holds: enough to parse on through a flush (inbox.py's batch)
PIPE_BYTES = 1024 * 1024  # Linux's default pipe-max-size
MAX_RESTARTS = 2  # workers started again in a pass, after others died
CRASH_ON: str | None = None  # tests only: a worker dies (os._exit) on a file named so...

Outcome = list[Article] | str  # a file's Articles, or the reason it cannot become any
DIED, FAILED = "died", "failed"  # a chunk's answer when there is none

# A worker's first lines: its pipes from argv, then sys.path from the first message, so
# `publisher` is imported from where this process has it (a checkout, a venv).
BOOT = ("import sys\n"
        "from multiprocessing.connection import Connection\n"
        "chunks = Connection(int(sys.argv[1]), writable=False)\n"
        "sys.path[:] = chunks.recv()\n"
        "from publisher.ingest.parallel import serve\n"
        "serve(chunks, Connection(int(sys.argv[2]), readable=False))\n")


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
    """One worker process and the pipes to it; `chunks`, those it holds, in order."""

    def __init__(self, options: ParseOptions) -> None:
        theirs_in, ours_out = os.pipe()
        ours_in, theirs_out = os.pipe()
        widen(ours_out)
        widen(ours_in)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", BOOT, str(theirs_in), str(theirs_out)],
                pass_fds=(theirs_in, theirs_out), stdin=subprocess.DEVNULL)
        except BaseException:
            os.close(ours_out)
            os.close(ours_in)
            raise
        finally:  # only the worker holds its ends: its exit ends the answers' pipe
            os.close(theirs_in)
            os.close(theirs_out)
        self.out = Connection(ours_out, readable=False)
        self.answers = Connection(ours_in, writable=False)
        self.chunks: deque[Chunk] = deque()
        # parse_chunk as this module has it now: a test may put another in its place.
        self.alive = self.send_raw(sys.path) and self.send_raw((options, CRASH_ON,
                                                                 parse_chunk))

    def send_raw(self, message: object) -> bool:
        try:
            self.out.send(message)
        except (OSError, ValueError):  # BrokenPipeError: it died since its last answer
            return False
        return True

    def send(self, files: list[tuple[str, bytes]]) -> bool:
        """Hands the worker a chunk (its threads read it at once); False if it is gone."""
        return self.alive and self.send_raw(files)

    def answer(self) -> list[Outcome] | str:
        """The oldest chunk's outcomes; DIED if the worker exited first, FAILED if the
        chunk or its answer did not cross."""
        try:
            return self.answers.recv()
        except (EOFError, OSError):  # it died before or while writing its answer
            return DIED
        except Exception:  # an answer that cannot be unpickled here
            return FAILED

    def stop(self) -> None:
        if self.chunks:  # mid-chunk (the pass failed): its answers are not wanted
            self.process.terminate()
        self.out.close()  # an idle worker reads the end of its pipe, and exits
        self.answers.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def widen(pipe: int) -> None:
    """A chunk or an answer (a few hundred KB) in one write, not 64 KB at a time, each
    waiting for the other side's thread to be scheduled (Linux; elsewhere as it is)."""
    # Not Linux (no F_SETPIPE_SZ), or over /proc/sys/fs/pipe-max-size: as it is.
    with contextlib.suppress(AttributeError, OSError):
        fcntl.fcntl(pipe, fcntl.F_SETPIPE_SZ, PIPE_BYTES)


@dataclass
class Chunk:
    """Jobs in order; `sent`, those with bytes to parse (`size` of them); `worker`,
    whoever parses them (None: answered, or this process's, when the chunk is settled)."""

    jobs: list = field(default_factory=list)
    sent: list = field(default_factory=list)
    size: int = 0
    worker: Worker | None = None
    outcomes: list[Outcome] | str | None = None

    def full(self) -> bool:
        return len(self.sent) >= CHUNK_FILES or self.size >= CHUNK_BYTES


class Parsing:
    """Parses a pass's files in their order: here, or in workers when there are many.
    A context manager: the workers are stopped however the pass ends."""

    def __init__(self, options: ParseOptions, files: int,
                 parse_here: Callable[[bytes, str], list[Article]], size: int = 0):
        self.options = options
        self.parse_here = parse_here  # markdown-it, in this process
        workers = worker_count()
        many = files >= PARALLEL_FILES or size >= PARALLEL_BYTES
        self.workers = workers if many and workers > 1 else 0
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
            try:
                self.start()
            except OSError as exc:  # no interpreter to start (an embedded Python)
                log.warning("cannot start parsing workers (%s); parsing here", exc)

    def start(self) -> None:
        for _ in range(self.workers):
            self.live.append(self.spawn())

    def spawn(self) -> Worker:
        return Worker(self.options)

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
        chunk = Chunk()
        for job in jobs:
            chunk.jobs.append(job)
            if job is not None and job.data is not None:
                chunk.sent.append(job)
                chunk.size += len(job.data)
                if chunk.full():
                    self.start_once()
                    self.dispatch(chunk, pending)
                    pending.append(chunk)
                    chunk = Chunk()
                    # Chunks answered, in order: stored while the workers parse the next.
                    while pending and pending[0].worker is None:
                        yield from self.settle(pending.popleft())
        if chunk.sent and self.started:
            self.dispatch(chunk, pending)
        pending.append(chunk)
        while pending:
            yield from self.settle(pending.popleft())

    def dispatch(self, chunk: Chunk, pending: deque[Chunk]) -> None:
        """To the worker holding fewest chunks; when each holds DEPTH, once the oldest
        chunk out has been answered."""
        while self.live:
            worker = min(self.live, key=lambda worker: len(worker.chunks))
            if len(worker.chunks) >= DEPTH:
                self.collect(next(c for c in pending if c.worker is not None))
                continue
            if worker.send([(job.key, job.data) for job in chunk.sent]):
                chunk.worker = worker
                worker.chunks.append(chunk)
                return
            self.died(worker)
        # No worker left: this process parses the chunk as it settles it.

    def collect(self, chunk: Chunk) -> None:
        """The answer to a chunk: a worker answers its chunks in the order it got them,
        and the oldest chunk out is always its worker's oldest."""
        worker = chunk.worker
        outcomes = worker.answer()
        if outcomes == DIED:
            self.died(worker)
            return
        worker.chunks.popleft()
        chunk.worker, chunk.outcomes = None, outcomes
        if outcomes == FAILED:
            log.error("a chunk of files came back from a worker broken; they are parsed "
                      "here")

    def died(self, worker: Worker) -> None:
        """Its chunks go to markdown-it here (settle); a new worker takes its place."""
        for chunk in worker.chunks:
            chunk.worker, chunk.outcomes = None, DIED
        worker.chunks.clear()
        self.live.remove(worker)
        worker.stop()
        log.error("a Markdown parsing worker died (exit status %s: a crash in the C parser?); "
                  "its files are parsed again by markdown-it", worker.process.returncode)
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


def serve(chunks: Connection, answers: Connection) -> None:
    """A worker's life (after BOOT): chunks from its pipe, answers back, until the pipe
    ends. A thread reads the chunks and another sends the answers, so parsing never
    waits on either pipe while there is a chunk to parse."""
    options, crash_on, parse = chunks.recv()
    start_worker(options, crash_on)
    inbox: queue.SimpleQueue = queue.SimpleQueue()
    outbox: queue.SimpleQueue = queue.SimpleQueue()
    threading.Thread(target=receive, args=(chunks, inbox), daemon=True).start()
    sender = threading.Thread(target=deliver, args=(answers, outbox))
    sender.start()
    while (files := inbox.get()) is not None:
        try:
            outbox.put(parse(files))
        except Exception:  # not one file's error (those are in the outcomes): the chunk's
            log.exception("a parsing worker could not answer a chunk")
            outbox.put(FAILED)
    outbox.put(None)
    sender.join()


def receive(chunks: Connection, inbox: queue.SimpleQueue) -> None:
    try:
        while True:
            inbox.put(chunks.recv())
    except (EOFError, OSError):  # the pass is over (or gone)
        pass
    except Exception:  # a chunk that does not unpickle: the pipe cannot be trusted on
        log.exception("a parsing worker could not read a chunk")
    inbox.put(None)


def deliver(answers: Connection, outbox: queue.SimpleQueue) -> None:
    while (answer := outbox.get()) is not None:
        try:
            answers.send(answer)
        except (OSError, ValueError):  # the pass is gone
            return
        except Exception:  # an answer that does not pickle: the chunk goes back whole
            log.exception("a parsing worker could not send its answer")
            answers.send(FAILED)


def start_worker(options: ParseOptions, crash_on: str | None) -> None:
    global OPTIONS, CRASH_ON
    # Ctrl-C reaches the whole process group: the pass's process decides, and stops us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    OPTIONS, CRASH_ON = options, crash_on
    # What is imported now stays: the collector need not walk it again and again.
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
