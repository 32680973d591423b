"""Benchmark: Publisher beside Pelican, a full build of the same 10,000-article corpus.

The corpus is bench/scale.py's (its generator, imported): N generated Markdown articles,
20 sections, 5-10 paragraphs of 40-90 words, dates spread over ten years in no order, an
author each. It is written twice from the same article data:

- Publisher's inbox, exactly as bench/scale.py writes it (`<section>/<n>.md`, YAML front
  matter: title, date, author);
- Pelican's content folder (`<section>/<n>.md`, the Markdown reader's metadata lines:
  `Title:`, `Date:`, `Category:` (the section), `Author:`; the same body text).

Each repeat builds both from nothing, one after the other (the order alternates):

- Publisher, as the CLI (`python -m publisher`, a subprocess, so process start counts as
  it does for Pelican): a fresh instance (`init`, not timed, its inbox filled with a copy
  of the corpus), then `publisher ingest` and `publisher feeds`, the full build: the
  store, article pages, index and section pages, RSS/Atom/JSON feeds (site and each
  section) and archive pages. Figures are for the two commands together; `[feeds]
  processes` stays at the instance's default, so the build forks its workers and their
  CPU counts (they are the CLI's children).
- Pelican (4.x, from its own venv, given by --pelican; not a project dependency):
  `pelican CONTENT -o OUT -s pelicanconf.py` into a fresh OUT, with the default theme,
  the site-wide Atom and RSS feeds and an Atom and RSS feed per category, 50 items a
  feed and 50 articles an index page (Publisher's `[feeds] items`), and no caching
  (CACHE_CONTENT and LOAD_CONTENT_CACHE off: a cold build). The rest is Pelican's
  defaults (author pages and the archives page included; no tags in the corpus).

Printed for each: wall seconds and CPU seconds (user + system from the child's rusage,
which includes the processes it forked and waited for), medians of --repeat builds, the
peak resident memory of any process in the build, the load average around each build,
what each writes (files, bytes) and the ratio Publisher/Pelican. The machine is shared:
CPU seconds are the figure to quote; wall time also counts the neighbours' work.

    python3 -m venv /work/pelican-venv && /work/pelican-venv/bin/pip install pelican markdown
    .venv/bin/python bench/pelican.py --pelican /work/pelican-venv/bin/pelican
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scale import NOW, SECTIONS, article_fields, article_text
from publisher.config import load_settings
from publisher.instance import init_instance

ATOM = "{http://www.w3.org/2005/Atom}"

PELICANCONF = """\
# bench/pelican.py's Pelican settings: the default theme, feeds as Publisher writes them.
SITENAME = "Bench"
SITEURL = "http://127.0.0.1:8080"
FEED_DOMAIN = SITEURL
TIMEZONE = "UTC"
DEFAULT_LANG = "en"
RELATIVE_URLS = False
FEED_ALL_ATOM = "feeds/all.atom.xml"
FEED_ALL_RSS = "feeds/all.rss.xml"
CATEGORY_FEED_ATOM = "feeds/{slug}.atom.xml"
CATEGORY_FEED_RSS = "feeds/{slug}.rss.xml"
AUTHOR_FEED_ATOM = None
AUTHOR_FEED_RSS = None
TRANSLATION_FEED_ATOM = None
FEED_MAX_ITEMS = 50
DEFAULT_PAGINATION = 50
# Page 2 of author "Desk 1" would be desk-12.html by default, author "Desk 12"'s first page.
PAGINATION_PATTERNS = ((1, "{name}{extension}", "{name}{extension}"),
                       (2, "{name}-page{number}{extension}", "{name}-page{number}{extension}"))
CACHE_CONTENT = False
LOAD_CONTENT_CACHE = False
"""


def corpus(count: int, seed: int = 1) -> Iterator[tuple[int, str, dict]]:
    """(n, section, fields) of articles 0..count-1: the same random stream, sections and
    fields as bench/scale.py's `generate(inbox, 0, count, seed)`."""
    rng = random.Random(seed)  # generate() seeds with seed + start; start is 0 here
    for n in range(count):
        yield n, SECTIONS[n % len(SECTIONS)], article_fields(rng, n)


