"""Scraped text from a stranger costs time in proportion to its size."""

from __future__ import annotations

from publisher.ingest.scraped import is_meta, parse_scraped


class Counted(str):
    """A line that counts how often it is compared: a deterministic stand-in for time."""

    comparisons = 0

    def __eq__(self, other):
        Counted.comparisons += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def comparisons_for(lines: int, known: int = 0) -> int:
    Counted.comparisons = 0
    header = [Counted("A caption that repeats") for _ in range(lines)]
    assert is_meta(header, tuple(Counted(f"seen caption {i}") for i in range(known)))
    return Counted.comparisons


def test_header_detection_is_linear_in_the_lines():
    assert comparisons_for(4000) <= 4 * 4000


def test_known_captions_are_looked_up_not_scanned():
    assert comparisons_for(2000, known=2000) <= 4 * 2000


def test_forty_thousand_repeated_lines_parse():
    text = "Title\n\n" + "Same line\n" * 40000 + "\nThe body.\n"
    (article,) = parse_scraped(text.encode(), "many.txt")
    assert article.paragraphs == ("The body.",)
