"""Benchmark: queue and deliver a digest to N subscribers over SMTP, end to end.

Each run builds a fresh SQLite instance with N active daily subscribers (default
100,000), all due, and 10 new articles, then times `queue_digests` + `deliver` over the
smtp transport to Postfix's smtp-sink on 127.0.0.1 (an aiosmtpd sink when smtp-sink is
absent). The send runs in a child process so its peak RSS is the send's alone.

Baseline, measured in the same run on a sample of messages: the naive way, per message
a Jinja2 render, an EmailMessage, css-inline (with --dkim: a dkimpy signature) and one
aiosmtplib send over one of 20 connections. Prints messages/s, peak RSS and the ratio
(medians of --repeat runs).

    .venv/bin/python bench/send.py                       # 100,000 subscribers
    .venv/bin/python bench/send.py -n 10000 --dkim       # DKIM-signed (RSA 2048)

Scaling out (several sender processes on one database, as several `publisher daemon`
nodes would run): with --senders N the digests are queued once, then 1, 2, ... N
processes drain the outbox together (claims are FOR UPDATE SKIP LOCKED on PostgreSQL),
each with [mail] connections connections; prints messages/s for each count and the
ratio against one sender (medians of --repeat runs).

    .venv/bin/python bench/send.py -n 20000 --senders 3 \
        --store postgresql+psycopg://user@127.0.0.1:5432/bench   # the database is emptied

Faults (--faults): one `send` pass to an aiosmtpd server (bench/faulty_smtp.py) that
answers 451 to 15% of messages, 421 and closes for 5%, drops the connection for 5% and
refuses 1% of addresses with 550 at RCPT; and, in the same run, the same pass to the
same server with no faults. Prints messages/s for both (messages given an outcome:
sent, deferred or failed) and the ratio; the target is at least 1/4.

    .venv/bin/python bench/send.py --faults -n 20000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
WORDS = ("harbour", "council", "storm", "rail", "library", "festival", "comet", "election",
         "market", "bridge", "river", "school", "hospital", "budget", "vote", "minister")


# ---------------------------------------------------------------- the sink
def reserve_port() -> socket.socket:
    """A port for the sink, held until the socket is closed: bound with SO_REUSEADDR and
    never listening, so no one asking the kernel for a free port gets it, while the sink
    (which sets SO_REUSEADDR too) can still listen on it."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def start_sink(port: int) -> tuple[subprocess.Popen, str]:
    sink = os.environ.get("PUBLISHER_SMTP_SINK") or shutil.which("smtp-sink") \
        or ("/usr/sbin/smtp-sink" if Path("/usr/sbin/smtp-sink").exists() else None)
    if sink:
        command = [sink, *(["-u", "nobody"] if os.getuid() == 0 else []),
                   f"127.0.0.1:{port}", "1000"]
        name = "smtp-sink"
    else:
        command = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
                   "-c", "aiosmtpd.handlers.Sink"]
        name = "aiosmtpd sink"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, name
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit(f"{name} did not start on port {port}")


# ---------------------------------------------------------------- set-up
def make_instance(folder: Path, port: int, dkim: bool, connections: int) -> None:
    from publisher.instance import init_instance

    init_instance(folder)
    config = folder / "publisher.toml"
    text = config.read_text()
    text = text.replace('transport = "maildir"', 'transport = "smtp"')
    text = text.replace('smtp_url = "smtp://127.0.0.1:25"', f'smtp_url = "smtp://127.0.0.1:{port}"')
    text = text.replace("connections = 10", f"connections = {connections}")
    text = text.replace('url = "http://127.0.0.1:8080/"', 'url = "https://news.example.org/"')
    if dkim:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (folder / "dkim.pem").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        text = text.replace('dkim_key = ""', 'dkim_key = "dkim.pem"')
        text = text.replace('dkim_selector = ""', 'dkim_selector = "bench"')
    config.write_text(text)


