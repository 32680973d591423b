"""Feeds stage: the stored articles as feeds and pages in the publish folder.

    build_feeds(settings, store, now) -> FeedsReport

writes, under [feeds] folder: rss.xml, atom.xml and feed.json with the newest [feeds]
items articles by date (and the same three under sections/<name>/ for every section), RFC 5005
archive pages (archive/<n>.xml) for the older ones, and the pages readers land on:
index.html, sections/<name>/index.html and articles/<slug>.html. A build looks only at
what changed since the last one (changes.py; nothing new: no article read, no file
written). Files are written atomically and only when their bytes change; with [feeds]
hub set, the hub hears about every live feed that changed. Nothing here depends on
`now`: the same store gives the same bytes at any time, which is what keeps unchanged
files unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from publisher.config import Settings
from publisher.feeds.build import Build, paused_collector, publish_feeds, publish_pages
from publisher.feeds.changes import (
    damaged,
    full_state,
    read_changes,
    read_state,
    state_after,
    write_state,
)
from publisher.feeds.editions import editions_stamp
from publisher.feeds.model import Site
from publisher.feeds.output import Output
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
    """A full build: read what it needs to decide what is stale; writes nothing yet."""
    return new_build(settings, store).read_everything()


def new_build(settings: Settings, store: Store, output: Output | None = None) -> Build:
    return Build(Site.from_settings(settings), store, template_env(settings),
                 template_folders(settings), processes=settings.feeds.processes,
                 output=output)


def build_feeds(settings: Settings, store: Store, now: datetime,
                show: ProgressDisplay = quiet, full: bool = False) -> FeedsReport:
    """Build what changed since the last build of the folder (changes.py); `full`:
    every file, checked against the manifest."""
    with paused_collector():
        folder = settings.path(settings.feeds.folder)
        change = store.articles.last_change()  # first: what lands later, the next build sees
        build = new_build(settings, store, Output(folder, records={}))
        store_id = str(build.empty_since)
        editions = repr(editions_stamp(build))
        state = None if full else read_state(folder)
        if state and state.usable(build.layout, store_id, change, folder):
            broken = damaged(folder, state.hot)
            # A newly started edition changes no article, but its page, the editions
            # feeds and the index must appear: the editions are part of what was built.
            if change == state.change and not broken and state.editions == editions:
                log.info("feeds: nothing changed (at %s)", now.isoformat())
                return FeedsReport(unchanged=state.files)
            build.output = Output(folder, records={path: record for path, record
                                                   in state.hot.items() if path not in broken})
            after = read_changes(build, state, repair=bool(broken))
        else:
            build.output = Output(folder)
            build.read_everything()
            after = full_state(build, build.layout, store_id)
        # Pages first: a build stopped part way (killed, a template failing) must not
        # leave a feed or an index linking an article page not yet written.
        publish_pages(build, show)
        publish_feeds(build)
        build.output.save()
        if not build.output.partial:
            after.files = len(build.output.records)
        after.editions = editions
        write_state(folder, state_after(build, after, change))
    report = FeedsReport(written=len(build.output.written),
                         unchanged=after.files - len(build.output.written),
                         feeds_changed=len(build.changed_feeds))
    if settings.feeds.hub and build.changed_feeds:
        report.hub_accepted = ping_hub(settings.feeds.hub, build.changed_feeds)
    log.info("%s (at %s)", report.line(), now.isoformat())
    return report
