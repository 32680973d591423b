"""Feeds stage, pages: the HTML the feeds link to, rendered from templates/pages/.

index.html (the latest articles, every feed with autodiscovery links, the subscribe
form), sections/<name>/index.html, articles/<slug>.html for every article, and the
style sheet they share. Jinja2 escapes every value (autoescape); the only markup passed
through is an article's body, which the parsers sanitized when it was stored.

Pages link to each other with relative URLs, so the folder also reads from disk; feed
links, canonical links and the subscribe form's action are absolute ([site] url).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import feedgen.version
import jinja2

from publisher import __version__
from publisher.errors import TemplateError
from publisher.feeds.model import (
    ATOM,
    FEED_FILES,
    FEED_NAMES,
    JSON,
    RSS,
    Entry,
    Site,
    section_path,
    section_title,
)
from publisher.templating import STYLE_SHEET, ZONE_SCRIPT, style_sheet

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
STYLE = STYLE_SHEET  # its name in the publish folder too
FREQUENCIES = (("daily", "Daily digest"), ("weekly", "Weekly digest"),
               ("instant", "Every new article"))


@dataclass(frozen=True)
class FeedLink:
    title: str
    type: str
    url: str
    format: str


@dataclass(frozen=True)
class Section:
    name: str
    title: str
    path: str  # relative to the publish folder, ends in "/"
    count: int


def feed_links(site: Site, prefix: str, title: str) -> list[FeedLink]:
    """The three feeds published under `prefix` ("" or a section's folder)."""
    return [FeedLink(f"{title} ({FEED_NAMES[name]})", FEED_FILES[name],
                     site.url_of(prefix + name), FEED_NAMES[name])
            for name in (ATOM, RSS, JSON)]


def sections_of(counts: dict[str, int]) -> list[Section]:
    return [Section(name, section_title(name), section_path(name), count)
            for name, count in counts.items()]


class Pages:
    """Renders the pages of one build with the instance's templates."""

    def __init__(self, env: jinja2.Environment, site: Site):
        self.site = site
        # Templates cannot change during a build: no up-to-date check (a stat) per page.
        self.env = env.overlay(trim_blocks=True, lstrip_blocks=True, auto_reload=False)
        self.templates: dict[str, jinja2.Template] = {}
        self.env.filters["local_date"] = self.local_date
        self.env.filters["iso"] = html_time
        self.env.globals.update(site=site, site_feeds=feed_links(site, "", site.title),
                                style=STYLE, frequencies=FREQUENCIES, zone_script=ZONE_SCRIPT,
                                subscribe_url=site.url_of("subscribe"))

    def local_date(self, moment: datetime) -> str:
        """24 November 2026, 13:00 CET: in [site] timezone, the same in every locale."""
        local = moment.astimezone(self.site.timezone)
        return (f"{local.day} {MONTHS[local.month - 1]} {local.year}, "
                f"{local:%H:%M} {local.tzname()}")

    def index(self, entries: list[Entry], sections: list[Section], editions: list = (),
              edition_feeds: list[FeedLink] = ()) -> bytes:
        all_feeds = [feed_links(self.site, s.path, f"{self.site.title}: {s.title}")
                     for s in sections]
        # Autodiscovery for every feed: readers offer them all from the front page.
        every_feed = self.env.globals["site_feeds"] + [f for feeds in all_feeds for f in feeds]
        return self.render("pages/index.html", root="./", canonical=self.site.url,
                           entries=entries, sections=sections, section_feeds=all_feeds,
                           feeds=every_feed + list(edition_feeds), editions=list(editions),
                           edition_feeds=list(edition_feeds))

    def section(self, section: Section, entries: list[Entry],
                sections: list[Section]) -> bytes:
        feeds = feed_links(self.site, section.path, f"{self.site.title}: {section.title}")
        return self.render("pages/section.html", root="../../",
                           canonical=self.site.url_of(section.path), section=section,
                           entries=entries, sections=sections, feeds=feeds)

    def article(self, entry: Entry) -> bytes:
        sections = [Section(name, section_title(name), section_path(name), 0)
                    for name in entry.sections]
        return self.render("pages/article.html", root="../", canonical=entry.url,
                           entry=entry, sections=sections,
                           feeds=self.env.globals["site_feeds"])

    def style(self) -> bytes:
        return self.render(style_sheet(self.env, "pages/style.css"))

    def render(self, name: str, **context) -> bytes:
        try:
            if name not in self.templates:
                self.templates[name] = self.env.get_template(name)
            return self.templates[name].render(**context).encode()
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"{exc.filename or exc.name}:{exc.lineno}: "
                                f"{exc.message}") from exc
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(f"template {exc.name} not found (looked in the instance's "
                                "templates/ and the shipped ones)") from exc
        except jinja2.TemplateError as exc:
            raise TemplateError(f"{template_location(name)}: {exc}") from exc


# The renderer of the latest layouts, templates compiled: compiling them costs more than
# a build of one new article, and a daemon builds over and over with the same ones.
PAGES: dict[str, Pages] = {}


def pages_for(layout: str, env: jinja2.Environment, site: Site) -> Pages:
    """The renderer for this layout key (settings, templates and code: nothing else
    shapes the pages), made and compiled once per process."""
    if layout not in PAGES:
        while len(PAGES) >= 4:
            PAGES.pop(next(iter(PAGES)))
        PAGES[layout] = Pages(env, site)
    return PAGES[layout]


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


def html_time(moment: datetime) -> str:
    """For <time datetime>: HTML takes at most three digits of a second's fraction."""
    return moment.replace(microsecond=0).isoformat()


def template_location(name: str) -> str:
    """file:line of the template frame a rendering error came from (Jinja2 rewrites
    tracebacks so template lines appear as frames of the template's file)."""
    where = name
    traceback = sys.exc_info()[2]
    while traceback is not None:
        code = traceback.tb_frame.f_code
        if code.co_filename.endswith((".html", ".xml", ".css", ".txt")):
            where = f"{code.co_filename}:{traceback.tb_lineno}"
        traceback = traceback.tb_next
    return where
