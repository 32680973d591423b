"""Feeds stage, build: what one build publishes, and the two passes that publish it.

`Build` reads the cheap facts first (every article's stamp, each section's newest
window) and keys every output file by what it is made of. A file whose key is the one in
the manifest, and which is still on disk as written, is skipped without reading a single
article body; everything else is rendered and written only if its bytes differ.

The passes: `publish_feeds` (the live RSS, Atom and JSON feeds, site-wide and per
section, and the RFC 5005 archive pages, written by forked processes meanwhile where
there are cores for it) and `publish_pages` (index, section and article pages).
Articles are read in bulk, once per build, and each Entry is shared by every document
it appears in. Archive entries are rendered once and kept in the store (archives.py).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
import operator
import os
import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

import feedgen.version
import jinja2

from publisher import __version__
from publisher.article import slugify
from publisher.feeds.archives import (
    ArchivePage,
    archive_document,
    archive_pages,
    entry_context,
    from_microseconds,
    is_kept,
    render_entry,
)
from publisher.feeds.jsonfeed import json_document, json_item
from publisher.feeds.model import (
    ATOM,
    EPOCH,
    JSON,
    RSS,
    SECTION_NAME,
    Channel,
    Entry,
    Site,
    archive_path,
    article_path,
    make_entry,
    newest_first,
    newest_update,
    section_path,
    section_title,
)
from publisher.feeds.output import Output
from publisher.feeds.pages import STYLE, Pages, Section, sections_of
from publisher.feeds.rss_atom import PublisherEntry, atom_document, feed_entry, rss_document
from publisher.feeds.shares import in_shares
from publisher.ops.progress import Progress, ProgressDisplay, quiet
from publisher.store import Store
from publisher.store.archive_entries import RenderedEntry
from publisher.store.articles import PublishedArticle, Stamp

log = logging.getLogger(__name__)

# Articles a forked process must have to render before forking pays (a fork costs
# tens of milliseconds; 2,500 archive entries or article pages take a few hundred).
MIN_SHARE = 2500
SAFE_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
LIVE_FILES = (RSS, ATOM, JSON)


def is_safe_slug(slug: str) -> bool:
    return SAFE_SLUG.fullmatch(slug) is not None and ".." not in slug


def web_slug(slug: str, article_id: str) -> str:
    """The slug as a file name; a hand-written front-matter slug that is not one
    (a slash, a space, dots) is slugified, the same way every build."""
    return slug if is_safe_slug(slug) else slugify(slug, article_id)


@contextlib.contextmanager
def paused_collector() -> Iterator[None]:
    """The cyclic garbage collector off for a build. A full build makes hundreds of
    thousands of objects (stamps, rows, entries) that live until it ends and form no
    cycles; the collector would walk them over and over, finding nothing, which costs
    a build of 100,000 articles about a third of its start."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Build:
    """One build of the publish folder: its inputs, keys and caches."""

    def __init__(self, site: Site, store: Store, env: jinja2.Environment,
                 template_folders: Sequence[Path], processes: int = 1):
        self.site = site
        self.store = store
        self.output = Output(site.folder)
        self.pages = Pages(env, site)
        self.layout = layout_key(site, template_folders)
        self.stamps = store.articles.stamps()  # oldest first
        # An empty feed's updated time: when the store was made (stable, and plausible).
        self.empty_since = store.articles.created_at() or EPOCH
        self.window = self.stamps[::-1][:site.items]  # newest first
        counts = store.articles.section_counts()
        for name in sorted(n for n in counts if not SECTION_NAME.fullmatch(n)):
            log.warning("section %r is not a lower-case word (a-z, 0-9, -): it gets no "
                        "feed or page", name)
        self.section_counts = {n: c for n, c in counts.items() if SECTION_NAME.fullmatch(n)}
        self.section_windows = store.articles.section_windows(self.section_counts, site.items)
        self.sections: list[Section] = sections_of(self.section_counts)
        self.archive = archive_pages(self.stamps, site.items)
        self.entry_context = entry_context(site)
        self.archive_keys: dict[int, str] = {}  # page number: key
        self.entries: dict[int, Entry] = {}
        self.feed_entries: dict[int, PublisherEntry] = {}
        self.json_items: dict[int, dict] = {}
        self.changed_feeds: list[str] = []
        self.key_prefixes: dict[tuple, hashlib.blake2b] = {}
        self.processes = processes  # at most, for the long passes (shares.py)
        self.min_share = MIN_SHARE
        self.shares_used: dict[str, int] = {}  # pass name: processes it ran in

    # --- keys --------------------------------------------------------------------------
    def key(self, *parts: object, stamps: Sequence[Stamp] = ()) -> str:
        """What a file is made of: the layout, what kind of file, and its articles."""
        if parts not in self.key_prefixes:
            prefix = hashlib.blake2b(self.layout.encode(), digest_size=16)
            prefix.update(repr(parts).encode())
            self.key_prefixes[parts] = prefix
        digest = self.key_prefixes[parts].copy()
        for seq, slug, content_hash in stamps:
            digest.update(f"\n{seq} {slug} {content_hash}".encode())
        return digest.hexdigest()

    # --- articles ------------------------------------------------------------------------
    def entries_for(self, stamps: Sequence[Stamp]) -> list[Entry]:
        """Entries for these stamps, in the same order; missing ones in one read."""
        missing = [s.seq for s in stamps if s.seq not in self.entries]
        for article in self.store.articles.published(missing):
            self.entries[article.seq] = self.entry(article)
        return [self.entries[s.seq] for s in stamps if s.seq in self.entries]

    def entry(self, article: PublishedArticle, xml_clean: bool = True) -> Entry:
        slug = web_slug(article.slug, article.id)
        if slug != article.slug:
            article = article._replace(slug=slug)
        return make_entry(article, self.site, xml_clean=xml_clean)

    def feed_entry(self, entry: Entry) -> PublisherEntry:
        if entry.seq not in self.feed_entries:
            self.feed_entries[entry.seq] = feed_entry(entry, self.section_scheme)
        return self.feed_entries[entry.seq]

    def json_item(self, entry: Entry) -> dict:
        if entry.seq not in self.json_items:
            self.json_items[entry.seq] = json_item(entry)
        return self.json_items[entry.seq]

    @property
    def section_scheme(self) -> str:
        return self.site.url_of("sections/")

    @property
    def live_atom_id(self) -> str:
        return self.site.url_of(ATOM)

    def channel(self, prefix: str, path: str, updated: datetime | None, title: str,
                description: str, **links: str | None) -> Channel:
        """The head of the document at `path`, one of the feeds under `prefix`, whose
        newest entry was updated at `updated` (None: it has no entries)."""
        site = self.site
        return Channel(
            title=title, description=description, home=site.url_of(prefix),
            self_url=site.url_of(path), feed_id=site.url_of(prefix + ATOM),
            language=site.language, author=site.author, hub=site.hub,
            updated=updated or self.empty_since, **links)


