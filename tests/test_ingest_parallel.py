"""Parsing on every core (publisher/ingest/parallel.py): a pass with many files parses
them in worker processes and stores exactly what a serial pass stores; a bad file is
still quarantined alone; a worker that dies costs time, never the pass or a file; and
the workers are stopped however the pass ends."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from publisher.config import load_settings
from publisher.ingest import inbox as inbox_module
from publisher.ingest import parallel
from publisher.ingest.inbox import ingest
from publisher.ingest.parse import options_of
from publisher.instance import init_instance
from publisher.store import open_store
from tests.support import NOW
from tests.support.inbox import dump, stored_output, write

BAD = {"world/no-title.md": "---\nauthor: X\n---\nA body.\n",
       "world/binary.txt": b"\x00\x01\x02 binary",
       "culture/no-front-matter.md": "Just text.\n"}


def markdown(n: int) -> str:
    # Some bodies in the class cmark-gfm answers, some markdown-it must take (a table, raw
    # HTML, non-ASCII beside emphasis), so both engines are used and must agree.
    body = [f"Paragraph *one* of story {n} with a [link](https://example.org/{n}).",
            "Second paragraph with `code` and **strong** text.\n\n> A quote."]
    if n % 3 == 0:
        body.append("| a | b |\n|---|---|\n| 1 | 2 |")
    if n % 4 == 0:
        body.append("<figure>raw <em>HTML</em></figure>\n\nCafé *é*")
    return (f"---\ntitle: Story {n}\ndate: 2026-11-{1 + n % 28:02d}T09:30:00+01:00\n"
            f"author: Reporter {n % 5}\n---\n" + "\n\n".join(body) + "\n")


def fill(settings, count: int = 60) -> None:
    for n in range(count):
        write(settings, f"{('world', 'culture', 'science')[n % 3]}/story-{n:03d}.md",
              markdown(n))
    write(settings, "science/dump.txt", dump("Dumped one", "Dumped two"))
    for name, content in BAD.items():
        write(settings, name, content)


def outcome(settings, store) -> tuple:
    folder = settings.path("articles") / "quarantine"
    quarantined = sorted((p.relative_to(folder).as_posix(), p.read_text().splitlines()[0])
                         for p in folder.rglob("*.error"))
    return stored_output(store), quarantined


@pytest.fixture
def many(monkeypatch):
    """Workers for any pass with two files or more, three files a chunk."""
    monkeypatch.setattr(parallel, "PARALLEL_FILES", 2)
    monkeypatch.setattr(parallel, "CHUNK_FILES", 3)


@pytest.fixture
def pools(monkeypatch):
    """The worker processes the passes start (parallel.Worker), in order."""
    started = []
    real = parallel.Parsing.spawn

    def spawn(self):
        worker = real(self)
        started.append(worker)
        return worker

    monkeypatch.setattr(parallel.Parsing, "spawn", spawn)
    return started


def serial_outcome(tmp_path) -> tuple:
    """What a serial pass makes of the same inbox, in an instance of its own."""
    folder = tmp_path / "serial"
    init_instance(folder)
    settings = load_settings(folder, environ={})  # its own SQLite store
    fill(settings)
    store = open_store(settings.database_url)
    try:
        with parallel_off():
            report = ingest(settings, store, NOW)
        return (report.new, report.quarantined), outcome(settings, store)
    finally:
        store.close()


@contextmanager
def parallel_off():
    saved = parallel.PARALLEL_FILES, parallel.PARALLEL_BYTES
    parallel.PARALLEL_FILES = parallel.PARALLEL_BYTES = 10**12
    try:
        yield
    finally:
        parallel.PARALLEL_FILES, parallel.PARALLEL_BYTES = saved


def test_a_parallel_pass_stores_what_a_serial_pass_stores(settings, store, many, pools,
                                                          tmp_path, monkeypatch):
    counts, expected = serial_outcome(tmp_path)
    assert not pools and counts[1] == len(BAD)
    fill(settings)
    report = ingest(settings, store, NOW)
    assert pools, "the pass started no workers"
    assert (report.new, report.quarantined) == counts
    assert outcome(settings, store) == expected


def test_a_worker_that_dies_costs_no_file(settings, store, many, pools, tmp_path,
                                          monkeypatch, caplog):
    counts, expected = serial_outcome(tmp_path)
    fill(settings)
    monkeypatch.setattr(parallel, "CRASH_ON", "story-010.md")
    assert_one_death_costs_no_file(settings, store, pools, caplog, counts, expected)


def test_a_worker_killed_between_chunks_costs_no_file(settings, store, many, pools,
                                                      tmp_path, monkeypatch, caplog):
    """As the OOM killer would: the worker is gone before its chunk is sent to it."""
    counts, expected = serial_outcome(tmp_path)
    fill(settings)
    spawn = parallel.Parsing.spawn

    def spawn_one_killed(self):
        worker = spawn(self)
        if len(pools) == 1:
            os.kill(worker.process.pid, signal.SIGKILL)
            worker.process.wait()
        return worker

    monkeypatch.setattr(parallel.Parsing, "spawn", spawn_one_killed)
    assert_one_death_costs_no_file(settings, store, pools, caplog, counts, expected)


def assert_one_death_costs_no_file(settings, store, pools, caplog, counts, expected):
    """A pass in which one worker dies: seen once, one worker started in its place, and
    the store and quarantine a serial pass leaves."""
    with caplog.at_level(logging.ERROR, logger=parallel.__name__):
        report = ingest(settings, store, NOW)
    assert caplog.text.count("worker died") == 1
    # The workers, and the one that took the place of the one that died.
    assert len(pools) == parallel.worker_count() + 1
    assert (report.new, report.quarantined) == counts
    assert outcome(settings, store) == expected


def test_workers_that_keep_dying_leave_the_pass_to_this_process(settings, store, many,
                                                                 pools, tmp_path,
                                                                 monkeypatch):
    counts, expected = serial_outcome(tmp_path)
    fill(settings)
    monkeypatch.setattr(parallel, "CRASH_ON", "story-")  # every chunk kills its worker
    report = ingest(settings, store, NOW)
    assert len(pools) == parallel.worker_count() + parallel.MAX_RESTARTS
    assert all(worker.process.poll() is not None for worker in pools)
    assert (report.new, report.quarantined) == counts
    assert outcome(settings, store) == expected


def test_a_pass_in_a_thread_of_a_threaded_process_uses_the_workers(settings, store, many,
                                                                    pools, tmp_path):
    """As in the daemon: the pass runs in a scheduler's thread, beside other threads."""
    counts, expected = serial_outcome(tmp_path)
    fill(settings)
    stop = threading.Event()
    busy = threading.Thread(target=stop.wait, daemon=True)
    busy.start()
    result = []
    worker = threading.Thread(target=lambda: result.append(ingest(settings, store, NOW)))
    worker.start()
    worker.join(timeout=300)
    stop.set()
    [report] = result
    assert pools and (report.new, report.quarantined) == counts
    assert outcome(settings, store) == expected


