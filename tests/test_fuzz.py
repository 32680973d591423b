"""Fuzzing the parsers a stranger's data reaches (Hypothesis): scraped text, front matter,
upstream entries, mail to the unsubscribe box, settings.

The promise under test: each parser returns its result or raises its stage's own error
(InputError, ConfigError), never anything else, and what it returns is within bounds.
Every run is bounded (max_examples, input sizes); every input the fuzzing ever found is
kept below as an @example, so it is checked on every run whatever Hypothesis draws.
A longer campaign: PUBLISHER_FUZZ_EXAMPLES=2000 .venv/bin/python -m pytest tests/test_fuzz.py
"""

from __future__ import annotations

import json
import string
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from publisher import tokens
from publisher.article import FIRST_YEAR, LAST_YEAR, MAX_SECTIONS, Article
from publisher.config import load_settings
from publisher.errors import ConfigError, InputError
from publisher.ingest.markdown import parse_markdown
from publisher.ingest.scraped import parse_scraped
from publisher.ingest.source_entries import parse_entries
from publisher.instance import init_instance
from publisher.store import open_store
from publisher.subscribers.rules import handle_unsubscribe_mail
from tests.support.inbox import ALIAS_BOMB
from tests.support.strategies import BOUNDED, EXAMPLES, FRONT

# Each of these runs takes more than 3 s (the scraped one about that), so all are slow;
# the hostile-input tests (tests/test_hostile_*.py) keep every finding in the fast suite.
pytestmark = pytest.mark.slow
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def assert_sane(article: Article) -> None:
    assert article.title.strip() and article.id and article.slug
    assert len(article.sections) <= MAX_SECTIONS
    if article.published is not None:
        assert article.published.tzinfo is not None
        assert FIRST_YEAR <= article.published.year <= LAST_YEAR
    if article.image:  # resolved as the feeds resolve it: always http(s)
        assert urlsplit(urljoin("https://site.example/", article.image)).scheme in \
            {"http", "https"}


def parsed_or_refused(parse, *args) -> list[Article]:
    try:
        articles = parse(*args)
    except InputError as exc:
        assert exc.reason and "\n" not in exc.reason.strip()
        return []
    for article in articles:
        assert_sane(article)
    return articles


# --- scraped text ------------------------------------------------------------------------

LINES = st.sampled_from(["Title line", "A caption, ending in a credit (AP)", "TT", "20", "",
                         "Body paragraph.", "Share", "(AP)", "Title line  ", "\ufeff",
                         "مرحبا بالعالم", "“curly”", "x" * 300, "\t", "\r", "\x0c"])
SCRAPED_TEXT = st.lists(st.one_of(LINES, st.text(max_size=80)), max_size=60).map("\n".join)
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252", "utf-32", "latin-1"])


@BOUNDED
@given(st.one_of(st.binary(max_size=3000),
                 st.tuples(SCRAPED_TEXT, ENCODINGS).map(
                     lambda pair: pair[0].encode(pair[1], errors="replace"))))
@example(("Title\n\n" + "Same line\n" * 2000 + "\nBody.\n").encode())  # quadratic header
@example(bytes(range(0x80, 0x100)) * 4 + b"\n\n" + bytes(range(0x80, 0x100)) * 4)  # cp1252 noise
@example("Wide\n\nBody text here.\n".encode("utf-32"))  # UTF-32 read as UTF-16
@example(b"\xff\xfe" + b"\x00\xd8" * 10)  # UTF-16 with a lone surrogate
@example(b"T\n\n" + b"\x01" * 9 + b"\nbody")
def test_scraped_text(data):
    articles = parsed_or_refused(parse_scraped, data, "fuzz.txt")
    for article in articles:
        assert "\x00" not in article.title and article.paragraphs


# --- front matter -----------------------------------------------------------------------



