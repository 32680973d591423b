"""Delivery: the Jinja2 templates of every message (digest, welcome, confirmation,
edition) and their checks.

An instance's own `templates/NAME` overrides the shipped one by name. Templates render
with StrictUndefined, so a misspelt variable is an error that `publisher digest check`
reports as file:line, not an empty string in thousands of inboxes.

Words that change with a number ("1 new article", "3 new articles") go through Jinja2's
i18n extension: `{% trans count=n %}...{% pluralize %}...{% endtrans %}` is gettext's
ngettext, so a catalog for [site] language (the instance's
locale/LANG/LC_MESSAGES/publisher.mo) brings its own plural rules (its Plural-Forms: one
form in Japanese, three in Polish) rather than an English "add an s" written in code.
Without a catalog the template's own English words are used.
"""

from __future__ import annotations

import gettext
import html
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

import css_inline
import jinja2
import markupsafe
import nh3
from markupsafe import Markup

from publisher import templating
from publisher.config import Settings
from publisher.errors import TemplateError
from publisher.feeds.model import absolute_links, article_path, edition_path
from publisher.store.editions import StoredEdition
from publisher.templating import shipped_templates, template_folders

# Every message kind and the templates it renders; `digest check` renders all of them.
MESSAGE_TEMPLATES = {
    "digest": ("digest.txt", "digest.html", "digest_subject.txt"),
    "welcome": ("welcome.txt", "welcome.html"),
    "confirm": ("confirm.txt", "confirm.html"),
    "edition": ("edition.txt", "edition.html"),
}
# Where a translation catalog is looked for: INSTANCE/locale/LANG/LC_MESSAGES/publisher.mo
LOCALE_FOLDER, CATALOG = "locale", "publisher"
# What `publisher init` wrote as [digest] subject before the subject was a template;
# read as empty (the template), which says "1 new article" where this said "1 new articles".
OLD_DEFAULT_SUBJECT = "{site_title}: {n} new articles"


def environment(settings: Settings) -> jinja2.Environment:
    return _environment(tuple(template_folders(settings)), settings.path(LOCALE_FOLDER),
                        settings.site.language)


@lru_cache(maxsize=8)  # one per instance: templates are compiled once, reloaded if edited
def _environment(folders: tuple[Path, ...], locale: Path, language: str) -> jinja2.Environment:
    env = templating.environment(folders, trim=True)
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_translations(catalog(locale, language), newstyle=True)
    env.filters["datetime"] = format_datetime
    return env


def catalog(locale: Path, language: str) -> gettext.NullTranslations:
    """The instance's catalog for `language` (pt-BR finds pt_BR, then pt), else none."""
    languages = [language.replace("-", "_"), language.split("-")[0]]
    try:
        return gettext.translation(CATALOG, localedir=locale, languages=languages,
                                   fallback=True)
    except (OSError, ValueError) as exc:  # a damaged .mo file: say so, send in English
        raise TemplateError(f"{locale}: the translation catalog for {language} cannot be "
                            f"read: {exc}") from exc


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
                   subscriber: Mapping[str, str], links: Mapping[str, str],
                   note: Mapping[str, str] | None = None) -> dict:
    """What digest.txt and digest.html see. `subscriber` has name and email; `links`
    has unsubscribe_url, preferences_url and view_url (the page of this digest on the
    web; empty on that page itself and in previews); `note` the editor's note in force
    when the digest was queued ("html", already sanitized, and "text"), or None."""
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
        "note": note_context(note),
        "postal_address": settings.mail.postal_address,
        "view_url": "",
        **links,
    }


def note_context(note: Mapping[str, str] | None) -> dict | None:
    if not note:
        return None
    # The note's HTML was sanitized by nh3 when it was read (digests.note).
    return {"html": markupsafe.Markup(note["html"]), "text": note["text"]}


def welcome_context(settings: Settings, subject: str, subscriber: Mapping[str, str],
                    articles: list[dict], links: Mapping[str, str], schedule: str,
                    sections: list[str]) -> dict:
    """What welcome.txt and welcome.html see: the digest's names, and `schedule` (a
    sentence saying when digests come) and `sections` (theirs; empty: every section)."""
    return {
        "site": site_context(settings),
        "subscriber": dict(subscriber),
        "articles": articles,
        "subject": subject,
        "preheader": f"You are subscribed to {settings.site.title}.",
        "schedule": schedule,
        "sections": sections,
        "postal_address": settings.mail.postal_address,
        **links,
    }


