"""Authorization matrix cases for one area: see tests/test_authorization_matrix.py.

Evidence attached to an episode. `seed(runtime, world, directory)` attaches a PDF to each of the
world's episodes, stored in `directory` (the runtime's settings are pointed there, so no test writes
to the project's own folder); when the matrix has called it, the download cases use those files.
Without it they use an id that does not exist, which everyone signed in gets as 404.
"""
from __future__ import annotations

import dataclasses
import io
from pathlib import Path

from app import attachments
from app.models import Episode, User

MISSING = 999999
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def seed(runtime, world: dict, directory: Path) -> None:
    """One attachment on each episode, uploaded by its originator; call it before the app is made."""
    runtime.config = dataclasses.replace(runtime.config, attachments_dir=directory)
    found = {}
    with runtime.db.session() as session:
        for state, episode_id in world["episodes"].items():
            episode = session.get(Episode, episode_id)
            stored = attachments.store(session, runtime.config, episode=episode,
                                       user=session.get(User, episode.originator_id),
                                       filename=f"evidence-{state}.pdf", stream=io.BytesIO(PDF))
            found[state] = stored.id
    world["attachments"] = found


def cases(world: dict, ids: dict, rules) -> dict:
    """{endpoint: [Case, ...]}; `rules` offers Case, by_role, episode_rule, ANONYMOUS, ADMINS, PRACTITIONERS,
    SIGNED_IN, VIEW, MANAGE and child_rule (an administrator's page about one record of their authority)."""
    Case, episode_rule, VIEW = rules.Case, rules.episode_rule, rules.VIEW
    seeded = world.get("attachments") or {}
    found: dict = {"attachments.index": [], "attachments.upload": [], "attachments.download": [],
                   "attachments.attach_in_form": []}
    for state, episode_id in world["episodes"].items():
        # Whoever may open the episode (as a member, or an administrator of its authority) may attach.
        may = VIEW[state]
        base = f"/episodes/{episode_id}/attachments"
        found["attachments.index"].append(Case("GET", base, episode_rule(may)))
        # Posted without a file, an allowed user is asked for one (400) and nothing is stored.
        found["attachments.upload"].append(Case("POST", base, episode_rule(may, 400), {}))
        # Evidence from a request form: only its requester, on a request form of this episode (the world
        # has none waiting, so nobody; tests/test_practitioner_forms.py has the requester's own case).
        found["attachments.attach_in_form"].append(
            Case("POST", f"/episodes/{episode_id}/requests/{MISSING}/evidence", episode_rule(set()), {}))
        attachment_id = seeded.get(state, MISSING)
        found["attachments.download"].append(
            Case("GET", f"{base}/{attachment_id}", episode_rule(may if state in seeded else set())))
    # Another episode's attachment is not found under this one, whoever asks.
    if {"given", "withdrawn"} <= set(seeded):
        given, withdrawn = world["episodes"]["given"], seeded["withdrawn"]
        found["attachments.download"].append(
            Case("GET", f"/episodes/{given}/attachments/{withdrawn}", episode_rule(set())))
    return found