@BOUNDED
@given(FRONT, st.text(max_size=200))
@example("title: T\ndate: 2026-11-22T25:61:00", "Body.")
@example("title: T\ndate: 2026-13-45", "Body.")
@example("title: T\ndate: 2026-11-22T10:00:00+99:00", "Body.")
@example("title: T\ndate: '0001-01-01T00:00:00+14:00'", "Body.")
@example("title: T\ndate: 9999-12-31T23:59:59-05:00", "Body.")
@example("title: T\nsummary: " + "[" * 20000 + "]" * 20000, "Body.")
@example(ALIAS_BOMB, "Body.")
@example("title: T\nsections: &a [*a]", "Body.")
@example("title: T\nid: " + "9" * 5000, "Body.")
@example("title: T\nsections: [" + ",".join(f"s{i}" for i in range(2000)) + "]", "Body.")
@example("title: T\nimage: 'javascript:alert(1)'", "Body.")
@example("title: T\nimage: 'java\tscript:x'", "Body.")
@example("title: [a]", "Body.")
@example("title: T\n? [a]\n: b", "Body.")
@example("title: T\nsections: 0", "Body.")
@example("title: !!binary aGk=", "Body.")
@example("title: T\nsummary: !!set {a, b}", "Body.")
@example("title: T\ndate: !!timestamp 2026-02-30", "Body.")
@example("title: T\nslug: " + "s" * 300, "Body.")
@example("title: T\n<<: {author: x}", "Body.")
@example("title: 09\nimage: :0", "0")  # a relative path under the site (this test's own bug)
def test_front_matter(front, body):
    data = f"---\n{front}\n---\n{body}".encode("utf-8", "surrogatepass")
    parsed_or_refused(parse_markdown, data, "fuzz.md")


# --- upstream entries ---------------------------------------------------------------------

DATES = st.one_of(st.sampled_from([
    "Mon, 01 Jan 0001 00:00:00 +2359", "0001-01-01T00:00:00+05:00", "0000-01-01T00:00:00Z",
    "9999-12-31T23:59:59-05:00", "Tue, 24 Nov 2026 08:00:00 GMT", "2026-02-30T00:00:00Z",
    "", "yesterday", "99999999999999999999"]), st.text(max_size=30))
URLS = st.one_of(st.sampled_from(["javascript:alert(1)", "data:image/png;base64,x",
                                  "http://[::1", "//x/y", "/rel", "mailto:a@b", "http://x/y.png",
                                  "vbscript:x", "file:///etc/passwd"]), st.text(max_size=30))
TEXT = st.text(max_size=60)


def xml_escape(text: str) -> str:
    return "".join(c for c in text if c in "\t\n\r" or c >= " ").replace("&", "&amp;") \
        .replace("<", "&lt;").replace(">", "&gt;").replace("\ud800", "")


@st.composite
def feeds(draw) -> tuple[bytes, str]:
    kind = draw(st.sampled_from(["rss", "atom", "json", "raw"]))
    entries = draw(st.lists(st.tuples(TEXT, URLS, DATES, TEXT, URLS), max_size=6))
    if kind == "raw":
        return draw(st.binary(max_size=500)), ""
    if kind == "json":
        items = [{"id": title, "title": title, "url": link, "date_published": date,
                  "content_html": body, "image": image}
                 for title, link, date, body, image in entries]
        return json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "J",
                           "items": items}).encode(), "application/feed+json"
    e = xml_escape
    if kind == "rss":
        items = "".join(f"<item><title>{e(t)}</title><link>{e(u)}</link><pubDate>{e(d)}</pubDate>"
                        f"<description>{e(b)}</description><enclosure url=\"{e(i)}\" "
                        f"type=\"image/png\"/></item>" for t, u, d, b, i in entries)
        return (f"<rss version=\"2.0\"><channel><title>R</title>{items}</channel></rss>"
                .encode(), "application/rss+xml")
    items = "".join(f"<entry><title>{e(t)}</title><id>{e(t)}</id><link href=\"{e(u)}\"/>"
                    f"<updated>{e(d)}</updated><content type=\"html\">{e(b)}</content></entry>"
                    for t, u, d, b, i in entries)
    return (f'<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>{items}</feed>'
            .encode(), "application/atom+xml")


