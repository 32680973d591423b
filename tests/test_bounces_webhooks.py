"""The bounce webhooks of `publisher serve`, each with a correctly signed call and a
forged one: Amazon SES through SNS (checked against a signing certificate made here,
handed to the app through create_app's fetcher; the SNS-host rule still applies),
Postmark (basic auth), Mailgun (HMAC) and the generic HMAC-SHA256 webhook."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from publisher.bounces.sns import CONFIRMATION_KEYS, NOTIFICATION_KEYS, string_to_sign
from publisher.config import load_settings
from publisher.delivery.verp import Verp
from publisher.web import create_app
from tests.support import NOW
from tests.support.mail import add_subscriber
from tests.support.web import TestClient

TOPIC = "arn:aws:sns:eu-west-1:123456789012:publisher-bounces"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test.pem"
SUBSCRIBE_URL = ("https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription"
                 "&TopicArn=" + TOPIC + "&Token=abc")


@pytest.fixture(scope="module")
def signer():
    """An RSA key and a certificate for it, valid around the tests' fixed instant."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=30))
            .not_valid_after(NOW + timedelta(days=365)).sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def hooks(instance, monkeypatch):
    monkeypatch.setenv("PUBLISHER_BOUNCES__SNS_TOPICS", TOPIC)
    monkeypatch.setenv("PUBLISHER_BOUNCES__POSTMARK_SECRET", "pm-secret-123")
    monkeypatch.setenv("PUBLISHER_BOUNCES__MAILGUN_SIGNING_KEY", "mg-key-456")
    monkeypatch.setenv("PUBLISHER_BOUNCES__WEBHOOK_SECRET", "generic-secret-789")
    monkeypatch.setenv("PUBLISHER_MAIL__BOUNCE", "bounces@example.org")
    return load_settings(instance)


@pytest.fixture
def app(hooks, store, signer):
    fetched = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return signer[1] if url == CERT_URL else b"<ConfirmSubscriptionResponse/>"

    with TestClient(create_app(hooks, store, clock=lambda: NOW, sns_fetch=fetch)) as client:
        client.fetched = fetched
        yield client


def sns_message(key, kind: str, body: dict | str, **extra) -> dict:
    message = {"Type": kind, "MessageId": "5f1d-" + kind, "TopicArn": TOPIC,
               "Message": body if isinstance(body, str) else json.dumps(body),
               "Timestamp": "2026-11-24T11:59:00.000Z", "SignatureVersion": "2",
               "SigningCertURL": CERT_URL, **extra}
    keys = NOTIFICATION_KEYS if kind == "Notification" else CONFIRMATION_KEYS
    signature = key.sign(string_to_sign(message, keys), padding.PKCS1v15(), hashes.SHA256())
    message["Signature"] = base64.b64encode(signature).decode()
    return message


def ses_bounce(address: str, source: str = "bounces@example.org") -> dict:
    return {"notificationType": "Bounce",
            "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                       "feedbackId": "0102-feedback-" + address,
                       "bouncedRecipients": [{"emailAddress": address, "status": "5.1.1",
                                              "action": "failed",
                                              "diagnosticCode": "smtp; 550 5.1.1 unknown"}]},
            "mail": {"source": source, "messageId": "0102-ses-id",
                     "destination": [address]}}


def test_ses_bounce_signed_by_sns_is_applied(app, store, hooks, signer):
    ada = add_subscriber(store, "ada@example.net", NOW)
    other = add_subscriber(store, "other@example.net", NOW)
    # The VERP return path names Ada although the report names someone else's address.
    source = Verp(hooks, "bounces@example.org").address(ada.id, 77)
    response = app.post("/webhooks/ses", content=json.dumps(
        sns_message(signer[0], "Notification", ses_bounce("other@example.net", source))))
    assert response.status_code == 200, response.text
    assert response.json()["results"] == [
        "hard bounce 5.1.1 for ada@example.net (SES Permanent/General, by VERP tag): "
        "marked bounced"]
    assert store.subscribers.by_id(ada.id).status == "bounced"
    assert store.subscribers.by_id(other.id).status == "active"
    assert app.fetched == [CERT_URL]
    (event,) = store.bounces.events()
    assert (event.origin, event.received_at) == ("ses", NOW)


@pytest.mark.parametrize("forge", ["altered", "foreign-cert-host", "http-cert", "topic",
                                   "unsigned"])
def test_ses_forged_is_401_and_changes_nothing(app, store, signer, forge):
    ada = add_subscriber(store, "ada@example.net", NOW)
    message = sns_message(signer[0], "Notification", ses_bounce("ada@example.net"))
    if forge == "altered":
        message["Message"] = message["Message"].replace("General", "Generall")
    elif forge == "foreign-cert-host":
        message["SigningCertURL"] = "https://sns.eu-west-1.amazonaws.com.evil.example/x.pem"
    elif forge == "http-cert":
        message["SigningCertURL"] = CERT_URL.replace("https:", "http:")
    elif forge == "topic":
        message = sns_message(signer[0], "Notification", ses_bounce("ada@example.net"),
                              TopicArn="arn:aws:sns:eu-west-1:999999999999:someone-else")
    else:
        del message["Signature"]
    response = app.post("/webhooks/ses", content=json.dumps(message))
    assert response.status_code == 401
    assert store.subscribers.by_id(ada.id).status == "active"
    assert store.bounces.events() == []
    assert all(url == CERT_URL for url in app.fetched)  # never a URL a forger chose


