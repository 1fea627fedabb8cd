"""Why a message could not be delivered, in words an administrator can read and may see.

A channel's error is eCAF's own words ("the mail server refused the recipient") followed, after a
colon, by what the far end or the library said: a mail server's answer, an exception's text. That
tail can carry anything (an address, a person's name in a mailbox message, a host or a token in a
URL), and every authority's administrators see the System page, so only eCAF's own words are
shown, with the status code if the tail has one. The whole text stays in the worker's log.
"""
from __future__ import annotations

import re

_EXCEPTION_NAME = re.compile(r"^[A-Za-z_][\w.]*$")  # "ConnectionRefusedError", "smtplib.SMTPRecipientsRefused"
_STATUS = re.compile(r"(?<![\w=:.])([45]\d\d)(?![\w.])")  # a status code, not port=443
_ADDRESS = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)*")
# What a library's exception means, by words in its name or text; first match wins.
_KNOWN = (
    (re.compile(r"refused.*recipient|recipient.*refused|recipientsrefused", re.I), "the mail server refused the recipient"),
    (re.compile(r"senderrefused", re.I), "the mail server refused the sender"),
    (re.compile(r"connection ?refused", re.I), "connection refused"),
    (re.compile(r"timed? ?out|timeout", re.I), "timed out"),
    (re.compile(r"name or service not known|nodename|getaddrinfo|name ?resolution", re.I),
     "the server's name could not be found"),
    (re.compile(r"reset by peer|connection ?aborted|disconnected|unexpected eof|broken pipe", re.I),
     "the connection was dropped"),
    (re.compile(r"certificate|ssl|tls", re.I), "a secure connection could not be made"),
    (re.compile(r"authentication", re.I), "the server refused eCAF's credentials"),
)
UNEXPLAINED = "an unexpected error (the worker's log has the details)"
MAX_LENGTH = 200


def _meaning(text: str) -> str | None:
    for pattern, words in _KNOWN:
        if pattern.search(text):
            return words
    return None


def _with_status(words: str, tail: str) -> str:
    found = _STATUS.search(tail)
    return f"{words} ({found.group(1)})" if found and found.group(1) not in words else words


def plain_reason(error: str | None) -> str | None:
    """The first line of a delivery error as eCAF's own words only: "the mail server refused the recipient
    (550)", "GOV.UK Notify answered 400", "the index endpoint could not be reached: connection refused"."""
    if not error or not error.strip():
        return None
    line = error.strip().splitlines()[0]
    line = re.sub(r"^(?:refused|not tried): ", "", line)  # the page says whether it was given up
    head, _, tail = line.partition(": ")
    if _EXCEPTION_NAME.match(head):  # a library's exception, not eCAF's words
        words = _with_status(_meaning(line) or UNEXPLAINED, tail)
    else:
        words = _with_status(head.strip(), tail)
        inner_head = tail.partition(": ")[0]
        if tail and _EXCEPTION_NAME.match(inner_head) and _meaning(tail):
            words = f"{words}: {_meaning(tail)}"
    words = _ADDRESS.sub("[an email address]", words) or UNEXPLAINED
    if len(words) > MAX_LENGTH:
        words = words[:MAX_LENGTH - 3] + "..."
    if words[:1].isupper() and words[1:2].islower():
        words = words[0].lower() + words[1:]
    return words
