"""The shared SMTP fixture receives what a plain smtplib client sends."""

import smtplib


def test_smtp_server_records_messages(smtp_server):
    with smtplib.SMTP(smtp_server.host, smtp_server.port) as client:
        client.sendmail("a@example.org", ["b@example.org"], b"Subject: hi\r\n\r\nbody\r\n")
    ((sender, recipients, data),) = smtp_server.handler.messages
    assert (sender, recipients) == ("a@example.org", ["b@example.org"])
    assert b"Subject: hi" in data