@BOUNDED
@given(feeds())
@example((b"", ""))
@example((b"{", "application/json"))
@example((b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><title>x</title><id>i</id>'
          b"<updated>0001-01-01T00:00:00+23:59</updated></entry></feed>", ""))
@example((json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": [
    {"id": "1", "title": "x", "date_published": "0001-01-01T00:00:00+05:00"}]}).encode(), ""))
@example((b"<rss><channel><item><title>x</title><enclosure url='javascript:x' "
          b"type='image/png'/></item></channel></rss>", ""))
# Found by this test: an enclosure image of mailto:a@b was kept (mailto is for links).
@example((b'<rss version="2.0"><channel><title>R</title><item><title>t</title><description>0'
          b'</description><enclosure url="mailto:a@b" type="image/png"/></item></channel></rss>',
          "application/rss+xml"))
# Found by this test: a link urllib cannot parse ("http://[::1") raised ValueError.
@example((b'<rss version="2.0"><channel><title>R</title><item><title>t</title>'
          b'<link>http://[::1</link><description>&lt;a href="http://[::1"&gt;x&lt;/a&gt;'
          b"</description></item></channel></rss>", "application/rss+xml"))
def test_upstream_entries(feed):
    data, content_type = feed
    try:
        entries = parse_entries(data, "fuzz", "http://127.0.0.1/feed", ("world",), content_type)
    except InputError as exc:
        assert exc.reason
        return
    for article in entries.articles:
        assert_sane(article)
        if article.link:
            assert article.link.split(":", 1)[0] in {"http", "https", "mailto"}


# --- mail to the unsubscribe box ------------------------------------------------------------

