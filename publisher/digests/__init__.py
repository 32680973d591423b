"""Digests stage: who is due, what each digest holds, queuing it in the outbox.

    planner.queue_digests(settings, store, now) -> DigestReport
"""
