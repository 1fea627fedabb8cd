"""The email an outbox message becomes: read back by a standard parser, it says what was written."""
from __future__ import annotations

import email
from email import policy
from types import SimpleNamespace

import pytest

from app.config import Config
from app.jobs.channels import smtp

CONFIG = Config(mail_from="eCAF Westminster <ecaf@westminster.example>")


def message(**given) -> SimpleNamespace:
    fields = dict(recipient="priya.shah@westminster.example", subject="eCAF WST/000008: will be deleted in 24 hours",
                  body="The assessment for episode WST/000008 has not been submitted.\nSubmit it within 24 hours.",
                  idempotency_key="episode-8:step:deletion_warning:priya.shah@westminster.example", payload=None,
                  request_id=None)
    fields.update(given)
    return SimpleNamespace(**fields)


def read_back(data: bytes):
    return email.message_from_bytes(data, policy=policy.default)


def text_of(parsed) -> str:
    return parsed.get_content().replace("\r\n", "\n")  # as a mail client shows it


def test_a_plain_message_reads_back_as_written():
    sent = message()
    parsed = read_back(smtp.as_email(CONFIG, sent))
    assert parsed["From"] == CONFIG.mail_from and parsed["To"] == sent.recipient and parsed["Subject"] == sent.subject
    assert parsed["Message-ID"] == smtp.message_id_for(sent.idempotency_key)
    assert parsed.get_content_type() == "text/plain" and parsed["Content-Transfer-Encoding"] == "7bit"
    assert text_of(parsed) == sent.body + "\n"


def test_text_beyond_ascii_and_long_lines_are_encoded_and_read_back_whole():
    body = "Siobhán Ó Dálaigh’s assessment is due — see the plan.\n" + "x" * 1500 + "\n.\nlast line"
    sent = message(subject="Évaluation de Zoë: échéance dépassée", body=body)
    data = smtp.as_email(CONFIG, sent)
    assert data.isascii() and all(len(line) <= 998 for line in data.split(b"\r\n"))
    parsed = read_back(data)
    assert parsed["Subject"] == sent.subject and text_of(parsed) == body + "\n"


@pytest.mark.parametrize("field", ["recipient", "subject"])
@pytest.mark.parametrize("breaker", ["\r\n", "\n", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\x00"])
def test_a_line_break_or_control_character_in_a_header_is_refused(field, breaker):
    with pytest.raises(ValueError):
        smtp.as_email(CONFIG, message(**{field: f"x@example.test{breaker}Bcc: evil@example.test"}))


def test_a_sender_named_beyond_ascii_is_encoded_and_a_long_subject_folded():
    config = Config(mail_from="Cyngor Sir Ynys Môn <ecaf@ynysmon.example>")
    subject = "x" * 1200
    data = smtp.as_email(config, message(subject=subject))
    assert data.isascii() and all(len(line) <= 998 for line in data.split(b"\r\n"))
    parsed = read_back(data)
    assert parsed["From"] == config.mail_from and parsed["Subject"] == subject


def test_the_envelope_takes_the_address_out_of_a_named_sender():
    sender, recipients, options = smtp._envelope(CONFIG, message())
    assert sender == "ecaf@westminster.example" and recipients == ["priya.shah@westminster.example"] and options == []
