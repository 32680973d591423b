"""Parse stage, Markdown fast path: cmark-gfm (C) gives the HTML and paragraph texts.

markdown.py renders with markdown-it-py (pure Python, about 85% of a Markdown file's
parse time). cmark-gfm, the C CommonMark parser GitHub uses, is shipped compiled by the
cmarkgfm wheel; it parses about eight times faster. The two engines agree on
CommonMark but not everywhere (spec versions 0.29 and 0.31, link normalisation,
images' alt text), so this path answers only for the class of input where they were
shown to give the same sanitised HTML and paragraph texts (tests/test_markdown_engines.py
runs both over every seed paragraph and over generated Markdown). Anything outside it
returns None and markdown.py uses markdown-it as before:

- a body with raw HTML or an autolink (``<``), a table (``|``, ``:-``), an image
  (``![``), a reference definition (``]:``), two backticks in a row (fences and
  double-backtick code), four ``*``/``_`` in a row, a ``*``/``_`` run with ASCII
  punctuation on both sides or a non-ASCII character beside it (the flanking rules
  part there: spec 0.29 against 0.31), a Unicode space, a tab at a line's end or in the
  indent before a block marker, a backslash before a line end (the UNSURE_* rules below);
- a backtick string cmark-gfm leaves as text (it remembers having looked for a closing
  string to the end, and then refuses a later code span that markdown-it makes);
- a link whose URL is not plain printable ASCII (markdown-it punycodes hosts and
  re-encodes), or names a scheme markdown-it refuses (javascript:, data:, ...).

cmarkgfm's Python API renders HTML but does not walk the tree (and its helpers do not
free what they allocate), so the few functions needed are declared here against the
same compiled library (cffi ABI mode, the library's public C API). The tree is walked
only where the paragraph texts cannot be read off cmark's HTML by regexes (html_texts):
a cffi call per node cost a third of the parse.
"""

from __future__ import annotations

import logging
import re
from html import unescape
from itertools import accumulate

log = logging.getLogger(__name__)

CDEF = """
typedef struct cmark_node cmark_node;
typedef struct cmark_parser cmark_parser;
typedef struct cmark_iter cmark_iter;
typedef struct cmark_syntax_extension cmark_syntax_extension;
typedef struct _cmark_llist cmark_llist;
typedef struct cmark_mem {
  void *(*calloc)(size_t, size_t);
  void *(*realloc)(void *, size_t);
  void (*free)(void *);
} cmark_mem;
cmark_mem *cmark_get_default_mem_allocator(void);
void cmark_gfm_core_extensions_ensure_registered(void);
cmark_syntax_extension *cmark_find_syntax_extension(const char *name);
cmark_parser *cmark_parser_new(int options);
int cmark_parser_attach_syntax_extension(cmark_parser *parser, cmark_syntax_extension *ext);
void cmark_parser_feed(cmark_parser *parser, const char *buffer, size_t len);
cmark_node *cmark_parser_finish(cmark_parser *parser);
cmark_llist *cmark_parser_get_syntax_extensions(cmark_parser *parser);
void cmark_parser_free(cmark_parser *parser);
char *cmark_render_html(cmark_node *root, int options, cmark_llist *extensions);
void cmark_node_free(cmark_node *node);
cmark_iter *cmark_iter_new(cmark_node *root);
void cmark_iter_free(cmark_iter *iter);
int cmark_iter_next(cmark_iter *iter);
cmark_node *cmark_iter_get_node(cmark_iter *iter);
int cmark_node_get_type(cmark_node *node);
const char *cmark_node_get_type_string(cmark_node *node);
const char *cmark_node_get_literal(cmark_node *node);
const char *cmark_node_get_url(cmark_node *node);
cmark_node *cmark_node_first_child(cmark_node *node);
int cmark_node_get_start_line(cmark_node *node);
int cmark_node_get_end_line(cmark_node *node);
"""

