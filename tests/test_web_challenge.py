"""The subscribe form's proof of work ([web] challenge): answers checked on the instance
clock and accepted once (on every backend), malformed ones refused with a sentence, and
the form, the JSON posts and the pages' CSP with the setting on; nothing changes off."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from publisher.clock import fixed
from publisher.config import load_settings
from publisher.errors import ConfigError
from publisher.ops.metrics import CHALLENGES_REFUSED
from publisher.web import create_app
from publisher.web.challenge import LIFETIME, MAX_PAYLOAD, ChallengeRefused, check, issue
from tests.support import NOW
from tests.support.web import TestClient

EASY = 2_000  # tests solve in Python: a small search space


def solve(challenge: dict, **change) -> str:
    """What the browser's script sends: the number whose hash is the challenge."""
    for number in range(challenge["maxnumber"] + 1):
        if hashlib.sha256(f"{challenge['salt']}{number}".encode()).hexdigest() == \
                challenge["challenge"]:
            break
    else:
        raise AssertionError("no number solves the challenge")
    payload = {"algorithm": challenge["algorithm"], "challenge": challenge["challenge"],
               "number": number, "salt": challenge["salt"],
               "signature": challenge["signature"], **change}
    return b64(json.dumps(payload))


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def refused(reason: str) -> float:
    return CHALLENGES_REFUSED.labels(reason=reason)._value.get()


@pytest.fixture
def on(settings):
    return replace(settings, web=replace(settings.web, challenge=True,
                                         challenge_difficulty=EASY))


def reason_of(on, store, sent: str, now=NOW) -> str:
    with pytest.raises(ChallengeRefused) as caught:
        check(on, store, sent, now)
    assert str(caught.value).endswith(".")
    return caught.value.reason


# ----------------------------------------------------------------- the server's side
def test_a_challenge_is_altcha_json_signed_and_within_the_difficulty(on):
    made = issue(on, NOW)
    assert made["algorithm"] == "SHA-256" and made["maxnumber"] == EASY
    assert re.fullmatch(r"[0-9a-f]{64}", made["challenge"])
    assert re.fullmatch(r"[0-9a-f]{64}", made["signature"])
    expires = int((NOW + LIFETIME).timestamp())
    assert f"expires={expires}" in made["salt"] and made["expires_in"] == 1200
    assert issue(on, NOW)["salt"] != made["salt"]  # a random salt each time


def test_a_good_answer_is_accepted_once(on, store):
    sent = solve(issue(on, NOW))
    check(on, store, sent, NOW + timedelta(minutes=5))
    before = refused("replayed")
    assert reason_of(on, store, sent, NOW + timedelta(minutes=6)) == "replayed"
    assert refused("replayed") == before + 1
    assert store.challenges.count() == 1


def test_expiry_is_the_instance_clocks(on, store):
    # Issued and checked at fixed instants far from the wall clock: only they count.
    sent = solve(issue(on, NOW))
    assert reason_of(on, store, sent, NOW + LIFETIME) == "expired"
    check(on, store, sent, NOW + LIFETIME - timedelta(seconds=1))
    old = solve(issue(on, NOW - timedelta(days=400)))
    assert reason_of(on, store, old, NOW) == "expired"


def test_a_wrong_number_or_a_forged_signature_is_refused(on, store):
    made = issue(on, NOW)
    right = json.loads(base64.b64decode(solve(made)))
    assert reason_of(on, store, solve(made, number=right["number"] + 1)) == "wrong"
    other = replace(on, web=replace(on.web, secret="another instance's secret key!"))
    forged = issue(other, NOW)  # signed with a key that is not ours
    assert reason_of(on, store, solve(forged)) == "wrong"
    # A later expiry written into the salt: the hash no longer matches the challenge.
    later = right["salt"].replace("expires=", "expires=9")
    assert reason_of(on, store, solve(made, salt=later)) == "wrong"
    raw_secret = dict(right, signature=hashlib.sha256(right["challenge"].encode()).hexdigest())
    assert reason_of(on, store, b64(json.dumps(raw_secret))) == "wrong"
    assert store.challenges.count() == 0  # nothing wrong is spent
    check(on, store, solve(made), NOW)


