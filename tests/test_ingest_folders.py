"""The inbox scan lists only the folders that changed (publisher/ingest/scan.py): a folder
whose stat is the one recorded when it was listed is not listed again and its files are
not stat-ed; what a listing would find (new, deleted, renamed files, a rename over a
name, folders added, removed, renamed) is still found, and an edit in place, which moves
no folder, is found by the rotating re-check within ceil(files / N) passes, at once with
`ingest --rescan`. Real files throughout; the file system's own clock decides."""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
from pathlib import Path

import pytest

from publisher.ingest import inbox as ingest_module
from publisher.ingest.inbox import ingest
from publisher.ingest.scan import InboxScan
from tests.support import NOW
from tests.support.inbox import md, settle
from tests.support.inbox import write_under as write


def everything(inbox: Path) -> list[Path]:
    return [inbox, *inbox.rglob("*")]


def settled_twice(settings, store, inbox: Path) -> int:
    """Ingest, settle, and ingest again (the marker file the first pass made moved the
    top folder): the inbox read and recorded. The first pass's new articles."""
    settle(inbox, *everything(inbox))
    new = ingest(settings, store, NOW).new
    settle(inbox, *everything(inbox))
    ingest(settings, store, NOW)
    return new


def with_recheck(settings, count: int):
    return dataclasses.replace(settings, ingest=dataclasses.replace(
        settings.ingest, recheck_per_pass=count))


@pytest.fixture
def listed(monkeypatch) -> list[str]:
    """The folders a pass listed ("" is the inbox itself)."""
    keys: list[str] = []
    real = InboxScan.listed

    def counting(self, key, path, stat, top):
        keys.append(key)
        return real(self, key, path, stat, top)

    monkeypatch.setattr(InboxScan, "listed", counting)
    return keys


@pytest.fixture
def site(settings, store, inbox, reads, listed):
    """An inbox of 3 sections with 2 files each, read once and settled; no re-check
    (so whatever a pass finds, the folder rule found it)."""
    for section in ("world", "science", "culture"):
        for n in range(2):
            write(inbox, f"{section}/{n}.md", md(f"{section} {n}"))
    quiet = with_recheck(settings, 0)
    assert settled_twice(quiet, store, inbox) == 6
    reads.clear()
    listed.clear()
    return quiet


def test_a_pass_in_an_unchanged_inbox_lists_no_folder_and_stats_no_file(
        site, store, inbox, reads, listed, monkeypatch):
    stats: list[str] = []
    real = os.lstat
    monkeypatch.setattr(os, "lstat", lambda path, **kw: stats.append(str(path)) or
                        real(path, **kw))
    report = ingest(site, store, NOW)
    assert (report.new, report.updated, report.unchanged) == (0, 0, 6)
    assert listed == [] and reads == []
    assert all(not Path(path).is_file() for path in stats)  # folders only


def test_a_new_file_lists_its_folder_alone(site, store, inbox, reads, listed):
    write(inbox, "science/new.md", md("Comet"))
    report = ingest(site, store, NOW)
    assert (report.new, report.unchanged) == (1, 6)
    assert listed == ["science"] and reads == ["science/new.md"]


def test_a_deletion_and_a_rename_are_found(site, store, inbox, reads, listed):
    (inbox / "world/0.md").unlink()
    (inbox / "culture/1.md").rename(inbox / "culture/renamed.md")
    report = ingest(site, store, NOW)
    # A file's name is part of its articles' ids (unless it gives an `id:`): the renamed
    # one is read as new, as a full listing reads it.
    assert (report.new, report.updated, report.quarantined) == (1, 0, 0)
    assert sorted(listed) == ["culture", "world"] and reads == ["culture/renamed.md"]
    assert store.articles.count() == 7  # deleting a file does not unpublish


