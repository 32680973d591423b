"""`publisher feeds` and the feeds stage of `publisher run`, through the command line."""

from __future__ import annotations

import shutil

from tests.support import REPO


def test_feeds_twice_writes_nothing_the_second_time(run_cli, tmp_path):
    site = tmp_path / "site"
    run_cli("init", site)
    (site / "articles" / "world").mkdir()
    (site / "articles" / "world" / "a.txt").write_text("A Title\n\nThe body.\n")
    run_cli("-C", site, "ingest")
    first = run_cli("-C", site, "feeds")
    assert first.exit_code == 0
    files = [p for p in (site / "feeds").rglob("*") if p.is_file() and p.name[0] != "."]
    assert first.output == f"feeds: written {len(files)}, unchanged 0\n"
    second = run_cli("feeds", "-C", site)
    assert second.output == f"feeds: written 0, unchanged {len(files)}\n"


def test_run_builds_the_feeds_after_ingest(run_cli, tmp_path):
    site = tmp_path / "site"
    run_cli("init", site)
    (site / "articles" / "a.txt").write_text("A Title\n\nThe body.\n")
    result = run_cli("-C", site, "run")
    lines = result.output.splitlines()
    assert lines[0] == "ingest: 1 new, 0 updated, 0 unchanged, 0 quarantined"
    (feeds_line,) = [line for line in lines if line.startswith("feeds: ")]
    assert feeds_line.startswith("feeds: written ") and feeds_line.endswith(", unchanged 0")
    assert "A Title" in (site / "feeds" / "rss.xml").read_text()


def test_the_demo_instance_publishes_its_feeds(run_cli, tmp_path):
    """The README's first command: `publisher run` in the repository writes feeds/."""
    demo = tmp_path / "demo"
    demo.mkdir()
    shutil.copy(REPO / "publisher.toml", demo)
    shutil.copytree(REPO / "articles", demo / "articles",
                    ignore=shutil.ignore_patterns("quarantine"))
    result = run_cli("-C", demo, "run", env={"PUBLISHER_STORE__URL": ""})
    assert result.exit_code == 0, result.output
    feeds = demo / "feeds"
    for name in ("rss.xml", "atom.xml", "feed.json", "index.html", "style.css",
                 "sections/world/rss.xml", "sections/science/atom.xml",
                 "sections/culture/feed.json"):
        assert (feeds / name).is_file(), name
    assert len(list((feeds / "articles").glob("*.html"))) == 5


def test_a_template_error_is_one_line(run_cli, tmp_path):
    site = tmp_path / "site"
    run_cli("init", site)
    (site / "articles" / "a.txt").write_text("A Title\n\nThe body.\n")
    (site / "templates" / "pages").mkdir()
    (site / "templates" / "pages" / "index.html").write_text("{% if %}\n")
    result = run_cli("-C", site, "feeds")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"publisher: {site / 'templates' / 'pages' / 'index.html'}:1: "
        "Expected an expression, got 'end of statement block'"]
    assert "Traceback" not in result.output
