"""Web: a subscriber's private Atom feed, holding the articles of their digests.

For people who would rather read their newsletter in a feed reader: the same articles
their digests held (their frequency, their sections), newest digest first, at most
[feeds] items of them. The bytes depend only on what is stored (updated is the newest
entry's time, not now), so the ETag holds until a new digest is made.
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

from feedgen.feed import FeedGenerator

from publisher.article import StoredArticle
from publisher.config import Settings
from publisher.store import Store
from publisher.store.subscribers import Subscriber
from publisher.web.http import Representation


def site_url(settings: Settings, path: str = "") -> str:
    base = settings.site.url if settings.site.url.endswith("/") else settings.site.url + "/"
    return urljoin(base, path)


def article_url(settings: Settings, article: StoredArticle) -> str:
    return site_url(settings, f"articles/{article.slug}.html")


def feed_id(settings: Settings, subscriber: Subscriber) -> str:
    """Stable for the subscriber whatever token the URL carries (links can be renewed)."""
    host = urlsplit(settings.site.url).hostname or "localhost"
    return f"tag:{host},{subscriber.created_at:%Y-%m-%d}:digests/{subscriber.id}"


def private_feed(settings: Settings, store: Store, subscriber: Subscriber,
                 self_url: str) -> Representation:
    articles = store.subscribers.digested_articles(subscriber.id, settings.feeds.items)
    fg = FeedGenerator()
    fg.id(feed_id(settings, subscriber))
    fg.title(f"{settings.site.title}: your digest")
    fg.subtitle(f"The articles of the digests {settings.site.title} sent to "
                f"{subscriber.email}.")
    fg.author({"name": settings.site.author})
    fg.link(href=self_url, rel="self", type="application/atom+xml")
    fg.link(href=site_url(settings), rel="alternate", type="text/html")
    fg.language(settings.site.language)
    updated = max((a.updated for a in articles), default=subscriber.created_at)
    fg.updated(updated)
    for article in articles:
        # feedgen prepends by default; append keeps the newest first, as stored.
        entry = fg.add_entry(order="append")
        # The article page's URL never changes (slugs are fixed once stored).
        entry.id(article_url(settings, article))
        entry.title(article.title)
        entry.link(href=article_url(settings, article), rel="alternate", type="text/html")
        entry.published(article.published)
        entry.updated(article.updated)
        entry.author({"name": article.author or settings.site.author})
        if article.summary:
            entry.summary(article.summary)
        entry.content(article.body_html, type="html")
        for section in article.sections:
            entry.category(term=section)
    body = fg.atom_str(pretty=True)
    return Representation(body=body, media_type="application/atom+xml; charset=utf-8",
                          last_modified=updated, cache_control="private, no-cache",
                          extra_headers={"X-Robots-Tag": "noindex"})