def test_an_atomic_save_over_a_name_is_found(site, store, inbox, reads, listed):
    """An editor's atomic save: a new file renamed over the old name. Same name, new
    inode: the changed folder's entry is compared by its stat, inode included."""
    target = inbox / "world/1.md"
    before = target.stat()
    temp = write(inbox, "world/.1.md.swp", md("world 1", "Saved atomically."))
    os.utime(temp, ns=(before.st_atime_ns, before.st_mtime_ns))
    temp.rename(target)
    assert target.stat().st_ino != before.st_ino
    report = ingest(site, store, NOW)
    assert report.updated == 1 and listed == ["world"] and reads == ["world/1.md"]
    assert {a.title: a.paragraphs for a in store.articles.latest(10)}["world 1"] == \
        ("Saved atomically.",)


def test_a_file_deleted_and_made_again_under_its_inode_is_found(site, store, inbox, reads,
                                                                listed):
    """ext4 gives a freed inode number to the next file made: `rm a.md; write a.md` (git
    checkout does it) may leave name and inode as they were; the size and times tell."""
    target = inbox / "science/0.md"
    target.unlink()
    write(inbox, "science/0.md", md("science 0", "Made again."))
    report = ingest(site, store, NOW)
    assert report.updated == 1 and listed == ["science"] and reads == ["science/0.md"]


def test_a_folder_added_removed_and_renamed(site, store, inbox, reads, listed):
    write(inbox, "sport/deeper/a.md", md("Match"))
    shutil.rmtree(inbox / "culture")
    (inbox / "science").rename(inbox / "space")
    report = ingest(site, store, NOW)
    assert report.new == 3  # the renamed folder's files too: their names are new
    assert sorted(reads) == ["space/0.md", "space/1.md", "sport/deeper/a.md"]
    assert sorted(listed) == ["", "space", "sport", "sport/deeper"]
    assert store.articles.count() == 9
    folders = store.inbox_files.folders()
    assert set(folders) == {"", "world", "space", "sport", "sport/deeper"}
    # The kept total of recorded articles is what adding them up gives.
    assert store.inbox_files.articles_total() == sum(
        record.articles for record in store.inbox_files.seen().values()) == 9
    settle(inbox, *everything(inbox))
    listed.clear()
    ingest(site, store, NOW)
    settle(inbox, *everything(inbox))
    listed.clear()
    reads.clear()
    ingest(site, store, NOW)
    assert listed == [] and reads == []


def test_an_edit_in_place_is_found_by_the_recheck_within_its_bound(settings, store, inbox,
                                                                   reads, listed):
    """A same-size rewrite in place with the mtime set back, in a folder that did not
    change: found within ceil(files / N) passes, never listing the folder."""
    paths = [write(inbox, f"world/{n}.md", md(f"Story {n}")) for n in range(7)]
    every = with_recheck(settings, 2)
    settled_twice(every, store, inbox)
    target = paths[3]
    before = target.stat()
    with target.open("r+b") as handle:
        handle.write(md("Story 3", "Body txt.").encode())
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert target.stat().st_size == before.st_size
    listed.clear()
    bound = math.ceil(len(paths) / 2)
    found_at = None
    for n in range(1, bound + 1):
        if ingest(every, store, NOW).updated:
            found_at = n
            break
    assert found_at is not None and found_at <= bound
    assert listed == []  # the folder's names did not change: only the re-check saw it
    assert store.articles.by_id(store.articles.latest(10)[0].id) is not None
    assert {a.title: a.paragraphs for a in store.articles.latest(10)}["Story 3"] == \
        ("Body txt.",)


def test_rescan_finds_an_edit_in_place_at_once(settings, store, inbox, reads):
    paths = [write(inbox, f"world/{n}.md", md(f"Story {n}")) for n in range(5)]
    quiet = with_recheck(settings, 0)
    settled_twice(quiet, store, inbox)
    with paths[4].open("ab") as handle:  # `>>`: in place
        handle.write(b"\nA last paragraph.\n")
    assert ingest(quiet, store, NOW).updated == 0  # no re-check: not seen
    report = ingest(quiet, store, NOW, rescan=True)
    assert report.updated == 1 and reads[-1] == "world/4.md"


