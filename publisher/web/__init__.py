"""Web: `publisher serve` — the publish folder with conditional GET and gzip, and the
subscribe, confirm, preferences and one-click unsubscribe pages (see app.py)."""

from publisher.web.app import create_app

__all__ = ["create_app"]
