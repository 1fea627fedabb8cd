"""The after-sign-in target (`next`) is only ever a path on this site."""
from __future__ import annotations

from urllib.parse import quote

import pyotp
import pytest

from app.web.access import safe_next
from tests.web import PASSWORD, browser

REFUSED = {
    "empty": "",
    "nothing": None,
    "another host": "//evil.example/",
    "another host, three slashes": "///evil.example/",
    "scheme": "https://evil.example/",
    "scheme without slashes": "https:evil.example",
    "javascript": "javascript:alert(1)",
    "relative": "evil.example/tasks",
    "leading space": " /tasks",
    "backslash host": "\\\\evil.example",
    "slash backslash": "/\\evil.example",
    "backslash in the path": "/tasks\\..\\evil",
    "tab": "/\t/evil.example",
    "newline": "/\n/evil.example",
    "carriage return, header": "/\r\nSet-Cookie: a=b",
    "NUL": "/tasks\x00",
    "DEL": "/\x7f/evil.example",
    "C1 control": "/\x85/evil.example",
    "line separator": "/\u2028/evil.example",
    "encoded backslash": "/%5Cevil.example",
    "encoded backslash, lower case": "/%5cevil.example",
    "encoded backslashes": "/%5C%5Cevil.example",
    "encoded slashes": "/%2F%2Fevil.example",
    "encoded slash after one": "/%2Fevil.example",
    "double-encoded slashes": "/%252F%252Fevil.example",
    "double-encoded backslash": "/%255Cevil.example",
    "encoded tab": "/%09/evil.example",
    "encoded newline": "/%0d%0aSet-Cookie:%20a=b",
    "encoded scheme": "%68ttps://evil.example",
    "deeply encoded": "/%25252525252F%25252525252Fevil.example",
    "too long": "/" + "a" * 2001,
}

ALLOWED = ["/", "/tasks/1", "/account/password", "/children/find?name=Ann%20Smith&born=2019",
           "/episodes/3#people", "/a%2Fb", "/search?q=50%25"]


@pytest.mark.parametrize("target", REFUSED.values(), ids=REFUSED.keys())
def test_anything_but_a_local_path_is_refused(target):
    assert safe_next(target) is None


@pytest.mark.parametrize("target", ALLOWED)
def test_a_local_path_is_kept_as_it_is(target):
    assert safe_next(target) == target


@pytest.mark.parametrize("target", ["//evil.example/", "/%5C%5Cevil.example", "/\\evil.example",
                                    "https://evil.example/", "/%2F%2Fevil.example"])
def test_signing_in_with_a_hostile_next_lands_at_home(web, target):
    client = browser(web["app"])
    first = client.post(f"/sign-in?next={quote(target, safe='')}", {"username": "olive", "password": PASSWORD})
    assert first.status_code == 302
    assert _code(client, web).location == "/"


def test_signing_in_with_a_local_next_goes_there(web):
    client = browser(web["app"])
    client.post(f"/sign-in?next={quote('/account?tab=1', safe='')}", {"username": "olive", "password": PASSWORD})
    assert _code(client, web).location == "/account?tab=1"


def test_a_page_asked_for_before_sign_in_is_kept_as_the_next(web):
    asked = browser(web["app"]).get("/account")
    assert asked.location == "/sign-in?next=/account"


def _code(client, web):
    return client.post("/sign-in/code", {"code": pyotp.TOTP(web["secrets"]["originator"]).now()})