def fill(folder: Path, subscribers: int, articles: int) -> None:
    """N subscribers and the articles, written in bulk (set-up, not what is measured)."""
    from sqlalchemy import insert

    from publisher.article import make_article
    from publisher.config import load_settings
    from publisher.store import open_store
    from publisher.store.articles import FilePlan
    from publisher.store.schema import subscribers as table

    settings = load_settings(folder)
    store = open_store(settings.database_url)
    joined = NOW - timedelta(days=3)
    for start in range(0, subscribers, 20_000):
        # Set-up only: a bulk insert straight into the table, as an import would.
        with store.writing() as conn:
            conn.execute(insert(table), [
                {"email": f"reader{n}@example.net", "name": f"Reader {n}", "status": "active",
                 "frequency": "daily", "sections": [], "timezone": "", "cursor": 0,
                 "bounce_count": 0, "created_at": joined, "updated_at": joined,
                 "token_version": 0}
                for n in range(start, min(start + 20_000, subscribers))])
    new = [make_article(
        id=f"bench-{n}", title=f"The {WORDS[n % 16]} story number {n}",
        paragraphs=(" ".join(WORDS[(n + k) % 16] for k in range(60)) + ".",) * 4,
        source="bench.md", sections=("world",), source_index=n,
        image=f"https://images.example.org/{n}.jpg" if n % 2 else None,
        published=NOW - timedelta(hours=n)) for n in range(articles)]
    store.articles.save_files([FilePlan("bench.md", "x" * 64, len(new), new=new)],
                              NOW - timedelta(days=1))
    store.close()


# ---------------------------------------------------------------- scaling out
def reset_database(url: str) -> None:
    """Empty the bench's PostgreSQL database (it is the bench's own: --store says so)."""
    from sqlalchemy import create_engine

    from publisher.store.schema import metadata

    engine = create_engine(url)
    with engine.begin() as conn:
        metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS schema_version")
    engine.dispose()


