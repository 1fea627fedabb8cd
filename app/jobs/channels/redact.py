"""What of an address may enter a delivery reason. A reason goes into the message's row (the
episode's operations page), the System page and the logs, so a URL's user-info
(`user:password@`) and query string (`?token=...`) never do: an index endpoint may carry its
credentials there, and requests' exception text repeats the path and query it was asked for."""
from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

# scheme://user:password@ -> scheme://
_USER_INFO = re.compile(r"\b([a-z][a-z0-9+.-]*://)[^/\s@'\"]*@", re.I)
# the query or fragment after a URL or an absolute path ("with url: /notices?token=x")
_QUERY = re.compile(r"((?:\b[a-z][a-z0-9+.-]*://|(?<![\w.])/)[^\s?#'\"]*)[?#][^\s'\")]*", re.I)


def without_secrets(text: str) -> str:
    """The text with every URL's user-info and query string taken out."""
    return _QUERY.sub(r"\1", _USER_INFO.sub(r"\1", text))


def host_of(url: str) -> str:
    """`host` or `host:port` of a URL, without user-info; "" when it has none."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:  # e.g. a port that is not a number
        return ""
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}" if port else host


def safe_url(url: str) -> str:
    """The URL as it may be shown: scheme, host, port and path only."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return without_secrets(str(url))
    if not parts.scheme or not parts.netloc:
        return without_secrets(str(url))
    return urlunsplit((parts.scheme, host_of(url), parts.path, "", ""))