@pytest.mark.parametrize(("sent", "reason"), [
    ("", "missing"),
    ("   ", "missing"),
    ("not base64 at all!", "malformed"),
    (b64(b"\xff\xfe not utf-8"), "malformed"),
    (b64("{not json"), "malformed"),
    (b64("[1, 2, 3]"), "malformed"),
    (b64("5"), "malformed"),
    (b64('"algorithm challenge number salt signature"'), "malformed"),
    (b64("{}"), "malformed"),
    (b64(json.dumps({"algorithm": "SHA-1", "challenge": "0" * 64, "number": 1,
                     "salt": "x", "signature": "0" * 64})), "malformed"),
    (b64(json.dumps({"algorithm": "SHA-256", "challenge": "0" * 64, "number": "1",
                     "salt": "x", "signature": "0" * 64})), "malformed"),
    (b64(json.dumps({"algorithm": "SHA-256", "challenge": "0" * 64, "number": True,
                     "salt": "x", "signature": "0" * 64})), "malformed"),
    (b64(json.dumps({"algorithm": "SHA-256", "challenge": "0" * 64, "number": -1,
                     "salt": "x", "signature": "0" * 64})), "malformed"),
    (b64(json.dumps({"algorithm": "SHA-256", "challenge": "zz", "number": 1,
                     "salt": "x", "signature": "0" * 64})), "malformed"),
    (b64(json.dumps({"algorithm": "SHA-256", "challenge": "0" * 64, "number": 1,
                     "salt": "no expiry", "signature": "0" * 64})), "malformed"),
    (b64(json.dumps({"algorithm": "SHA-256", "challenge": "0" * 64, "number": 1,
                     "salt": "ab?expires=99999999999999999999&", "signature": "0" * 64})),
     "malformed"),
    ("A" * (MAX_PAYLOAD + 1), "malformed"),
])
def test_a_malformed_answer_is_refused_with_a_sentence(on, store, sent, reason):
    with pytest.raises(ChallengeRefused) as caught:
        check(on, store, sent, NOW)
    assert caught.value.reason == reason
    message = str(caught.value)
    assert message.endswith(".") and "\n" not in message and "Traceback" not in message


def test_spent_challenges_are_forgotten_once_expired(on, store):
    check(on, store, solve(issue(on, NOW)), NOW)
    check(on, store, solve(issue(on, NOW)), NOW)
    assert store.challenges.count() == 2
    later = NOW + LIFETIME + timedelta(minutes=1)
    check(on, store, solve(issue(on, later)), later)
    assert store.challenges.count() == 1


def test_the_difficulty_is_a_validated_setting(instance):
    assert load_settings(instance, environ={}).web.challenge is False
    chosen = load_settings(instance, environ={"PUBLISHER_WEB__CHALLENGE": "true",
                                              "PUBLISHER_WEB__CHALLENGE_DIFFICULTY": "50000"})
    assert chosen.web.challenge and chosen.web.challenge_difficulty == 50_000
    for bad in ("10", "100000000", "lots"):
        with pytest.raises(ConfigError, match=r"(?i)challenge_difficulty"):
            load_settings(instance, environ={"PUBLISHER_WEB__CHALLENGE_DIFFICULTY": bad})


# ----------------------------------------------------------------- the form
@pytest.fixture
def challenged(web_settings, store):
    settings = replace(web_settings, web=replace(
        web_settings.web, challenge=True, challenge_difficulty=EASY, subscribe_per_minute=100,
        allowed_origins=("https://www.example.org",)))
    with TestClient(create_app(settings, store, clock=fixed(NOW)),
                    follow_redirects=False) as client:
        yield client


def script_hashes(csp: str) -> set[str]:
    script_src = re.search(r"script-src ([^;]+)", csp)[1]
    return set(re.findall(r"'(sha256-[^']+)'", script_src))


def test_off_by_default_nothing_changes(client, store):
    page = client.get("/subscribe")
    assert "data-challenge" not in page.text and 'name="altcha"' not in page.text
    csp = page.headers["content-security-policy"]
    assert "connect-src" not in csp and len(script_hashes(csp)) == 1
    assert client.get("/subscribe/challenge").status_code == 404
    assert client.get("/_publisher/challenge.js").status_code == 404
    assert client.post("/subscribe", data={"email": "ada@example.org"}).status_code == 200
    assert store.subscribers.by_email("ada@example.org").status == "pending"


