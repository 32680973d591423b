"""`publisher daemon` as a real subprocess on a temp instance."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest
from sqlalchemy import text

from publisher.schedule.lock import run_lock
from tests.support.daemon import drop, feed_titles, titles, wait_until
from tests.support.feeds import configure, item, rss

pytestmark = pytest.mark.slow


def test_files_are_ingested_as_they_land_and_sigterm_exits_0(instance, store, daemons):
    drop(instance, "early.txt", "Landed while the daemon was down")
    daemon = daemons(instance)
    daemon.wait_started()
    wait_until(lambda: "Landed while the daemon was down" in titles(store), "the catch-up")
    drop(instance, "storm.txt", "Storm reaches the coast")
    wait_until(lambda: "Storm reaches the coast" in feed_titles(instance), "the feeds' update")
    assert "Landed while the daemon was down" in feed_titles(instance)
    (instance / "articles" / "bad.pdf").write_bytes(b"%PDF")
    wait_until(lambda: (instance / "articles" / "quarantine" / "bad.pdf.error").exists(),
               "the bad file's quarantine")

    assert daemon.stop(signal.SIGTERM) == 0
    events = [line.get("event") for line in daemon.lines if line.get("event")]
    assert events[-2:] == ["stopping", "stopped"] and daemon.lines[-1]["event"] == "stopped"
    assert not [line for line in daemon.lines if "not_json" in line], "every line is JSON"
    assert {"ts", "level", "logger", "msg"} <= set(daemon.lines[0])
    runs = {run["stage"]: run for run in store.runs.last_of_each_stage()}
    assert runs["ingest"]["ok"] is True


def test_polling_when_file_events_are_off(instance, store, daemons):
    daemon = daemons(instance, env={"PUBLISHER_DAEMON__WATCH": "poll",
                                    "PUBLISHER_DAEMON__POLL_SECONDS": "0.2"})
    daemon.wait_started()
    daemon.wait_for_log(lambda line: line["msg"].startswith("polling "), "that it polls")
    drop(instance, "polled.txt", "Found by polling")
    wait_until(lambda: "Found by polling" in titles(store), "the polled file's article")
    assert daemon.stop(signal.SIGINT) == 0


def test_sources_on_their_interval_and_metrics_on_a_port(instance, store, daemons,
                                                         upstream_server, reserved_port):
    url = upstream_server.serve("/feed.xml", rss(item("Upstream story", guid="1")),
                            etag='"1"')
    configure(instance, {"url": url, "name": "upstream", "interval": 1})
    daemon = daemons(instance, env={"PUBLISHER_DAEMON__METRICS_PORT": str(reserved_port)})
    daemon.wait_started()
    wait_until(lambda: "Upstream story" in titles(store), "the source's article")
    # Its interval is a second: the daemon asks again, conditionally, and gets a 304.
    wait_until(lambda: len(upstream_server.requests) >= 3, "two more fetches")
    assert upstream_server.requests[-1][1]["If-None-Match"] == '"1"'
    upstream_server.serve("/feed.xml", rss(item("Second story", guid="2"),
                                       item("Upstream story", guid="1")), etag='"2"')
    wait_until(lambda: "Second story" in titles(store), "the source's second article")

    text = httpx.get(f"http://127.0.0.1:{reserved_port}/metrics", timeout=10).text
    assert 'publisher_articles_ingested_total{origin="feed"} 2.0' in text
    assert "publisher_articles 2.0" in text
    assert 'publisher_stage_duration_seconds_count{stage="sources"}' in text
    assert daemon.stop() == 0


def test_a_second_daemon_waits_as_a_standby_and_cron_runs_stand_aside(instance, store,
                                                                      daemons):
    lock = run_lock(store.engine)
    lock.acquire()
    try:
        daemon = daemons(instance)
        daemon.wait_for_log(lambda line: "another run is active" in line["msg"],
                            "that it waits for the lock")
    finally:
        lock.release()
    daemon.wait_for_log(lambda line: line["msg"] == "took over the run lock", "the takeover")
    daemon.wait_started()
    cron = subprocess.run([sys.executable, "-m", "publisher", "-C", str(instance), "run"],
                          capture_output=True, text=True, timeout=60)
    assert cron.returncode == 0 and "nothing done" in cron.stdout
    drop(instance, "after.txt", "After the takeover")
    wait_until(lambda: "After the takeover" in titles(store), "the standby's ingest")
    assert daemon.stop() == 0


def test_a_standby_stopped_while_waiting_exits_0(instance, store, daemons):
    lock = run_lock(store.engine)
    lock.acquire()
    try:
        daemon = daemons(instance)
        daemon.wait_for_log(lambda line: "another run is active" in line["msg"], "waiting")
        assert daemon.stop() == 0
    finally:
        lock.release()


def test_a_daemon_that_loses_its_lock_stops_before_writing(instance, store, daemons,
                                                           database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("a file lock cannot be lost while its process lives")
    daemon = daemons(instance)
    daemon.wait_for_log(lambda line: line.get("event") == "leading", "that it leads")
    for stage in ("ingest", "feeds"):  # the passes a new leader starts with are done
        daemon.wait_for_log(lambda line, stage=stage: line["msg"].startswith(f"{stage}: "),
                            f"the start-up {stage} pass")
    with store.writing() as conn:  # what a database restart or a network cut does
        conn.execute(text("SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
                          "WHERE application_name LIKE 'publisher pid %' "
                          "AND datname = current_database()"))
    drop(instance, "unseen.txt", "Never stored by a daemon without the lock")
    assert daemon.stop_by_itself() == 1
    assert any("lost the run lock" in line["msg"] for line in daemon.lines)
    assert "Never stored by a daemon without the lock" not in titles(store), \
        "\n".join(line["msg"] for line in daemon.lines)


def test_a_busy_metrics_port_is_one_line_and_exit_2(instance, store):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "publisher", "-C", str(instance), "daemon"],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "PUBLISHER_DAEMON__METRICS_PORT": str(port)})
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f"publisher: setting daemon.metrics_port = {port} is not valid: expected a port "
        "free on 127.0.0.1 (Address already in use)")
    assert "Traceback" not in result.stderr
    lock = run_lock(store.engine)
    lock.acquire()  # the failed start let go of the run lock
    lock.release()
