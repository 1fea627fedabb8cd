"""A test version of the CAF process whose deadlines are seconds, not days, so that every episode
has timers falling due while the test runs. Only the durations change (processes/caf_episode.bpmn:
the `Open the episode` script and the `24 hours' notice` timer)."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from app.config import PROJECT_ROOT


@dataclass(frozen=True)
class Deadlines:
    assessment: int  # seconds from the episode's start to the 35-day limit
    child_protection: int  # seconds from the concern being recorded to the 48-hour limit
    notice: int  # seconds from the overdue warning to deletion (the 24 hours' notice)


def write_short_process(target: Path, deadlines: Deadlines) -> Path:
    shutil.copytree(PROJECT_ROOT / "processes", target)
    model = target / "caf_episode.bpmn"
    text = model.read_text()
    for shipped, short in (('caf_time_limit = "P35D"', f'caf_time_limit = "PT{deadlines.assessment}S"'),
                           ('child_protection_time_limit = "PT48H"',
                            f'child_protection_time_limit = "PT{deadlines.child_protection}S"'),
                           ('<bpmn:timeDuration>"PT24H"</bpmn:timeDuration>',
                            f'<bpmn:timeDuration>"PT{deadlines.notice}S"</bpmn:timeDuration>')):
        assert text.count(shipped) == 1, \
            f"{model.name} no longer holds {shipped!r} exactly once: update the fault test's durations"
        text = text.replace(shipped, short)
    model.write_text(text)
    return target
