"""Benchmark: what the subscribe form's proof of work ([web] challenge) costs a person,
and what it costs a script.

Runs `publisher serve` with the challenge on, opens its /subscribe page in headless
Chromium (Debian's /usr/bin/chromium) --solves times, each time focusing the form and
waiting for our script (templates/challenge.js, crypto.subtle.digest in batches) to
verify; the answer carries the milliseconds the search took. As the baseline, in the
same run, Python's hashlib searches the same challenges up to the same numbers on one
core: roughly what a script signing up addresses pays per sign-up with native code.
Prints both medians, hashes per second and the ratio.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from publisher.instance import init_instance
from tests.support.servers import reserved_port

CHROMIUM = os.environ.get("PUBLISHER_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


def serve(instance: Path, port: int, difficulty: int) -> subprocess.Popen:
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "PUBLISHER_SITE__URL": url, "PUBLISHER_WEB__CHALLENGE": "true",
           "PUBLISHER_WEB__CHALLENGE_DIFFICULTY": str(difficulty), "PUBLISHER_STORE__URL": ""}
    process = subprocess.Popen(
        [sys.executable, "-m", "publisher", "-C", str(instance), "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "subscribe", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("publisher serve did not start")


def browser_answers(url: str, solves: int) -> list[dict]:
    from playwright.sync_api import sync_playwright

    answers = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        for _ in range(solves):
            page.goto(url + "subscribe")
            page.locator('input[name="email"]').focus()
            page.locator('[data-challenge-status][data-state="done"]').wait_for(
                timeout=120_000)
            value = page.locator('input[name="altcha"]').input_value()
            answers.append(json.loads(base64.b64decode(value)))
        browser.close()
    return answers


def python_search(answer: dict) -> float:
    """Seconds hashlib takes to reach the same number from 0."""
    salt, wanted = answer["salt"], answer["challenge"]
    began = time.perf_counter()
    for number in range(answer["number"] + 1):
        if hashlib.sha256(f"{salt}{number}".encode()).hexdigest() == wanted:
            break
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--solves", type=int, default=20)
    parser.add_argument("--difficulty", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="publisher-challenge-") as folder:
        instance = Path(folder) / "site"
        init_instance(instance)
        with reserved_port() as port:  # held for the server, which binds it itself
            process = serve(instance, port, args.difficulty)
            try:
                answers = browser_answers(f"http://127.0.0.1:{port}/", args.solves)
            finally:
                process.terminate()
                process.wait(timeout=30)
    hashes = sum(a["number"] + 1 for a in answers)
    browser_s = sum(a["took"] for a in answers) / 1000
    python_s = [python_search(a) for a in answers]
    print(f"difficulty {args.difficulty:,}: {args.solves} challenges, "
          f"{hashes / args.solves:,.0f} hashes each on average")
    print(f"browser (crypto.subtle): median {statistics.median(a['took'] for a in answers):,.0f}"
          f" ms, max {max(a['took'] for a in answers):,} ms, {hashes / browser_s:,.0f} hashes/s")
    print(f"baseline (Python hashlib, one core): median "
          f"{statistics.median(python_s) * 1000:,.0f} ms, {hashes / sum(python_s):,.0f} hashes/s")
    print(f"ratio browser / baseline: {browser_s / sum(python_s):.2f}")
    print(f"load average: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