def failing_chunk(files):
    """Run in a worker in place of parallel.parse_chunk: an answer that never comes."""
    raise ValueError("this chunk cannot be answered")


def test_a_chunk_whose_answer_fails_is_parsed_here(settings, store, many, pools, tmp_path,
                                                   monkeypatch, caplog):
    counts, expected = serial_outcome(tmp_path)
    fill(settings)
    monkeypatch.setattr(parallel, "parse_chunk", failing_chunk)
    report = ingest(settings, store, NOW)
    assert "came back from a worker broken" in caplog.text
    assert len(pools) == parallel.worker_count()  # a failed answer is not a death
    assert (report.new, report.quarantined) == counts
    assert outcome(settings, store) == expected


def test_files_touched_not_changed_start_no_workers(settings, store, many, pools):
    fill(settings)
    first = ingest(settings, store, NOW)
    assert len(pools) == parallel.worker_count()
    for path in settings.path("articles").rglob("story-*.md"):
        os.utime(path, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    pools.clear()
    again = ingest(settings, store, NOW)  # every story read and hashed again: the same
    assert (again.new, again.updated, again.unchanged) == (0, 0, first.new + first.unchanged)
    assert pools == []


def test_few_files_are_parsed_here_without_workers(settings, store, pools):
    write(settings, "world/one.md", markdown(1))
    assert ingest(settings, store, NOW).new == 1
    assert pools == []


@pytest.mark.parametrize("failure", [RuntimeError, KeyboardInterrupt])
def test_the_workers_are_stopped_however_the_pass_ends(settings, store, many, pools,
                                                       monkeypatch, failure):
    fill(settings)
    real = inbox_module.read_file
    reads = []

    def read_file(path, *args):
        reads.append(path)
        if len(reads) == 20:
            raise failure("stopped")
        return real(path, *args)

    monkeypatch.setattr(inbox_module, "read_file", read_file)
    with pytest.raises(failure):
        ingest(settings, store, NOW)
    assert len(pools) == parallel.worker_count()
    assert all(worker.process.poll() is not None for worker in pools)


def test_the_c_engine_failing_in_a_worker_is_the_files_error(settings, monkeypatch):
    """Whatever cmark-gfm's binding raises on a stranger's body is that file's reason."""
    from publisher.ingest import cmark

    def broken(body):
        if "poison" in body:
            raise MemoryError("cmark could not allocate")
        return real(body)

    real = cmark.render
    monkeypatch.setattr(cmark, "render", broken)
    monkeypatch.setattr(parallel, "OPTIONS", options_of(settings))
    outcomes = parallel.parse_chunk([("a.md", b"---\ntitle: A\n---\nA poison body.\n"),
                                     ("b.md", markdown(2).encode())])
    assert "cmark could not allocate" in outcomes[0]
    assert [article.title for article in outcomes[1]] == ["Story 2"]


SCRIPT = """
import sys
from pathlib import Path
from publisher.config import load_settings
from publisher.ingest import parallel
from publisher.ingest.inbox import ingest
from publisher.store import open_store
from tests.support import NOW

# No `if __name__ == "__main__":` on purpose: a worker that ran this module again
# would count itself here (and start a pass of its own).
with open(sys.argv[2], "a") as runs:
    runs.write("ran\\n")
parallel.PARALLEL_FILES, parallel.CHUNK_FILES = 2, 3
started = []
spawn = parallel.Parsing.spawn
parallel.Parsing.spawn = lambda self: started.append(1) or spawn(self)
settings = load_settings(Path(sys.argv[1]), environ={})
store = open_store(settings.database_url)
report = ingest(settings, store, NOW)
print(report.new, report.quarantined, len(started))
"""


def test_the_workers_do_not_run_the_main_module_again(tmp_path):
    """Under the `publisher` command the main module is the whole CLI: a worker that
    imported it again (multiprocessing's spawn and forkserver do) paid a second before
    its first file; a script without a __main__ guard ran again in every worker."""
    init_instance(tmp_path / "site")
    settings = load_settings(tmp_path / "site", environ={})  # the script's SQLite store
    fill(settings)
    script, runs = tmp_path / "script.py", tmp_path / "runs.txt"
    script.write_text(SCRIPT, encoding="utf-8")
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, str(script), str(settings.instance), str(runs)],
                         cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    new, quarantined, workers = map(int, out.stdout.split())
    assert (new, quarantined) == (62, len(BAD)) and workers == parallel.worker_count()
    assert runs.read_text().splitlines() == ["ran"]
    assert "worker died" not in out.stderr
