"""Benchmark: the JSON API's list and create, in requests a second, beside the same
operations through the command line.

Each round gets fresh instances (SQLite) of --subscribers subscribers. `publisher serve`
(uvicorn) runs on 127.0.0.1 as a process of its own; a client with a kept-alive
connection (httpx) times GET /api/v1/subscribers?limit=N (the whole list, one page) and
POST /api/v1/subscribers (double_opt_in false: active at once, no mail), one request
after another, then from --clients threads at once. The baseline, in the same run: the
same operations through the CLI, as a script would do them without the API:
`publisher subscribers list --json` and `publisher subscribers add --confirmed`, one
process each (process start, settings and store opening included, which is the point:
that is what each CLI call costs). Medians of --repeat rounds; the machine is shared,
so expect noise.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from publisher.config import load_settings
from publisher.instance import init_instance
from publisher.store import open_store
from publisher.web.api.auth import create_token

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
PUBLISHER = Path(sys.executable).parent / "publisher"


def reserve_port() -> socket.socket:
    """A port for `publisher serve`, held until the socket is closed: bound with
    SO_REUSEADDR and never listening, so no one asking the kernel for a free port gets
    it, while uvicorn (which sets SO_REUSEADDR too) can still listen on it."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def prepare(folder: Path, subscribers: int) -> str:
    init_instance(folder)
    store = open_store(load_settings(folder, environ={}).database_url)
    for n in range(subscribers):
        store.subscribers.add(f"reader.{n}@example.org", NOW, name=f"Reader {n}",
                              status="active")
    _, secret = create_token(store, "bench", False, NOW)
    store.close()
    return secret


class Server:
    def __init__(self, folder: Path):
        self.reservation = reserve_port()
        self.port = self.reservation.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PUBLISHER_SITE__URL": self.url + "/",
               "PUBLISHER_WEB__API_PER_MINUTE": "100000000"}
        self.process = subprocess.Popen(
            [str(PUBLISHER), "-C", str(folder), "serve", "--host", "127.0.0.1", "--port",
             str(self.port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/api/v1/openapi.json", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("publisher serve did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)
        self.reservation.close()


def rate(count: int, work, clients: int = 1) -> float:
    started = time.perf_counter()
    if clients == 1:
        for n in range(count):
            work(n)
    else:
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(work, range(count)))
    return count / (time.perf_counter() - started)


def api_rates(server: Server, secret: str, args, round_no: int) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {secret}"}
    client = httpx.Client(base_url=server.url, headers=headers, timeout=30,
                          limits=httpx.Limits(max_connections=args.clients))

    def list_page(_n: int) -> None:
        answer = client.get("/api/v1/subscribers", params={"limit": args.subscribers})
        assert answer.status_code == 200 and answer.json()["next_after"] is None

    def create(prefix: str):
        def one(n: int) -> None:
            answer = client.post("/api/v1/subscribers", json={
                "email": f"{prefix}.{round_no}.{n}@example.org", "double_opt_in": False})
            assert answer.status_code == 201, answer.text
        return one

    try:
        return {"list": rate(args.requests, list_page),
                "list, parallel": rate(args.requests, list_page, args.clients),
                "create": rate(args.requests, create("api")),
                "create, parallel": rate(args.requests, create("apip"), args.clients)}
    finally:
        client.close()


def cli_rates(folder: Path, args, round_no: int) -> dict[str, float]:
    env = {**os.environ}

    def run(*words: str) -> str:
        done = subprocess.run([str(PUBLISHER), "-C", str(folder), *words], env=env,
                              capture_output=True, text=True, check=True)
        return done.stdout

    def list_all(_n: int) -> None:
        assert run("subscribers", "list", "--json").count("\n") >= args.subscribers

    def create(n: int) -> None:
        run("subscribers", "add", f"cli.{round_no}.{n}@example.org", "--confirmed")

    return {"list": rate(args.cli_requests, list_all),
            "create": rate(args.cli_requests, create)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100,
                        help="subscribers in the store, listed whole by each list request")
    parser.add_argument("--requests", type=int, default=500, help="API requests per figure")
    parser.add_argument("--cli-requests", type=int, default=20, help="CLI calls per figure")
    parser.add_argument("--clients", type=int, default=4, help="threads for 'parallel'")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    api, cli = [], []
    for round_no in range(args.repeat):  # a fresh instance each round: lists stay N long
        with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
            folder = Path(tmp) / "site"
            secret = prepare(folder, args.subscribers)
            server = Server(folder)
            try:
                api.append(api_rates(server, secret, args, round_no))
            finally:
                server.stop()
        with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
            folder = Path(tmp) / "site"
            prepare(folder, args.subscribers)
            cli.append(cli_rates(folder, args, round_no))

    def median(rounds: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    print(f"store: SQLite, {args.subscribers} subscribers listed by each list request; "
          f"medians of {args.repeat} rounds")
    print(f"{'operation':<20} {'API req/s':>10} {'CLI calls/s':>12} {'ratio':>8}")
    for key in ("list", "list, parallel", "create", "create, parallel"):
        base = key.split(",")[0]
        api_rate, cli_rate = median(api, key), median(cli, base)
        print(f"{key:<20} {api_rate:>10.1f} {cli_rate:>12.2f} {api_rate / cli_rate:>7.1f}x")


if __name__ == "__main__":
    main()
