"""Delivery: the Jinja2 templates of every message (digest, confirmation) and their checks.

An instance's own `templates/NAME` overrides the shipped one by name. Templates render
with StrictUndefined, so a misspelt variable is an error that `publisher digest check`
reports as file:line, not an empty string in thousands of inboxes.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from urllib.parse import urljoin

import css_inline
import jinja2

from publisher import templating
from publisher.config import Settings
from publisher.errors import TemplateError
from publisher.feeds.model import article_path
from publisher.templating import shipped_templates, template_folders

# Every message kind and the templates it renders; `digest check` renders all of them.
MESSAGE_TEMPLATES = {
    "digest": ("digest.txt", "digest.html"),
    "confirm": ("confirm.txt", "confirm.html"),
}


def environment(settings: Settings) -> jinja2.Environment:
    return _environment(tuple(template_folders(settings)))


@lru_cache(maxsize=8)  # one per instance: templates are compiled once, reloaded if edited
def _environment(folders: tuple[Path, ...]) -> jinja2.Environment:
    env = templating.environment(folders, trim=True)
    env.filters["datetime"] = format_datetime
    return env


def format_datetime(value: datetime | None, fmt: str = "%d %b %Y") -> str:
    return value.strftime(fmt) if value else ""


# css-inline keeps @media rules (dark mode) in a <style> tag and never fetches anything.
INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


def inline_css(html: str) -> str:
    return INLINER.inline(html)


def render(settings: Settings, name: str, context: Mapping) -> str:
    """Render one template; any failure becomes a TemplateError naming file:line."""
    env = environment(settings)
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"{exc.filename or name}:{exc.lineno}: {exc.message}") from exc
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(f"{name}: template {exc.name} not found in "
                            f"{settings.path('templates')} or {shipped_templates()}") from exc
    except Exception as exc:
        raise TemplateError(f"{where(env, name, exc)}: {type(exc).__name__}: {exc}") from exc


def where(env: jinja2.Environment, name: str, exc: BaseException) -> str:
    """file:line of the innermost template frame of a render error."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if f.filename.endswith(TEMPLATE_SUFFIXES)]
    if frames:
        return f"{frames[-1].filename}:{frames[-1].lineno}"
    try:
        return env.get_template(name).filename or name
    except jinja2.TemplateError:
        return name


TEMPLATE_SUFFIXES = (".html", ".txt", ".htm", ".xml")


# ---------------------------------------------------------------- template contexts
def site_context(settings: Settings) -> dict:
    return {"title": settings.site.title, "url": settings.site.base_url,
            "description": settings.site.description, "language": settings.site.language}


def article_url(settings: Settings, slug: str) -> str:
    """The article's archive page, as the feeds stage writes it."""
    return urljoin(settings.site.base_url, article_path(slug))


def article_context(settings: Settings, article) -> dict:
    image = article.image
    if image and not image.startswith(("http://", "https://")):
        image = urljoin(settings.site.base_url, image)
    return {
        "title": article.title, "url": article_url(settings, article.slug),
        "summary": article.summary, "image": image or None,
        "image_alt": article.caption or article.title,
        "author": article.author, "published": article.published,
        "sections": list(article.sections), "link": article.link,
    }


def digest_context(settings: Settings, articles: list[dict], more: int, subject: str,
                   subscriber: Mapping[str, str], links: Mapping[str, str]) -> dict:
    """What digest.txt and digest.html see. `subscriber` has name and email; `links`
    has unsubscribe_url and preferences_url."""
    titles = ", ".join(a["title"] for a in articles[:3])
    return {
        "site": site_context(settings),
        "subscriber": dict(subscriber),
        "articles": articles,
        "n": len(articles) + more,
        "more": more,
        "more_url": settings.site.base_url,
        "subject": subject,
        "preheader": titles,
        **links,
    }


def confirm_context(settings: Settings, subject: str, subscriber: Mapping[str, str],
                    confirm_url: str) -> dict:
    return {"site": site_context(settings), "subscriber": dict(subscriber),
            "subject": subject, "confirm_url": confirm_url,
            "confirm_hours": settings.web.confirm_hours,
            "preheader": f"Confirm your subscription to {settings.site.title}"}


def digest_subject(settings: Settings, n: int) -> str:
    try:
        return settings.digest.subject.format(site_title=settings.site.title, n=n)
    except (KeyError, IndexError, ValueError) as exc:
        raise TemplateError(f"setting digest.subject = {settings.digest.subject!r}: "
                            f"only {{site_title}} and {{n}} can be filled in ({exc})") from exc


def confirm_subject(settings: Settings) -> str:
    return f"Confirm your subscription to {settings.site.title}"


# ---------------------------------------------------------------- the check
@dataclass(frozen=True)
class SampleArticle:
    title: str
    slug: str
    summary: str
    image: str | None
    caption: str | None
    author: str | None
    sections: tuple[str, ...]
    published: datetime
    link: str | None = None


SAMPLES = (
    SampleArticle("Harbour Reopens After the Storm", "harbour-reopens",
                  "Boats returned to the quay on Monday morning.",
                  "https://images.example.org/harbour.jpg", "The quay at dawn. (AP)",
                  "Mara Okafor", ("world",), datetime(2026, 11, 23, 8, tzinfo=UTC)),
    SampleArticle("مهرجان الجوقة يعود إلى المدينة", "choir-festival",
                  "Singers from twelve towns — and “curly quotes” & ampersands.",
                  None, None, None, ("culture",), datetime(2026, 11, 22, 18, tzinfo=UTC)),
)


def sample_contexts(settings: Settings) -> dict[str, dict]:
    """Each message kind's context filled with sample data covering the edge cases."""
    articles = [article_context(settings, a) for a in SAMPLES]
    subscriber = {"name": "Ada Lovelace", "email": "ada@example.org"}
    links = {"unsubscribe_url": settings.site.base_url + "unsubscribe/SAMPLE",
             "preferences_url": settings.site.base_url + "preferences/SAMPLE"}
    return {
        "digest": digest_context(settings, articles, 3, digest_subject(settings, 5),
                                 subscriber, links),
        "confirm": confirm_context(settings, confirm_subject(settings), subscriber,
                                   settings.site.base_url + "confirm/SAMPLE"),
    }


def check_templates(settings: Settings) -> list[str]:
    """Render every message template against sample data; the problems, as file:line."""
    problems = []
    try:
        contexts = sample_contexts(settings)
    except TemplateError as exc:
        return [str(exc)]
    for kind, names in MESSAGE_TEMPLATES.items():
        for name in names:
            try:
                output = render(settings, name, contexts[kind])
                if name.endswith(".html"):
                    inline_css(output)
            except TemplateError as exc:
                problems.append(str(exc))
            except ValueError as exc:  # css-inline: unparsable CSS
                problems.append(f"{name}: CSS cannot be inlined: {exc}")
    return problems


def require_templates(settings: Settings) -> None:
    """Refuse to send when any template is broken; the error names each problem."""
    problems = check_templates(settings)
    if problems:
        raise TemplateError("broken mail template, nothing sent: " + "; ".join(problems))
