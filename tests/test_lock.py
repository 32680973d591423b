"""The run lock: one pass at a time, across processes, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from publisher.schedule.lock import AdvisoryLock, Busy, FileLock, run_lock
from publisher.store import open_store
from tests.support.daemon import wait_until


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


FORKED_HOLDER = """
import os, sys, time
from pathlib import Path
from publisher.feeds import shares, start_build
from publisher.instance import Instance
from publisher.schedule.lock import run_lock

shares.usable_cores = lambda: 2  # fork even on a one-core runner
instance = Instance(Path(sys.argv[1]))
lock = run_lock(instance.store.engine)
lock.acquire()
build = start_build(instance.settings, instance.store)
build.processes, build.min_share = 2, 1
parent = os.getpid()

def work(build, run):
    if os.getpid() != parent:  # a forked child: say so, then take its time
        print(os.getpid(), flush=True)
        time.sleep(120)
    else:  # leave runs for the child to take
        time.sleep(1)

shares.in_shares(build, list(range(40)), work)
"""


def gone(pid: int) -> bool:
    """True once `pid` has exited (a zombie waiting for its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


@pytest.mark.slow  # a holder process and a `publisher run` process
def test_a_run_killed_mid_fork_leaves_no_child_holding_the_lock(instance, store):
    """SIGKILL of a run whose build forked: its children die with it, and the next run
    proceeds at once instead of finding the lock held by an orphan."""
    holder = subprocess.Popen([sys.executable, "-c", FORKED_HOLDER, str(instance)],
                              stdout=subprocess.PIPE, text=True)
    child = int(holder.stdout.readline())
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    try:
        wait_until(lambda: gone(child), "the forked child to die with its parent")
        done = publisher("-C", instance, "run")
    finally:
        if not gone(child):
            os.kill(child, signal.SIGKILL)
    assert done.returncode == 0, done.stderr
    assert "another run is active" not in done.stdout
    assert "ingest: 0 new" in done.stdout


def test_a_forked_child_never_holds_the_run_lock(tmp_path):
    """Even alive, a forked child holds no reference to the lock: when its parent's
    descriptor closes (as at its death, with no unlock), the next run gets in."""
    lock = FileLock(tmp_path / "publisher.db.lock")
    lock.acquire()
    reader, writer = os.pipe()
    started, ready = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: say it runs, then wait until told to go
        os.close(writer)
        os.write(ready, b"r")
        os.read(reader, 1)
        os._exit(0)
    os.close(reader)
    os.close(ready)
    assert os.read(started, 1) == b"r"
    os.close(started)
    try:
        os.close(lock.fd)  # the parent's end, no unlock: what its death does
        lock.fd = None
        second = FileLock(lock.path)
        second.acquire()  # Busy if the child still held the parent's descriptor
        second.release()
    finally:
        os.close(writer)
        os.waitpid(pid, 0)


@pytest.mark.slow  # two `publisher ingest` processes
def test_ingest_takes_the_run_lock(instance, store):
    """`publisher ingest` beside a run never plans the same files as new: it waits its
    turn like a second run does (says so, stores nothing, exits 0)."""
    (instance / "articles" / "a.txt").write_text("Title\n\nBody.\n")
    lock = run_lock(store.engine)
    lock.acquire()
    try:
        busy = publisher("-C", instance, "ingest")
    finally:
        lock.release()
    assert busy.returncode == 0, busy.stderr
    assert busy.stdout.startswith(f"another run is active (pid {os.getpid()} on ")
    assert store.articles.count() == 0
    done = publisher("-C", instance, "ingest")
    assert done.stdout.strip() == "ingest: 1 new, 0 updated, 0 unchanged, 0 quarantined"