ENTER, EXIT = 2, 3
# Outside the class shown to agree (see the module docstring): markdown-it answers.
# Checked in steps, the cheap ones first (one regex of all of them cost 1 ms an article).
UNSURE_CHARS = "<|\r\x0b\x0c\x1c\x1d\x1e\x1f"
# "``": code spans of two or more backticks, and fences (their runs match differently
# when one is left open: "``~~~`a`~~~`a`").
UNSURE_PAIRS = ("![", "]:", ":-", "-:", "``")
# UNSURE_CHARS or UNSURE_PAIRS, in one scan: written as literals, so that the regex
# engine skips in C to the next character that can start one (a class first defeats it).
UNSURE_ANY = re.compile("|".join(re.escape(literal) for literal in (
    *UNSURE_CHARS, *UNSURE_PAIRS)))
UNSURE_RUNS = re.compile(r"[*_]{4}")
# A run of * or _ with ASCII punctuation on both sides ("`*%" in "**`*%20*_*"): the two
# engines' flanking rules part there.
UNSURE_FLANKS = re.compile(r"[!-/:-@\[-`{-~][*_]+[!-/:-@\[-`{-~]")
# A trailing tab; a tab in a line's indent before what may start a block (markdown-it
# counts such a tab's columns otherwise: ">1\n\t>" is a lazy line to cmark, a quote to it).
UNSURE_TAB = re.compile(r"\t[ \t]*(?:\n|\Z)|^[ ]*\t[ \t]*[>*+\-#0-9`~=_]", re.M)
UNSURE_BACKSLASH = re.compile(r"\\[ \t]+\n|\\\n[ \t]")
UNSURE_UNICODE = re.compile(r"[^\S \n\t]|[*_][^\x00-\x7f]|[^\x00-\x7f][*_]")
PLAIN_URL = re.compile(r"[A-Za-z0-9\-._~:/?#@!$&'()*+,;=]*\Z")
CODE = re.compile(r"<pre><code[^>]*>.*?</code></pre>|<code>.*?</code>", re.S)
REFUSED_SCHEME = re.compile(r"(vbscript|javascript|file|data):", re.I)
# Where paragraph texts are cut, as markdown.paragraph_texts cuts markdown-it's tokens.
INLINE_CLOSE = {"paragraph", "heading", "table_cell"}
BLOCK_CLOSE = {"paragraph", "heading", "table_row", "table_header"}
# markdown-it stops nesting at 20 levels (its maxNesting), counting each list twice and
# inline emphasis and links too; cmark goes on. Deeper trees than this are left to it.
MAX_DEPTH = 8
# Paragraph texts from cmark's own HTML (see html_texts): its block tags cut, its inline
# tags dropped. Inside the class no raw HTML reaches it ("<" is unsure), so every "<" is
# cmark's tag and every "&" its escape; NUL never appears (cmark writes U+FFFD for it).
BLOCK_TAG = re.compile(
    r"<pre><code[^>]*>|</code></pre>|</?(?:p|h[1-6]|li|ul|ol|blockquote|hr)\b[^>]*>")
INLINE_TAG = re.compile(r"<[^>]*>")
HREF = re.compile(r'<a href="([^"]*)"')
# The containers walk() counts towards MAX_DEPTH; a list item counts twice, for the
# paragraph a tight list does not write as <p> (an overcount only sends it to walk()).
CONTAINERS = ("li", "blockquote", "ul", "ol", "p", "h1", "h2", "h3", "h4", "h5", "h6", "em",
              "strong", "a")
CONTAINER = re.compile(r"</?(?:li|blockquote|ul|ol|p|h[1-6]|em|strong|a)[ >]")
# Each tag CONTAINER finds, to its step in depth: summed in C (itertools.accumulate),
# not in a Python loop over every tag (two fifths of html_texts' time).
DEPTH_STEP = {f"<{close}{name}{end}": (-1 if close else 1) * (2 if name == "li" else 1)
              for name in CONTAINERS for close in ("", "/") for end in (" ", ">")}
