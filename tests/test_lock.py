"""The run lock: one pass at a time, across processes, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from publisher.schedule.lock import AdvisoryLock, Busy, FileLock, run_lock
from publisher.store import open_store


def publisher(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "publisher", *map(str, args)],
                          capture_output=True, text=True, timeout=60, cwd=cwd)


@pytest.mark.slow  # a `publisher run` process twice
def test_a_second_run_says_who_holds_the_lock_and_does_nothing(instance, store):
    (instance / "articles" / "a.txt").write_text("Title\n\nBody.\n")
    lock = run_lock(store.engine)
    lock.acquire()
    try:
        busy = publisher("-C", instance, "run")
    finally:
        lock.release()
    assert busy.returncode == 0, busy.stderr
    assert busy.stdout.startswith(f"another run is active (pid {os.getpid()} on ")
    assert busy.stdout.rstrip().endswith("); nothing done")
    assert store.articles.count() == 0

    done = publisher("-C", instance, "run")
    assert done.returncode == 0, done.stderr
    assert "ingest: 1 new" in done.stdout
    assert store.articles.count() == 1


@pytest.mark.slow  # a Python process that takes the lock, then is killed
def test_the_lock_dies_with_its_process(instance, store):
    """A run killed with SIGKILL leaves nothing behind that blocks the next one."""
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        from publisher.schedule.lock import run_lock
        from publisher.store import open_store
        lock = run_lock(open_store({store.engine.url.render_as_string(False)!r}).engine)
        lock.acquire()
        print("held", flush=True)
        sys.stdin.read()  # holds the lock until killed (or the test's end closes stdin)
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(Busy, match=f"pid {holder.pid} on "):
            run_lock(store.engine).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    # PostgreSQL drops a dead session's advisory lock once its backend sees the socket
    # close, a moment after the kill: wait for that, bounded (Busy for good would fail).
    lock = run_lock(store.engine)
    deadline = time.monotonic() + 30  # clock-ok: bounds the wait
    while True:
        try:
            lock.acquire()
            break
        except Busy:
            if time.monotonic() > deadline:  # clock-ok
                raise
            time.sleep(0.1)  # polls until PostgreSQL lets go of the lock
    lock.release()


def test_release_lets_the_next_run_in(database_url):
    store = open_store(database_url)
    try:
        first, second = run_lock(store.engine), run_lock(store.engine)
        first.acquire()
        with pytest.raises(Busy):
            second.acquire()
        first.release()
        second.acquire()
        second.release()
        first.release()  # releasing twice is harmless
    finally:
        store.close()


def test_the_lock_fits_the_backend(database_url, tmp_path):
    store = open_store(database_url)
    try:
        lock = run_lock(store.engine)
        if database_url.startswith("sqlite"):
            assert isinstance(lock, FileLock)
            assert lock.path == tmp_path / "publisher.db.lock"
        else:
            assert isinstance(lock, AdvisoryLock)
    finally:
        store.close()


def test_an_empty_note_still_reads_as_busy(tmp_path):
    first, second = FileLock(tmp_path / "x.lock"), FileLock(tmp_path / "x.lock")
    first.acquire()
    os.truncate(first.path, 0)  # the instant between taking the lock and writing the note
    with pytest.raises(Busy) as caught:
        second.acquire()
    assert str(caught.value) == "another run is active"
    first.release()
    assert first.path.read_text() == ""
