"""bench/pelican.py's corpus: Publisher's inbox and Pelican's content folder hold the
same articles (no Pelican needed: its Markdown metadata format is read here by its rules)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from bench.pelican import pelican_binary, write_corpus
from bench.scale import generate
from publisher.ingest.markdown import parse_markdown


def read_pelican(path: Path) -> dict:
    """Pelican's Markdown reader (the Markdown `meta` extension): `Key: value` lines up to
    the first blank line are metadata, keys case-insensitive; the rest is the body."""
    head, _, body = path.read_text(encoding="utf-8").partition("\n\n")
    meta = {}
    for line in head.splitlines():
        key, sep, value = line.partition(":")
        assert sep and key.strip().isidentifier(), f"not a metadata line: {line!r}"
        meta[key.strip().lower()] = value.strip()
    return {"title": meta["title"], "published": datetime.fromisoformat(meta["date"]),
            "sections": (meta["category"],), "author": meta["author"],
            "paragraphs": tuple(p.strip() for p in body.split("\n\n") if p.strip())}


def read_publisher(path: Path, inbox: Path) -> dict:
    """The file as Publisher's ingest reads it: its own Markdown parser, section by folder."""
    key = path.relative_to(inbox).as_posix()
    [article] = parse_markdown(path.read_bytes(), key, sections=(path.parent.name,))
    return {"title": article.title, "published": article.published,
            "sections": article.sections, "author": article.author,
            "paragraphs": tuple(article.paragraphs)}


def test_both_layouts_hold_the_same_articles(tmp_path):
    inbox, content = tmp_path / "inbox", tmp_path / "content"
    newest = write_corpus(20, inbox, content)
    names = sorted(p.relative_to(inbox) for p in inbox.rglob("*.md"))
    assert names == sorted(p.relative_to(content) for p in content.rglob("*.md"))
    assert len(names) == 20 and len({n.parent for n in names}) == 20  # 20 sections
    articles = []
    for name in names:
        mine = read_publisher(inbox / name, inbox)
        assert mine == read_pelican(content / name), name
        assert mine["sections"] == (name.parent.name,)
        assert 5 <= len(mine["paragraphs"]) <= 10
        articles.append(mine)
    assert len({a["title"] for a in articles}) == 20
    assert newest["published"] == max(a["published"] for a in articles)
    assert newest["title"] == max(articles, key=lambda a: a["published"])["title"]


def test_publishers_layout_is_bench_scales(tmp_path):
    """The inbox is byte for byte what bench/scale.py's generator writes."""
    write_corpus(20, tmp_path / "inbox", tmp_path / "content")
    generate(tmp_path / "scale", 0, 20)
    ours = {p.relative_to(tmp_path / "inbox"): p.read_bytes()
            for p in (tmp_path / "inbox").rglob("*.md")}
    theirs = {p.relative_to(tmp_path / "scale"): p.read_bytes()
              for p in (tmp_path / "scale").rglob("*.md")}
    assert ours == theirs


def test_pelican_is_skipped_in_one_line(tmp_path, capsys):
    assert pelican_binary(None) is None
    assert pelican_binary(str(tmp_path / "no-pelican")) is None
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["pelican: skipped (no --pelican given)",
                     f"pelican: skipped ({tmp_path / 'no-pelican'} is not an executable file)"]