# The ASCII characters str.split() splits on, to a space.
ASCII_SPACES = str.maketrans(dict.fromkeys("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f", " "))
LEAVES = {"text", "code", "softbreak", "linebreak", "html_inline", "code_block", "html_block",
          "thematic_break"}  # cmark's iterator enters them but never exits


def load():
    """The cmark-gfm library inside the cmarkgfm wheel, or None when it is missing."""
    try:
        from cffi import FFI
        from cmarkgfm import _cmark
    except ImportError:
        return None
    ffi = FFI()
    ffi.cdef(CDEF)
    try:
        lib = ffi.dlopen(_cmark.__file__)
        lib.cmark_gfm_core_extensions_ensure_registered()
        table = lib.cmark_find_syntax_extension(b"table")
    except (OSError, AttributeError) as exc:  # a wheel built otherwise: keep markdown-it
        log.warning("cmark-gfm not usable (%s); Markdown is parsed by markdown-it", exc)
        return None
    if table == ffi.NULL:
        return None
    # Raw HTML kept (nh3 sanitises it after), table alignment as style (nh3 drops it).
    options = _cmark.lib.CMARK_OPT_UNSAFE | _cmark.lib.CMARK_OPT_TABLE_PREFER_STYLE_ATTRIBUTES
    # Positions of inlines too (the HTML is rendered without them): a code span that
    # crosses a line end is left to markdown-it, which keeps the next line's indent.
    return ffi, lib, table, options | _cmark.lib.CMARK_OPT_SOURCEPOS, options


ENGINE = load()
NAMES: dict[int, str] = {}  # cmark's node type numbers (fixed once loaded) to their names


def render(body: str, from_html: bool = True) -> tuple[str, list[str]] | None:
    """The unsanitised HTML and the paragraph texts of body, or None: ask markdown-it.

    The texts come from the HTML where html_texts can tell they are the same as walk()'s
    (from_html=False: always walk, what the tests compare it with).
    """
    # Without a last newline, markdown-it ends some blocks with one and others not.
    if ENGINE is None or not body.endswith("\n") or unsure(body):
        return None
    ffi, lib, table, parse_options, options = ENGINE
    data = body.encode("utf-8")
    parser = lib.cmark_parser_new(parse_options)
    root = ffi.NULL
    try:
        lib.cmark_parser_attach_syntax_extension(parser, table)
        lib.cmark_parser_feed(parser, data, len(data))
        root = lib.cmark_parser_finish(parser)
        if root == ffi.NULL:
            return None
        raw = lib.cmark_render_html(root, options, lib.cmark_parser_get_syntax_extensions(parser))
        try:
            html = ffi.string(raw).decode("utf-8")
        finally:
            lib.cmark_get_default_mem_allocator().free(raw)
        if "`" in body and "`" in CODE.sub("", html):
            return None  # a backtick string left as text (module docstring)
        texts = html_texts(html, body) if from_html else None
        if texts is None:
            texts = walk(ffi, lib, root)
        return None if texts is None else (html, texts)
    finally:
        if root != ffi.NULL:
            lib.cmark_node_free(root)
        lib.cmark_parser_free(parser)


def unsure(body: str) -> bool:
    """Whether body is outside the class the two engines were shown to agree on."""
    if UNSURE_ANY.search(body):
        return True
    # Any run of 4 has one of "**", "__", "*_", "_*"; a one-character test (memchr) first.
    star, under = "*" in body, "_" in body
    runs = (star and "**" in body) or (under and (
        "__" in body or (star and ("*_" in body or "_*" in body))))
    if (runs and UNSURE_RUNS.search(body)) or ("\t" in body and UNSURE_TAB.search(body)) \
            or ((star or under) and UNSURE_FLANKS.search(body)) \
            or ("\\" in body and UNSURE_BACKSLASH.search(body)):
        return True
    return not body.isascii() and UNSURE_UNICODE.search(body) is not None