def edition_url(settings: Settings, slug: str) -> str:
    """The edition's public page, as the feeds stage writes it (view in your browser)."""
    return urljoin(settings.site.base_url, edition_path(slug))


def edition_context(settings: Settings, edition: StoredEdition, articles: list[dict],
                    subscriber: Mapping[str, str], links: Mapping[str, str]) -> dict:
    """What edition.txt and edition.html see. `body_html` was sanitized (nh3) when the
    file was read, so it is passed through as markup; `body_text` is its Markdown."""
    text = " ".join(html.unescape(nh3.clean(edition.body_html, tags=set())).split())
    return {
        "site": site_context(settings),
        "subscriber": dict(subscriber),
        "subject": edition.subject,
        # A mail program has no base URL: relative links are read against the site.
        "body_html": Markup(absolute_links(edition.body_html, settings.site.base_url,
                                           edition_url(settings, edition.slug))),
        "body_text": edition.body_text,
        "articles": articles,
        "date": edition.published.astimezone(ZoneInfo(settings.site.timezone))
        if edition.published else None,
        "web_url": edition_url(settings, edition.slug),
        "preheader": text[:140],
        "postal_address": settings.mail.postal_address,
        **links,
    }


def confirm_context(settings: Settings, subject: str, subscriber: Mapping[str, str],
                    confirm_url: str) -> dict:
    return {"site": site_context(settings), "subscriber": dict(subscriber),
            "subject": subject, "confirm_url": confirm_url,
            "confirm_hours": settings.web.confirm_hours,
            "preheader": f"Confirm your subscription to {settings.site.title}"}


def digest_subject(settings: Settings, n: int) -> str:
    """[digest] subject with {site_title} and {n} filled in; when it is empty (the
    default), the template digest_subject.txt, whose plural is the catalog's."""
    subject = settings.digest.subject
    if subject and subject != OLD_DEFAULT_SUBJECT:
        try:
            return subject.format(site_title=settings.site.title, n=n)
        except (KeyError, IndexError, ValueError) as exc:
            raise TemplateError(f"setting digest.subject = {subject!r}: only {{site_title}} "
                                f"and {{n}} can be filled in ({exc})") from exc
    return one_line(render(settings, "digest_subject.txt",
                           {"site": site_context(settings), "n": n}))


def one_line(text: str) -> str:
    """A rendered subject as one header line: every run of white space one space."""
    return " ".join(text.split())


def welcome_subject(settings: Settings) -> str:
    return f"Welcome to {settings.site.title}"


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


SAMPLE_EDITION = StoredEdition(
    id=0, slug="spring-letter", content_hash="0" * 64, subject="Our spring letter",
    sections=(), frequencies=(), send_at=datetime(2026, 11, 24, 9, tzinfo=UTC),
    body_html="<p>Dear readers, <em>thank you</em> &amp; welcome.</p><h2>What’s next</h2>"
              "<p><a href=\"https://example.org/\">A link</a></p>",
    body_text="Dear readers, *thank you* & welcome.\n\n## What’s next\n",
    article_seqs=(), queued_at=datetime(2026, 11, 24, 9, tzinfo=UTC))


def sample_contexts(settings: Settings) -> dict[str, dict]:
    """Each message kind's context filled with sample data covering the edge cases."""
    articles = [article_context(settings, a) for a in SAMPLES]
    subscriber = {"name": "Ada Lovelace", "email": "ada@example.org"}
    links = {"unsubscribe_url": settings.site.base_url + "unsubscribe/SAMPLE",
             "preferences_url": settings.site.base_url + "preferences/SAMPLE"}
    note = {"html": "<p>A <strong>sample</strong> note from the editor.</p>",
            "text": "A sample note from the editor."}
    return {
        "digest": digest_context(settings, articles, 3, digest_subject(settings, 5),
                                 subscriber, {**links, "view_url": settings.site.base_url
                                              + "view/SAMPLE"}, note),
        "welcome": welcome_context(settings, welcome_subject(settings), subscriber, articles,
                                   links, "A digest comes every day at 07:00 (UTC) when "
                                   "something is new.", ["world"]),
        "confirm": confirm_context(settings, confirm_subject(settings), subscriber,
                                   settings.site.base_url + "confirm/SAMPLE"),
        "edition": edition_context(settings, SAMPLE_EDITION, articles, subscriber, links),
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