def layout_key(site: Site, template_folders: Sequence[Path]) -> str:
    """Everything besides the articles that shapes the output: settings, the versions
    and source of the code that writes it, and the templates. Any change re-renders."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr((__version__, feedgen.version.version_str, jinja2.__version__,
                        site)).encode())
    package = Path(__file__).resolve().parent
    for source in [*sorted(package.glob("*.py")), package.parent / "templating.py"]:
        digest.update(source.read_bytes())
    for folder in template_folders:
        for path in sorted(folder.rglob("*")) if folder.is_dir() else ():
            if path.is_file():
                digest.update(path.relative_to(folder).as_posix().encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


# --- the feeds --------------------------------------------------------------------------
def publish_feeds(build: Build) -> None:
    """The live feeds and the archive pages. Archive pages are most of the work of a
    full build, so forked processes start on them while this one writes the live feeds
    (and then takes its own share of the pages)."""
    stale = stale_archive_pages(build)
    processes = in_shares(build, stale, write_archive_pages, meanwhile=publish_live_feeds,
                          weight=lambda page: len(page.stamps))
    if stale:
        build.shares_used["archives"] = processes


def publish_live_feeds(build: Build) -> None:
    """rss.xml, atom.xml and feed.json, site-wide and for every section."""
    site = build.site
    newest_archive = site.url_of(archive_path(len(build.archive))) if build.archive else None
    publish_live(build, "", build.window, site.title, site.description, newest_archive)
    for section in build.sections:
        title = section_title(section.name)
        publish_live(build, section_path(section.name), build.section_windows[section.name],
                     f"{site.title}: {title}", f"{title} articles from {site.title}", None)


def publish_live(build: Build, prefix: str, window: Sequence[Stamp], title: str,
                 description: str, prev_archive: str | None) -> None:
    keys = {name: build.key("live", prefix + name, title, description,
                            prev_archive if name == ATOM else None, stamps=window)
            for name in LIVE_FILES}
    stale = [name for name in LIVE_FILES if not build.output.fresh(prefix + name, keys[name])]
    if not stale:
        return
    entries = newest_first(build.entries_for(window))
    items = [(build.feed_entry(entry), entry) for entry in entries]
    updated = newest_update(entries, default=None)
    for name in stale:
        channel = build.channel(prefix, prefix + name, updated, title, description,
                                prev_archive=prev_archive if name == ATOM else None)
        if name == RSS:
            data = rss_document(channel, items)
        elif name == ATOM:
            data = atom_document(channel, items)
        else:
            data = json_document(channel, [build.json_item(entry) for entry in entries])
        if build.output.put(prefix + name, keys[name], data):
            build.changed_feeds.append(build.site.url_of(prefix + name))


# --- the archives -------------------------------------------------------------------------
def stale_archive_pages(build: Build) -> list[ArchivePage]:
    """archive/<n>.xml: only pages whose articles changed are read and written."""
    return [page for page in build.archive
            if not build.output.fresh(page.path, archive_key(build, page))]


def write_archive_pages(build: Build, pages: Sequence[ArchivePage]) -> None:
    """The pages from their stored entries, a few pages' worth of rows at a time;
    entries missing from the store or stale are rendered and stored first."""
    url_of = build.site.url_of
    for group in page_groups(pages, ENTRY_ROWS):
        entries = rendered_entries(build, group)
        for page in group:
            rows = sorted([entries[s.seq] for s in page.stamps if s.seq in entries],
                          key=NEWEST_FIRST, reverse=True)
            updated = max((row.updated_us for row in rows), default=None)
            channel = build.channel(
                "", page.path, None if updated is None else from_microseconds(updated),
                build.site.title, build.site.description,
                prev_archive=url_of(archive_path(page.number - 1))
                if page.number > 1 else None,
                next_archive=url_of(archive_path(page.number + 1))
                if len(page.stamps) == build.site.items else None,
                current=build.live_atom_id)
            build.output.put(page.path, archive_key(build, page),
                             archive_document(channel, rows))


# The order of entries in a document (as newest_first), for stored entries.
NEWEST_FIRST = operator.attrgetter("published_us", "seq")
# Rendered entries read per statement: about 40 pages of 50, 5 MB of XML.
ENTRY_ROWS = 2000


def page_groups(pages: Sequence[ArchivePage], rows: int) -> Iterator[list[ArchivePage]]:
    """Runs of consecutive pages of about `rows` entries in all, each one seq range."""
    group: list[ArchivePage] = []
    size = 0  # entries in the group
    for page in pages:
        if group and (page.number != group[-1].number + 1 or size + len(page.stamps) > rows):
            yield group
            group, size = [], 0
        group.append(page)
        size += len(page.stamps)
    if group:
        yield group


def rendered_entries(build: Build, pages: list[ArchivePage]) -> dict[int, RenderedEntry]:
    """The rendered entries of these consecutive pages by seq: the stored ones that are
    still valid, and the rest rendered now (and stored for the next build)."""
    stamps = [stamp for page in pages for stamp in page.stamps]
    context = build.entry_context
    entries = {row.seq: row for row in build.store.archive_entries.between(
        stamps[0].seq, stamps[-1].seq) if row.context == context}
    stale = {s.seq: s.content_hash for s in stamps
             if s.seq not in entries or entries[s.seq].content_hash != s.content_hash}
    if stale:
        rendered, kept = [], []
        for article in build.store.articles.published(stale):
            entry = build.entry(article, xml_clean=False)
            row = render_entry(entry, build.section_scheme, context, stale[article.seq])
            rendered.append(row)
            if is_kept(entry):
                kept.append(row)
        build.store.archive_entries.save(kept)
        entries.update((row.seq, row) for row in rendered)
    return entries


def archive_key(build: Build, page: ArchivePage) -> str:
    """The page's key, made once per build (looking for stale pages makes it first)."""
    key = build.archive_keys.get(page.number)
    if key is None:
        key = build.archive_keys[page.number] = build.key("archive", page.number,
                                                          stamps=page.stamps)
    return key


