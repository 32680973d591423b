"""Web: a subscriber's private Atom feed, holding the articles of their digests.

For people who would rather read their newsletter in a feed reader: the same articles
their digests held (their frequency, their sections), newest digest first, at most
[feeds] items of them, written by the feeds stage's own Atom writer so entries look as
they do in the public feeds (same ids, links, content). The bytes depend only on what
is stored (updated is the newest entry's time, never now), so the ETag holds until a new
digest is made.
"""

from __future__ import annotations

from urllib.parse import urljoin

from publisher.config import Settings
from publisher.feeds.build import web_slug
from publisher.feeds.model import Channel, Site, make_entry, newest_update
from publisher.feeds.rss_atom import atom_document, feed_entry
from publisher.store import Store
from publisher.store.subscribers import Subscriber
from publisher.web.http import Representation


def site_url(settings: Settings, path: str = "") -> str:
    return urljoin(settings.site.base_url, path)


def private_feed(settings: Settings, store: Store, subscriber: Subscriber,
                 self_url: str) -> Representation:
    site = Site.from_settings(settings)
    seqs = store.subscribers.digested_seqs(subscriber.id, settings.feeds.items)
    found = {}
    for article in store.articles.published(seqs):
        slug = web_slug(article.slug, article.id)
        found[article.seq] = make_entry(article._replace(slug=slug), site)
    # An article deleted since its digest went out is simply left out.
    entries = [found[seq] for seq in seqs if seq in found]
    channel = Channel(
        title=f"{site.title}: your digest",
        description=f"The articles of the digests {site.title} sent to {subscriber.email}.",
        home=site.url, self_url=self_url,
        # Stable whatever token the URL carries (links can be renewed), never reused.
        feed_id=site.url_of(f"s/digests/{subscriber.id}"),
        language=site.language, author=site.author, hub="",
        updated=newest_update(entries, default=subscriber.created_at))
    body = atom_document(channel, [(feed_entry(entry, site.url_of("sections/")), entry)
                                   for entry in entries])
    return Representation(body=body, media_type="application/atom+xml; charset=utf-8",
                          last_modified=channel.updated, cache_control="private, no-cache",
                          extra_headers={"X-Robots-Tag": "noindex"})
