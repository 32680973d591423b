"""Benchmark: ingest rates (Markdown, one file each; scraped dumps) and the no-op scan.

Prints, each a median of --repeat runs in fresh SQLite stores:

- Markdown: N generated articles (20 sections, 5-10 paragraphs of 40-90 words with
  emphasis and a link each, realistic front matter), one .md file each; articles/s for
  `ingest` (worker processes parsing, cmark-gfm where it agrees: ingest/parallel.py),
  beside the baseline measured in the same run: the serial pass, every file parsed in
  this process by markdown-it (what a pass below the workers' threshold does).
  Target >= 2,000/s. Then the workers' start (in a fresh process: fresh interpreters)
  and the pass size from which they pay for it.
- Scraped dumps: N articles in files of --per-file; articles/s (workers: the pass is over
  2 MiB), beside the serial pass. Target >= 10,000/s.
- The no-op inbox scan (a pass with nothing new) at --scan-sizes files: its time, beside
  the baseline of the same pass reading and hashing every file again (what main did on
  every pass; here: the same store with its recorded stats cleared); and the daemon's
  ingest of one new file named by its file event.

The machine is shared: the load average is printed beside the figures, and each rate
is given twice: by wall time, and by this process's CPU time (articles per CPU-second,
which waiting for a busy machine's cores does not lower; the workers' CPU time is
counted in, read from /proc as the pool stops). The CPU a Markdown file costs is also
split: in the workers (parse), in this process (read, hash, store).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from publisher.config import load_settings
from publisher.ingest import parallel
from publisher.ingest.inbox import ingest
from publisher.ingest.scraped import format_scraped, join_articles
from publisher.instance import init_instance
from publisher.store import open_store

WORDS = ("harbour", "council", "storm", "rail", "library", "festival", "comet", "election",
         "market", "bridge", "river", "school", "hospital", "budget", "vote", "minister",
         "mayor", "police", "court", "weather")
SECTIONS = [f"section-{i:02d}" for i in range(20)]
NOW = datetime(2026, 11, 24, tzinfo=UTC)


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def markdown_article(rng: random.Random, n: int) -> str:
    paragraphs = []
    for p in range(rng.randint(5, 10)):
        words = [rng.choice(WORDS) for _ in range(rng.randint(40, 90))]
        words[3] = f"*{words[3]}*"
        words[7] = f"[{words[7]}](https://example.org/{n}/{p})"
        paragraphs.append(" ".join(words).capitalize() + ".")
    return (f"---\ntitle: {sentence(rng, 6)[:-1]} {n}\n"
            f"date: 2025-{1 + n % 12:02d}-{1 + n % 28:02d}T{n % 24:02d}:30:00+01:00\n"
            f"author: Reporter {n % 17}\nsummary: {sentence(rng, 20)}\n"
            f"image: https://images.example.org/{n}.jpg\n---\n" + "\n\n".join(paragraphs) + "\n")


def generate_markdown(inbox: Path, total: int, seed: int) -> None:
    rng = random.Random(seed)
    for name in SECTIONS:
        (inbox / name).mkdir(parents=True, exist_ok=True)
    for n in range(total):
        (inbox / SECTIONS[n % 20] / f"article-{n:07d}.md").write_text(
            markdown_article(rng, n), encoding="utf-8")


def generate_scraped(inbox: Path, total: int, per_file: int, seed: int) -> None:
    rng = random.Random(seed)
    for start in range(0, total, per_file):
        texts = []
        for n in range(start, min(start + per_file, total)):
            caption = f"{sentence(rng, 12)} (AP)" if n % 3 else None
            paragraphs = [sentence(rng, rng.randint(15, 40)) for _ in range(rng.randint(4, 12))]
            texts.append(format_scraped(f"{sentence(rng, 6)[:-1]} {n}", paragraphs, caption))
        folder = inbox / SECTIONS[(start // per_file) % 20]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"dump-{start:07d}.txt").write_text(join_articles(texts), encoding="utf-8")


def generate_small(inbox: Path, total: int) -> None:
    """Many small one-article files, for the scan's cost at size."""
    for n in range(total):
        folder = inbox / SECTIONS[n % 20]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"s-{n:07d}.txt").write_text(
            f"Story number {n}\n\nA short body for story {n}.\n", encoding="utf-8")


