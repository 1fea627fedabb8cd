"""Web benchmark: prints what the practitioners' pages cost on SQLite, through the Flask app.

    python bench/web.py [--runs 30]

(a) signing in: the password check (argon2id) and the whole two-step sign-in;
(b) pages: the task list, the episode page, the assessment (its task list of sections: the form has
    sections A–L), and submitting the checklist form; median and p95 over RUNS requests;
(c) the PDF of a CAF in delivery (assessment, consent, plan) with WeasyPrint.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import report, timed  # noqa: E402

import time_machine  # noqa: E402
from sqlalchemy import select  # noqa: E402

from app import create_app  # noqa: E402
from app.accounts import passwords, totp  # noqa: E402
from app.clock import now  # noqa: E402
from app.config import PROJECT_ROOT, Config  # noqa: E402
from app.demo import DEMO_PASSWORD, load_demo  # noqa: E402
from app.engine.library import Bundle, deploy  # noqa: E402
from app.jobs.runtime import Runtime  # noqa: E402
from app.migrate import upgrade  # noqa: E402
from app.models import Episode, HumanTask, User  # noqa: E402
from tests.web import Browser  # noqa: E402


STEP = timedelta(seconds=31)


def expect(response, status: int, what: str):
    if response.status_code != status:
        raise SystemExit(f"{what} answered {response.status_code}, not {status}")
    return response


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    runs = parser.parse_args().runs
    folder = Path(tempfile.mkdtemp(prefix="ecaf-bench-web-"))
    config = Config(database_url=f"sqlite:///{folder / 'bench.db'}", processes_dir=PROJECT_ROOT / "processes",
                    cookie_secure=False, testing=True)
    upgrade(config.database_url)
    runtime = Runtime.build(config)
    with runtime.db.session() as session:
        deploy(session, Bundle.from_directory(config.processes_dir))
    load_demo(runtime.db, runtime.engine)
    app = create_app(config)
    with runtime.db.session() as session:
        priya = session.scalar(select(User).where(User.username == "priya.shah"))
        secret = totp.unseal(config, priya.totp_secret)
        # Priya's own (the demo also has other practitioners' episodes, which she may not open).
        delivery = session.scalar(select(Episode).where(Episode.stage == "delivery", Episode.status == "open",
                                                        Episode.originator_id == priya.id).order_by(Episode.id))
        assessment = session.scalar(select(HumanTask).where(HumanTask.name == "complete_assessment",
                                                            HumanTask.status == "ready",
                                                            HumanTask.assigned_user_id == priya.id))
        checklist = session.scalar(select(HumanTask).where(HumanTask.name == "pre_assessment_checklist",
                                                           HumanTask.status == "ready",
                                                           HumanTask.assigned_user_id == priya.id))
    if None in (delivery, assessment, checklist):
        raise SystemExit("the demo data no longer has an episode in delivery, a ready assessment and a ready checklist")
    print(f"eCAF web benchmark, SQLite, {runs} runs each\n")
    report("(a) argon2id password check", timed(lambda: passwords.verify_password(priya.password_hash,
                                                                                   DEMO_PASSWORD), runs))
    moment = [now()]

    def sign_in():
        moment[0] += STEP  # a code is accepted once: each sign-in in its own 30-second step
        with time_machine.travel(moment[0], tick=False):
            Browser(app.test_client()).sign_in("priya.shah", secret, password=DEMO_PASSWORD)

    report("(a) sign-in, password and code (4 requests)", timed(sign_in, min(runs, 10)))
    client = Browser(app.test_client())
    with time_machine.travel(moment[0] + STEP, tick=False):
        client.sign_in("priya.shah", secret, password=DEMO_PASSWORD)

    def get(path, status=200):
        # A figure for an error page or a redirect would measure the wrong thing.
        return expect(client.get(path), status, f"GET {path}")

    def post(path, data, status):
        return expect(client.post(path, data), status, f"POST {path}")

    report("(b) task list", timed(lambda: get("/"), runs))
    report("(b) episode page (delivery)", timed(lambda: get(f"/episodes/{delivery.id}"), runs))
    report("(b) assessment: its task list of sections", timed(lambda: get(f"/tasks/{assessment.id}"), runs))
    html = get(f"/tasks/{assessment.id}").get_data()
    print(f"{'    its size':<48} {len(html) / 1024:7.1f} KB")
    report("(b) checklist submitted with an error (400)",
           timed(lambda: post(f"/tasks/{checklist.id}", {"action": "submit", "healthy.answer": "no"}, 400), runs))
    report("(c) PDF of the CAF in delivery",
           timed(lambda: get(f"/episodes/{delivery.id}/print.pdf"), max(1, runs // 3)))
    pdf = get(f"/episodes/{delivery.id}/print.pdf").data
    print(f"{'    its size':<48} {len(pdf) / 1024:7.1f} KB")


if __name__ == "__main__":
    main()
