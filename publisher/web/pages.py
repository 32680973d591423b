"""Web: the HTML pages the app renders itself (forms, confirmations, errors).

Templates live in templates/web/ (an instance's own templates/web/NAME overrides the
shipped one, as publisher.templating arranges) and are autoescaped. Every page carries a
strict Content-Security-Policy: no scripts at all, styles only from our stylesheet, forms
only to this site.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import jinja2
from starlette.background import BackgroundTask
from starlette.responses import HTMLResponse

from publisher.config import Settings
from publisher.errors import TemplateError
from publisher.templating import template_env


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def base_path(settings: Settings) -> str:
    """The path the site lives under ([site] url's), for links between our pages."""
    return urlsplit(settings.site.base_url).path


class Pages:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.env = template_env(settings)
        site_origin = origin(settings.site.url)
        self.headers = {
            "Content-Security-Policy": (
                "default-src 'none'; style-src 'self'; img-src 'self' data:; "
                f"form-action 'self' {site_origin}; base-uri 'none'; frame-ancestors 'none'"),
            "Referrer-Policy": "same-origin",  # link tokens never leave in a Referer
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Cache-Control": "no-store",  # pages hold personal data and one-time forms
        }

    def render(self, name: str, status: int = 200, headers: dict | None = None,
               background: BackgroundTask | None = None, **context) -> HTMLResponse:
        try:
            html = self.env.get_template(f"web/{name}").render(
                site=self.settings.site, base=base_path(self.settings), **context)
        except jinja2.TemplateError as exc:
            where = getattr(exc, "filename", None) or name
            line = getattr(exc, "lineno", None)
            raise TemplateError(f"{where}{f':{line}' if line else ''}: {exc}") from exc
        return HTMLResponse(html, status_code=status, background=background,
                            headers={**self.headers, **(headers or {})})

    def message(self, status: int, title: str, text: str, headers: dict | None = None,
                **context) -> HTMLResponse:
        """A page that only tells something: errors, and 'check your inbox'."""
        context.setdefault("hint", "")
        return self.render("message.html", status=status, headers=headers, title=title,
                           text=text, **context)

    def stylesheet(self) -> str:
        return self.env.get_template("web/style.css").render()