def pelican_text(section: str, fields: dict) -> str:
    """One article in Pelican's Markdown format: metadata lines, a blank line, the body."""
    return (f"Title: {fields['title']}\nDate: {fields['published'].isoformat()}\n"
            f"Category: {section}\nAuthor: {fields['author']}\n\n"
            + "\n\n".join(fields["paragraphs"]) + "\n")


def write_corpus(count: int, inbox: Path, content: Path, seed: int = 1) -> dict:
    """Write the corpus as Publisher's inbox and as Pelican's content folder; returns the
    newest article's fields (what both sites' feeds should start with)."""
    newest = None
    for n, section, fields in corpus(count, seed):
        for root, text in ((inbox, article_text(fields)),
                           (content, pelican_text(section, fields))):
            folder = root / section
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{n:07d}.md").write_text(text, encoding="utf-8")
        if newest is None or fields["published"] > newest["published"]:
            newest = fields
    return newest


def run_child(argv: list[str], log: Path, env: dict | None = None) -> dict:
    """Run one command to its end; its wall time and its rusage (its own and that of the
    children it waited for: Publisher's forked build workers)."""
    load = os.getloadavg()[0]
    with log.open("ab") as out:
        started = time.perf_counter()
        child = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    if child.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise SystemExit(f"{argv[0]} {' '.join(argv[1:3])} failed ({child.returncode}):\n"
                         + "\n".join(tail))
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
            "rss": usage.ru_maxrss * 1024, "load": (load + os.getloadavg()[0]) / 2}


