"""Email through an SMTP server, with a connect timeout and a timeout on every read and write, so
a server that accepts and never answers fails the attempt instead of holding a worker.

A connection carries several messages of a batch. Servers limit that (Exchange's
MaxMessagesPerConnection, relays' quotas): they answer the next MAIL with 421 or 452, or drop an
idle connection. A connection already used that fails before the message's DATA raises
ConnectionSpent, a fault of that connection only: the deliverer reconnects and sends the message
again (nothing of it reached the server), instead of holding the whole channel back."""
from __future__ import annotations

import hashlib
import quopri
import re
import smtplib
import socket
from email.header import Header
from email.utils import formataddr, parseaddr
from functools import lru_cache

from app.config import Config
from app.models import OutboxMessage

from . import Refused, Transient, request_id_of


class _TimedSMTP(smtplib.SMTP):
    """smtplib uses one timeout for the connection and every operation: this separates the two."""

    def __init__(self, connect_timeout: float, read_timeout: float):
        self._connect_timeout, self.reached = connect_timeout, False
        self.in_data = False  # the message's DATA began: from here on the server may have taken it
        super().__init__(timeout=read_timeout)

    def data(self, msg):
        self.in_data = True
        return super().data(msg)

    def _get_socket(self, host, port, timeout):
        sock = socket.create_connection((host, port), self._connect_timeout, self.source_address)
        self.reached = True
        sock.settimeout(timeout)  # from the greeting on, each read or write waits at most this long
        return sock


class ConnectionSpent(Transient):
    """A connection already used ended before this message's DATA (the server's limit per
    connection, or an idle connection dropped): the message did not go; a fresh connection may take it."""

    def __init__(self, reason: str):
        super().__init__(reason, whole_channel=False)


def message_id_for(idempotency_key: str) -> str:
    return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]}@ecaf>"


def as_email(config: Config, message: OutboxMessage) -> bytes:
    """The message as the bytes of a plain-text email (RFC 5322, MIME). Written directly rather than
    through email.message.EmailMessage, whose header objects cost more CPU than the sending itself
    when a deadline sweep sends thousands. A line break in a header is refused (header injection)."""
    subject = message.subject or ""
    for name, value in (("From", config.mail_from), ("To", message.recipient), ("Subject", subject)):
        if _BREAKS_A_HEADER.search(value):
            raise ValueError(f"the {name} header holds a line break or a control character")
    # The receiver can drop a repeat after a crash between sending and recording it. The key names the
    # recipient (an address, with its own "@"), so the id is a digest of it: one "@", eCAF's own domain.
    headers = [f"From: {_sender_header(config.mail_from)}", f"To: {message.recipient}",
               f"Subject: {_header_text(subject)}", f"Message-ID: {message_id_for(message.idempotency_key)}"]
    request_id = request_id_of(message)
    if request_id:
        headers.append(f"X-Request-Id: {request_id}")
    body = (message.body or "").replace("\r\n", "\n").replace("\r", "\n")
    if body and not body.endswith("\n"):
        body += "\n"
    if body.isascii() and all(len(line) <= 998 for line in body.split("\n")):
        encoding = "7bit"
    else:
        encoding, body = "quoted-printable", quopri.encodestring(body.encode("utf-8")).decode("ascii")
    headers += ["MIME-Version: 1.0", 'Content-Type: text/plain; charset="utf-8"',
                f"Content-Transfer-Encoding: {encoding}"]
    return ("\r\n".join(headers) + "\r\n\r\n" + body.replace("\n", "\r\n")).encode("utf-8")


def _header_text(text: str) -> str:
    """A header's text as it travels: short ASCII as it is, anything else RFC 2047-encoded (which folds
    into lines of 78, however long the text and whether or not it has spaces)."""
    if text.isascii() and len(text) <= 900:
        return text
    return Header(text, "utf-8").encode(linesep="\r\n")


# Any character that ends a line for some reader (CR, LF, VT, FF, FS-RS, NEL, U+2028/9) or is a control.
_BREAKS_A_HEADER = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")


@lru_cache(maxsize=8)
def _sender_header(mail_from: str) -> str:
    """The From header: a display name beyond ASCII RFC 2047-encoded, as a relay without SMTPUTF8 expects."""
    name, address = parseaddr(mail_from)
    if not name or name.isascii():
        return mail_from
    return formataddr((name, address), charset="utf-8")


