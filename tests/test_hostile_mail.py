"""Hostile mail to the unsubscribe box: every message gets one line, the command always
exits 0, and no message costs more than its (bounded) size."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from publisher import tokens
from publisher.cli import cli as cli_group
from publisher.config import load_settings
from tests.support import NOW
from tests.support.mail import unsubscribe_message


def run(instance, *files, data: bytes | None = None):
    args = ["-C", str(instance), "subscribers", "unsubscribe-mail", *map(str, files)]
    result = CliRunner().invoke(cli_group, args, input=data, catch_exceptions=True)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def with_body(headers: str, body: bytes) -> bytes:
    return (f"From: x@example.org\r\nTo: unsubscribe@example.org\r\n{headers}"
            "\r\n").encode() + body


NESTED = "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b0\r\n"


def nested_multipart(depth: int, inner: bytes = b"nothing here") -> bytes:
    """The body of a message with NESTED headers: `depth` multiparts, one in the other."""
    opening = b"".join(b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n"
                       % (n, n + 1) for n in range(depth))
    closing = b"".join(b"\r\n--b%d--\r\n" % n for n in reversed(range(depth + 1)))
    return opening + b"--b%d\r\nContent-Type: text/plain\r\n\r\n" % depth + inner + closing


def test_an_unknown_charset_is_that_messages_problem(instance, store, tmp_path):
    bad = tmp_path / "charset.eml"
    bad.write_bytes(with_body("Subject: hello\r\nContent-Type: text/plain; "
                              "charset=x-nonexistent\r\n", b"unsubscribe me"))
    good = tmp_path / "good.eml"
    settings = load_settings(instance)
    ada = store.subscribers.add("ada@example.org", NOW, status="active")
    token = tokens.sign(settings, "unsubscribe", ada.id, now=NOW)
    good.write_bytes(unsubscribe_message(f"unsubscribe {token}"))
    result = run(instance, bad, good)
    lines = result.output.splitlines()
    assert lines[0].startswith(f"{bad}: unsubscribe mail:") and "nothing done" in lines[0]
    assert lines[1] == f"{good}: unsubscribe mail: unsubscribed ada@example.org"


def test_a_token_in_a_subject_in_an_unknown_charset_still_counts(instance, store):
    settings = load_settings(instance)
    ada = store.subscribers.add("ada@example.org", NOW, status="active")
    token = tokens.sign(settings, "unsubscribe", ada.id, now=NOW)
    encoded = token.replace("_", "=5F")  # in a Q-encoded word "_" is a space
    message = with_body(f"Subject: =?x-nonexistent?q?unsubscribe_{encoded}?=\r\n", b"")
    assert "unsubscribed ada@example.org" in run(instance, data=message).output


@pytest.mark.slow  # 2,000 nested parts, parsed
def test_deeply_nested_multiparts_are_that_messages_problem(instance, store):
    result = run(instance, data=with_body("Subject: hi\r\n" + NESTED, nested_multipart(2000)))
    assert "nothing done" in result.output


def test_a_token_in_a_subject_counts_whatever_the_body(instance, store):
    settings = load_settings(instance)
    ada = store.subscribers.add("ada@example.org", NOW, status="active")
    token = tokens.sign(settings, "unsubscribe", ada.id, now=NOW)
    message = with_body(f"Subject: unsubscribe {token}\r\n" + NESTED, nested_multipart(2000))
    assert "unsubscribed ada@example.org" in run(instance, data=message).output


def test_a_file_that_cannot_be_read_is_one_line(instance, store, tmp_path):
    result = run(instance, tmp_path / "missing.eml", tmp_path)
    assert len(result.output.splitlines()) == 2
    assert all("nothing done" in line for line in result.output.splitlines())


def test_token_search_is_linear(monkeypatch):
    """The candidates are words found in one pass, at most a few of them verified: a
    2 MB run of token characters without dots yields no candidate at all."""
    from publisher.subscribers.rules import candidate_tokens

    assert candidate_tokens("a" * 2_000_000) == []
    assert candidate_tokens("unsubscribe " + "a.b.c " * 100_000)[:1] == ["a.b.c"]
    assert len(candidate_tokens("unsubscribe " + "a.b.c " * 100_000)) <= 10
    assert candidate_tokens("x" * 600 + ".b.c") == []  # longer than any token we sign


def test_a_huge_body_or_subject_is_bounded(instance, store):
    settings = load_settings(instance)
    ada = store.subscribers.add("ada@example.org", NOW, status="active")
    token = tokens.sign(settings, "unsubscribe", ada.id, now=NOW)
    huge = with_body(f"Subject: unsubscribe {token}\r\n", b"a" * 20_000_000)
    assert "unsubscribed ada@example.org" in run(instance, data=huge).output
    long_subject = with_body("Subject: " + "a" * 2_000_000 + "\r\n", b"")
    assert "nothing done" in run(instance, data=long_subject).output
