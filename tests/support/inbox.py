"""Helpers for the inbox tests: scraped dumps and files written into the inbox, and a
YAML alias bomb for the hostile-input tests."""

from __future__ import annotations

from pathlib import Path

from publisher.ingest.scraped import format_scraped, join_articles


def dump(*titles: str, body: str = "A paragraph.") -> str:
    return join_articles([format_scraped(t, [body, f"More about {t}."], f"{t} photo. (AP)")
                          for t in titles])


def write(settings, name: str, text: str | bytes):
    path = settings.path("articles") / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


ALIAS_BOMB = ("title: T\nsummary: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n"
              + "".join(f"s{i}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
                        for i, (p, c) in enumerate(zip("abcdefgh", "bcdefghi", strict=True)))
              + "author: *i\n")


def settle(inbox: Path, *paths: Path) -> None:
    """Wait, on the file system's own clock, until the tick these entries last changed
    in has passed: an entry changed in the tick a pass reads its clock is looked at
    again on the next pass (publisher/ingest/scan.py), which most tests are not about.
    No sleep: it writes a probe file until the file system's time moves."""
    newest = max(p.stat().st_ctime_ns for p in paths)
    probe = inbox / ".probe"
    for _ in range(100_000):
        probe.write_text("x")
        if probe.stat().st_ctime_ns > newest:
            return
    raise AssertionError("the file system's clock does not move")


GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "ingest"


def stored_output(store) -> list[dict]:
    """What ingest stored, in sequence order."""
    return [{"seq": a.seq, "id": a.id, "slug": a.slug, "source": a.source,
             "source_index": a.source_index, "sections": list(a.sections),
             "published": a.published.isoformat(), "content_hash": a.content_hash,
             "paragraphs": list(a.paragraphs), "body_html": a.body_html}
            for a in reversed(store.articles.latest(1000))]


def count_reads(monkeypatch) -> list[str]:
    """The keys of the files ingest reads (opens and hashes) from now on, in order."""
    from publisher.ingest import inbox as ingest_module

    seen: list[str] = []
    real = ingest_module.read_inbox_file

    def counting(inbox, path, key, max_bytes, *folders):
        seen.append(key)
        return real(inbox, path, key, max_bytes, *folders)

    monkeypatch.setattr(ingest_module, "read_inbox_file", counting)
    return seen


def md(title: str, body: str = "Body text.") -> str:
    """A small Markdown article, dated."""
    return f"---\ntitle: {title}\ndate: 2026-11-20\n---\n{body}\n"


def write_under(inbox: Path, name: str, text: str) -> Path:
    """A file at inbox/name, its folders made."""
    path = inbox / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
