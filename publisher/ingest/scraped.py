"""Parse stage, scraped text: split a page-text dump into Articles.

The format (DESIGN.md): a title line, a header block of photo captions (often doubled)
and page furniture ("TT", "20"), the same header again, then one paragraph per line with
blank lines between. Two or more blank lines end an article. Real dumps vary, so every
part of the header is optional and each rule below says which variation it absorbs.
"""

from __future__ import annotations

import codecs
import re
from collections import Counter

from publisher.article import Article, make_article, stable_id
from publisher.errors import InputError

# A caption ends with its credit in parentheses: "(AP)", "(AP Photo/Evan Vucci)".
CREDIT = re.compile(r"\((?P<credit>[A-Z0-9][^()]{0,59})\)$")
# Share and font-size widgets copied along with the text.
# C0 control characters other than tab and line breaks: plentiful in binary, absent in text.
CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
CONTROL_BYTES = bytes([*range(0x00, 0x09), *range(0x0e, 0x20), 0x7f])  # the same, as bytes
HIGH_BYTES = bytes(range(0x80, 0x100))
MAX_HIGH_SHARE = 0.3  # even Icelandic or Portuguese text has well under a third
FURNITURE_WORDS = {"share", "print", "email", "tweet", "comments", "listen", "save",
                   "font size", "text size", "a a", "aa", "advertisement"}
LONGEST_FURNITURE = max(map(len, FURNITURE_WORDS))


def decode(data: bytes, source: str) -> str:
    """Bytes to text: UTF-8 (with or without BOM), UTF-16 with BOM, else cp1252."""
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        # Checked first: UTF-32's little-endian BOM begins with UTF-16's.
        raise InputError(source, "UTF-32 text is not read: save it as UTF-8")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return text_only(data.decode("utf-16"), source)
        except UnicodeDecodeError as exc:
            raise InputError(source, f"broken UTF-16 text ({exc.reason})") from exc
    if b"\x00" in data:
        raise InputError(source, "binary file (it contains NUL bytes), not page text")
    try:
        # What the utf-8-sig codec does, without its Python-level wrapper (a cost per file).
        text = (data[3:] if data.startswith(codecs.BOM_UTF8) else data).decode("utf-8")
    except UnicodeDecodeError:
        # Windows-1252 is what "not UTF-8" almost always means for Western news text;
        # its five undefined bytes fall back to Latin-1 so nothing is dropped. Such text
        # is mostly ASCII: bytes that are mostly not are binary, or another encoding.
        if len(data) - len(data.translate(None, HIGH_BYTES)) > len(data) * MAX_HIGH_SHARE:
            raise InputError(source, "binary file, or text in an encoding other than "
                                     "UTF-8, UTF-16 or Windows-1252") from None
        text = data.decode("cp1252", errors="latin1_fallback")
    # Counted in the bytes, several times faster than in the text and the same count: in
    # UTF-8 and in cp1252 each of these characters is the one byte of its own value, and
    # no other character's bytes include such a byte.
    return text_only(text, source, len(data) - len(data.translate(None, CONTROL_BYTES)))


