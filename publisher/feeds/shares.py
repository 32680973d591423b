"""Feeds stage, shares: a long pass of a build split between this process and forked ones.

A full build renders 2,000 archive pages and 100,000 article pages, work that is all
Python (one core) and file writes; with a second core, forked children share it with
this process. The work is cut into contiguous runs of about equal weight, several per
process, and each process takes the next run not yet taken until none are left: on a
shared machine one process is often slowed down, and fixed halves would leave the other
waiting for it. A child inherits the build as it stands (settings, templates, keys;
nothing is pickled on the way in), opens its own database connections, writes its
files, and sends back what it wrote: the manifest records, the paths written, the count
left unchanged. The parent folds those into its Output, so the manifest and the report
are the same as a one-process build's.

A build forks only where it pays and is safe: the platform forks, the pass is long
(`Build.min_share` items a process at least), more than one core is usable, [feeds]
processes allows it, and this process runs a single thread (the daemon runs stages in
worker threads, and forking a threaded process can inherit a lock some other thread
held: there, passes run here).

A child never outlives this process: on Linux the kernel kills it when its parent dies
(PR_SET_PDEATHSIG), and it closes every pipe end but its own sender, so a write to a
parent that is gone fails instead of blocking for good. (The run lock's descriptor is
dropped at the fork by publisher.schedule.lock.)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import signal
import threading
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from publisher.feeds.output import Output, OutputShare

if TYPE_CHECKING:
    from publisher.feeds.build import Build

log = logging.getLogger(__name__)

T = TypeVar("T")


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def share_count(build: Build, items: int) -> int:
    """How many processes this pass runs in: 1 unless forking pays and is safe."""
    wanted = min(build.processes, usable_cores(), items // max(build.min_share, 1))
    if wanted < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    if threading.active_count() > 1:
        log.debug("one process: this process runs other threads")
        return 1
    return wanted


# Runs of work per process: enough that a slowed process holds up the others by little,
# few enough that each run is long next to the cost of taking it.
RUNS_PER_PROCESS = 8


def in_shares(build: Build, items: Sequence[T], work: Callable[[Build, Sequence[T]], None],
              weight: Callable[[T], int] = lambda _item: 1,
              meanwhile: Callable[[Build], None] | None = None) -> int:
    """work(build, run) for contiguous runs of the items, shared between this process
    and forked children. `meanwhile(build)`, when given, runs in this process first,
    while the children start on the runs. Returns the number of processes used."""
    total = sum(map(weight, items))
    count = share_count(build, total)
    if count == 1:
        if meanwhile:
            meanwhile(build)
        if items:
            work(build, items)
        return 1
    context = multiprocessing.get_context("fork")
    runs = [run for run in cut(items, weight, total, count * RUNS_PER_PROCESS) if run]
    taken = context.Value("i", 0)  # the next run to take, shared by every process

    def take_runs(build: Build) -> None:
        while True:
            with taken.get_lock():
                index = taken.value
                taken.value += 1
            if index >= len(runs):
                return
            work(build, runs[index])

    children: list = []
    parent = os.getpid()
    for _ in range(count - 1):
        receiver, sender = context.Pipe(duplex=False)
        others = [r for _c, r in children] + [receiver]  # read ends the child inherits
        child = context.Process(target=run_share,
                                args=(build, take_runs, sender, others, parent),
                                daemon=True)
        child.start()
        sender.close()
        children.append((child, receiver))
    try:
        if meanwhile:
            meanwhile(build)
        take_runs(build)
    finally:
        results = [collect(child, receiver) for child, receiver in children]
    for result in results:
        if isinstance(result, BaseException):
            raise result
        build.output.absorb(result)
    log.debug("%d items in %d processes", len(items), count)
    return count


def cut(items: Sequence[T], weight: Callable[[T], int], total: int,
        count: int) -> list[Sequence[T]]:
    """`count` contiguous runs of `items` of about total/count weight each."""
    shares, start, done = [], 0, 0
    for index, item in enumerate(items):
        done += weight(item)
        if done >= total * (len(shares) + 1) / count and len(shares) < count - 1:
            shares.append(items[start:index + 1])
            start = index + 1
    shares.append(items[start:])
    return shares


def die_with_parent(parent: int) -> None:
    """Ask the kernel for SIGKILL when the parent dies (Linux); if it died already
    (before the request took effect), go now."""
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        try:
            libc = ctypes.CDLL(libc_name, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # not Linux: the closed pipes still help
            log.debug("no PR_SET_PDEATHSIG here", exc_info=True)
    if os.getppid() != parent:
        os._exit(1)


PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def run_share(build: Build, work: Callable[[Build], None], sender, inherited: list,
              parent: int) -> None:
    """In the child: its work on fresh connections, and what it wrote, sent back."""
    die_with_parent(parent)
    for receiver in inherited:  # only the parent reads; a read end here would keep
        receiver.close()        # a write to a dead parent blocking instead of failing
    build.store.forked()
    build.output = Output.share_of(build.output)
    try:
        work(build)
        result: OutputShare | BaseException = build.output.share()
    except BaseException as exc:
        result = exc
    finally:
        build.store.close()  # this process's own connections
    try:
        sender.send(result)
    except Exception:  # an exception that does not pickle: send its text instead
        sender.send(RuntimeError("".join(traceback.format_exception(result))))
    sender.close()


def collect(child, receiver) -> OutputShare | BaseException:
    try:
        result = receiver.recv()
    except EOFError:  # the child died before it could answer
        result = None
    receiver.close()
    child.join()
    if result is None:
        return RuntimeError(f"a forked build process died (exit code {child.exitcode})")
    return result
