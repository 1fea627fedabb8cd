"""Helpers for route tests: accounts that can sign in, and a client that signs in with both factors."""
from __future__ import annotations

import re
from dataclasses import dataclass

import pyotp

from app import create_app
from app.accounts import passwords, totp
from app.clock import now
from app.models import User

PASSWORD = "a long test password for eCAF users"
_HASH = passwords.hash_password(PASSWORD)  # hashed once: argon2id is slow on purpose


def give_credentials(runtime, user_id: int, *, enrolled: bool = True) -> str | None:
    """A password for the user and, when `enrolled`, an authenticator; returns its secret."""
    secret = pyotp.random_base32() if enrolled else None
    with runtime.db.session() as session:
        user = session.get(User, user_id)
        user.password_hash = _HASH
        if secret:
            user.totp_secret = totp.seal(runtime.config, secret)
            user.totp_enrolled_at = now()
    return secret


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF token"
    return match.group(1)


def text_of(response) -> str:
    html = response.get_data(as_text=True)
    html = re.sub(r"<script.*?</script>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'").replace("&quot;", '"')


@dataclass
class Browser:
    """A Flask test client that posts forms with the page's CSRF token, like a browser would."""

    client: object

    def get(self, path: str, **kwargs):
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict | list | None = None, *, token_from: str | None = None, **kwargs):
        page = self.client.get(token_from or path)
        token = csrf_token(page.get_data(as_text=True))
        if isinstance(data, list):
            data = data + [("csrf_token", token)]
        else:
            data = {**(data or {}), "csrf_token": token}
        return self.client.post(path, data=data, **kwargs)

    def sign_in(self, username: str, secret: str, *, password: str = PASSWORD):
        first = self.post("/sign-in", {"username": username, "password": password})
        assert first.status_code == 302, first.get_data(as_text=True)
        second = self.post("/sign-in/code", {"code": pyotp.TOTP(secret).now()})
        assert second.status_code == 302 and "/sign-in" not in second.location, text_of(second)
        return second


def make_app(runtime):
    return create_app(runtime.config)


def browser(app) -> Browser:
    return Browser(app.test_client())