def fresh_site(tmp: str) -> Path:
    folder = Path(tmp) / "site"
    init_instance(folder)
    for path in sorted((folder / "articles").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()  # the demo articles: not ours
    return folder


Rate = tuple[float, float]  # articles per second of wall time, per second of CPU time


def timed_ingest(folder: Path, expected: int, serial: bool = False,
                 kind: str = "markdown") -> Rate:
    """Articles/s (wall, CPU with the workers') of one full ingest into a fresh store."""
    settings = load_settings(folder, environ={})
    store = open_store(settings.database_url)
    saved, stop = (parallel.PARALLEL_FILES, parallel.PARALLEL_BYTES), parallel.Parsing.stop
    workers_cpu = []

    def counted_stop(self):  # the workers' CPU time, read before they exit
        workers_cpu.extend(cpu_seconds(pid) for pid in self.pids())
        stop(self)

    parallel.Parsing.stop = counted_stop
    if serial:  # no pass is big enough for workers, by files or by bytes
        parallel.PARALLEL_FILES = parallel.PARALLEL_BYTES = 10**12
    try:
        started, cpu = time.perf_counter(), time.process_time()
        report = ingest(settings, store, NOW)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        (parallel.PARALLEL_FILES, parallel.PARALLEL_BYTES), parallel.Parsing.stop = saved, stop
        store.close()
    assert report.new == expected and report.quarantined == 0, report.line()
    if workers_cpu:  # ms of CPU per file: in the workers, in this process
        CPU_SPLIT.setdefault(kind, []).append((sum(workers_cpu) * 1000 / expected,
                                               cpu * 1000 / expected))
    return expected / elapsed, expected / (cpu + sum(workers_cpu))


# Each worker pass's (workers', this process's) ms of CPU an article, by kind of input.
CPU_SPLIT: dict[str, list[tuple[float, float]]] = {}


def cpu_seconds(pid: int) -> float:
    """A process's user and system CPU time, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def markdown_rates(total: int, seed: int) -> tuple[Rate, Rate]:
    """Now (workers), and the serial pass (markdown-it in this process)."""
    rates = []
    for serial in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            folder = fresh_site(tmp)
            generate_markdown(folder / "articles", total, seed)
            rates.append(timed_ingest(folder, total, serial=serial))
    return rates[0], rates[1]


WORKERS_START = """
import time
from publisher.ingest import parallel
from publisher.ingest.parse import ParseOptions
started = time.perf_counter()
with parallel.Parsing(ParseOptions(256 * 1024, "UTC"), 10**9, None) as parsing:
    parsing.start_once()
    for worker in parsing.live:
        worker.send([])
    for worker in parsing.live:
        worker.answer()
print(time.perf_counter() - started)
"""


def workers_start() -> float:
    """Seconds to start the workers from a fresh process and have each
    answer once: what a pass that uses them pays before its first file."""
    out = subprocess.run([sys.executable, "-c", WORKERS_START], check=True, text=True,
                         capture_output=True, cwd=Path(__file__).resolve().parent.parent)
    return float(out.stdout.split()[-1])


def scraped_rates(total: int, per_file: int, seed: int) -> tuple[Rate, Rate]:
    """Now (workers, for a pass of 2 MiB or more), and the serial pass."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = fresh_site(tmp)
        generate_scraped(folder / "articles", total, per_file, seed)
        rate = timed_ingest(folder, total, kind="scraped")
        for database in folder.glob("*.db*"):  # the same files, into a fresh store
            database.unlink()
        return rate, timed_ingest(folder, total, serial=True)


def noop_scan(files: int, repeat: int) -> tuple[float, float, float]:
    """Median seconds of a pass with nothing new, of the same pass reading and hashing
    every file (the recorded stats cleared first), and of the daemon's ingest of one new
    file named by its file event (nothing else listed)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = fresh_site(tmp)
        generate_small(folder / "articles", files)
        settings = load_settings(folder, environ={})
        store = open_store(settings.database_url)
        first = ingest(settings, store, NOW)
        assert first.new == files, first.line()
        ingest(settings, store, NOW)  # files changed in the first pass's tick: settled now
        cheap, full = [], []
        keys = list(store.inbox_files.seen())
        for _ in range(repeat):
            started = time.perf_counter()
            report = ingest(settings, store, NOW)
            cheap.append(time.perf_counter() - started)
            assert report.unchanged == files and report.new == 0, report.line()
            store.inbox_files.record_stats([(key, None) for key in keys])
            started = time.perf_counter()
            ingest(settings, store, NOW)
            full.append(time.perf_counter() - started)
        named = []
        for run in range(repeat):
            path = folder / "articles" / SECTIONS[0] / f"new-{run}.txt"
            path.write_text(f"New story {run}\n\nIts body.\n", encoding="utf-8")
            started = time.perf_counter()
            report = ingest(settings, store, NOW, only={path})
            named.append(time.perf_counter() - started)
            assert report.new == 1, report.line()
        store.close()
    return statistics.median(cheap), statistics.median(full), statistics.median(named)


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--articles", type=int, default=10_000)
    parser.add_argument("--scraped", type=int, default=10_000, help="scraped articles")
    parser.add_argument("--per-file", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scan-sizes", default="1000,10000",
                        help="inbox sizes for the no-op scan (100000 takes minutes to make)")
    parser.add_argument("--scan-only", action="store_true", help="the scan figures alone")
    args = parser.parse_args()

    print(f"start: {load()} on {os.cpu_count()} cores", flush=True)
    if not args.scan_only:
        ingest_rates(args)
    scan_figures(args)


def ingest_rates(args: argparse.Namespace) -> None:
    fast, serial, scraped, scraped_serial, starts = [], [], [], [], []
    for run in range(args.repeat):
        rate, baseline = markdown_rates(args.articles, seed=run)
        fast.append(rate)
        serial.append(baseline)
        dumps, dumps_serial = scraped_rates(args.scraped, args.per_file, seed=run)
        scraped.append(dumps)
        scraped_serial.append(dumps_serial)
        starts.append(workers_start())
        print(f"run {run + 1}: markdown {rate[0]:,.0f}/s (serial markdown-it "
              f"{baseline[0]:,.0f}/s), scraped {dumps[0]:,.0f}/s (serial {dumps_serial[0]:,.0f}"
              f"/s); per CPU-second: {rate[1]:,.0f}, {baseline[1]:,.0f}, {dumps[1]:,.0f}, "
              f"{dumps_serial[1]:,.0f}; workers start "
              f"{starts[-1] * 1000:.0f} ms; {load()}", flush=True)
    md, base, dump, dump_base = (tuple(statistics.median(r[i] for r in x) for i in (0, 1))
                                 for x in (fast, serial, scraped, scraped_serial))
    start = statistics.median(starts)
    print(f"\nmedians of {args.repeat} runs: articles/s by wall time | per CPU-second")
    print(f"markdown, {args.articles:,} files, workers: {md[0]:8,.0f} | {md[1]:8,.0f}   "
          f"target >= 2,000: {'met' if md[0] >= 2000 else 'NOT met'}")
    print(f"  baseline, serial markdown-it: {base[0]:8,.0f} | {base[1]:8,.0f}   ratio "
          f"{md[0] / base[0]:.2f}x | {md[1] / base[1]:.2f}x")
    saved = 1 / base[0] - 1 / md[0]  # wall seconds a file costs less with the workers
    crossover = f"{start / saved:,.0f} files" if saved > 0 else "never (no gain here)"
    workers_ms, here_ms = (statistics.median(split[i] for split in CPU_SPLIT["markdown"])
                           for i in (0, 1))
    print(f"  CPU per file, workers {workers_ms:.3f} ms + this process {here_ms:.3f} ms; "
          f"baseline, serial markdown-it: {1000 / base[1]:.3f} ms; ratio "
          f"{1000 / base[1] / (workers_ms + here_ms):.2f}x")
    print(f"  workers' start: {start * 1000:.0f} ms; they pay for it from {crossover} "
          f"(threshold PARALLEL_FILES = {parallel.PARALLEL_FILES})")
    print(f"scraped, {args.scraped:,} in files of {args.per_file}: {dump[0]:8,.0f} | "
          f"{dump[1]:8,.0f}   target >= 10,000: {'met' if dump[0] >= 10000 else 'NOT met'}")
    print(f"  baseline, the serial pass:    {dump_base[0]:8,.0f} | {dump_base[1]:8,.0f}   ratio "
          f"{dump[0] / dump_base[0]:.2f}x | {dump[1] / dump_base[1]:.2f}x")
    workers_ms, here_ms = (statistics.median(split[i] for split in CPU_SPLIT["scraped"])
                           for i in (0, 1))
    print(f"  CPU per article, workers {workers_ms:.3f} ms + this process {here_ms:.3f} ms")
    print(f"end: {load()}")


def scan_figures(args: argparse.Namespace) -> None:
    print("\nno-op inbox scan (nothing new), median of the runs:")
    sizes = [int(size) for size in args.scan_sizes.split(",")]
    results = {}
    for size in sizes:
        results[size] = noop_scan(size, args.repeat)
        cheap, full, named = results[size]
        print(f"  {size:>7,} files: {cheap * 1000:9.1f} ms   baseline (read and hash every "
              f"file): {full * 1000:9.1f} ms   ratio {full / cheap:.1f}x; daemon, one new "
              f"file by its event: {named * 1000:.1f} ms; {load()}", flush=True)
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        ratio = results[large][0] / results[small][0]
        print(f"  {large:,} vs {small:,} files: no-op scan {ratio:.1f}x"
              f", daemon's one new file {results[large][2] / results[small][2]:.1f}x, for "
              f"{large / small:.0f}x the files")


if __name__ == "__main__":
    main()