@pytest.fixture(scope="module")
def mailbox(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz") / "site"
    init_instance(folder)
    site = load_settings(folder, environ={})
    store = open_store(site.database_url)
    ada = store.subscribers.add("ada@example.org", NOW, status="active")
    yield site, store, ada
    store.close()


HEADERS = st.sampled_from([
    "Subject: unsubscribe {token}", "Subject: =?x-nonexistent?q?unsubscribe_{token}?=",
    "Subject: =?utf-8?b?{junk}?=", "Content-Type: text/plain; charset=x-nonexistent",
    "Content-Type: multipart/mixed; boundary=b0", "Content-Transfer-Encoding: base64",
    "MIME-Version: 1.0", "Subject: " + "a" * 5000, "From: =?utf-8?q?=0D=0ABcc:_x?= <a@b>",
    "Content-Type: text/plain; charset=\"utf-7\"", "Subject: {junk}"])


@st.composite
def mails(draw) -> tuple[bytes, bool]:
    with_token = draw(st.booleans())
    headers = draw(st.lists(HEADERS, max_size=5))
    junk = draw(st.text(alphabet=string.printable.strip() + "é.", max_size=40))
    body = draw(st.one_of(st.binary(max_size=400), st.text(max_size=200).map(
        lambda t: t.encode("utf-8", "surrogatepass"))))
    depth = draw(st.integers(0, 300))
    nested = b"".join(b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n"
                      % (n, n + 1) for n in range(depth))
    return ("\r\n".join(headers).replace("{junk}", junk).encode("utf-8", "surrogatepass")
            + b"\r\n\r\n" + nested + body, with_token)


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(mails())
@example((b"Subject: hi\r\nContent-Type: text/plain; charset=x-nonexistent\r\n\r\nx", False))
@example((b"Subject: hi\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b0"
          b"\r\n\r\n" + b"".join(b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n"
                                 % (n, n + 1) for n in range(2000)), False))
@example((b"Subject: " + b"a" * 200_000 + b"\r\n\r\n", False))
@example((b"Subject: x\r\n\r\n" + b"a.a." * 50_000, False))
def test_unsubscribe_mail(mailbox, mail):
    site, store, ada = mailbox
    data, with_token = mail
    token = tokens.sign(site, "unsubscribe", ada.id, ada.token_version, now=NOW)
    if not with_token:
        token = token[:-2] + ("AA" if not token.endswith("AA") else "BB")  # a forged one
    data = data.replace(b"{token}", token.encode())
    line = handle_unsubscribe_mail(site, store, "fuzz", lambda: data, NOW)
    assert line.startswith("unsubscribe mail: ") and "\n" not in line
    status = store.subscribers.by_id(ada.id).status
    if not with_token:
        assert status == "active", line
    if status != "active":
        store.subscribers.activate(ada.id, NOW, cursor=0)


# --- settings ---------------------------------------------------------------------------------

SETTING_KEYS = {
    "site": ["title", "url", "description", "language", "author", "timezone"],
    "store": ["url"], "ingest": ["inbox", "max_bytes"],
    "feeds": ["folder", "items", "hub", "processes"],
    "mail": ["transport", "from", "reply_to", "bounce", "smtp_url", "maildir", "connections",
             "rate", "timeout", "max_attempts", "lease_seconds", "keep_days", "feedback_id"],
    "digest": ["daily_at", "weekly_on", "timezone", "max_articles", "subject"],
    "web": ["host", "port", "confirm_hours", "metrics"],
    "daemon": ["poll_seconds", "metrics_port", "watch", "drain_seconds", "send_batch"],
}
SETTING_VALUES = st.one_of(
    st.text(max_size=30), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    st.lists(st.text(max_size=5), max_size=3),
    st.sampled_from(["http://[::1", "sqlite://", "publisher.toml", ".", "..", "{x}",
                     "{n:>999999999}", "a\r\nb", "a\x00b", "smtp://h:0", "http://x:99999/",
                     "postgresql://[::1/x", "sqlite:///:memory:", "{site_title.__class__}"]))


def toml_value(value) -> str:
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    return json.dumps(value).replace("\\/", "/")


PAIRS = [(section, key) for section, keys in SETTING_KEYS.items() for key in keys]
ISSUE_19 = [  # the settings issue 19 found getting past the checks
    ("site", "url", "http://[::1"), ("site", "title", "a\x00b"), ("ingest", "inbox", "a\x00"),
    ("mail", "lease_seconds", 10**20), ("mail", "keep_days", 10**9),
    ("feeds", "folder", "publisher.toml"), ("store", "url", "sqlite://"),
    ("site", "title", "a\r\nBcc: x@y"), ("mail", "feedback_id", "a\r\nb"),
    ("site", "url", "http://x/\r\nX: y"), ("digest", "subject", "{x}"),
    ("digest", "subject", "{n:>999999999}")]


@settings(max_examples=EXAMPLES + 50, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(PAIRS), SETTING_VALUES), max_size=4),
       st.dictionaries(st.sampled_from([f"PUBLISHER_{s.upper()}__{k.upper()}" for s, k in PAIRS]),
                       st.text(max_size=20), max_size=2))
@example([(("mail", "lease_seconds"), 2**63), (("web", "confirm_hours"), 10**12)], {})
@example([], {"PUBLISHER_SITE__TITLE": "a\r\nb", "PUBLISHER_MAIL__KEEP_DAYS": "999999999"})
def test_settings(tmp_path_factory, assignments, environ):
    folder = tmp_path_factory.mktemp("settings")
    tables: dict[str, dict[str, str]] = {}
    for (section, key), value in assignments:
        tables.setdefault(section, {})[key] = toml_value(value)  # TOML takes a key once
    text = "".join(f"[{section}]\n" + "".join(f"{key} = {value}\n" for key, value in keys.items())
                   for section, keys in tables.items())
    (folder / "publisher.toml").write_text(text, encoding="utf-8")
    try:
        load_settings(folder, environ=environ)
    except ConfigError as exc:
        assert exc.exit_code == 2 and "\n" not in str(exc).replace("\\n", "")


for section, key, value in ISSUE_19:  # each one alone, as its own regression example
    test_settings = example([((section, key), value)], {})(test_settings)
