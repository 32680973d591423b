"""`publisher serve` as a real process: it starts, serves, stops; a bad secret stops it."""

from __future__ import annotations

import httpx
import pytest

from tests.support.web import PUBLISHER, Served


@pytest.mark.slow  # a `publisher serve` process, started and stopped
def test_serve_serves_the_folder_and_the_pages(instance):
    (instance / "feeds" / "feed.json").write_text(
        '{"version": "https://jsonfeed.org/version/1.1", "title": "T", "items": []}')
    with Served(instance) as served:
        page = httpx.get(served.url + "subscribe")
        assert page.status_code == 200 and "Subscribe to" in page.text
        assert f'action="{served.url}subscribe"' in page.text
        feed = httpx.get(served.url + "feed.json")
        assert feed.headers["content-type"] == "application/feed+json; charset=utf-8"
        assert httpx.get(served.url + "feed.json", headers={
            "If-None-Match": feed.headers["etag"]}).status_code == 304
        assert httpx.get(served.url + "unsubscribe/SECRET-TOKEN").status_code == 400
    assert served.process.returncode == 0
    log = served.log.read_text()
    assert "serving" in log and "GET /feed.json HTTP/1.1\" 304" in log
    # Whoever reads the log must not be able to use the links in it.
    assert "GET /unsubscribe/… HTTP/1.1\" 400" in log and "SECRET-TOKEN" not in log


def test_serve_without_a_secret_is_one_line(run_cli, tmp_path, refused_port):
    (tmp_path / "publisher.toml").write_text('[web]\nsecret = "short"\n')
    result = run_cli("-C", tmp_path, "serve", "--port", str(refused_port))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "publisher: setting web.secret = 'short' is not valid: expected a random string of "
        "at least 16 characters (publisher init writes one)"]


@pytest.fixture(autouse=True)
def _needs_the_script():
    if not PUBLISHER.exists():
        pytest.skip(f"{PUBLISHER} is not installed (pip install -e .)")