@lru_cache(maxsize=8)
def _envelope_sender(mail_from: str) -> str:
    return parseaddr(mail_from)[1] or mail_from


def _envelope(config: Config, message: OutboxMessage) -> tuple[str, list[str], list[str]]:
    """(sender, recipients, MAIL options) for the SMTP envelope; an address beyond ASCII needs SMTPUTF8."""
    sender, recipient = _envelope_sender(config.mail_from), parseaddr(message.recipient)[1] or message.recipient
    options = [] if sender.isascii() and recipient.isascii() else ["SMTPUTF8"]
    return sender, [recipient], options


def send(config: Config, message: OutboxMessage) -> None:
    with Connection(config) as connection:
        connection.send(message)


class Connection:
    """One SMTP session for several messages of a batch: connected at the first, closed at the end.

    A refusal of one recipient or message leaves the session usable (smtplib resets it); any other
    fault closes it, and the next message (if the deliverer still sends one) connects afresh."""

    def __init__(self, config: Config):
        self.config = config
        self._smtp: _TimedSMTP | None = None
        self.sent = 0  # messages taken over the connection now open

    @property
    def open(self) -> bool:
        return self._smtp is not None

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, message: OutboxMessage) -> None:
        config = self.config
        try:
            email = as_email(config, message)
            sender, recipients, options = _envelope(config, message)
        except ValueError as exc:  # e.g. a line break in the address or subject
            raise Refused(f"the message cannot be written as an email: {exc}") from None
        smtp, reused = self._smtp, self._smtp is not None
        try:
            if smtp is None:
                smtp = self._smtp = _TimedSMTP(config.channel_connect_timeout_seconds,
                                               config.channel_read_timeout_seconds)
                self.sent = 0
                smtp.connect(config.smtp_host, config.smtp_port)
            smtp.in_data = False
            try:
                smtp.sendmail(sender, recipients, email, mail_options=options)
            except (OSError, smtplib.SMTPException) as exc:
                if reused and _spent(smtp, exc):
                    taken = self.sent
                    self.close()
                    raise ConnectionSpent(f"the mail server ended a connection that had taken {taken}: "
                                          f"{_answer(exc)}") from None
                raise
            self.sent += 1
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            answer = "; ".join(f"{code} {_text(text)}" for code, text in exc.recipients.values())
            if codes and all(500 <= code < 600 for code in codes):
                raise Refused(f"the mail server refused the recipient: {answer}") from None
            raise Transient(f"the mail server deferred the recipient: {answer}", whole_channel=False) from None
        except smtplib.SMTPDataError as exc:
            answer = f"{exc.smtp_code} {_text(exc.smtp_error)}"
            if 500 <= exc.smtp_code < 600:
                raise Refused(f"the mail server refused the message: {answer}") from None
            raise Transient(f"the mail server deferred the message: {answer}") from None
        except smtplib.SMTPResponseException as exc:
            # The sender, authentication or a command refused: the server's settings, not this message.
            self.close()
            raise Transient(f"the mail server answered {exc.smtp_code} {_text(exc.smtp_error)}") from None
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            where = f"the mail server at {config.smtp_host}:{config.smtp_port}"
            if _timed_out(exc) and not smtp.reached:
                raise Transient(f"{where} could not be reached within {config.channel_connect_timeout_seconds} "
                                "seconds") from None
            if _timed_out(exc):
                raise Transient(f"{where} did not answer within {config.channel_read_timeout_seconds} "
                                "seconds") from None
            raise Transient(f"{where} could not be used: {type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        """QUIT, then close. The messages are already accepted: a server that does not answer the QUIT
        changes nothing about them."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()


def _spent(smtp: _TimedSMTP, exc: BaseException) -> bool:
    """Whether a used connection failed as a server ends one it has carried enough messages over,
    before any of this message went (not a timeout: a server that stopped answering is the channel's)."""
    if smtp.in_data or _timed_out(exc):
        return False
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return 400 <= exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return any(code == 421 for code, _ in exc.recipients.values())
    return isinstance(exc, (smtplib.SMTPServerDisconnected, ConnectionError))


def _answer(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_text(exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{code} {_text(text)}" for code, text in exc.recipients.values())
    return f"{type(exc).__name__}: {exc}"


def _timed_out(exc: BaseException | None) -> bool:
    """smtplib reports a read that timed out as a lost connection: look at what it wraps."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, TimeoutError):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _text(answer) -> str:
    return answer.decode("utf-8", "replace") if isinstance(answer, bytes) else str(answer)
