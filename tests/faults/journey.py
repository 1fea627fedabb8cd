"""A practitioner's journey over real HTTP, as a browser would make it: a cookie jar, the CSRF token
of each form, sign-in with a password and then a TOTP code."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import requests

_TIMEOUT = 30  # seconds for one page: a loaded test machine, never a hang


def _token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    if not match:
        raise AssertionError("the page has no CSRF token")
    return match.group(1)


def _text(html: str) -> str:
    html = re.sub(r"<(script|style).*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))[:1500]


@dataclass
class Child:
    given_names: str
    family_name: str
    born: date
    postcode: str = "W9 2AB"
    address: str = "2 New Street"


CHECKLIST = {"action": "submit", "decision": "full_caf", "healthy.answer": "no", "healthy.notes": "Often unwell"}
CONSENT = {"action": "submit", "decision": "given", "subject": "child", "given_by_name": "Pat Parent",
           "relationship": "Mother", "has_parental_responsibility": "true", "consent_to_storage": "true",
           "consent_to_sharing": "true", "method": "written",
           "given_on.day": "5", "given_on.month": "1", "given_on.year": "2026"}


class Practitioner:
    """One signed-in practitioner driving eCAF's pages."""

    def __init__(self, base_url: str, username: str, password: str):
        self.base, self.username, self.password = base_url.rstrip("/"), username, password
        self.http = requests.Session()

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.base + path, timeout=_TIMEOUT, allow_redirects=False)

    def post(self, path: str, form: dict, *, token_from: str | None = None) -> requests.Response:
        page = self.get(token_from or path)
        if page.status_code != 200:
            raise AssertionError(f"GET {token_from or path} answered {page.status_code}: {_text(page.text)}")
        return self.http.post(self.base + path, data={**form, "csrf_token": _token(page.text)}, timeout=_TIMEOUT,
                              allow_redirects=False)

    def _expect_redirect(self, response: requests.Response, what: str) -> str:
        if response.status_code != 302:
            raise AssertionError(f"{self.username}: {what} answered {response.status_code}: {_text(response.text)}")
        return response.headers["Location"].removeprefix(self.base)

    def sign_in(self, current_code) -> None:
        """Password, then the code `current_code()` gives (read when the code page is reached)."""
        to_code = self._expect_redirect(self.post("/sign-in", {"username": self.username, "password": self.password}),
                                        "the password")
        assert to_code.startswith("/sign-in/code"), f"{self.username}: after the password came {to_code}"
        done = self._expect_redirect(self.post("/sign-in/code", {"code": current_code()}), "the code")
        assert not done.startswith("/sign-in"), f"{self.username}: the code was refused ({done})"

    def start_caf(self, child: Child, authority_id: int) -> int:
        """Record the child and start a CAF; returns the new episode's id."""
        form = {"count": "1", "child-0-given_names": child.given_names, "child-0-family_name": child.family_name,
                "child-0-date_of_birth-day": str(child.born.day), "child-0-date_of_birth-month": str(child.born.month),
                "child-0-date_of_birth-year": str(child.born.year), "child-0-nhs_number_missing": "not_known",
                "address": child.address,
                "postcode": child.postcode, "authority": str(authority_id), "action": "start"}
        location = self._expect_redirect(self.post("/children/new", form, token_from="/children/find"),
                                         "Start a CAF")
        match = re.fullmatch(r"/episodes/(\d+)", location)
        assert match, f"Start a CAF went to {location}, not the episode"
        return int(match.group(1))

    def first_task(self, episode_id: int) -> str:
        page = self.get(f"/episodes/{episode_id}")
        assert page.status_code == 200, f"episode {episode_id} answered {page.status_code}"
        match = re.search(r'href="(/tasks/\d+)"', page.text)
        assert match, f"episode {episode_id} offers {self.username} no task: {_text(page.text)}"
        return match.group(1)

    def submit(self, task_path: str, form: dict, what: str) -> str:
        """Submit a task's form; returns where eCAF goes next (the next task, or the episode)."""
        return self._expect_redirect(self.post(task_path, form), what)

    def prepare(self, episode_id: int, *, concern: bool) -> str:
        """The checklist (with or without a child-protection concern) and the family's consent: the
        episode's deadlines start. Returns the assessment task's path."""
        checklist = {**CHECKLIST, **({"child_protection_concern": "true"} if concern else {})}
        consent = self.submit(self.first_task(episode_id), checklist, "the pre-assessment checklist")
        assert consent.startswith("/tasks/"), f"after the checklist came {consent}"
        assessment = self.submit(consent, CONSENT, "the consent")
        assert assessment.startswith("/tasks/"), f"after the consent came {assessment}"
        return assessment

    def submit_assessment(self, task_path: str, child: Child, today: date) -> None:
        form = {"action": "submit",
                "section_a_administration.date_started.day": str(today.day),
                "section_a_administration.date_started.month": str(today.month),
                "section_a_administration.date_started.year": str(today.year),
                "section_b_child.given_names": child.given_names, "section_b_child.family_name": child.family_name,
                "section_b_child.date_of_birth.day": str(child.born.day),
                "section_b_child.date_of_birth.month": str(child.born.month),
                "section_b_child.date_of_birth.year": str(child.born.year),
                "section_k_voice.child_comments": "I want to go to school more."}
        self.submit(task_path, form, "the assessment")
