"""``ntx bench``: the issue-level performance figures, measured on the embedded stack
(broker, database, services and load all on this machine), printed as a table or,
with ``--json``, as one JSON object. ``--quick`` is a small smoke run.

Benchmarks are measurements, not tests: nothing here fails on a slow machine; the
table marks each figure against its target.
"""

from __future__ import annotations

import json
import sys

from services.bench.run import Sizes, run_all

FULL = Sizes(
    pipeline_patients=2000,
    pipeline_days=30,
    latency_alerts=300,
    scheduler_patients=100_000,
    intake_requests=20_000,
    notifier_requests=10_000,
)
QUICK = Sizes(
    pipeline_patients=30,
    pipeline_days=4,
    latency_alerts=20,
    scheduler_patients=500,
    intake_requests=300,
    notifier_requests=300,
)

#: metric -> (target, "min" or "max"), from the performance issue.
TARGETS = {
    "ratio": (0.10, "min"),
    "alert_latency_p99_ms": (500, "max"),
    "scheduler_due_per_s": (5000, "min"),
    "scheduler_rss_mb": (300, "max"),
    "intake_decisions_per_s": (2000, "min"),
    "notifier_deliveries_per_s": (500, "min"),
}


def bench(args) -> int:  # type: ignore[no-untyped-def]
    sizes = QUICK if args.quick else FULL
    result, extra = run_all(sizes, log=lambda line: print(line, file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps(result))
    else:
        print(table(result, extra))
    return 0


def table(result: dict, extra: dict) -> str:
    """The JSON keys first, against their targets; then the supporting figures."""
    rows = [("metric", "value", "target", "")]
    for key, value in result.items():
        if key == "versions":
            continue
        target = TARGETS.get(key)
        mark = ""
        if target is not None and isinstance(value, int | float):
            goal, kind = target
            met = value >= goal if kind == "min" else value <= goal
            mark = "met" if met else "MISSED"
        goal_text = "" if target is None else f"{'>=' if target[1] == 'min' else '<='} {target[0]}"
        rows.append((key, _fmt(value), goal_text, mark))
    for key, value in extra.items():
        rows.append((key, _fmt(value), "", ""))
    for name, version in result["versions"].items():
        rows.append((f"version {name}", version, "", ""))
    name_w = max(len(r[0]) for r in rows)
    value_w = max(len(r[1]) for r in rows if len(r[1]) <= 12)  # text values overflow
    target_w = max(len(r[2]) for r in rows)
    return "\n".join(
        f"{n.ljust(name_w)}  {v.rjust(value_w)}  {t.ljust(target_w)}  {m}".rstrip()
        for n, v, t, m in rows
    )


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 10 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)