# --- the pages ----------------------------------------------------------------------------
def publish_pages(build: Build, show: ProgressDisplay = quiet) -> None:
    """style.css, index.html, one index per section, one page per article."""
    pages, output = build.pages, build.output
    key = build.key("style")
    if not output.fresh(STYLE, key):
        output.put(STYLE, key, pages.style())
    counts = tuple(build.section_counts.items())
    key = build.key("index", counts, stamps=build.window)
    if not output.fresh("index.html", key):
        entries = newest_first(build.entries_for(build.window))
        output.put("index.html", key, pages.index(entries, build.sections))
    for section in build.sections:
        window = build.section_windows[section.name]
        path = section.path + "index.html"
        key = build.key("section", section.name, counts, stamps=window)
        if not output.fresh(path, key):
            entries = newest_first(build.entries_for(window))
            output.put(path, key, pages.section(section, entries, build.sections))
    publish_article_pages(build, show)


def publish_article_pages(build: Build, show: ProgressDisplay = quiet) -> None:
    stale: list[tuple[int, str]] = []
    for stamp in build.stamps:
        key = build.key("article", stamps=(stamp,))
        # An unsafe slug's file name needs the article id, so it is always rendered.
        if not is_safe_slug(stamp.slug) or not build.output.fresh(article_path(stamp.slug), key):
            stale.append((stamp.seq, key))
    if not stale:
        return
    # A rebuild (new templates, say) renders every page: the long part worth showing.
    # Only the parent's share moves the bar; forked children must not touch the terminal.
    parent = os.getpid()
    with show("article pages", total=len(stale)) as bar:
        build.shares_used["articles"] = in_shares(
            build, stale, lambda b, share: write_article_pages(
                b, share, bar if os.getpid() == parent else None))


def write_article_pages(build: Build, stale: Sequence[tuple[int, str]],
                        bar: Progress | None = None) -> None:
    keys = dict(stale)
    for article in build.store.articles.published(keys):
        entry = build.entries.get(article.seq) or build.entry(article)
        build.output.put(article_path(entry.slug), keys[article.seq],
                         build.pages.article(entry))
        if bar:
            bar.advance()
