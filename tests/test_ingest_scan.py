"""The inbox scan costs what changed: files unchanged since they were read are neither
read nor hashed again, by their stat (size, mtime_ns, ctime_ns, inode; the rule is in
publisher/ingest/scan.py); what did change is found, even a same-size rewrite in place
with its mtime set back; the daemon's named paths are looked at alone."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from publisher.ingest import inbox as ingest_module
from publisher.ingest.inbox import ingest
from publisher.ingest.scan import MARKER, changed_entries, scan_clock
from tests.support import NOW
from tests.support.inbox import GOLDEN, md, settle, stored_output
from tests.support.inbox import write_under as write


def test_unchanged_files_are_not_read_again(settings, store, inbox, reads):
    files = [write(inbox, f"s{i % 3}/a{i}.md", md(f"Story {i}")) for i in range(12)]
    settle(inbox, *files)
    first = ingest(settings, store, NOW)
    assert (first.new, len(reads)) == (12, 12)
    reads.clear()
    again = ingest(settings, store, NOW)
    assert (again.new, again.updated, again.unchanged) == (0, 0, 12)
    assert reads == []  # nothing opened, nothing hashed
    assert (inbox / MARKER).exists()  # the file system's clock, hidden from the scan


def test_a_same_size_rewrite_in_place_with_its_mtime_set_back_is_found(settings, store,
                                                                        inbox, reads):
    path = write(inbox, "a.md", md("Harbour", "Body one."))
    other = write(inbox, "b.md", md("Bridge"))
    settle(inbox, path, other)
    ingest(settings, store, NOW)
    before = path.stat()
    with path.open("r+b") as handle:  # same inode, same size, new bytes
        handle.write(md("Harbour", "Body two.").encode())
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == \
        (before.st_size, before.st_mtime_ns, before.st_ino)  # only ctime tells
    settle(inbox, path)
    reads.clear()
    report = ingest(settings, store, NOW)
    assert (report.updated, report.unchanged) == (1, 1) and reads == ["a.md"]
    assert {a.title: a.paragraphs for a in store.articles.latest(10)}["Harbour"] == \
        ("Body two.",)


def test_a_file_dated_days_ahead_is_not_read_on_every_pass(settings, store, inbox, reads):
    """An mtime set in the future (a skewed clock, `touch -d tomorrow`) is no same-tick
    race: once read, the file is skipped like any other (only its ctime, which nobody
    can set, and an mtime in the pass's own tick make a file be read again)."""
    path = write(inbox, "a.md", md("Harbour"))
    ahead = path.stat().st_mtime_ns + 3 * 86_400 * 10**9
    os.utime(path, ns=(ahead, ahead))
    settle(inbox, path)
    ingest(settings, store, NOW)
    reads.clear()
    ingest(settings, store, NOW)
    assert reads == []


def test_a_touched_file_is_read_once_more_but_not_parsed(settings, store, inbox, reads,
                                                        monkeypatch):
    path = write(inbox, "a.md", md("Harbour"))
    settle(inbox, path)
    ingest(settings, store, NOW)
    os.utime(path)  # new times, same bytes
    settle(inbox, path)
    parsed = []
    real = ingest_module.parse_bytes
    monkeypatch.setattr(ingest_module, "parse_bytes",
                        lambda *args: parsed.append(args[1]) or real(*args))
    reads.clear()
    report = ingest(settings, store, NOW)
    assert (report.new, report.updated, report.unchanged) == (0, 0, 1)
    assert reads == ["a.md"] and parsed == []  # hashed, found the same, not parsed
    reads.clear()
    ingest(settings, store, NOW)
    assert reads == []  # its new stat was recorded


def test_a_file_changed_in_the_tick_the_pass_began_is_read_again(settings, store, inbox,
                                                                 reads, monkeypatch):
    path = write(inbox, "a.md", md("Harbour"))
    # The pass's clock no later than the file's ctime: it may change again in that tick.
    monkeypatch.setattr(ingest_module, "scan_clock", lambda inbox: path.stat().st_ctime_ns)
    ingest(settings, store, NOW)
    reads.clear()
    ingest(settings, store, NOW)
    assert reads == ["a.md"]  # not trusted, so read again


def test_the_scan_clock_is_the_file_systems(inbox):
    path = write(inbox, "a.md", md("Harbour"))
    settle(inbox, path)
    clock = scan_clock(inbox)
    assert clock is not None and clock > path.stat().st_ctime_ns
    assert (inbox / MARKER).stat().st_size == 0


def test_named_paths_are_looked_at_alone(settings, store, inbox, reads):
    a = write(inbox, "world/a.md", md("Harbour"))
    b = write(inbox, "world/b.md", md("Bridge"))
    settle(inbox, a, b)
    ingest(settings, store, NOW)
    a.write_text(md("Harbour", "Edited."), encoding="utf-8")
    b.write_text(md("Bridge", "Edited too."), encoding="utf-8")
    settle(inbox, a, b)
    reads.clear()
    report = ingest(settings, store, NOW, only={a})
    assert reads == ["world/a.md"] and report.updated == 1
    reads.clear()
    report = ingest(settings, store, NOW)  # a full pass still finds b
    assert reads == ["world/b.md"] and report.updated == 1


def test_a_folder_moved_in_is_looked_through(settings, store, inbox, reads):
    staging = inbox / ".staging"
    write(staging, "x.md", md("Comet"))
    write(staging, "deeper/y.md", md("Rail"))
    (staging).rename(inbox / "science")
    report = ingest(settings, store, NOW, only={inbox / "science"})
    assert report.new == 2 and sorted(reads) == ["science/deeper/y.md", "science/x.md"]
    assert {a.sections for a in store.articles.latest(10)} == {("science",),
                                                               ("science", "deeper")}


def test_named_paths_skip_hidden_gone_and_outside(settings, store, inbox, tmp_path, reads):
    write(inbox, ".hidden.md", md("Hidden"))
    report = ingest(settings, store, NOW, only={inbox / ".hidden.md", inbox / "gone.md",
                                                tmp_path / "elsewhere.md"})
    assert (report.new, report.quarantined, reads) == (0, 0, [])


def test_a_deleted_file_stores_nothing_and_coming_back_is_unchanged(settings, store, inbox,
                                                                     reads):
    path = write(inbox, "a.md", md("Harbour"))
    settle(inbox, path)
    ingest(settings, store, NOW)
    text = path.read_text(encoding="utf-8")
    path.unlink()
    report = ingest(settings, store, NOW)
    assert (report.new, report.updated, report.quarantined) == (0, 0, 0)
    assert store.articles.count() == 1  # deleting a file does not unpublish
    write(inbox, "a.md", text)  # back, as a new inode
    reads.clear()
    report = ingest(settings, store, NOW)
    assert (report.new, report.updated, report.unchanged) == (0, 0, 1)
    assert reads == ["a.md"]


def test_a_store_without_stats_reads_each_file_once_more(settings, store, inbox, reads):
    """A store from before version 9 has no stats: each file is read (not parsed) once."""
    path = write(inbox, "a.md", md("Harbour"))
    settle(inbox, path)
    ingest(settings, store, NOW)
    store.inbox_files.record_stats([("a.md", None)])
    reads.clear()
    assert ingest(settings, store, NOW).unchanged == 1 and reads == ["a.md"]
    reads.clear()
    ingest(settings, store, NOW)
    assert reads == []


def test_small_batches_store_what_one_batch_stores(settings, store, inbox, monkeypatch):
    """Lookups and writes are batched; where the batches fall changes nothing."""
    monkeypatch.setattr(ingest_module, "BATCH_ARTICLES", 2)
    import dataclasses
    settings = dataclasses.replace(
        settings, site=dataclasses.replace(settings.site, timezone="Europe/Lisbon"))
    shutil.rmtree(inbox)
    shutil.copytree(GOLDEN / "inbox", inbox)
    ingest(settings, store, NOW)
    expected = json.loads((GOLDEN / "expected.json").read_text(encoding="utf-8"))
    assert stored_output(store) == expected["stored"]


def test_a_moved_file_in_a_later_batch_keeps_its_article(settings, store, inbox,
                                                         monkeypatch):
    monkeypatch.setattr(ingest_module, "BATCH_ARTICLES", 1)
    for i in range(3):
        write(inbox, f"a{i}.md", md(f"Story {i}").replace("---\ntitle", f"---\nid: s{i}\ntitle"))
    ingest(settings, store, NOW)
    (inbox / "a1.md").rename(inbox / "z1.md")
    (inbox / "a2.md").write_text(md("Story 2", "Edited.").replace(
        "---\ntitle", "---\nid: s2\ntitle"), encoding="utf-8")
    report = ingest(settings, store, NOW)
    assert (report.new, report.updated) == (0, 1)
    assert store.articles.count() == 3  # the moved file's article found by its id
    assert store.articles.by_id("s2").paragraphs == ("Edited.",)


def test_the_same_id_in_two_files_of_one_batch_is_one_article(settings, store, inbox):
    """Two files with one `id:` in one batch: matched as they would be in two batches
    (the later file's text wins), never a failed pass."""
    write(inbox, "a.md", "---\nid: same\ntitle: First\n---\nBody one.\n")
    write(inbox, "b.md", "---\nid: same\ntitle: Second\n---\nBody two.\n")
    write(inbox, "c.md", md("Other"))
    report = ingest(settings, store, NOW)
    assert (report.new, report.updated, report.quarantined) == (2, 1, 0)
    assert store.articles.count() == 2
    assert store.articles.by_id("same").title == "Second"


def test_version_9_adds_the_stat_columns_to_an_older_store(tmp_path):
    """A store as version 6 left it (inbox_files without stats) upgrades; its files are
    read once more (not parsed) and then skipped."""
    from sqlalchemy import create_engine, inspect

    from publisher.store import open_store
    from publisher.store.migrate import MIGRATIONS, upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        upgrade(conn, [step for step in MIGRATIONS if step[0] <= 6])
        # Version 1 is this code's whole schema: take off what version 6 did not have.
        conn.exec_driver_sql("DROP INDEX ix_inbox_files_pending")
        for column in ("size", "mtime_ns", "ctime_ns", "inode"):
            conn.exec_driver_sql(f"ALTER TABLE inbox_files DROP COLUMN {column}")
        conn.exec_driver_sql("INSERT INTO inbox_files (path, sha256, articles, seen_at) "
                             "VALUES ('a.md', 'x', 1, '2026-11-24 12:00:00.000000')")
    engine.dispose()
    store = open_store(url)
    try:
        columns = {c["name"] for c in inspect(store.engine).get_columns("inbox_files")}
        assert {"size", "mtime_ns", "ctime_ns", "inode"} <= columns
        assert store.inbox_files.seen()["a.md"].stat is None
    finally:
        store.close()


def test_files_are_read_in_the_order_of_their_paths(tmp_path):
    """changed_entries sorts by the keys' parts as strings: the order sorted Paths have,
    where a plain string sort would differ ("a-b/c" before "a/b": "-" sorts before "/")."""
    keys = ["a/b.md", "a-b/c.md", "a.b/x.md", "a b/y.md", "a/b/c.md", "a/a.md", "b.md",
            "a0/z.md", "A/b.md", "ä/b.md", "a/b.md.txt"]
    entries = [(key, str(tmp_path / key), None) for key in keys]
    paths, unchanged = changed_entries(entries, {})
    assert paths == sorted(Path(path) for _key, path, _info in entries)
    assert unchanged == 0
