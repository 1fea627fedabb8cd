"""What the fault test prints and keeps: the deadlines, the timer lateness under faults (p50, p95,
max), which deadlines each fault met, the messages, and what readiness and /metrics said."""
from __future__ import annotations

import re
from collections import Counter

import requests

from .evidence import Bound, Deadline, Deliveries, Fault, percentile


def summary(deadlines: list[Deadline], faults: list[Fault], bound: Bound, deliveries: Deliveries, received: dict,
            notes: list[str], timer_poll: float, seconds: float) -> str:
    fired = [d for d in deadlines if d.due and d.fired]
    lateness = [(d.fired[0] - d.due).total_seconds() for d in fired]
    lines = [f"Production fault test: {len(deadlines)} deadlines in {len({d.episode_id for d in deadlines})} episodes "
             f"({dict(Counter(d.kind for d in deadlines))}), {len(fired)} fired",
             f"sweep interval {bound.sweep_interval:g} s, timer poll {timer_poll:g} s, bound "
             f"{bound.limit.total_seconds():g} s after the due time or the end of the fault covering it"]
    if lateness:
        lines.append(f"timer lateness under faults, fired - due, {len(lateness)} deadlines (s): "
                     f"p50 {percentile(lateness, 50):.1f}, p95 {percentile(lateness, 95):.1f}, max {max(lateness):.1f}")
        worst = max(bound.beyond(d, faults) for d in fired)
        lines.append(f"worst against the bound: {worst:.1f} s of {bound.limit.total_seconds():g} s")
        latest = sorted(fired, key=lambda d: d.fired[0] - d.due, reverse=True)[:3]
        lines.append("latest: " + "; ".join(f"{d} {(d.fired[0] - d.due).total_seconds():.1f} s late" for d in latest))
    for fault in faults:
        lines.append(f"fault {fault.started:%H:%M:%S}-{fault.ended:%H:%M:%S} {fault.name}: "
                     f"{len(bound.due_around(deadlines, fault))} deadlines due around it")
    lines.append(f"messages: {dict(deliveries.by_channel)} in the outbox; received "
                 + ", ".join(f"{n} {what}" for what, n in received.items()))
    lines += notes
    lines.append(f"run time {seconds:.0f} s")
    return "\n".join(lines)


def metrics_note(base_url: str) -> str:
    """What /metrics (asked on loopback) counted of the timers the workers fired: reported, not checked."""
    try:
        answer = requests.get(base_url + "/metrics", timeout=5)
    except requests.RequestException as exc:
        return f"/metrics: no answer ({type(exc).__name__})"
    counts = [line.split()[-1] for line in answer.text.splitlines()
              if line.startswith("ecaf_timer_lateness_seconds_count")]
    return f"/metrics: {answer.status_code}, timer firings counted: {', '.join(counts) or 'none'}"


def short(body: str) -> str:
    """An answer's text on one line, without markup: enough to see why."""
    return " ".join(re.sub(r"<(script|style).*?</\1>|<[^>]+>", " ", body, flags=re.S).split())[:300]
