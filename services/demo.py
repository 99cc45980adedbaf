"""``ntx demo``: four patients through a simulated month on the real stack, printed
as a timeline of what the services published.

* ``pt-xr`` accepted on XR, every injection given: quiet apart from due events.
* ``pt-oral-miss`` accepted on oral daily, skips days 5-8: missed doses, then an
  overdose-risk alert when the blockade lapses, resolved when dosing resumes.
* ``pt-stop`` accepted on oral, stops treatment on day 10: discontinued alert.
* ``pt-deferred`` last used heroin 5 days ago: deferred, re-checked and accepted on
  the earliest start date (day 2), then adherent.

Every notification goes to the demo's own webhook receiver (a care-team endpoint and
a patient endpoint), which verifies each signature with ``standardwebhooks``; the
timeline shows each delivery's outcome as the notifier published it.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from services.cluster import Cluster
from services.notifier.domain.endpoints import new_secret
from services.notifier.receiver import WebhookReceiver
from shared.envelope import build, stable_id
from shared.infra import free_port
from shared.localtime import to_utc
from shared.topics import (
    ALERTS,
    DELIVERIES,
    INTAKE_DECISIONS,
    NOTIFICATIONS,
    SCHEDULE,
    event_type,
)

ZONE = "America/New_York"
START = date(2026, 3, 2)
DAYS = 30
HS = "hs/demo-clinic"


def _event(type_: str, at: datetime, data: dict) -> dict:
    """Deterministic ids: two runs of the script send (and so cause) the same events."""
    model = event_type(type_).model.model_validate_json(json.dumps(data))
    return build(
        type_,
        model,
        source=HS,
        time=at,
        id_=stable_id(HS, type_, data["patient_id"], at.isoformat()),
    )


def intake(patient: str, formulation: str, last_use: date, at: datetime) -> dict:
    checked = (at.astimezone(ZoneInfo(ZONE)).date() - timedelta(days=1)).isoformat()
    data = {
        "patient_id": patient,
        "timezone": ZONE,
        "formulation": formulation,
        "last_opioid_use": {"date": last_use.isoformat(), "opioid": "heroin"},
        "urine_drug_screen": {"date": checked, "opioids_detected": False},
        "naloxone_challenge": {"date": checked, "result": "negative"},
        "liver_function": {"date": checked, "alt": 30, "ast": 25, "alt_uln": 40, "ast_uln": 40},
        "consent": {"notify_patient": True, "notify_external": False},
    }
    return _event("ntx.intake.requested.v1", at, data)


def dose_given(patient: str, day: date, mg: int, type_: str = "ntx.dose.administered.v1") -> dict:
    at = to_utc(datetime.combine(day, time(9, 20)), ZONE)
    return _event(
        type_, at, {"patient_id": patient, "administered_at": at.isoformat(), "dose_mg": mg}
    )


def script(days: int = DAYS) -> dict[date, list[dict]]:
    """What the health system sends, day by day (sent at 09:20 local)."""
    plan: dict[date, list[dict]] = {}
    first = to_utc(datetime.combine(START, time(8, 0)), ZONE)
    plan[START] = [
        intake("pt-xr", "xr", START - timedelta(days=10), first),
        intake("pt-oral-miss", "oral", START - timedelta(days=10), first),
        intake("pt-stop", "oral", START - timedelta(days=10), first),
        intake("pt-deferred", "oral", START - timedelta(days=5), first),
    ]
    for n in range(days):
        day = START + timedelta(days=n)
        sends = plan.setdefault(day, [])
        if n % 28 == 0:
            sends.append(dose_given("pt-xr", day, 380, "ntx.injection.administered.v1"))
        if not 5 <= n <= 8:
            sends.append(dose_given("pt-oral-miss", day, 25 if n == 0 else 50))
        if n < 10:
            sends.append(dose_given("pt-stop", day, 25 if n == 0 else 50))
        if n == 10:
            stop_at = to_utc(datetime.combine(day, time(9, 20)), ZONE)
            sends.append(
                _event(
                    "ntx.treatment.stopped.v1",
                    stop_at,
                    {
                        "patient_id": "pt-stop",
                        "stopped_at": stop_at.isoformat(),
                        "reason": "patient_choice",
                    },
                )
            )
        if n >= 2:
            sends.append(dose_given("pt-deferred", day, 25 if n == 2 else 50))
    return plan


async def drive(cluster: Cluster, days: int = DAYS, on_day=None) -> None:  # type: ignore[no-untyped-def]
    """Send each day's events at 09:20 local, letting the system settle; ``on_day``
    (for fault tests) runs after each day's sends."""
    plan = script(days)
    for n in range(days):
        day = START + timedelta(days=n)
        await cluster.advance(
            to_utc(datetime.combine(day, time(9, 20)), ZONE), step=timedelta(hours=6), exact=True
        )
        await cluster.send(plan.get(day, []))
        if on_day is not None:
            await on_day(n)
        await cluster.settle()
    end = to_utc(datetime.combine(START + timedelta(days=days), time(0, 0)), ZONE)
    await cluster.advance(end, exact=True)
    await cluster.close_probes()


