"""Shared fixtures: a fresh instance folder, a store on every backend, the CLI runner,
real servers on 127.0.0.1, the web app, daemon processes. Helpers live in tests/support/."""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import argon2.profiles
import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, make_url

from publisher.cli import cli
from publisher.clock import fixed
from publisher.config import load_settings
from publisher.instance import init_instance
from publisher.store import open_store
from publisher.store.schema import metadata
from publisher.web import create_app
from publisher.web.admin import operators
from tests.support import NOW, PG_URL, SEED, servers
from tests.support import console as console_support
from tests.support.daemon import DaemonProcess
from tests.support.inbox import count_reads
from tests.support.web import CHROMIUM, FLAGS, TestClient

# Property tests draw the same examples on every run unless a campaign asks for more
# (PUBLISHER_FUZZ_EXAMPLES): a new random find must not turn CI red on an unrelated
# change (one did: 'title: !', read apart by libyaml and PyYAML). Loaded before the test
# modules are imported: the settings they build start from this profile.
hypothesis_settings.register_profile(
    "publisher", derandomize="PUBLISHER_FUZZ_EXAMPLES" not in os.environ, database=None,
    print_blob=True)
hypothesis_settings.load_profile("publisher")


@pytest.fixture(autouse=True, scope="session")
def publisher_time():
    """Every publisher process the tests start (the CLI in-process, `run`, `daemon`) runs
    on a clock that starts at NOW, so test data built around NOW means the same thing on
    any day the suite runs. Tests that need another instant pass --time themselves."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PUBLISHER_TIME", NOW.isoformat())
        yield NOW


@pytest.fixture
def seed_bytes() -> bytes:
    if not SEED.exists():
        pytest.skip(f"{SEED} is absent (the shared seed folder is not beside the repo)")
    return SEED.read_bytes()


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """PUBLISHER_TEST_PG_URL, or under pytest-xdist a database of this worker's own on
    that server (created here, dropped at the end), so workers never share tables."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not PG_URL or not worker:
        yield PG_URL
        return
    url = make_url(PG_URL)
    name = f"{url.database}_{worker}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def pg_url(pg_server_url) -> str:
    """An empty PostgreSQL database (its tables dropped); skips when no server runs."""
    if not pg_server_url:
        pytest.skip("PostgreSQL leg skipped: PUBLISHER_TEST_PG_URL is not set "
                    "(.ci/services.sh starts a server and sets it)")
    engine = create_engine(pg_server_url)
    with engine.begin() as conn:
        metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS schema_version")
    engine.dispose()
    return pg_server_url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> str:
    """A fresh, empty database on each backend; PostgreSQL skips when no server runs."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'publisher.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def instance(tmp_path, database_url, monkeypatch):
    """An instance made by `publisher init`, its store on the backend under test."""
    folder = tmp_path / "site"
    init_instance(folder)
    monkeypatch.setenv("PUBLISHER_STORE__URL", database_url)
    return folder


@pytest.fixture
def settings(instance):
    return load_settings(instance)


@pytest.fixture
def store(settings):
    store = open_store(settings.database_url)
    yield store
    store.close()


@pytest.fixture
def inbox(settings):
    """The instance's inbox, emptied of the welcome article."""
    folder = settings.path(settings.ingest.inbox)
    shutil.rmtree(folder)
    folder.mkdir()
    return folder


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """The keys of the files ingest reads (opens and hashes), in order."""
    return count_reads(monkeypatch)


@pytest.fixture
def run_cli():
    """Invoke the CLI in-process; returns click's Result (exit_code, stdout, stderr).

    Each call's clock starts a second after the one before ended (NOW, then about NOW +
    1 s, ...), as if a person typed the commands one after another: a retry queued by one
    call is due in the next, however long a call took on a loaded machine. `env` may give
    PUBLISHER_TIME itself."""
    runner = CliRunner()
    start = NOW

    def invoke(*args: str, env: dict | None = None):
        nonlocal start
        env = {"PUBLISHER_TIME": start.isoformat(), **(env or {})}
        began = time.monotonic()  # clock-ok: how long the call ran, not test data
        result = runner.invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)
        ran = time.monotonic() - began  # clock-ok
        start += timedelta(seconds=math.ceil(ran) + 1)
        return result

    return invoke


@pytest.fixture
def smtp_server():
    """A real SMTP server (aiosmtpd) on 127.0.0.1; `.handler.messages` holds what arrived."""
    with servers.smtp_server(servers.RecordingHandler()) as server:
        yield server


@pytest.fixture
def upstream_server():
    """A real HTTP server on 127.0.0.1 serving upstream feeds from UpstreamServer.routes."""
    with servers.upstream_host() as server:
        yield server


@pytest.fixture
def web_settings(instance, monkeypatch):
    """Settings whose [site] url is the TestClient's own host, so links work as given."""
    monkeypatch.setenv("PUBLISHER_SITE__URL", "http://testserver/")
    monkeypatch.setenv("PUBLISHER_WEB__SUBSCRIBE_PER_MINUTE", "3")
    for section in ("world", "science", "culture"):  # inbox folders: sections that exist
        (instance / "articles" / section).mkdir()
    return load_settings(instance)


@pytest.fixture
def client(web_settings, store):
    """The web app under Starlette's TestClient, its clock fixed at NOW."""
    with TestClient(create_app(web_settings, store, clock=fixed(NOW)),
                    follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def console(web_settings, store, smtp_server, monkeypatch):
    """The app with an owner and an editor account, its clock movable (`.clock.now`),
    its mail going to a real SMTP server (`.mail` holds what arrived). Passwords are
    argon2id at argon2-cffi's cheapest parameters: the same code, without the second of
    CPU each hash and check costs at the real ones (test_console_auth checks those)."""
    monkeypatch.setattr(operators, "hasher", PasswordHasher.from_parameters(
        argon2.profiles.CHEAPEST))
    settings = replace(web_settings, mail=replace(web_settings.mail, transport="smtp",
                                                  smtp_url=smtp_server.url))
    operators.add_operator(store, console_support.OWNER, "owner", console_support.PASSWORD, NOW)
    operators.add_operator(store, console_support.EDITOR, "editor", console_support.PASSWORD, NOW)
    clock = console_support.Clock(NOW)
    app = create_app(settings, store, clock=clock)
    with TestClient(app, follow_redirects=False) as client:
        yield SimpleNamespace(client=client, clock=clock, store=store, settings=settings,
                              app=app, mail=smtp_server.handler.messages)


@pytest.fixture
def chromium():
    """Debian's headless Chromium driven by Playwright (never a downloaded browser)."""
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian package chromium; "
                    "`source .ci/services.sh` installs it)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="Playwright's Python package is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def daemons():
    """Start daemons with `daemons(instance, *args, env=...)`; all are killed at the end."""
    started: list[DaemonProcess] = []

    def start(instance, *args, env=None) -> DaemonProcess:
        daemon = DaemonProcess(instance, *args, env=env)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.kill()


@pytest.fixture
def refused_port():
    """A port on 127.0.0.1 where connections are refused (held for the whole test)."""
    with servers.refused_port() as port:
        yield port


@pytest.fixture
def reserved_port():
    """A port held for a server in another process that must be told it in advance."""
    with servers.reserved_port() as port:
        yield port