def test_a_small_inbox_is_rechecked_whole_on_every_pass(settings, store, inbox):
    """The default N covers an inbox of up to N files on every pass, as before."""
    assert settings.ingest.recheck_per_pass >= 12
    paths = [write(inbox, f"s{n % 3}/{n}.md", md(f"Story {n}")) for n in range(12)]
    settle(inbox, *everything(inbox))
    ingest(settings, store, NOW)
    for path in paths[::4]:
        with path.open("ab") as handle:
            handle.write(b"\nMore.\n")
    assert ingest(settings, store, NOW).updated == 3


def test_a_folder_listed_in_the_tick_of_the_clock_is_listed_again(site, store, inbox,
                                                                  listed, monkeypatch):
    """An entry added in the same tick as the listing may leave the folder's times as
    they were: a folder whose ctime is not older than the pass's clock is not trusted."""
    write(inbox, "world/new.md", md("Harbour"))
    folder = inbox / "world"
    monkeypatch.setattr(ingest_module, "scan_clock",
                        lambda inbox: folder.stat().st_ctime_ns)
    ingest(site, store, NOW)
    assert listed == ["world"] and store.inbox_files.folders()["world"] is None
    listed.clear()
    ingest(site, store, NOW)  # nothing changed that its times show: listed all the same
    assert listed == ["world"]


def test_skipped_entries_stay_skipped_in_a_changed_folder(site, store, inbox, reads):
    write(inbox, "world/.draft.md", md("Hidden"))
    write(inbox, "world/0.md~", md("Backup"))
    write(inbox, "world/new.md", md("Shown"))
    report = ingest(site, store, NOW)
    assert (report.new, report.quarantined) == (1, 0) and reads == ["world/new.md"]


def test_a_file_fixed_in_quarantine_is_read_again(site, store, inbox, reads):
    write(inbox, "world/bad.md", "")
    assert ingest(site, store, NOW).quarantined == 1
    kept = inbox / "quarantine/world/bad.md"
    kept.write_text(md("Fixed by hand"), encoding="utf-8")
    report = ingest(site, store, NOW)
    assert report.new == 1 and (inbox / "world/bad.md").exists()


def test_a_linked_folder_is_refused_and_never_read_through(site, store, inbox, reads,
                                                           tmp_path, monkeypatch):
    outside = tmp_path / "outside"
    write(outside, "secret.md", md("Secret"))
    (inbox / "linked").symlink_to(outside, target_is_directory=True)
    report = ingest(site, store, NOW)
    assert report.quarantined == 1 and (outside / "secret.md").exists()
    assert not (inbox / "linked").is_symlink()
    # A recorded folder swapped for a link: its recorded files are not re-checked
    # through the link, and the link itself is quarantined.
    shutil.rmtree(inbox / "culture")
    write(outside, "0.md", md("Outside"))
    (inbox / "culture").symlink_to(outside, target_is_directory=True)
    reads.clear()
    looked_at: list[str] = []
    real = ingest_module.changed_entries
    monkeypatch.setattr(ingest_module, "changed_entries", lambda entries, seen: real(
        [looked_at.append(entry[0]) or entry for entry in entries], seen))
    report = ingest(with_recheck(site, 100), store, NOW)
    assert "culture" in looked_at and not any(k.startswith("culture/") for k in looked_at)
    assert report.quarantined == 1 and reads == []  # refused before it is opened
    assert (inbox / "quarantine/culture").is_symlink()
    assert (outside / "0.md").exists() and "Outside" not in {
        a.title for a in store.articles.latest(20)}


