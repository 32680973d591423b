"""Hostile inbox files: each is quarantined with its reason, the good ones beside it are
stored, nothing outside the inbox is read, and no file costs more than its size."""

from __future__ import annotations

import errno
import os
from datetime import timedelta

import pytest

from publisher.clock import fixed
from publisher.delivery.memory import MemoryTransport
from publisher.errors import InputError
from publisher.ingest.files import Folders
from publisher.ingest.inbox import ingest
from publisher.schedule.pipeline import run_once
from tests.support import NOW
from tests.support.inbox import ALIAS_BOMB, dump, write

LATER = NOW + timedelta(hours=1)


def md(front: str, body: str = "The body.\n") -> str:
    return f"---\n{front}\n---\n{body}"


def reasons(settings) -> dict[str, str]:
    folder = settings.path("articles") / "quarantine"
    return {p.relative_to(folder).as_posix()[:-len(".error")]: p.read_text()
            for p in folder.rglob("*.error")}


def ingest_beside_good(settings, store, name: str, content: str | bytes) -> str:
    """Drop one hostile file beside a good one; the good one is stored, the bad one is
    quarantined. Returns the quarantine reason."""
    write(settings, "good.txt", dump("Good"))
    write(settings, name, content)
    report = ingest(settings, store, NOW)
    assert (report.new, report.quarantined) == (1, 1), report
    assert [a.title for a in store.articles.latest(10)] == ["Good"]
    found = reasons(settings)
    assert list(found) == [name]
    return found[name]


BAD_DATES = [
    "2026-11-22T25:61:00", "2026-13-45", "2026-11-22T10:00:00+99:00",
    "'0001-01-01T00:00:00+14:00'", "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-05:00", "'9999-12-31T23:00:00-12:00'", "'0001-01-01'",
]


@pytest.mark.parametrize("date", BAD_DATES)
def test_a_bad_date_is_the_files_error(settings, store, date):
    reason = ingest_beside_good(settings, store, "dated.md", md(f"title: T\ndate: {date}"))
    assert "date" in reason.splitlines()[0]


def test_deep_nesting_is_the_files_error(settings, store):
    reason = ingest_beside_good(settings, store, "deep.md",
                                md("title: T\nsummary: " + "[" * 20000 + "]" * 20000))
    assert "nested" in reason


def test_an_alias_bomb_is_refused_cheaply(settings, store):
    bomb = ALIAS_BOMB.replace("s0", "id").replace("s1", "slug").replace("s2", "image") \
        .replace("s3", "sections").replace("s4", "tags").replace("s5", "updated") \
        .replace("s6", "date").replace("s7", "summary2")
    bomb = "\n".join(line for line in bomb.splitlines() if not line.startswith("summary2"))
    reason = ingest_beside_good(settings, store, "bomb.md", md(bomb))
    assert "alias" in reason


def test_a_self_referring_alias_is_refused(settings, store):
    reason = ingest_beside_good(settings, store, "loop.md", md("title: T\nsections: &a [*a]"))
    assert "alias" in reason


def test_huge_front_matter_is_refused(settings, store):
    reason = ingest_beside_good(settings, store, "huge.md",
                                md("title: T\nsummary: " + "word " * 40000))
    assert "front matter" in reason and "bytes" in reason


def test_a_number_too_long_for_python_is_the_files_error(settings, store):
    reason = ingest_beside_good(settings, store, "digits.md", md("title: T\nid: " + "9" * 5000))
    assert reason.startswith("front matter") or "could not" in reason


def test_front_matter_values_must_be_text(settings, store):
    reason = ingest_beside_good(settings, store, "author.md",
                                md("title: T\nauthor: {name: [a, b]}"))
    assert "author" in reason


def test_thousands_of_sections_are_refused(settings, store):
    sections = ", ".join(f"s{i}" for i in range(2000))
    reason = ingest_beside_good(settings, store, "many.md", md(f"title: T\nsections: [{sections}]"))
    assert "sections" in reason