def folder_size(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def first_entry(feed: Path) -> str:
    """The title of the first entry of an Atom feed, as a reader shows it first."""
    entry = ET.parse(feed).getroot().find(f"{ATOM}entry")
    return "(no entries)" if entry is None else entry.findtext(f"{ATOM}title", "")


def publisher_build(work: Path, inbox: Path, n: int) -> dict:
    """A fresh instance, the corpus copied into its inbox, then ingest and feeds (CLI)."""
    folder = work / f"publisher-{n}"
    init_instance(folder)
    settings = load_settings(folder)
    target = settings.path(settings.ingest.inbox)
    shutil.rmtree(target)  # the welcome article: only the corpus counts
    shutil.copytree(inbox, target)
    env = dict(os.environ, PUBLISHER_TIME=NOW.isoformat())
    log = work / f"publisher-{n}.log"
    cli = [sys.executable, "-m", "publisher", "-C", str(folder)]
    steps = [run_child([*cli, command], log, env) for command in ("ingest", "feeds")]
    publish = settings.path(settings.feeds.folder)
    figures = {"wall": sum(s["wall"] for s in steps), "cpu": sum(s["cpu"] for s in steps),
               "rss": max(s["rss"] for s in steps),
               "load": statistics.fmean(s["load"] for s in steps),
               "ingest_cpu": steps[0]["cpu"], "feeds_cpu": steps[1]["cpu"],
               "output": folder_size(publish),
               "store": sum(p.stat().st_size for p in folder.glob("publisher.db*")),
               "newest": first_entry(publish / "atom.xml"),
               "lines": [line for line in log.read_text(errors="replace").splitlines()
                         if line.startswith(("ingest:", "feeds:"))]}
    shutil.rmtree(folder)
    return figures


def pelican_build(work: Path, pelican: Path, content: Path, n: int) -> dict:
    conf = work / "pelicanconf.py"
    conf.write_text(PELICANCONF, encoding="utf-8")
    out = work / f"pelican-out-{n}"
    log = work / f"pelican-{n}.log"
    env = dict(os.environ, COLUMNS="200")  # its closing line on one line of the log
    figures = run_child([str(pelican), str(content), "-o", str(out), "-s", str(conf)], log,
                        env)
    figures["output"] = folder_size(out)
    figures["newest"] = first_entry(out / "feeds" / "all.atom.xml")
    figures["lines"] = [line for line in log.read_text(errors="replace").splitlines()
                        if "Done" in line or "rocessed" in line][-1:]
    shutil.rmtree(out)
    return figures


def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def report(count: int, mine: list[dict], theirs: list[dict], newest: dict) -> None:
    load = statistics.fmean(r["load"] for r in mine + theirs)
    print(f"\nFull build of {count:,} Markdown articles, medians of {len(mine)} "
          f"(load average over the builds: {load:.2f})")
    print(f"{'':<12}{'CPU s':>10}{'wall s':>10}{'peak RSS':>11}{'files':>9}{'MB written':>12}"
          f"  CPU s of each run")
    sides = [("Publisher", mine)] + ([("Pelican", theirs)] if theirs else [])
    for name, runs in sides:
        files, size = runs[-1]["output"]
        print(f"{name:<12}{median(runs, 'cpu'):>10.1f}{median(runs, 'wall'):>10.1f}"
              f"{median(runs, 'rss') / 1e6:>9.0f}MB{files:>9,}{size / 1e6:>12.1f}  "
              + ", ".join(f"{r['cpu']:.1f}" for r in runs))
    print(f"Publisher: ingest {median(mine, 'ingest_cpu'):.1f} CPU s + feeds "
          f"{median(mine, 'feeds_cpu'):.1f} CPU s; the store besides: "
          f"{mine[-1]['store'] / 1e6:.1f} MB; {' / '.join(mine[-1]['lines'])}")
    if theirs:
        print(f"Pelican: {' '.join(theirs[-1]['lines']).strip()}")
        print(f"ratio Publisher/Pelican: CPU {median(mine, 'cpu') / median(theirs, 'cpu'):.2f}x, "
              f"wall {median(mine, 'wall') / median(theirs, 'wall'):.2f}x")
    print(f"newest article in the corpus: {newest['title']!r} "
          f"({newest['published']:%Y-%m-%d %H:%M}); first in the site's Atom feed: "
          f"Publisher {mine[-1]['newest']!r}"
          + (f", Pelican {theirs[-1]['newest']!r}" if theirs else ""))


def pelican_binary(given: str | None) -> Path | None:
    """The Pelican to run, or None with the one line saying why it is skipped."""
    if not given:
        print("pelican: skipped (no --pelican given)")
        return None
    path = Path(given)
    if not (path.is_file() and os.access(path, os.X_OK)):
        print(f"pelican: skipped ({given} is not an executable file)")
        return None
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--articles", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="builds of each (median)")
    parser.add_argument("--pelican", metavar="PATH",
                        help="the pelican command of a venv with Pelican and Markdown "
                             "(e.g. /work/pelican-venv/bin/pelican); without it, Publisher only")
    parser.add_argument("--work", type=Path, help="folder for the corpus and builds "
                        "(default: a temporary one, removed at the end)")
    args = parser.parse_args()
    pelican = pelican_binary(args.pelican)
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        work = Path(tmp)
        inbox, content = work / "inbox", work / "content"
        newest = write_corpus(args.articles, inbox, content)
        print(f"corpus: {args.articles:,} articles, Publisher's inbox "
              f"{folder_size(inbox)[1] / 1e6:.1f} MB, Pelican's content "
              f"{folder_size(content)[1] / 1e6:.1f} MB", flush=True)
        mine, theirs = [], []
        for n in range(args.repeat):
            order = ["publisher", "pelican"] if n % 2 == 0 else ["pelican", "publisher"]
            for side in order:
                if side == "publisher":
                    mine.append(publisher_build(work, inbox, n))
                    run = mine[-1]
                elif pelican:
                    theirs.append(pelican_build(work, pelican, content, n))
                    run = theirs[-1]
                else:
                    continue
                print(f"[{n + 1}/{args.repeat}] {side}: {run['cpu']:.1f} CPU s, "
                      f"{run['wall']:.1f} s wall, load {run['load']:.2f}", flush=True)
        report(args.articles, mine, theirs, newest)


if __name__ == "__main__":
    main()
