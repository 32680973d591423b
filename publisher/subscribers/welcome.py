"""Subscribers: the welcome mail, queued when someone becomes a subscriber.

Who gets one: whoever confirms a subscription (the link in the confirmation mail), and
whoever an operator or a program adds as already confirmed one at a time (`subscribers
add --confirmed`, the API's `double_opt_in: false`, the console), unless told not to.
Not: people imported from a CSV file (moved from another tool, they are not new), nor
anyone coming back (the preferences page's "Subscribe again", `set --status active`):
a subscriber is welcomed once, ever (store: subscribers.welcomed_at, set in the
transaction that queues the mail). `[digest] welcome = false` turns it off.

The message goes through the outbox like every other: rendered at send time from
templates/welcome.txt and welcome.html, with the latest `[digest] welcome_articles`
articles of their sections (chosen when it is queued) as cards, its Message-ID
`<welcome-ID.TAG@DOMAIN>` fixed. `publisher run`, the daemon and `publisher serve`
(right after the confirming POST) send it.
"""

from __future__ import annotations

from publisher.config import Settings
from publisher.digests.planner import digest_message_id_parts
from publisher.store import Store
from publisher.store.subscribers import Welcome


def welcome_for(settings: Settings, store: Store, sections: tuple[str, ...] = ()
                ) -> Welcome | None:
    """The welcome mail to queue with a confirmation, or None when [digest] welcome is
    off. Its articles: the newest `[digest] welcome_articles` of `sections` (empty:
    every section), newest first."""
    if not settings.digest.welcome:
        return None
    wanted = settings.digest.welcome_articles
    max_seq = store.articles.max_seq()
    seqs: list[int] = []
    if wanted and max_seq:
        seqs, _ = store.ledger.article_lookup(
            lambda lookup: lookup.matching(0, max_seq, tuple(sorted(sections)), wanted))
    _, suffix = digest_message_id_parts(settings)
    return Welcome(message_id=("<welcome-", suffix), payload={"articles": list(seqs)})
