"""Subscribers stage: joining, confirming, preferences and leaving.

    rules.py          every value a person or a file gives, checked once (request_subscription, ...)
    confirmations.py  the double opt-in mail, queued in the outbox
    csv_io.py         CSV import and export
"""