def timeline_line(event: dict) -> str | None:
    d = event["data"]
    kind = event["type"].removeprefix("ntx.").rsplit(".", 1)[0]
    when = event["time"][:16].replace("T", " ")
    if kind.startswith("intake."):
        extra = ", ".join(r["code"] for r in d["reasons"]) or "plan " + (d["plan"] or {}).get(
            "formulation", ""
        )
        detail = f"{d['decision']} ({extra})"
    elif kind.startswith("alert."):
        detail = f"{d['alert']} [{d['severity']}] {d['reason']}"
    elif kind == "notification.requested":
        detail = f"{d['alert']} -> {d['audience']}" + (
            " (offer naloxone)" if d.get("offer_naloxone") else ""
        )
    elif kind in ("notification.delivered", "notification.failed"):
        attempts = "1 attempt" if d["attempts"] == 1 else f"{d['attempts']} attempts"
        detail = f"{d['audience']} at {d['endpoint']}: {d['status']} ({attempts})"
    elif kind in (
        "dose.due",
        "uds.due",
        "lab.due",
        "site_check.due",
        "treatment.review.due",
        "plan.created",
    ):
        return None  # routine: summarised in the counts
    else:
        detail = json.dumps({k: v for k, v in d.items() if k != "patient_id"})
    return f"{when}Z  {d['patient_id']:<13} {kind:<24} {detail}"


async def collect(cluster: Cluster) -> list[dict]:
    """Every topic's events in time order; at one moment, cause before effect (a
    decision, its schedule, the alert, its notification request, the delivery)."""
    events = []
    for rank, topic in enumerate((INTAKE_DECISIONS, SCHEDULE, ALERTS, NOTIFICATIONS, DELIVERIES)):
        events.extend((e["time"], rank, n, e) for n, e in enumerate(await cluster.read(topic.name)))
    return [e for *_, e in sorted(events, key=lambda t: t[:3])]


def endpoints(url: str, secret: str) -> list[dict]:
    """The demo's endpoints: the care team's and the patient's, both at its receiver."""
    return [
        {"name": "care-team-pager", "audience": "care_team", "url": url, "secret": secret},
        {"name": "patient-app", "audience": "patient", "url": url, "secret": secret},
    ]


async def run_with_receiver(cluster: Cluster, receiver: WebhookReceiver) -> list[dict]:
    """The script, with the receiver listening while the notifier delivers (the
    cluster settles only once no delivery is pending)."""
    async with receiver:
        await drive(cluster)
        return await collect(cluster)


def demo(args) -> int:  # type: ignore[no-untyped-def]
    secret, port = new_secret(), free_port()
    receiver = WebhookReceiver(secret, port=port)
    env = {"NTX_NOTIFIER_ENDPOINTS": json.dumps(endpoints(receiver.url, secret))}
    with tempfile.TemporaryDirectory(prefix="ntx-demo-") as tmp:
        start = to_utc(datetime.combine(START, time(7, 0)), ZONE)
        print(
            f"ntx demo: starting broker, database and services (simulated from {START})", flush=True
        )
        with Cluster(Path(tmp), start, extra_env=env) as cluster:
            events = asyncio.run(run_with_receiver(cluster, receiver))
    counts: dict[str, int] = {}
    for event in events:
        counts[event["type"]] = counts.get(event["type"], 0) + 1
        line = timeline_line(event)
        if line:
            print(line)
    print("\nevents by type:")
    for type_, n in sorted(counts.items()):
        print(f"  {type_:<36} {n:>5}")
    print(
        f"\nwebhooks at the demo receiver: {len(receiver.received)} signatures verified"
        f" (standardwebhooks), {receiver.rejected} refused,"
        f" {len(receiver.delivered_ids())} notifications delivered"
    )
    return 0
