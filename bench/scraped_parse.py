"""CPU per scraped article of the parse alone (no store, no inbox, no workers), now and
as it was before it was made cheaper (tests/support/scraped_reference.py, the oracle the
tests hold it to), measured in the same run.

Two corpora: the generated dumps bench/ingest.py ingests (10,000 articles in files of
100), and the real seed dump (/work/shared/seeds, or --seeds DIR) parsed over and over.
Each figure is the median of --repeat runs of CPU time (time.process_time: the machine
is shared, so wall time says more about the neighbours than about the code). The
make_article row times Article building alone, on the fields one parse hands it.

    .venv/bin/python bench/scraped_parse.py [--articles 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import generate_scraped
from publisher import article as article_module
from publisher.ingest import scraped
from tests.support import scraped_reference as reference

SEEDS = Path(__file__).resolve().parents[2].parent / "shared" / "seeds"


def generated(total: int) -> list[tuple[str, bytes]]:
    with tempfile.TemporaryDirectory() as tmp:
        generate_scraped(Path(tmp), total, 100, seed=7)
        return [(str(p.relative_to(tmp)), p.read_bytes()) for p in sorted(Path(tmp).rglob("*.txt"))]


def seeds(folder: Path, copies: int) -> list[tuple[str, bytes]]:
    files = [(p.name, p.read_bytes()) for p in sorted(folder.glob("*.txt"))]
    return [(f"{n}/{name}", data) for n in range(copies) for name, data in files]


def cpu_ms_per_article(parsers: list[Callable], files: list[tuple[str, bytes]],
                       repeat: int) -> list[float]:
    """Each parser's median, their runs taken in turn so a busy spell costs all alike."""
    articles = sum(len(parsers[0](data, name)) for name, data in files)
    runs: list[list[float]] = [[] for _ in parsers]
    for _ in range(repeat):
        for parse, times in zip(parsers, runs, strict=True):
            started = time.process_time()
            for name, data in files:
                parse(data, name)
            times.append(time.process_time() - started)
    return [statistics.median(times) * 1000 / articles for times in runs]


def make_article_calls(module, files: list[tuple[str, bytes]]) -> list[dict]:
    """The fields each make_article call of one parse gets, recorded."""
    calls, real = [], module.make_article

    def recording(**fields):
        calls.append(dict(fields))
        return real(**fields)

    module.make_article = recording
    try:
        for name, data in files:
            module.parse_scraped(data, name)
    finally:
        module.make_article = real
    return calls


def make_article_ms(makers: list[Callable], calls: list[dict], repeat: int) -> list[float]:
    runs: list[list[float]] = [[] for _ in makers]
    for _ in range(repeat):
        for make, times in zip(makers, runs, strict=True):
            started = time.process_time()
            for fields in calls:
                make(**dict(fields))
            times.append(time.process_time() - started)
    return [statistics.median(times) * 1000 / len(calls) for times in runs]


def row(name: str, before: float, after: float) -> None:
    print(f"{name:<34} {before * 1000:>9.1f} {after * 1000:>9.1f}   {before / after:.2f}x"
          f"   {1000 / after:>8,.0f}/s per core")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seeds", type=Path, default=SEEDS)
    args = parser.parse_args()
    corpora = {"generated": generated(args.articles)}
    if any(args.seeds.glob("*.txt")):
        corpora["seeds"] = seeds(args.seeds, 2000)
    print(f"CPU µs per article, median of {args.repeat}: before (reference), now, ratio")
    for name, files in corpora.items():
        row(f"parse_scraped, {name}", *cpu_ms_per_article(
            [reference.parse_scraped, scraped.parse_scraped], files, args.repeat))
        # The reference parse calls its own make_article: the same fields, recorded once.
        calls = make_article_calls(reference, files)
        row(f"  of which make_article, {name}", *make_article_ms(
            [reference.make_article, article_module.make_article], calls, args.repeat))

if __name__ == "__main__":
    main()