def html_texts(html: str, body: str) -> list[str] | None:
    """walk()'s paragraph texts from cmark's HTML at C speed (regexes, html.unescape),
    or None where only walk() can tell: a code span (it may cross a line, which walk()
    sees by its source positions), an image, an empty quote, a link whose URL is not
    plainly plain, or containers nested about as deep as MAX_DEPTH."""
    if "`" in body or "<img " in html or "<blockquote>\n</blockquote>" in html:
        return None
    for href in HREF.findall(html):
        # cmark percent-encodes in href every character PLAIN_URL refuses but "%",
        # so an href without "%" that passes is the URL itself.
        if "%" in href or not plain_url(unescape(href).encode()):
            return None
    # The depth after each tag, from 1 (the document).
    if max(accumulate(map(DEPTH_STEP.__getitem__, CONTAINER.findall(html)), initial=1)) \
            > MAX_DEPTH:
        return None
    text = unescape(INLINE_TAG.sub("", BLOCK_TAG.sub("\x00", html)))
    # Whitespace runs collapsed once over the whole text, not block by block: NUL (a
    # block's end) is not whitespace, so no run crosses it, and each block is then its
    # words joined by one space, as " ".join(block.split()) gives. ASCII text (the most)
    # by translate and replace, in C: split and join made a string of every word.
    if text.isascii():
        text = text.translate(ASCII_SPACES)
        while "  " in text:
            text = text.replace("  ", " ")
    else:
        text = " ".join(text.split())
    return [line for line in (part.strip(" ") for part in text.split("\x00")) if line]


def walk(ffi, lib, root) -> list[str] | None:
    """Paragraph texts as markdown.paragraph_texts derives them, or None if unsure."""
    texts: list[str] = []
    parts: list[str] = []
    inline: list[str] = []
    depth = 0
    # Looked up once: this loop runs for every node of every article.
    step, node_of, type_of, literal, string = (lib.cmark_iter_next, lib.cmark_iter_get_node,
                                               lib.cmark_node_get_type,
                                               lib.cmark_node_get_literal, ffi.string)
    it = lib.cmark_iter_new(root)
    try:
        while (event := step(it)) > 1:
            node = node_of(it)
            kind = type_of(node)
            name = NAMES.get(kind)
            if name is None:
                name = NAMES[kind] = string(lib.cmark_node_get_type_string(node)).decode()
            if event == ENTER:
                if name == "text":
                    inline.append(string(literal(node)).decode("utf-8"))
                    continue
                depth += name not in LEAVES
                if depth > MAX_DEPTH:
                    return None
                if name == "code":
                    if lib.cmark_node_get_end_line(node) != lib.cmark_node_get_start_line(node):
                        return None
                    inline.append(string(literal(node)).decode("utf-8"))
                elif name in {"softbreak", "linebreak"}:
                    inline.append(" ")
                elif name == "code_block":
                    parts.append(string(literal(node)).decode("utf-8"))
                    flush(parts, texts)
                elif name == "image":
                    return None  # markdown-it's text is the alt's source, not its text
                elif name == "link" and not plain_url(string(lib.cmark_node_get_url(node))):
                    return None
                elif name == "block_quote" and lib.cmark_node_first_child(node) == ffi.NULL:
                    return None  # markdown-it writes an empty quote on two lines
            elif event == EXIT:
                depth -= 1
                if name in INLINE_CLOSE:
                    parts.append("".join(inline))
                    inline = []
                if name in BLOCK_CLOSE:
                    flush(parts, texts)
    finally:
        lib.cmark_iter_free(it)
    return texts


def plain_url(url: bytes) -> bool:
    text = url.decode("utf-8", "replace")
    return bool(PLAIN_URL.match(text)) and not REFUSED_SCHEME.match(text)


def flush(parts: list[str], texts: list[str]) -> None:
    text = " ".join(" ".join(parts).split())
    if text:
        texts.append(text)
    parts.clear()