def test_the_form_carries_the_script_its_csp_allows(challenged):
    page = challenged.get("/subscribe")
    assert 'data-challenge="http://testserver/subscribe/challenge"' in page.text
    assert 'name="altcha"' in page.text and "<noscript>" in page.text
    assert 'role="status"' in page.text
    csp = page.headers["content-security-policy"]
    assert "'unsafe-inline'" not in csp and "connect-src 'self' http://testserver" in csp
    inline = re.findall(r"<script>(.*?)</script>", page.text, re.S)
    assert len(inline) == 2
    hashes = {"sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()
              for s in inline}
    assert hashes == script_hashes(csp)  # every inline script allowed, and nothing else
    served = challenged.get("/_publisher/challenge.js")
    assert served.status_code == 200 and served.headers["content-type"].startswith(
        "text/javascript")
    assert served.text in inline and served.headers["etag"]


def test_a_post_without_an_answer_is_refused_with_the_form(challenged, store):
    before = refused("missing")
    page = challenged.post("/subscribe", data={"email": "ada@example.org", "name": "Ada"})
    assert page.status_code == 400 and "needs JavaScript" in page.text
    assert 'value="ada@example.org"' in page.text  # the person's input is kept
    assert store.subscribers.by_email("ada@example.org") is None
    assert refused("missing") == before + 1
    assert 'publisher_challenges_refused_total{reason="missing"}' in \
        challenged.get("/metrics").text
    problem = challenged.post("/subscribe", json={"email": "ada@example.org",
                                                  "altcha": "bogus"})
    assert problem.status_code == 400
    assert problem.headers["content-type"] == "application/problem+json"
    assert "Reload the page" in problem.json()["detail"]
    assert store.subscribers.by_email("ada@example.org") is None


def test_a_solved_form_subscribes_once(challenged, store):
    answer = solve(challenged.get("/subscribe/challenge").json())
    ok = challenged.post("/subscribe", data={"email": "ada@example.org", "altcha": answer})
    assert ok.status_code == 200 and "Check your inbox" in ok.text
    assert store.subscribers.by_email("ada@example.org").status == "pending"
    again = challenged.post("/subscribe", data={"email": "bob@example.org", "altcha": answer})
    assert again.status_code == 400 and "already used" in again.text
    assert store.subscribers.by_email("bob@example.org") is None
    by_json = challenged.post("/subscribe", json={
        "email": "bob@example.org", "altcha": solve(challenged.get("/subscribe/challenge")
                                                    .json())})
    assert by_json.status_code == 200 and "bob@example.org" in by_json.json()["message"]


def test_a_typo_does_not_use_the_answer_up(challenged, store):
    answer = solve(challenged.get("/subscribe/challenge").json())
    typo = challenged.post("/subscribe", data={"email": "ada@", "altcha": answer})
    assert typo.status_code == 400 and "already used" not in typo.text
    ok = challenged.post("/subscribe", data={"email": "ada@example.org", "altcha": answer})
    assert ok.status_code == 200


def test_challenges_for_other_origins_and_their_limit(challenged):
    made = challenged.get("/subscribe/challenge",
                          headers={"Origin": "https://www.example.org"})
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    assert made.headers["access-control-allow-origin"] == "https://www.example.org"
    other = challenged.get("/subscribe/challenge", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    codes = [challenged.get("/subscribe/challenge").status_code for _ in range(40)]
    assert 429 in codes and codes.index(429) >= 25
    limited = challenged.get("/subscribe/challenge")
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1


def test_check_warns_when_browsers_could_not_solve_it(on):
    from publisher.preflight import preflight

    def warnings(settings) -> list[str]:
        return [w for w in preflight(settings, lookup=None).warnings if "challenge" in w]

    http = replace(on, site=replace(on.site, url="http://news.example.org/"))
    assert "not https" in warnings(http)[0]
    https = replace(on, site=replace(on.site, url="https://news.example.org/"))
    assert warnings(https) == []
    assert warnings(replace(http, web=replace(http.web, challenge=False))) == []
    own = on.path("templates") / "web" / "subscribe.html"
    own.parent.mkdir(parents=True, exist_ok=True)
    own.write_text("<form method=post action=/subscribe><input name=email></form>")
    assert "no data-challenge form" in warnings(https)[0]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8)
FIELDS = ("algorithm", "challenge", "number", "salt", "signature")


@given(st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300).map(b64),
    JSON_VALUES.map(lambda value: b64(json.dumps(value))),
    st.fixed_dictionaries({name: JSON_VALUES | st.just("0" * 64) for name in FIELDS})
    .map(lambda value: b64(json.dumps(value)))))
@examples(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_whatever_a_stranger_sends_is_a_refusal_never_a_traceback(on, store, sent):
    with pytest.raises(ChallengeRefused) as caught:
        check(on, store, sent, NOW)
    assert caught.value.reason in {"missing", "malformed", "expired", "wrong"}