def sender_child(folder: str) -> None:
    """One sender process: ready once imported and connected, then waits for the go
    file so that every sender starts together; prints JSON with its sent count and times."""
    from publisher.config import load_settings
    from publisher.delivery import deliver_blocking, make_transport
    from publisher.store import open_store

    settings = load_settings(Path(folder))
    store = open_store(settings.database_url)
    store.ledger.counts()  # connected
    Path(folder, f"ready-{os.getpid()}").touch()
    while not Path(folder, "go").exists():
        time.sleep(0.005)
    started = time.time()
    report = deliver_blocking(settings, store, make_transport(settings), NOW)
    print(json.dumps({"sent": report.sent, "start": started, "end": time.time(),
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def scaling_run(args, port: int, senders: int) -> float:
    """Queue once, then `senders` processes drain the outbox together: messages/s."""
    from publisher.config import load_settings
    from publisher.digests.planner import queue_digests
    from publisher.store import open_store

    with tempfile.TemporaryDirectory(prefix="publisher-bench-") as tmp:
        folder = Path(tmp) / "site"
        if args.store.startswith("postgresql"):
            reset_database(args.store)
        make_instance(folder, port, args.dkim, args.connections)
        fill(folder, args.subscribers, args.articles)
        settings = load_settings(folder)
        store = open_store(settings.database_url)
        queued = queue_digests(settings, store, NOW).queued
        store.close()
        children = [subprocess.Popen([sys.executable, __file__, "--sender-child", str(folder)],
                                     stdout=subprocess.PIPE, text=True)
                    for _ in range(senders)]
        while len(list(folder.glob("ready-*"))) < senders:
            if any(child.poll() is not None for child in children):
                raise SystemExit("a sender process failed to start")
            time.sleep(0.01)
        (folder / "go").touch()
        results = []
        for child in children:
            out, _ = child.communicate()
            if child.returncode:
                raise SystemExit("a sender process failed")
            results.append(json.loads(out.strip().splitlines()[-1]))
    sent = sum(r["sent"] for r in results)
    if sent != queued or queued != args.subscribers:
        raise SystemExit(f"queued {queued}, sent {sent} of {args.subscribers}")
    seconds = max(r["end"] for r in results) - min(r["start"] for r in results)
    return sent / seconds


def scaling(args, port: int, sink_name: str) -> None:
    counts = range(1, args.senders + 1)
    rates: dict[int, list[float]] = {n: [] for n in counts}
    for repeat in range(args.repeat):
        for n in counts:  # interleaved, so a busy moment of the machine hits all alike
            rates[n].append(scaling_run(args, port, n))
            print(f"run {repeat + 1}, {n} sender{'s' if n > 1 else ''}: "
                  f"{rates[n][-1]:,.0f} messages/s", flush=True)
    backend = "PostgreSQL" if args.store.startswith("postgresql") else "SQLite"
    print(f"\n{args.subscribers:,} subscribers on {backend}, {args.connections} connections "
          f"per sender to {sink_name} on this machine ({os.cpu_count()} CPUs); "
          f"medians of {args.repeat} runs")
    one = statistics.median(rates[1])
    for n in counts:
        rate = statistics.median(rates[n])
        print(f"{n} sender{'s' if n > 1 else ' '}: {rate:,.0f} messages/s  "
              f"ratio {rate / one:.2f}x")
    if (os.cpu_count() or 1) <= args.senders:
        print(f"note: {args.senders} senders, the database and the SMTP sink share "
              f"{os.cpu_count()} CPUs here, so gains stop once the CPUs are busy; on "
              "separate machines each node brings its own CPU.")


# ---------------------------------------------------------------- faults
FAULTS = {"--p451": "0.15", "--p421": "0.05", "--drop": "0.05", "--p550": "0.01"}


def start_faulty(faults: dict[str, str]) -> tuple[subprocess.Popen, int]:
    """bench/faulty_smtp.py on a port it binds itself (port 0) and reports."""
    script = Path(__file__).resolve().parent / "faulty_smtp.py"
    command = [sys.executable, str(script)]
    for flag, value in faults.items():
        command += [flag, value]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()  # "port N" once it listens; "" if it died
    if not line.startswith("port "):
        process.kill()
        raise SystemExit("faulty_smtp.py did not start")
    return process, int(line.split()[1])


def faults_child(folder: str) -> None:
    """Queue the digests, then time one delivery pass (as `publisher send` makes)."""
    from publisher.config import load_settings
    from publisher.delivery import deliver_blocking, make_transport
    from publisher.digests.planner import queue_digests
    from publisher.store import open_store

    settings = load_settings(Path(folder))
    store = open_store(settings.database_url)
    queue_digests(settings, store, NOW)
    started = time.perf_counter()
    report = deliver_blocking(settings, store, make_transport(settings), NOW)
    print(json.dumps({"sent": report.sent, "deferred": report.deferred,
                      "failed": report.failed, "waiting": report.waiting,
                      "problem": report.problem, "deliver_s": time.perf_counter() - started}))


def faults_run(args, faults: dict[str, str]) -> dict:
    server, port = start_faulty(faults)
    try:
        with tempfile.TemporaryDirectory(prefix="publisher-bench-") as tmp:
            folder = Path(tmp) / "site"
            make_instance(folder, port, args.dkim, args.connections)
            fill(folder, args.subscribers, args.articles)
            output = subprocess.run([sys.executable, __file__, "--faults-child", str(folder)],
                                    capture_output=True, text=True, check=False)
            if output.returncode:
                raise SystemExit(f"the send failed:\n{output.stderr}")
            result = json.loads(output.stdout.strip().splitlines()[-1])
    finally:
        server.terminate()
        server.wait()
    result["handled"] = result["sent"] + result["deferred"] + result["failed"]
    result["rate"] = result["handled"] / result["deliver_s"]
    return result


def faults(args) -> None:
    runs = []
    for n in range(args.repeat):
        clean, faulty = faults_run(args, {}), faults_run(args, FAULTS)
        runs.append((clean, faulty))
        why = f": {faulty['problem']}" if faulty["problem"] else ""
        print(f"run {n + 1}: clean {clean['rate']:,.0f} messages/s; faulty "
              f"{faulty['rate']:,.0f} messages/s ({faulty['sent']:,} sent, "
              f"{faulty['deferred']:,} deferred, {faulty['failed']:,} failed, "
              f"{faulty['waiting']:,} handed back{why}) in {faulty['deliver_s']:.1f} s",
              flush=True)
    clean = statistics.median(c["rate"] for c, _ in runs)
    faulty = statistics.median(f["rate"] for _, f in runs)
    print(f"\n{args.subscribers:,} messages, {args.connections} connections, one send pass "
          f"each, to bench/faulty_smtp.py (aiosmtpd); medians of {len(runs)} runs")
    print(f"clean server: {clean:,.0f} messages/s")
    print(f"faulty server (451 15%, 421+close 5%, dropped 5%, 550 at RCPT 1%): "
          f"{faulty:,.0f} messages/s")
    print(f"ratio faulty/clean: {faulty / clean:.2f} (target: at least 0.25)")


# ---------------------------------------------------------------- the measured send
def child(folder: str) -> None:
    """Runs in its own process: queue and deliver; prints JSON with time and peak RSS."""
    from publisher.config import load_settings
    from publisher.delivery import deliver_blocking, make_transport
    from publisher.digests.planner import queue_digests
    from publisher.store import open_store

    settings = load_settings(Path(folder))
    store = open_store(settings.database_url)
    started = time.perf_counter()
    queued = queue_digests(settings, store, NOW).queued
    middle = time.perf_counter()
    report = deliver_blocking(settings, store, make_transport(settings), NOW)
    ended = time.perf_counter()
    counts = store.ledger.counts()
    print(json.dumps({"queued": queued, "sent": report.sent, "counts": counts,
                      "queue_s": middle - started, "deliver_s": ended - middle,
                      "total_s": ended - started,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def naive(folder: Path, port: int, sample: int, dkim_sign: bool) -> float:
    """The naive way on `sample` messages: messages/s. With DKIM, each message is also
    signed by dkimpy (pure-Python RSA), as one would without our signer."""
    from email.message import EmailMessage
    from email.policy import SMTP

    import aiosmtplib

    from publisher.config import load_settings
    from publisher.delivery.templates import (
        article_context,
        digest_context,
        digest_subject,
        environment,
        inline_css,
    )
    from publisher.store import open_store
    from publisher.tokens import link

    settings = load_settings(folder)
    store = open_store(settings.database_url)
    articles = [article_context(settings, a) for a in store.articles.latest(10)]
    env = environment(settings)
    text_t, html_t = env.get_template("digest.txt"), env.get_template("digest.html")
    subject = digest_subject(settings, len(articles))

    def build(n: int) -> EmailMessage:
        links = {"unsubscribe_url": link(settings, "unsubscribe", n, now=NOW),
                 "preferences_url": link(settings, "preferences", n, now=NOW)}
        context = digest_context(settings, articles, 0, subject,
                                 {"name": f"Reader {n}", "email": f"r{n}@example.net"}, links)
        message = EmailMessage()
        message["From"] = settings.mail.from_
        message["To"] = f"Reader {n} <r{n}@example.net>"
        message["Subject"] = subject
        message["List-Unsubscribe"] = f"<{links['unsubscribe_url']}>"
        message.set_content(text_t.render(context))
        message.add_alternative(inline_css(html_t.render(context)), subtype="html")
        return message

    key = (folder / "dkim.pem").read_bytes() if dkim_sign else None

    def data(n: int) -> bytes:
        raw = build(n).as_bytes(policy=SMTP)
        if key is None:
            return raw
        import dkim

        return dkim.sign(raw, b"bench", b"example.org", key,
                         canonicalize=(b"relaxed", b"relaxed")) + raw

    async def run() -> float:
        todo = list(range(sample))

        async def worker():
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
            await client.connect()
            while todo:
                n = todo.pop()
                await client.sendmail("news@example.org", [f"r{n}@example.net"], data(n))
            await client.quit()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(20)))
        return sample / (time.perf_counter() - started)

    rate = asyncio.run(run())
    store.close()
    return rate


def one_run(args, port: int) -> dict:
    if args.store.startswith("postgresql"):
        reset_database(args.store)
    with tempfile.TemporaryDirectory(prefix="publisher-bench-") as tmp:
        folder = Path(tmp) / "site"
        make_instance(folder, port, args.dkim, args.connections)
        fill(folder, args.subscribers, args.articles)
        output = subprocess.run([sys.executable, __file__, "--child", str(folder)],
                                capture_output=True, text=True, check=False)
        if output.returncode:
            raise SystemExit(f"the send failed:\n{output.stderr}")
        result = json.loads(output.stdout.strip().splitlines()[-1])
        if result["sent"] != args.subscribers:
            raise SystemExit(f"sent {result['sent']} of {args.subscribers}: {result}")
        result["naive"] = naive(folder, port, args.sample, args.dkim)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--subscribers", type=int, default=100_000)
    parser.add_argument("--articles", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sample", type=int, default=3000, help="naive-way messages")
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--dkim", action="store_true", help="sign with a 2048-bit RSA key")
    parser.add_argument("--store", default="",
                        help="database URL (postgresql+psycopg://...; its tables are "
                             "dropped); default: a fresh SQLite file per run")
    parser.add_argument("--senders", type=int, default=0,
                        help="measure 1..N sender processes sharing the outbox")
    parser.add_argument("--faults", action="store_true",
                        help="one send pass to a faulty server beside a clean one")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--faults-child", help=argparse.SUPPRESS)
    parser.add_argument("--sender-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    if args.sender_child:
        sender_child(args.sender_child)
        return
    if args.faults_child:
        faults_child(args.faults_child)
        return
    if args.faults:
        faults(args)
        return
    if args.store:
        os.environ["PUBLISHER_STORE__URL"] = args.store
    reservation = reserve_port()
    port = reservation.getsockname()[1]
    sink, sink_name = start_sink(port)
    if args.senders:
        try:
            scaling(args, port, sink_name)
        finally:
            sink.terminate()
            sink.wait()
        return
    try:
        runs = []
        for n in range(args.repeat):
            result = one_run(args, port)
            rate = args.subscribers / result["total_s"]
            runs.append((rate, result))
            print(f"run {n + 1}: {rate:,.0f} messages/s end to end (queue "
                  f"{result['queue_s']:.1f} s, deliver {result['deliver_s']:.1f} s), "
                  f"peak RSS {result['rss_mb']:.0f} MB; naive {result['naive']:,.0f}/s",
                  flush=True)
    finally:
        sink.terminate()
        sink.wait()
    rate = statistics.median(r for r, _ in runs)
    rss = statistics.median(result["rss_mb"] for _, result in runs)
    baseline = statistics.median(result["naive"] for _, result in runs)
    print(f"\n{args.subscribers:,} subscribers, {args.articles} articles, "
          f"{'DKIM rsa-sha256 2048, ' if args.dkim else ''}{args.connections} connections "
          f"to {sink_name}; medians of {len(runs)} runs")
    print(f"end to end (queue + deliver): {rate:,.0f} messages/s, peak RSS {rss:.0f} MB")
    dkimpy = " + dkimpy signing" if args.dkim else ""
    print(f"naive baseline (Jinja2 + EmailMessage + css-inline{dkimpy} + aiosmtplib per "
          f"message, 20 connections, {args.sample:,} messages): {baseline:,.0f} messages/s")
    print(f"ratio: {rate / baseline:.1f}x")


if __name__ == "__main__":
    main()
