"""Form benchmark: prints what drawing a task form's fields costs, every macro drawn anew against compiled.

    python bench/forms.py [--runs 30] [--profile]

For the pre-assessment checklist, consent, the assessment (the largest: sections A–L) and the
action plan, blank and with errors on every required answer:
  drawn     every GOV.UK macro run for every field on every request (how forms were drawn before);
  cold      the first request after the compiled pieces are emptied (once per process and field);
  warm      every later request: compiled pieces filled with the request's answers and errors.
Times are this process's CPU time (steady on a busy machine) for the fields' markup
(`build_form` included), with no database: the rest of the page is the same either way. `--profile` prints cProfile's top ten
for the assessment, drawn and compiled.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import report  # noqa: E402

from app.engine.forms import validate  # noqa: E402
from app.forms import pieces  # noqa: E402
from app.forms.building import build_form  # noqa: E402
from app.forms.markup import fields_markup  # noqa: E402

FORMS = ("pre_assessment_checklist", "consent", "assessment", "action_plan")
FOLDER = Path(__file__).resolve().parents[1] / "processes" / "forms"


def load(name: str) -> tuple[dict, dict]:
    ui = FOLDER / f"{name}.uischema.json"
    return json.loads((FOLDER / f"{name}.schema.json").read_text()), json.loads(ui.read_text()) if ui.exists() else {}


def draw(schema: dict, ui: dict, errors: list, way: pieces.Drawn) -> str:
    return fields_markup(build_form(schema, ui, {}, errors), pieces=way)


def cpu_timed(action, runs: int, *, warm: bool = False) -> list[float]:
    if warm:
        action()
    samples = []
    for _ in range(runs):
        started = time.process_time()
        action()
        samples.append(time.process_time() - started)
    return samples


def cold(schema: dict, ui: dict, errors: list) -> float:
    pieces.forget()
    started = time.process_time()
    draw(schema, ui, errors, pieces.Compiled())
    return time.process_time() - started


def profile(schema: dict, ui: dict, way: pieces.Drawn, label: str) -> None:
    draw(schema, ui, [], way)  # compiled: warm
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(5):
        draw(schema, ui, [], way)
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(10)
    print(f"\ncProfile, the assessment {label}, 5 renders, top ten by own time:")
    print("\n".join(line for line in text.getvalue().splitlines()[4:] if line.strip()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    print(f"eCAF form benchmark, {args.runs} runs each; load average at start: "
          + " ".join(f"{n:.2f}" for n in os.getloadavg()) + "\n")
    drawn, compiled = pieces.Drawn(), pieces.Compiled()
    for name in FORMS:
        schema, ui = load(name)
        for state, errors in (("blank", []), ("errors", validate(schema, {}))):
            label = f"{name}, {state}"
            report(f"{label}: drawn, CPU", cpu_timed(lambda: draw(schema, ui, errors, drawn), args.runs))
            print(f"{label + ': cold, CPU':<52} {cold(schema, ui, errors) * 1000:8.2f} ms once")
            report(f"{label}: warm, CPU", cpu_timed(lambda: draw(schema, ui, errors, compiled), args.runs, warm=True))
    if args.profile:
        schema, ui = load("assessment")
        profile(schema, ui, drawn, "drawn")
        profile(schema, ui, compiled, "compiled (warm)")
    print("\nload average at end: " + " ".join(f"{n:.2f}" for n in os.getloadavg()))


if __name__ == "__main__":
    main()