def test_ses_subscription_is_confirmed_and_complaints_applied(app, store, signer):
    confirm = sns_message(signer[0], "SubscriptionConfirmation", "You have chosen to "
                          "subscribe", Token="abc", SubscribeURL=SUBSCRIBE_URL)
    assert app.post("/webhooks/ses", content=json.dumps(confirm)).status_code == 200
    assert app.fetched == [CERT_URL, SUBSCRIBE_URL]
    bob = add_subscriber(store, "bob@example.net", NOW)
    complaint = {"notificationType": "Complaint", "mail": {"source": "bounces@example.org"},
                 "complaint": {"feedbackId": "c-1", "complaintFeedbackType": "abuse",
                               "complainedRecipients": [{"emailAddress": "bob@example.net"}]}}
    response = app.post("/webhooks/ses", content=json.dumps(
        sns_message(signer[0], "Notification", complaint)))
    assert response.json()["results"] == [
        "complaint for bob@example.net (SES complaint (abuse), by address): marked complained"]
    assert store.subscribers.by_id(bob.id).status == "complained"


def test_postmark_basic_auth(app, store):
    ada = add_subscriber(store, "ada@example.net", NOW)
    payload = {"RecordType": "Bounce", "ID": 4323372036854775807, "Type": "HardBounce",
               "TypeCode": 1, "Email": "ada@example.net", "Details": "smtp;550 5.1.1 unknown"}
    forged = app.post("/webhooks/postmark", json=payload, auth=("postmark", "guess"))
    assert forged.status_code == 401
    assert app.post("/webhooks/postmark", json=payload).status_code == 401
    assert store.subscribers.by_id(ada.id).status == "active"
    good = app.post("/webhooks/postmark", json=payload, auth=("postmark", "pm-secret-123"))
    assert good.status_code == 200
    assert store.subscribers.by_id(ada.id).status == "bounced"
    again = app.post("/webhooks/postmark", json=payload, auth=("postmark", "pm-secret-123"))
    assert again.json()["results"][0].endswith("already recorded; nothing done")


def mailgun_payload(key: str, timestamp: int, event: dict) -> dict:
    token = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0"
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(),
                         hashlib.sha256).hexdigest()
    return {"signature": {"timestamp": str(timestamp), "token": token,
                          "signature": signature}, "event-data": event}


def test_mailgun_hmac(app, store):
    ada = add_subscriber(store, "ada@example.net", NOW)
    event = {"event": "failed", "severity": "permanent", "id": "mg-1", "reason": "bounce",
             "recipient": "ada@example.net",
             "delivery-status": {"code": 550, "enhanced-code": "5.1.1",
                                 "description": "No such user"}}
    now = int(NOW.timestamp())
    for forged in (mailgun_payload("wrong-key", now, event),
                   mailgun_payload("mg-key-456", now - 3600, event),  # stale: a replay
                   {"event-data": event}):
        assert app.post("/webhooks/mailgun", json=forged).status_code == 401
    assert store.subscribers.by_id(ada.id).status == "active"
    response = app.post("/webhooks/mailgun", json=mailgun_payload("mg-key-456", now, event))
    assert response.status_code == 200
    assert store.subscribers.by_id(ada.id).status == "bounced"
    retry = dict(event, severity="temporary", id="mg-2")
    response = app.post("/webhooks/mailgun", json=mailgun_payload("mg-key-456", now, retry))
    assert response.json()["results"] == ["not a bounce (Mailgun failed temporary); left alone"]


def generic_call(app, body: bytes, secret: str = "generic-secret-789", timestamp=None):
    timestamp = str(int(NOW.timestamp()) if timestamp is None else timestamp)
    signature = hmac.new(secret.encode(), timestamp.encode() + b"." + body,
                         hashlib.sha256).hexdigest()
    return app.post("/webhooks/bounces", content=body, headers={
        "X-Publisher-Timestamp": timestamp, "X-Publisher-Signature": f"sha256={signature}"})


def test_generic_webhook(app, store):
    add_subscriber(store, "ada@example.net", NOW)
    body = json.dumps([{"type": "soft", "email": "ada@example.net", "status": "4.2.2",
                        "id": "evt-1"}]).encode()
    assert generic_call(app, body, secret="not-the-secret").status_code == 401
    assert generic_call(app, body, timestamp=int(NOW.timestamp()) - 3600).status_code == 401
    assert app.post("/webhooks/bounces", content=body).status_code == 401
    assert store.bounces.events() == []
    response = generic_call(app, body)
    assert response.status_code == 200
    assert response.json()["results"] == [
        "soft bounce 4.2.2 for ada@example.net (webhook, by address): soft bounce 1 of 3 "
        "in 14 days"]
    assert generic_call(app, b'{"type": "bounced"}').status_code == 400


def test_refused_clients_are_slowed_down_and_off_webhooks_are_404(app, instance, store,
                                                                  monkeypatch):
    for _ in range(20):
        assert app.post("/webhooks/bounces", content=b"{}").status_code == 401
    assert app.post("/webhooks/bounces", content=b"{}").status_code == 429
    for name in ("WEBHOOK_SECRET", "SNS_TOPICS", "POSTMARK_SECRET", "MAILGUN_SIGNING_KEY"):
        monkeypatch.delenv(f"PUBLISHER_BOUNCES__{name}")
    with TestClient(create_app(load_settings(instance), store)) as plain:
        for hook in ("bounces", "ses", "postmark", "mailgun"):
            assert plain.post(f"/webhooks/{hook}", content=b"{}").status_code == 404
