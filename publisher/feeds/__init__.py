"""Feeds stage: the stored articles as feeds and pages in the publish folder.

    build_feeds(settings, store, now) -> FeedsReport

writes, under [feeds] folder: rss.xml, atom.xml and feed.json with the newest [feeds]
items articles (and the same three under sections/<name>/ for every section), RFC 5005
archive pages (archive/<n>.xml) for the older ones, and the pages readers land on:
index.html, sections/<name>/index.html and articles/<slug>.html. Files are written
atomically and only when their bytes change; with [feeds] hub set, the hub hears about
every live feed that changed. Nothing here depends on `now`: the same store gives the
same bytes at any time, which is what keeps unchanged files unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from publisher.config import Settings
from publisher.feeds.build import Build, paused_collector, publish_feeds, publish_pages
from publisher.feeds.model import Site
from publisher.feeds.websub import ping_hub
from publisher.ops.progress import ProgressDisplay, quiet
from publisher.store import Store
from publisher.templating import template_env, template_folders

log = logging.getLogger(__name__)

__all__ = ["FeedsReport", "build_feeds", "start_build"]


@dataclass
class FeedsReport:
    written: int = 0
    unchanged: int = 0
    feeds_changed: int = 0  # live feeds written (the ones a WebSub hub hears about)
    hub_accepted: int = 0

    def line(self) -> str:
        line = f"feeds: written {self.written}, unchanged {self.unchanged}"
        if self.feeds_changed and self.hub_accepted:
            line += f"; hub told of {self.hub_accepted} changed feeds"
        return line


def start_build(settings: Settings, store: Store) -> Build:
    """Read what the build needs to decide what is stale; writes nothing yet."""
    return Build(Site.from_settings(settings), store, template_env(settings),
                 template_folders(settings), processes=settings.feeds.processes)


def build_feeds(settings: Settings, store: Store, now: datetime,
                show: ProgressDisplay = quiet) -> FeedsReport:
    with paused_collector():
        build = start_build(settings, store)
        publish_feeds(build)
        publish_pages(build, show)
        build.output.save()
    report = FeedsReport(written=len(build.output.written), unchanged=build.output.unchanged,
                         feeds_changed=len(build.changed_feeds))
    if settings.feeds.hub and build.changed_feeds:
        report.hub_accepted = ping_hub(settings.feeds.hub, build.changed_feeds)
    log.info("%s (at %s)", report.line(), now.isoformat())
    return report
