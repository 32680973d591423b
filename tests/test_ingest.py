"""Ingest into a real store: idempotence, edits in place, quarantine, and the summary."""

from __future__ import annotations

from datetime import timedelta

from publisher.ingest.inbox import ingest
from tests.support import NOW
from tests.support.inbox import dump, write

LATER = NOW + timedelta(hours=1)


def test_ingest_seed_then_nothing_new(settings, store, seed_bytes):
    write(settings, "seed.txt", seed_bytes)
    first = ingest(settings, store, NOW)
    assert (first.new, first.updated, first.unchanged, first.quarantined) == (2, 0, 0, 0)
    again = ingest(settings, store, LATER)
    assert (again.new, again.updated, again.unchanged, again.quarantined) == (0, 0, 2, 0)
    assert store.articles.count() == 2
    stored = store.articles.latest(10)
    assert stored[1].title == "Russia and Belarus to Hold Joint War Games Early Next Year"
    assert stored[0].published == NOW and stored[0].published.tzinfo is not None


def test_touching_a_file_without_changing_it_parses_nothing_new(settings, store):
    path = write(settings, "a.txt", dump("One", "Two"))
    ingest(settings, store, NOW)
    path.write_bytes(path.read_bytes())
    report = ingest(settings, store, LATER)
    assert (report.new, report.updated, report.unchanged) == (0, 0, 2)


def test_edit_updates_in_place(settings, store):
    write(settings, "a.txt", dump("One", "Two"))
    ingest(settings, store, NOW)
    before = {a.title: a for a in store.articles.latest(10)}
    write(settings, "a.txt", dump("One", "Two", body="A corrected paragraph."))
    report = ingest(settings, store, LATER)
    assert (report.new, report.updated, report.unchanged) == (0, 2, 0)
    after = {a.title: a for a in store.articles.latest(10)}
    for title in ("One", "Two"):
        assert (after[title].id, after[title].seq, after[title].slug) == \
               (before[title].id, before[title].seq, before[title].slug)
        assert after[title].updated == LATER and after[title].published == NOW
        assert after[title].paragraphs[0] == "A corrected paragraph."


def test_title_edit_keeps_id_and_sequence(settings, store):
    write(settings, "a.txt", dump("Teh Typo", "Two"))
    ingest(settings, store, NOW)
    old = {a.source_index: a for a in store.articles.latest(10)}
    write(settings, "a.txt", dump("The Typo", "Two"))
    report = ingest(settings, store, LATER)
    assert (report.new, report.updated, report.unchanged) == (0, 1, 1)
    new = {a.source_index: a for a in store.articles.latest(10)}
    assert new[0].title == "The Typo"
    assert (new[0].id, new[0].seq) == (old[0].id, old[0].seq)
    assert store.articles.count() == 2


def test_appended_article_is_new_and_sequence_grows(settings, store):
    write(settings, "a.txt", dump("One"))
    ingest(settings, store, NOW)
    write(settings, "a.txt", dump("One", "Two"))
    report = ingest(settings, store, LATER)
    assert (report.new, report.unchanged) == (1, 1)
    two, one = store.articles.latest(2)
    assert two.title == "Two" and two.seq > one.seq


def test_same_slug_in_two_files_gets_a_suffix(settings, store):
    write(settings, "a.txt", dump("Same Title"))
    write(settings, "b.txt", dump("Same Title"))
    ingest(settings, store, NOW)
    assert sorted(a.slug for a in store.articles.latest(10)) == ["same-title", "same-title-2"]


def test_bad_files_are_quarantined_and_the_rest_go_on(settings, store):
    inbox = settings.path("articles")
    write(settings, "good.txt", dump("Good"))
    write(settings, "empty.txt", b"")
    write(settings, "binary.txt", b"\x00\x01\x02PK")
    write(settings, "title-only.txt", "A title and nothing else\n")
    write(settings, "photo.jpg", b"\xff\xd8\xff")
    write(settings, "bad.md", "---\ntitle: [\n---\nx\n")
    write(settings, "big.txt", "Big\n\n" + "x" * 300)
    from dataclasses import replace
    small = replace(settings, ingest=replace(settings.ingest, max_bytes=150))
    report = ingest(small, store, NOW)
    assert (report.new, report.quarantined) == (1, 6)
    reasons = {p.name[:-len(".error")]: p.read_text()
               for p in (inbox / "quarantine").glob("*.error")}
    assert set(reasons) == {"empty.txt", "binary.txt", "title-only.txt", "photo.jpg",
                            "bad.md", "big.txt"}
    assert "empty file" in reasons["empty.txt"]
    assert "binary" in reasons["binary.txt"]
    assert "no body paragraphs" in reasons["title-only.txt"]
    assert "unsupported file type '.jpg'" in reasons["photo.jpg"]
    assert "not valid YAML" in reasons["bad.md"]
    assert "over the limit of 150" in reasons["big.txt"]
    assert not (inbox / "empty.txt").exists() and (inbox / "quarantine" / "empty.txt").exists()
    # The quarantine folder is not read again.
    again = ingest(small, store, LATER)
    assert (again.new, again.quarantined, again.unchanged) == (0, 0, 1)


def test_quarantine_never_overwrites(settings, store):
    write(settings, "empty.txt", b"")
    ingest(settings, store, NOW)
    write(settings, "empty.txt", b" ")
    ingest(settings, store, LATER)
    assert len(list((settings.path("articles") / "quarantine").glob("empty*.txt"))) == 2


def test_subfolders_are_sections(settings, store):
    write(settings, "world/a.txt", dump("Abroad"))
    write(settings, "culture/b.md", "---\ntitle: Choir\n---\nSongs.\n")
    ingest(settings, store, NOW)
    assert [a.title for a in store.articles.latest(10, section="world")] == ["Abroad"]
    assert [a.title for a in store.articles.latest(10, section="culture")] == ["Choir"]


def test_moved_markdown_with_explicit_id_updates_in_place(settings, store):
    old = write(settings, "old.md", "---\ntitle: Kept\nid: fixed-id\n---\nText.\n")
    ingest(settings, store, NOW)
    old.unlink()
    write(settings, "new.md", "---\ntitle: Kept\nid: fixed-id\n---\nText, edited.\n")
    report = ingest(settings, store, LATER)
    assert (report.new, report.updated) == (0, 1)
    assert store.articles.by_id("fixed-id").source == "new.md"
