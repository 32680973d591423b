"""Benchmark: `publisher send` killed with SIGKILL again and again, then run to the end.

Builds an instance with N due subscribers (default 5,000) and an aiosmtpd server
(bench/faulty_smtp.py, clean unless --faults) that logs the Message-ID of every message
it takes. Then, --kills times (default 20): start `publisher send`, let it deliver a
while, SIGKILL it, note how many rows it had claimed ('sending'), and wait out the lease.
A last run sends what is left. Prints what matters for exactly-once delivery:

- lost: messages queued that never arrived (must be 0);
- duplicates: messages that arrived twice, in all and per kill, beside what each kill
  had claimed and what it could have had on the wire ([mail] connections x 16 messages
  a worker hands the transport at once): a repeat is only ever a message the server took
  after its row was claimed and before the kill let its outcome be recorded.

    .venv/bin/python bench/send_kills.py                     # 5,000 messages, 20 kills
    .venv/bin/python bench/send_kills.py -n 20000 --faults   # against the faulty server
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from send import FAULTS, fill, make_instance, start_faulty

LEASE_SECONDS = 2
PER_SEND = 16  # publisher.delivery.drain.PER_SEND


def arrived(log: Path) -> Counter:
    return Counter(log.read_bytes().split()) if log.exists() else Counter()


def sending_rows(folder: Path) -> int:
    from publisher.config import load_settings
    from publisher.store import open_store

    store = open_store(load_settings(folder).database_url)
    try:
        return store.ledger.counts()["sending"]
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--subscribers", type=int, default=5000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--faults", action="store_true", help="the faulty server")
    parser.add_argument("--seed", type=int, default=20)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="publisher-kills-") as tmp:
        folder, log = Path(tmp) / "site", Path(tmp) / "arrived.log"
        server, port = start_faulty({**(FAULTS if args.faults else {}), "--log": str(log)})
        try:
            make_instance(folder, port, False, args.connections)
            fill(folder, args.subscribers, 10)
            env = {**os.environ, "PUBLISHER_MAIL__LEASE_SECONDS": str(LEASE_SECONDS)}
            env.pop("PUBLISHER_STORE__URL", None)
            command = [sys.executable, "-m", "publisher", "-C", str(folder), "send"]
            claimed = []
            step = max(1, args.subscribers // (args.kills + 2))
            for _ in range(args.kills):
                before = sum(arrived(log).values())
                child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
                wanted = before + rng.randint(step // 2, step)
                while sum(arrived(log).values()) < wanted and child.poll() is None:
                    time.sleep(0.01)
                child.send_signal(signal.SIGKILL)
                child.wait()
                claimed.append(sending_rows(folder))
                time.sleep(LEASE_SECONDS + 0.5)  # the dead sender's lease runs out
            last = subprocess.run(command, env=env, capture_output=True, text=True)
            if last.returncode:
                raise SystemExit(f"the last run failed:\n{last.stderr}")
            from publisher.config import load_settings
            from publisher.store import open_store

            store = open_store(load_settings(folder).database_url)
            states = {row["message_id"].encode(): row["state"]
                      for row in store.ledger.digest_messages()}
            counts = store.ledger.counts()
            store.close()
        finally:
            server.terminate()
            server.wait()
        got = arrived(log)
    # Lost: recorded as sent but never arrived, or never given an outcome at all. (The
    # faulty server's 451s and 550s leave rows deferred and failed: known, not lost.)
    lost = [m for m, state in states.items()
            if (state == "sent" and m not in got) or state in ("queued", "sending")]
    duplicates = sum(n - 1 for n in got.values() if n > 1)
    print(f"{args.subscribers:,} messages, {args.kills} SIGKILLs of `publisher send` "
          f"({args.connections} connections) against bench/faulty_smtp.py "
          f"({'faulty' if args.faults else 'clean'}); ledger at the end: {counts}")
    print(f"lost: {len(lost)} (must be 0; deferred or failed by the server, known and "
          f"not lost: {counts['deferred'] + counts['failed']})")
    print(f"duplicates: {duplicates} in all, {duplicates / args.kills:.1f} per kill "
          f"(most on one Message-ID: {max(got.values(), default=0)})")
    print(f"claimed at each kill ('sending'): mean {sum(claimed) / len(claimed):.0f}, "
          f"max {max(claimed)}; on the wire at most {args.connections * PER_SEND} "
          f"({args.connections} connections x {PER_SEND})")


if __name__ == "__main__":
    main()