def text_only(text: str, source: str, controls: int | None = None) -> str:
    """The text, unless it has more control characters than page text ever has (the
    count given by the caller, or counted here)."""
    if controls is None:
        controls = len(CONTROL.findall(text))
    if controls > max(8, len(text) // 100):
        raise InputError(source, "binary file (control characters), not page text")
    return text


def latin1_fallback(error: UnicodeDecodeError) -> tuple[str, int]:
    bad = error.object[error.start:error.end]
    return bad.decode("latin-1"), error.end


codecs.register_error("latin1_fallback", latin1_fallback)


def parse_scraped(data: bytes, source: str, sections: tuple[str, ...] = ()) -> list[Article]:
    """Every article in a dump, in order; InputError when the file holds none."""
    text = decode(data, source)
    articles, problems, used_ids = [], [], set()
    for index, chunk in enumerate(split_articles(text)):
        try:
            articles.append(parse_chunk(chunk, source, index, sections, used_ids))
        except (ValueError, InputError) as exc:  # this chunk's problem, not the file's
            problems.append(f"text block {index + 1}: {getattr(exc, 'reason', exc)}")
    if not articles:
        reason = problems[0] if problems else "no text in the file"
        raise InputError(source, f"no article found ({reason})")
    return articles


def clean_lines(text: str) -> list[str]:
    # splitlines handles CRLF, CR and Unicode line separators; strip() takes trailing
    # spaces, tabs and the no-break spaces scrapers leave; a stray BOM is not content.
    if "\ufeff" in text:  # per line: one between CR and LF leaves them two line breaks
        return [line.replace("\ufeff", "").strip() for line in text.splitlines()]
    return list(map(str.strip, text.splitlines()))


def split_articles(text: str) -> list[str]:
    """Chunks separated by 2+ blank lines, each its non-blank lines with one blank line
    ("\n\n") between blocks and "\n" between the lines of a block.

    Done by joining the cleaned lines and splitting in C rather than by a loop per line:
    a cleaned line holds no line break and a blank one is empty, so "\n" * 3 or more is
    exactly 2 or more blank lines, and the separators at either end are no chunk's."""
    cleaned = "\n".join(clean_lines(text)).strip("\n")
    return ARTICLE_BREAK.split(cleaned) if cleaned else []


# Two or more blank lines between articles (three or more line breaks). Spelled with a
# literal prefix, which the regex engine finds by a fast scan: "\n{3,}" is 15x slower.
ARTICLE_BREAK = re.compile(r"\n\n\n+")
# The header takes at most four blocks (title, captions, title again, captions again):
# the blocks after them are body, wanted as lines only.
HEADER_BLOCKS = 4


def parse_chunk(chunk: str, source: str, index: int,
                sections: tuple[str, ...], used_ids: set[str]) -> Article:
    head = chunk.split("\n\n", HEADER_BLOCKS)
    # Within a chunk blocks are one blank line apart, so "\n\n" -> "\n" leaves the lines.
    body_lines = head.pop().replace("\n\n", "\n").split("\n") if len(head) > HEADER_BLOCKS else []
    blocks = [block.split("\n") for block in head]
    title, *after_title = blocks[0]
    header, taken = take_header(after_title, blocks[1:], known=())
    captions = captions_of(header)
    # Lines right under the title that are not captions are the body, written tight.
    leading_body = after_title if after_title and not header else []
    remaining = blocks[1 + taken:]
    # The header block again: the title line repeated, then its captions. Only one
    # repeat is dropped, so a body paragraph equal to the title further down is kept.
    if remaining and remaining[0][0] == title:
        repeat_tail = remaining[0][1:]
        again, taken = take_header(repeat_tail, remaining[1:], known=captions)
        if repeat_tail and not again:
            leading_body += repeat_tail
        if not header:  # the captions are the first header's, else the repeat's
            captions = captions_of(again)
        remaining = remaining[1 + taken:]
    paragraphs = leading_body + [line for block in remaining for line in block] + body_lines
    if not paragraphs:
        raise ValueError(f"{title[:60]!r} has a title but no body paragraphs")
    article_id = stable_id(source, title)
    if article_id in used_ids:  # the same title twice in one file
        article_id = stable_id(source, title, str(index))
    used_ids.add(article_id)
    credit = CREDIT.search(captions[0]) if captions else None
    return make_article(
        id=article_id, title=title, paragraphs=tuple(paragraphs), source=source,
        source_index=index, captions=captions, sections=sections,
        credit=credit["credit"] if credit else None,
    )


def take_header(inline: list[str], blocks: list[list[str]],
                known: tuple[str, ...]) -> tuple[list[str], int]:
    """The header's meta lines and how many following blocks they took."""
    if inline:
        return (inline if is_meta(inline, known) else []), 0
    if blocks and is_meta(blocks[0], known):
        return blocks[0], 1
    return [], 0


def is_meta(lines: list[str], known: tuple[str, ...]) -> bool:
    """A header block: captions (credited, doubled or already seen) and page furniture.
    Counted and looked up in hash tables, so a stranger's 40,000-line header costs
    linear time, not quadratic."""
    if not lines:
        return False
    seen = set(known)
    # A line is meta when it is a known caption, furniture, credited, or repeated in the
    # block (so a block of one line must be one of the first three). Lines are counted
    # only when one is none of the cheaper kinds.
    counts = None
    for line in lines:
        if line in seen or is_furniture(line) or credited(line):
            continue
        if counts is None:
            counts = Counter(lines)
        if counts[line] < 2:
            return False
    return True


def credited(line: str) -> bool:
    # The endswith test is CREDIT's own last character: most lines are not credited.
    return line.endswith(")") and CREDIT.search(line) is not None


def is_furniture(line: str) -> bool:
    # Lower-casing never shortens a string, so a line longer than every furniture word
    # is none of them: a caption is not copied in lower case to find that out.
    return (len(line) <= 3 or line.isdigit()
            or (len(line) <= LONGEST_FURNITURE and line.lower() in FURNITURE_WORDS))


def captions_of(header: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(line for line in header if not is_furniture(line)))


def format_scraped(title: str, paragraphs: list[str] | tuple[str, ...],
                   caption: str | None = None) -> str:
    """The inverse of parse_scraped for one article, in the canonical layout (header
    twice, caption doubled, font-size furniture); used to make test and bench input."""
    header = [title, ""]
    if caption:
        header += [caption, caption, "TT", "20", ""]
    repeat = [title, ""] + ([caption, caption, ""] if caption else [])
    return "\n".join(header + repeat + "\n\n".join(paragraphs).split("\n")) + "\n"


def join_articles(texts: list[str]) -> str:
    return "\n\n\n".join(text.rstrip("\n") for text in texts) + "\n"
