"""Feeds stage, RFC 5005 archives: the articles older than the live window, as Atom pages.

Pages hold [feeds] items articles each and are numbered from the oldest: archive/1.xml
holds the first articles ever stored. Membership goes by sequence number (the order the
store took articles in), never by date, so once a page is full its set of entries never
changes; a backdated article arriving later cannot push entries from page to page. Only
the newest page fills up over time. Changing [feeds] items re-cuts every page.

Links: the live atom.xml points at the newest page with prev-archive; each page points
at the page before it (prev-archive), at the live feed (current), and carries
<fh:archive/>. A full page also points at the page after it (next-archive) from the
moment it is full, so it never has to change again: that link leads nowhere until the
next article is stored and starts the next page. The newest page, while it fills, has no
next-archive; when it is the only page it has no archive link at all, which RFC 5005
allows (the W3C validator warns "Archive incomplete" about such a lone page).

Archives are Atom only: RFC 5005 is defined on Atom, and Atom readers are the ones that
walk it. Section feeds have no archives of their own: every article is in the site-wide
archive, and 20 sections would double the disk a 100,000-article archive takes.

A full build writes 2,000 pages for 100,000 articles, so entries are written here as
text rather than through feedgen, in exactly the form the live atom.xml gets from
feedgen (tests/test_feeds_archives.py holds the two byte for byte against each other).
Each entry is rendered once and kept in the store (archive_entries) with what it was
rendered from; a page is then its head plus its entries' stored bytes, and only an entry
whose article was edited, or whose context changed (this code, the site's URL or
default author), is rendered again. An entry with an image file from the publish folder
is not kept: its enclosure length follows the file, which can change on its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from publisher import __version__
from publisher.feeds.model import CONTROL_BYTES, EPOCH, Channel, Entry, Image, Site, archive_path
from publisher.feeds.rss_atom import ATOM_NS, GENERATOR
from publisher.store.archive_entries import RenderedEntry
from publisher.store.articles import Stamp

HISTORY_NS = "http://purl.org/syndication/history/1.0"
ATOM_TYPE = "application/atom+xml"


@dataclass(frozen=True)
class ArchivePage:
    number: int
    stamps: Sequence[Stamp]  # oldest first

    @property
    def path(self) -> str:
        return archive_path(self.number)


def archive_pages(stamps: Sequence[Stamp], window: int) -> list[ArchivePage]:
    """Every article but the newest `window`, cut into pages of `window`, oldest first."""
    archived = stamps[:max(len(stamps) - window, 0)]
    return [ArchivePage(number, archived[start:start + window])
            for number, start in enumerate(range(0, len(archived), window), start=1)]


def entry_context(site: Site) -> str:
    """Everything besides the article that an archive entry's bytes depend on: the code
    that writes entries (every module of this package, so any change renders again),
    the site's URL (links, ids, the category scheme) and its default author."""
    digest = hashlib.blake2b(repr((__version__, site.url, site.author)).encode(),
                             digest_size=16)
    for source in sorted(Path(__file__).resolve().parent.glob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()


def render_entry(entry: Entry, section_scheme: str, context: str,
                 content_hash: str) -> RenderedEntry:
    """An archive entry as the store keeps it: UTF-8 without the control characters XML
    forbids, with the times its page sorts by."""
    xml = atom_entry(entry, section_scheme).encode().translate(None, CONTROL_BYTES)
    return RenderedEntry(entry.seq, context, content_hash, microseconds(entry.published),
                         microseconds(entry.updated), xml)


def is_kept(entry: Entry) -> bool:
    """Whether a rendered entry may be stored for later builds (not with a local image:
    its length is read from the file at each render)."""
    return entry.image is None or entry.image.length is None


def microseconds(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def from_microseconds(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


def text(value: str) -> str:
    """Character data as lxml writes it: &, < and > escaped (quotes are left alone)."""
    if "&" in value or "<" in value or ">" in value:  # most short fields have none
        return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return value


def attribute(value: str) -> str:
    """An attribute value as lxml writes it in double quotes."""
    value = text(value)
    if '"' in value:
        value = value.replace('"', "&quot;")
    if "\t" in value or "\n" in value or "\r" in value:
        value = value.replace("\t", "&#9;").replace("\n", "&#10;").replace("\r", "&#13;")
    return value


def link(href: str, rel: str, kind: str | None = None, indent: str = "  ") -> str:
    kind_part = f' type="{attribute(kind)}"' if kind else ""
    return f'{indent}<link href="{attribute(href)}" rel="{rel}"{kind_part}/>\n'


def atom_entry(entry: Entry, section_scheme: str) -> str:
    """One <entry>, as feedgen writes it with PublisherEntry's corrected links."""
    published = entry.published.isoformat()
    updated = published if entry.updated == entry.published else entry.updated.isoformat()
    via = link(entry.via, "via", "text/html", "    ") if entry.via else ""
    enclosure = enclosure_link(entry.image) if entry.image else ""
    # Section names are [a-z0-9-] (make_entry drops any other): nothing to escape.
    scheme = attribute(section_scheme)
    categories = "".join([f'    <category term="{section}" scheme="{scheme}"/>\n'
                          for section in entry.sections])
    # The summary is plain text, written as escaped HTML: escaped twice.
    return (f"  <entry>\n    <id>{text(entry.id)}</id>\n    <title>{text(entry.title)}</title>\n"
            f"    <updated>{updated}</updated>\n"
            f"    <author>\n      <name>{text(entry.author)}</name>\n    </author>\n"
            f'    <content type="html">{text(entry.content_html)}</content>\n'
            f'    <link href="{attribute(entry.url)}" rel="alternate" type="text/html"/>\n'
            f'{via}{enclosure}    <summary type="html">{text(text(entry.summary))}</summary>\n'
            f"{categories}    <published>{published}</published>\n  </entry>\n")


def enclosure_link(image: Image) -> str:
    kind = f' type="{attribute(image.type)}"' if image.type else ""
    length = f' length="{image.length}"' if image.length is not None else ""
    return f'    <link rel="enclosure" href="{attribute(image.url)}"{kind}{length}/>\n'


def archive_document(channel: Channel, entries: Sequence[RenderedEntry]) -> bytes:
    """An archive page: the live feed's head plus the RFC 5005 links, then its entries
    (already rendered, newest first)."""
    head = [
        "<?xml version='1.0' encoding='UTF-8'?>\n",
        f'<feed xmlns="{ATOM_NS}" xmlns:fh="{HISTORY_NS}" '
        f'xml:lang="{attribute(channel.language)}">\n',
        f"  <id>{text(channel.feed_id)}</id>\n",
        f"  <title>{text(channel.title)}</title>\n",
        f"  <updated>{channel.updated.isoformat()}</updated>\n",
        f"  <author>\n    <name>{text(channel.author)}</name>\n  </author>\n",
        link(channel.self_url, "self", ATOM_TYPE),
        link(channel.current or "", "current", ATOM_TYPE),
    ]
    if channel.prev_archive:
        head.append(link(channel.prev_archive, "prev-archive", ATOM_TYPE))
    if channel.next_archive:
        head.append(link(channel.next_archive, "next-archive", ATOM_TYPE))
    head += [
        link(channel.home, "alternate", "text/html"),
        f'  <generator version="{__version__}">{GENERATOR}</generator>\n',
        f"  <subtitle>{text(channel.description or channel.title)}</subtitle>\n",
        "  <fh:archive/>\n",
    ]
    start = "".join(head).encode().translate(None, CONTROL_BYTES)
    return b"".join([start, *[entry.xml for entry in entries], b"</feed>\n"])