def test_a_section_name_longer_than_a_file_name_is_refused(settings, store):
    reason = ingest_beside_good(settings, store, "long.md", md("title: T\nsections: " + "a" * 300))
    assert "section" in reason


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:image/svg+xml,<svg/onload=x>",
                                 "JaVaScRiPt:alert(1)", " javascript:x", "java\tscript:x",
                                 "file:///etc/passwd", "vbscript:x"])
def test_front_matter_images_are_http_only(settings, store, url):
    reason = ingest_beside_good(settings, store, "img.md", md(f"title: T\nimage: '{url}'"))
    assert "image" in reason


def test_an_image_path_in_the_publish_folder_still_works(settings, store):
    write(settings, "img.md", md("title: T\nimage: images/comet.jpg"))
    write(settings, "abs.md", md("title: U\nimage: https://images.example.org/c.jpg"))
    report = ingest(settings, store, NOW)
    assert (report.new, report.quarantined) == (2, 0)


# --- never read outside the inbox -----------------------------------------------------

def test_a_symlink_is_never_followed(settings, store):
    secret = settings.instance / "publisher.toml"
    inbox = settings.path("articles")
    inbox.mkdir(exist_ok=True)
    write(settings, "good.txt", dump("Good"))
    os.symlink(secret, inbox / "notes.txt")
    os.symlink("/etc/passwd", inbox / "passwd.txt")
    (inbox / "linked").symlink_to(settings.instance / "templates", target_is_directory=True)
    report = ingest(settings, store, NOW)
    assert (report.new, report.quarantined) == (1, 3)
    found = reasons(settings)
    assert set(found) == {"notes.txt", "passwd.txt", "linked"}
    assert all("symbolic link" in reason for reason in found.values())
    stored = store.articles.latest(10)
    assert [a.title for a in stored] == ["Good"]
    assert secret.exists()  # the link moved, not what it points at


