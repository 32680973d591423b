"""DKIM: our OpenSSL-signed messages verify with dkimpy, offline (the DNS lookup is ours)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from publisher.config import load_settings
from publisher.delivery.compose import Composer
from publisher.delivery.dkim import load_signer
from publisher.digests.planner import queue_digests
from publisher.errors import ConfigError
from publisher.store import open_store
from publisher.store.runs import NODE
from tests.support.mail import add_articles, add_subscriber


@pytest.fixture
def signed_instance(tmp_path, monkeypatch):
    from publisher.instance import init_instance

    folder = tmp_path / "site"
    init_instance(folder)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (folder / "dkim.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    monkeypatch.delenv("PUBLISHER_STORE__URL", raising=False)
    monkeypatch.setenv("PUBLISHER_MAIL__DKIM_KEY", "dkim.pem")
    monkeypatch.setenv("PUBLISHER_MAIL__DKIM_SELECTOR", "pub2026")
    monkeypatch.setenv("PUBLISHER_MAIL__FEEDBACK_ID", "digest:demo")
    monkeypatch.setenv("PUBLISHER_SITE__URL", "https://news.example.org/")
    return folder


def messages(folder, now):
    settings = load_settings(folder)
    store = open_store(settings.database_url)
    add_articles(store, [("Harbour Reopens", ("world",)), ("Comet Seen", ("science",))], now)
    add_subscriber(store, "ada@example.org", now, name="Ada Lovelace")
    add_subscriber(store, "jose@example.org", now, name="José  Martí")  # two spaces
    queue_digests(settings, store, now, everyone=True)
    composer = Composer(settings, store, load_signer(settings))
    rows = store.ledger.claim(now, 10, now, NODE)
    found = [composer.message(row, now) for row in rows]
    store.close()
    return settings, composer, found


# dkimpy refuses a signature stamped in the future of the system clock (t=), so these are
# signed at a fixed instant in the past, whatever the day the suite runs.
SIGNED_AT = datetime(2020, 1, 6, 12, 0, tzinfo=UTC)


def dns_for(signer):
    record = signer.dns_record().encode()

    def lookup(name, timeout=5):
        assert name == f"{signer.dns_name}.".encode() or name == signer.dns_name.encode()
        return record

    return lookup


def test_signatures_verify_with_dkimpy(signed_instance):
    _, composer, found = messages(signed_instance, SIGNED_AT)
    assert len(found) == 2
    lookup = dns_for(composer.dkim)
    for envelope in found:
        assert envelope.data.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; "
                                        b"c=relaxed/relaxed; d=example.org;")
        assert dkim.verify(envelope.data, dnsfunc=lookup)
        header = envelope.data.split(b"\r\n\r\n")[0].decode()
        signed = re.search(r"h=([^;]+);", header.replace("\r\n\t", ""))[1].split(":")
        assert {"from", "to", "subject", "date", "message-id", "list-id", "list-unsubscribe",
                "list-unsubscribe-post", "feedback-id", "content-type"} <= set(signed)


def test_a_changed_message_no_longer_verifies(signed_instance):
    _, composer, found = messages(signed_instance, SIGNED_AT)
    lookup = dns_for(composer.dkim)
    data = found[0].data
    assert dkim.verify(data, dnsfunc=lookup)
    assert not dkim.verify(data.replace(b"Harbour Reopens", b"Harbour Closed", 1),
                           dnsfunc=lookup)
    assert not dkim.verify(re.sub(rb"List-Unsubscribe: <https://[^>]+>",
                                  b"List-Unsubscribe: <https://evil.example/x>", data),
                           dnsfunc=lookup)
    # Relaxed canonicalization: refolding and extra spaces in headers still verify.
    assert dkim.verify(data.replace(b"Precedence: bulk", b"Precedence:   bulk"),
                       dnsfunc=lookup)


def test_dkim_settings_are_checked(signed_instance, monkeypatch):
    monkeypatch.setenv("PUBLISHER_MAIL__DKIM_SELECTOR", "bad selector")
    with pytest.raises(ConfigError, match="dkim_selector"):
        load_signer(load_settings(signed_instance))
    monkeypatch.setenv("PUBLISHER_MAIL__DKIM_KEY", "missing.pem")
    with pytest.raises(ConfigError, match="dkim_key"):
        load_signer(load_settings(signed_instance))


def test_digest_check_prints_the_dns_record(signed_instance, run_cli):
    result = run_cli("-C", signed_instance, "digest", "check")
    assert result.exit_code == 0
    assert 'DKIM on: publish TXT pub2026._domainkey.example.org "v=DKIM1; k=rsa; p=' \
        in result.output