def test_version_12_upgrades_a_version_11_store(tmp_path):
    from sqlalchemy import create_engine, inspect

    from publisher.store import open_store
    from publisher.store.migrate import MIGRATIONS, upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        upgrade(conn, [step for step in MIGRATIONS if step[0] <= 11])
        # Version 1 is this code's whole schema: take off what version 11 did not have.
        conn.exec_driver_sql("DROP TABLE inbox_folders")
        conn.exec_driver_sql("DROP TABLE inbox_scan")
        conn.exec_driver_sql("INSERT INTO inbox_files (path, sha256, articles, seen_at) "
                             "VALUES ('a.md', 'x', 3, '2026-11-24 12:00:00.000000')")
        conn.exec_driver_sql("DROP INDEX ix_inbox_files_pending")
    engine.dispose()
    store = open_store(url)
    try:
        tables = set(inspect(store.engine).get_table_names())
        assert {"inbox_folders", "inbox_scan"} <= tables
        assert store.inbox_files.articles_total() == 3  # counted once, then kept
        indexes = {i["name"] for i in inspect(store.engine).get_indexes("inbox_files")}
        assert "ix_inbox_files_pending" in indexes
        assert store.inbox_files.folders() == {}  # the first pass lists every folder
    finally:
        store.close()


@pytest.mark.parametrize("value", [-1, "many", 10**12, 1.5])
def test_a_bad_recheck_setting_is_one_line_at_load(tmp_path, value):
    from publisher.config import load_settings
    from publisher.errors import ConfigError

    (tmp_path / "publisher.toml").write_text(
        f"[ingest]\nrecheck_per_pass = {value!r}\n".replace("'", '"'), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, environ={})
    assert "ingest.recheck_per_pass" in str(caught.value) and "\n" not in str(caught.value)


def test_the_recheck_setting_loads(tmp_path):
    from publisher.config import load_settings

    (tmp_path / "publisher.toml").write_text("[ingest]\nrecheck_per_pass = 0\n",
                                             encoding="utf-8")
    assert load_settings(tmp_path, environ={}).ingest.recheck_per_pass == 0
    assert load_settings(tmp_path, environ={"PUBLISHER_INGEST__RECHECK_PER_PASS": "50"}
                         ).ingest.recheck_per_pass == 50


def test_ingest_rescan_from_the_command_line(run_cli, tmp_path):
    site = tmp_path / "site"
    assert run_cli("init", site).exit_code == 0
    inbox = site / "articles"
    path = write(inbox, "world/a.md", md("Harbour"))
    quiet = {"PUBLISHER_INGEST__RECHECK_PER_PASS": "0"}
    settle(inbox, *everything(inbox))
    assert run_cli("ingest", "-C", site, env=quiet).exit_code == 0
    settle(inbox, *everything(inbox))
    run_cli("ingest", "-C", site, env=quiet)
    with path.open("ab") as handle:  # in place: its folder does not move
        handle.write(b"\nOne more paragraph.\n")
    result = run_cli("ingest", "-C", site, env=quiet)
    assert result.output.strip() == "ingest: 0 new, 0 updated, 1 unchanged, 0 quarantined"
    result = run_cli("ingest", "--rescan", "-C", site, env=quiet)
    assert result.output.strip() == "ingest: 0 new, 1 updated, 0 unchanged, 0 quarantined"


def test_a_deleted_files_record_is_not_read_by_the_recheck(site, store, inbox, listed,
                                                           monkeypatch):
    (inbox / "world/0.md").unlink()
    ingest(site, store, NOW)
    settle(inbox, *everything(inbox))
    ingest(site, store, NOW)
    looked_at: list[str] = []
    real = ingest_module.changed_entries
    monkeypatch.setattr(ingest_module, "changed_entries", lambda entries, seen: real(
        [looked_at.append(entry[0]) or entry for entry in entries], seen))
    listed.clear()
    report = ingest(with_recheck(site, 100), store, NOW)  # every record re-checked
    assert listed == [] and looked_at == [] and report.unchanged == 6
