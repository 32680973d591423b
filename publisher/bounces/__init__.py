"""Bounces stage: the loop back from the mail system. Bounce mail (files, Maildir, mbox,
an MTA pipe, an IMAP mailbox) and provider webhooks become events; each finds its
subscriber (VERP tag first) and applies the policy that digests and editions read:
hard bounces and complaints stop mail at once, soft ones after [bounces] soft_limit.

Entry points: `read_paths` (the `publisher bounces read` command), `bounces_stage`
(pruning and the IMAP mailbox: a pipeline and daemon stage), `handle` (one event, for
the webhooks).
"""

from publisher.bounces.handle import Event, Outcome, event_of_message, handle
from publisher.bounces.imap import ImapReport, bounces_stage, fetch_imap
from publisher.bounces.sources import read_paths

__all__ = ["Event", "ImapReport", "Outcome", "bounces_stage", "event_of_message",
           "fetch_imap", "handle", "read_paths"]