def test_a_symlinked_folder_inside_is_not_entered(settings, store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(dump("Secret"))
    inbox = settings.path("articles")
    (inbox / "sub").symlink_to(outside, target_is_directory=True)
    ingest(settings, store, NOW)
    assert store.articles.count() == 0
    assert (outside / "secret.txt").exists()


def test_a_folder_is_opened_once_for_its_files_and_never_through_a_link(tmp_path):
    inbox, outside = tmp_path / "inbox", tmp_path / "outside"
    for folder, name in (("a", "x.txt"), ("a", "y.txt"), ("b", "z.txt")):
        (inbox / folder).mkdir(parents=True, exist_ok=True)
        (inbox / folder / name).write_text(name)
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (inbox / "l").symlink_to(outside, target_is_directory=True)
    with Folders(inbox) as folders:
        with os.fdopen(folders.open(("a", "x.txt"))) as handle:
            assert handle.read() == "x.txt"
        held = folders.fd
        with os.fdopen(folders.open(("a", "y.txt"))) as handle:
            assert handle.read() == "y.txt"
        assert (folders.fd, folders.parts) == (held, ("a",))  # the same folder descriptor
        with os.fdopen(folders.open(("b", "z.txt"))) as handle:
            assert (handle.read(), folders.parts) == ("z.txt", ("b",))
        with pytest.raises(OSError) as refused:
            folders.open(("l", "secret.txt"))
        assert refused.value.errno in (errno.ELOOP, errno.ENOTDIR)
        assert folders.fd is None
        with pytest.raises(OSError):
            folders.open(("a", "gone.txt"))
    assert folders.fd is None  # closed with the pass


def test_a_fifo_is_quarantined_not_read(settings, store):
    inbox = settings.path("articles")
    os.mkfifo(inbox / "pipe.txt")
    write(settings, "good.txt", dump("Good"))
    report = ingest(settings, store, NOW)  # reading a FIFO would block for ever
    assert (report.new, report.quarantined) == (1, 1)
    assert "not a regular file" in reasons(settings)["pipe.txt"]


def test_a_hard_link_to_a_file_outside_is_refused(settings, store):
    inbox = settings.path("articles")
    os.link(settings.instance / "publisher.toml", inbox / "config.txt")
    write(settings, "good.txt", dump("Good"))
    report = ingest(settings, store, NOW)
    assert (report.new, report.quarantined) == (1, 1)
    assert "hard link" in reasons(settings)["config.txt"]


# --- the smaller ones -----------------------------------------------------------------

def test_a_251_character_name_keeps_its_reason(settings, store):
    name = "n" * 247 + ".txt"
    write(settings, "good.txt", dump("Good"))
    write(settings, name, b"")
    report = ingest(settings, store, NOW)
    assert (report.new, report.quarantined) == (1, 1)
    errors = list((settings.path("articles") / "quarantine").glob("*.error"))
    assert len(errors) == 1 and len(errors[0].name.encode()) <= 255
    assert "empty file" in errors[0].read_text()
    # and again, now that the quarantine holds one of that name
    write(settings, name, b"")
    ingest(settings, store, LATER)
    assert len(list((settings.path("articles") / "quarantine").glob("*.error"))) == 2


def test_a_file_removed_between_listing_and_reading_is_skipped(settings, store, monkeypatch):
    from publisher.ingest import inbox as ingest_module
    write(settings, "good.txt", dump("Good"))
    gone = write(settings, "gone.txt", dump("Gone"))
    listing = ingest_module.changed_entries

    def list_then_remove(entries, seen):
        found = listing(entries, seen)
        assert gone in found[0]
        gone.unlink()
        return found

    monkeypatch.setattr(ingest_module, "changed_entries", list_then_remove)
    report = ingest(settings, store, NOW)
    assert (report.new, report.quarantined) == (1, 0)


def test_a_half_written_file_is_published_once_complete(settings, store):
    inbox = settings.path("articles")
    with open(inbox / "late.txt", "w", encoding="utf-8") as writer:
        writer.write("Late News\n")  # the title only, so far
        writer.flush()
        first = ingest(settings, store, NOW)
        assert first.quarantined == 1
        # The writer goes on into the same open file, now in quarantine/.
        writer.write("\nThe paragraph that came after.\n")
    second = ingest(settings, store, LATER)
    assert (second.new, second.quarantined) == (1, 0)
    assert [a.title for a in store.articles.latest(10)] == ["Late News"]
    assert not list((inbox / "quarantine").rglob("*.error"))
    # Unchanged in quarantine: left alone.
    write(settings, "empty.txt", b"")
    ingest(settings, store, LATER)
    third = ingest(settings, store, LATER + timedelta(hours=1))
    assert (third.new, third.quarantined) == (0, 0)
    assert (inbox / "quarantine" / "empty.txt").exists()


def test_random_bytes_read_as_cp1252_are_not_an_article(settings, store):
    import random
    noise = random.Random(19)
    data = b"\n\n".join(bytes(noise.randrange(0x80, 0x100) for _ in range(60))
                        for _ in range(8))
    reason = ingest_beside_good(settings, store, "noise.txt", data)
    assert "binary" in reason or "encoding" in reason


def test_utf32_is_not_read_as_utf16(settings, store):
    reason = ingest_beside_good(settings, store, "wide.txt", dump("Wide").encode("utf-32"))
    assert "UTF-32" in reason


def test_windows_1252_text_is_still_read(settings, store):
    write(settings, "cafe.txt", dump("Café au lait à Paris", body="Déjà vu – “quoted”.")
          .encode("cp1252"))
    report = ingest(settings, store, NOW)
    assert (report.new, report.quarantined) == (1, 0)


def test_a_file_name_that_is_not_utf8_gets_the_right_reason(settings, store):
    inbox = settings.path("articles")
    name = b"caf\xe9.txt"
    with open(os.path.join(os.fsencode(inbox), name), "wb") as handle:
        handle.write(dump("Named").encode())
    write(settings, "good.txt", dump("Good"))
    report = ingest(settings, store, NOW)
    assert (report.new, report.quarantined) == (1, 1)
    (error,) = (inbox / "quarantine").glob("*.error")
    assert "file name" in error.read_text() and "UTF-8" in error.read_text()


def test_a_bad_file_never_stops_the_pass(settings, store):
    """`publisher run` with a bad date beside a good file: every stage runs."""
    write(settings, "good.txt", dump("Good"))
    write(settings, "dated.md", md("title: T\ndate: 2026-11-22T25:61:00"))
    report = run_once(settings, store, MemoryTransport(), fixed(NOW))
    assert (report.ingest.new, report.ingest.quarantined) == (1, 1)
    assert (settings.path("feeds") / "rss.xml").exists()


def test_markdown_over_its_own_limit_is_refused_before_rendering(settings, store):
    """Markdown costs up to ~100 µs a byte to render (10 MB of '[' would take minutes),
    so .md files have a smaller limit than page text."""
    from dataclasses import replace
    small = replace(settings, ingest=replace(settings.ingest, max_markdown_bytes=1000))
    write(settings, "good.txt", dump("Good", body="A paragraph. " * 200))
    write(settings, "brackets.md", md("title: T", "[" * 2000))
    report = ingest(small, store, NOW)
    assert (report.new, report.quarantined) == (1, 1)
    assert "max_markdown_bytes" in reasons(settings)["brackets.md"]


def test_a_first_line_too_long_for_a_title_is_refused(settings, store):
    reason = ingest_beside_good(settings, store, "wall.txt",
                                "word " * 2000 + "\n\nA paragraph.\n")
    assert "title" in reason


@pytest.mark.parametrize("blocker", ["file", "link"])
def test_a_quarantine_that_cannot_be_used_never_stops_the_pass(settings, store, tmp_path,
                                                               blocker):
    inbox = settings.path("articles")
    if blocker == "file":
        (inbox / "quarantine").write_text("not a folder")
    else:
        (tmp_path / "elsewhere").mkdir()
        (inbox / "quarantine").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    write(settings, "good.txt", dump("Good"))
    write(settings, "empty.txt", b"")
    report = ingest(settings, store, NOW)
    assert report.new == 1
    assert (inbox / "empty.txt").exists()  # left where it is, tried again next pass
    assert not list((tmp_path / "elsewhere").glob("*")) if blocker == "link" else True


@pytest.mark.parametrize("front", ["id: " + "i" * 65, "slug: " + "s" * 201])
def test_values_too_long_for_the_stores_columns_are_refused(settings, store, front):
    """PostgreSQL refuses them (VARCHAR(64), VARCHAR(200)) and would fail the batch."""
    reason = ingest_beside_good(settings, store, "long.md", md(f"title: T\n{front}"))
    assert "longer than" in reason



@pytest.mark.parametrize("grown_by", [1, 5000])
def test_a_file_that_grew_after_its_stat_is_read_whole(settings, tmp_path, monkeypatch,
                                                       grown_by):
    """Files are read by their size at open; bytes beyond it (written since) are read on,
    up to the limit, as before."""
    from publisher.ingest import files

    inbox = settings.path("articles")
    path = write(settings, "grown.txt", dump("Grown", body="word " * 2000))
    real_fstat = os.fstat

    def fstat_before_growth(fd):
        info = real_fstat(fd)
        fields = list(info)
        fields[6] = info.st_size - grown_by  # st_size as if taken before the last bytes
        return os.stat_result(fields)

    monkeypatch.setattr(files.os, "fstat", fstat_before_growth)
    data, _info = files.read_inbox_file(inbox, path, "grown.txt", 1_000_000)
    assert data == path.read_bytes()
    with pytest.raises(InputError, match="over the limit"):
        files.read_inbox_file(inbox, path, "grown.txt", len(data) - 1)
