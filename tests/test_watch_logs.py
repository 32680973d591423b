"""The inbox watch (events, and polling when events fail) and the daemon's log lines."""

from __future__ import annotations

import asyncio
import io
import json
import logging

from watchfiles import Change

from publisher.ops.logs import CHATTY, configure_logging
from publisher.schedule.watch import wanted, watch_inbox

PATIENCE = 30
ACT_AGAIN_SECONDS = 1.0  # a batch is handed on after 0.2 s quiet (watch.QUIET_MS)


async def changes_seen(inbox, act, mode="events", poll_seconds=0.05) -> list[set]:
    """Run the watch, do `act` until a call arrives, and the paths of its calls.

    Nothing says when the watch is ready, so instead of sleeping and hoping it is, the
    change is made again (a new modification) whenever a while passes without a call."""
    stop, seen = asyncio.Event(), asyncio.Event()
    calls = []

    def changed(paths) -> None:
        calls.append(paths)
        seen.set()

    task = asyncio.create_task(watch_inbox(inbox, changed, stop, mode=mode,
                                           poll_seconds=poll_seconds))
    await asyncio.sleep(0)  # one turn of the loop: the watch task opens its watch
    for _ in range(PATIENCE):
        await asyncio.to_thread(act)
        try:
            await asyncio.wait_for(seen.wait(), ACT_AGAIN_SECONDS)
            break
        except TimeoutError:
            continue
    stop.set()
    await asyncio.wait_for(task, PATIENCE)
    assert seen.is_set(), f"the watch never reported the change ({PATIENCE} tries)"
    return calls


def named(calls: list[set], path) -> bool:
    """The watch named this path (so ingest looks at it alone)."""
    return any(path in paths for paths in calls)


def test_file_events_report_a_new_file(tmp_path):
    assert named(asyncio.run(changes_seen(
        tmp_path, lambda: (tmp_path / "a.txt").write_text("Title\n\nBody.\n"))),
        tmp_path / "a.txt")


def test_polling_reports_a_new_file(tmp_path):
    assert named(asyncio.run(changes_seen(
        tmp_path, lambda: (tmp_path / "a.txt").write_text("Title\n\nBody.\n"),
        mode="poll")), tmp_path / "a.txt")


def test_when_events_fail_the_watch_polls(tmp_path, caplog):
    inbox = tmp_path / "not-yet"  # watching a missing folder fails at once

    def create() -> None:
        inbox.mkdir(exist_ok=True)
        (inbox / "a.txt").write_text("Title\n\nBody.\n")

    caplog.set_level(logging.INFO, logger="publisher.schedule.watch")
    assert named(asyncio.run(changes_seen(inbox, create)), inbox / "a.txt")
    messages = [record.getMessage() for record in caplog.records]
    assert any(m.startswith(f"file events unavailable for {inbox}") for m in messages)
    assert any(m.startswith(f"polling {inbox} every") for m in messages)


def test_only_changes_worth_an_ingest_pass(tmp_path):
    keep = wanted(tmp_path)
    assert keep(Change.added, str(tmp_path / "world" / "a.txt"))
    assert keep(Change.modified, str(tmp_path / "a.md"))
    assert not keep(Change.deleted, str(tmp_path / "a.txt"))
    assert not keep(Change.added, str(tmp_path / "quarantine" / "a.txt.error"))
    assert not keep(Change.added, str(tmp_path / ".a.txt"))
    assert not keep(Change.added, str(tmp_path / "a.txt~"))
    assert not keep(Change.added, "/elsewhere/a.txt")


def log_lines(fmt: str) -> list[str]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level, {n: logging.getLogger(n).level for n in CHATTY}
    out = io.StringIO()
    configure_logging(fmt, logging.INFO, stream=out)
    try:
        log = logging.getLogger("publisher.test")
        log.info("ingest: %d new", 2, extra={"event": "stage", "stage": "ingest"})
        try:
            raise ValueError("bad\nthing")
        except ValueError:
            log.exception("stage failed")
        logging.getLogger("apscheduler.scheduler").info("Added job")  # chatter: dropped
    finally:
        root.handlers[:], level, chatty = saved
        root.setLevel(level)
        for name, level in chatty.items():
            logging.getLogger(name).setLevel(level)
    return out.getvalue().splitlines()


def test_json_logs_are_one_object_per_event():
    first, second = (json.loads(line) for line in log_lines("json"))
    assert first["msg"] == "ingest: 2 new" and first["level"] == "INFO"
    assert first["logger"] == "publisher.test" and first["ts"].endswith("Z")
    assert (first["event"], first["stage"]) == ("stage", "ingest")
    assert second["msg"] == "stage failed" and "ValueError: bad\nthing" in second["exc"]


def test_text_logs_are_one_line_per_event():
    first, second = log_lines("text")
    assert first.endswith(" INFO publisher.test: ingest: 2 new")
    assert " ERROR publisher.test: stage failed | Traceback" in second
    assert "ValueError: bad | thing" in second


def test_a_quarantined_file_that_grows_is_worth_an_ingest_pass(tmp_path):
    """A file quarantined half-written grows in quarantine/ as its writer goes on; the
    daemon notices it (events or polling) so ingest can put it back and read it."""
    from publisher.schedule.watch import snapshot

    keep = wanted(tmp_path)
    assert keep(Change.modified, str(tmp_path / "quarantine" / "late.txt"))
    assert not keep(Change.modified, str(tmp_path / "quarantine" / "late.txt.error"))
    (tmp_path / "quarantine").mkdir()
    late = tmp_path / "quarantine" / "late.txt"
    late.write_text("Late\n")
    before = snapshot(tmp_path)
    late.write_text("Late\n\nThe paragraph that came after.\n")
    assert snapshot(tmp_path) != before
