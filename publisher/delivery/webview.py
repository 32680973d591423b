"""Delivery: a digest as its reader's web page ("view in your browser").

The page is the digest's own HTML template rendered again from what is stored: the
digest row (its articles, "and N more", the editor's note it was queued with) and its
subscriber (name, address, links). Only that subscriber's data is read, and only when
the link's version is theirs (`set --new-links` revokes the page with every other link).
"""

from __future__ import annotations

from datetime import datetime

from publisher import tokens
from publisher.config import Settings
from publisher.delivery.templates import article_context, digest_context, digest_subject, render
from publisher.store import Store


def digest_page(settings: Settings, store: Store, digest_id: int, version: int,
                now: datetime) -> str | None:
    """The HTML of digest `digest_id` for its subscriber, or None when there is no such
    digest (any more: sent ones are forgotten after [mail] keep_days) or the link's
    version is not the subscriber's."""
    digest = store.notes.digest(digest_id)
    if digest is None:
        return None
    subscriber = store.subscribers.by_id(digest.subscriber_id)
    if subscriber is None or subscriber.token_version != version:
        return None
    found = store.ledger.articles_by_seq(digest.article_seqs)
    articles = [article_context(settings, found[seq]) for seq in digest.article_seqs
                if seq in found]
    note = store.notes.by_id(digest.note_id) if digest.note_id is not None else None
    links = {purpose + "_url": tokens.link(settings, purpose, subscriber.id,
                                           subscriber.token_version, now=now)
             for purpose in ("unsubscribe", "preferences")}
    context = digest_context(settings, articles, digest.more,
                             digest_subject(settings, len(articles) + digest.more),
                             {"name": subscriber.name, "email": subscriber.email},
                             {**links, "view_url": ""}, note)
    return render(settings, "digest.html", context)
