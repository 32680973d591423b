"""cmark.py's checks written for speed (issue 18) decide what their plain forms decided:
`unsure` (one scan for the unsure characters and pairs, one-character tests before
two-character ones) and html_texts' block texts (whitespace collapsed once over the
whole text, by translate and replace when it is ASCII; nesting depth summed by
itertools.accumulate). The plain forms are kept
here as the reference; generated Markdown full of the characters they look at."""

from __future__ import annotations

import os
import re
import string
from html import unescape

import nh3
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from publisher.article import image_url_problem
from publisher.ingest import cmark
from publisher.ingest.markdown import sanitize

EXAMPLES = int(os.environ.get("PUBLISHER_FUZZ_EXAMPLES", "300"))
BOUNDED = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 300,
                   suppress_health_check=[HealthCheck.too_slow])

CHARS = re.compile(r"[<|\r\x0b\x0c\x1c-\x1f]")
PAIRS = ("![", "]:", ":-", "-:", "``")
PIECES = st.sampled_from(["*", "**", "_", "__", "*_", "_*", "`", "``", "!", "[", "]", ":",
                          "-", "<", "|", "\r", "\x0b", "\x0c", "\x1c", "\x1f", "\t", "\\",
                          "\n", " ", "é", "\u00a0", "\u2003", ".", "(", ")", "a", "word "])
BODIES = st.lists(PIECES | st.text(alphabet=string.printable, max_size=4),
                  max_size=30).map("".join)


def unsure_plain(body: str) -> bool:
    """cmark.unsure as it was written first."""
    if CHARS.search(body) or any(pair in body for pair in PAIRS):
        return True
    runs = "**" in body or "__" in body or "*_" in body or "_*" in body
    if (runs and cmark.UNSURE_RUNS.search(body)) \
            or ("\t" in body and cmark.UNSURE_TAB.search(body)) \
            or (("*" in body or "_" in body) and cmark.UNSURE_FLANKS.search(body)) \
            or ("\\" in body and cmark.UNSURE_BACKSLASH.search(body)):
        return True
    return not body.isascii() and cmark.UNSURE_UNICODE.search(body) is not None


def depth_plain(html: str) -> int:
    depth = deepest = 1
    for tag in re.finditer(r"<(/?)(?:(li)|blockquote|ul|ol|p|h[1-6]|em|strong|a)[ >]", html):
        step = 2 if tag[2] else 1
        depth += -step if tag[1] else step
        deepest = max(deepest, depth)
    return deepest


def texts_plain(html: str) -> list[str]:
    text = unescape(cmark.INLINE_TAG.sub("", cmark.BLOCK_TAG.sub("\x00", html)))
    return [line for line in (" ".join(part.split()) for part in text.split("\x00")) if line]


@BOUNDED
@given(BODIES)
@example("a**b")
@example("a__b")
@example("a*_b")
@example("x_*y")
@example("****")
@example("a\x1dz")
@example("a :- b")
@example("!*!")
@example("*\u00e9")
def test_unsure_decides_what_its_plain_form_decided(body):
    assert cmark.unsure(body) == unsure_plain(body)


HTML_PIECES = st.sampled_from([
    "<p>", "</p>", "<li>", "</li>", "<ul>", "</ul>", '<ol start="3">', "</ol>", "<em>",
    "</em>", "<strong>", "</strong>", '<a href="/x">', "</a>", "<h2>", "</h2>",
    "<blockquote>", "</blockquote>", "<pre><code>", "</code></pre>", "<hr />", "<br />",
    "\n", " ", "  ", "\t", "\u00a0", "\u2028", "\x1c", "\x85", "word", "&amp;", "&nbsp;",
    "&#32;", "&#x2003;", "é", "\r", "\x0b", "\x0c", "\x1f", "&#13;", "&#x0c;", "   "])


@BOUNDED
@given(st.lists(HTML_PIECES, max_size=40).map("".join))
@example("<p>a\u00a0 b</p>\n<p>  </p>")
def test_html_texts_cuts_and_measures_as_its_plain_form(html):
    # Through html_texts itself on a body without backticks, so only its own work counts.
    walk_only = depth_plain(html) > cmark.MAX_DEPTH or "<blockquote>\n</blockquote>" in html
    expected = None if walk_only else texts_plain(html)
    assert cmark.html_texts(html, "") == expected


@BOUNDED
@given(st.text(max_size=12))
@example("http://x/\x7f.png")
@example("http://x/\x20.png")
@example("http://x/\x21.png")
def test_image_url_spaces_and_controls_found_as_before(url):
    plain = any(ord(char) <= 0x20 or ord(char) == 0x7F for char in url)
    assert (image_url_problem(url) == "has spaces or control characters in it") == plain


@BOUNDED
@given(st.lists(HTML_PIECES | st.sampled_from([
    "<script>x</script>", '<a href="javascript:x">', '<img src="data:x" onerror="y">',
    "<!-- c -->", "<table><tr><td>", '<p style="color:red">', "<iframe>", "&lt;", "<b>"]),
    max_size=30).map("".join))
def test_the_sanitiser_built_once_cleans_as_nh3_clean(html):
    assert sanitize(html) == nh3.clean(html)
