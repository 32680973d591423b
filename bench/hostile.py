"""Hostile input costs in proportion to its size: each parser a stranger's data reaches,
timed on hostile input at two sizes, against ordinary input of the same size.

    .venv/bin/python bench/hostile.py            # sizes 200 KB and 400 KB
    .venv/bin/python bench/hostile.py --kb 500

For each case it prints the time at both sizes, the growth when the size doubles (about
2 is linear; 4 would be quadratic) and the ratio against the baseline (ordinary text of
the same kind and size, measured in the same run).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from publisher.errors import InputError
from publisher.ingest.markdown import parse_markdown
from publisher.ingest.scraped import parse_scraped
from publisher.subscribers.rules import candidate_tokens

PROSE = "A body paragraph of ordinary length, with words and a comma, here.\n\n"


def scraped_prose(n: int) -> bytes:
    return ("Title\n\n" + PROSE * (n // len(PROSE))).encode()


def scraped_repeats(n: int) -> bytes:  # issue 19: lines.count made this quadratic
    return ("Title\n\n" + "Same line\n" * (n // 10) + "\nThe body.\n").encode()


def markdown_prose(n: int) -> bytes:
    return ("---\ntitle: T\n---\n" + PROSE * (n // len(PROSE))).encode()


def markdown_brackets(n: int) -> bytes:
    return ("---\ntitle: T\n---\n" + "[" * n + "\n").encode()


def yaml_nesting(n: int) -> bytes:
    return ("---\ntitle: T\nsummary: " + "[" * (n // 2) + "]" * (n // 2) + "\n---\nB\n").encode()


def mail_prose(n: int) -> str:
    return "unsubscribe " + "word " * (n // 5)


def mail_no_dots(n: int) -> str:  # issue 19: the token regex backtracked quadratically
    return "a" * n


CASES = [
    ("scraped: repeated header lines", scraped_repeats, scraped_prose, parse_scraped),
    ("markdown: 'the body of ['", markdown_brackets, markdown_prose, parse_markdown),
    ("front matter: nested 'summary: [[[...'", yaml_nesting, markdown_prose, parse_markdown),
    ("unsubscribe mail: token search", mail_no_dots, mail_prose, candidate_tokens),
]


def timed(parse, data) -> float:
    started = time.perf_counter()
    with contextlib.suppress(InputError):
        parse(data, "bench") if parse is not candidate_tokens else parse(data)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", type=int, default=200, help="the smaller size, in KB")
    args = parser.parse_args()
    n = args.kb * 1000
    print(f"{'case':42} {'n':>9} {'2n':>9} {'growth':>7} {'vs baseline':>12}")
    for name, hostile, baseline, parse in CASES:
        small, large = timed(parse, hostile(n)), timed(parse, hostile(2 * n))
        base = timed(parse, baseline(2 * n))
        print(f"{name:42} {small:8.3f}s {large:8.3f}s {large / max(small, 1e-6):6.1f}x "
              f"{large / max(base, 1e-6):11.1f}x")


if __name__ == "__main__":
    main()
