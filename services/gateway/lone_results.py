"""Lone ALT or AST results held past ``lone_result_wait`` (7 days) are reported, never
dropped silently (DESIGN.md §8, docs/CONNECTING_AN_EHR.md "Lone ALT or AST"): a
supervised loop takes them out of ``held_results`` and dead-letters each, in one
transaction, on ``ntx.dlq.v1`` where operators look.

The letter names the FHIR path and why; its original is a small JSON of which
result it was (pseudonymous patient id, analyte, collection time, the EHR's
resource id), never the value. Its topic is the one ``lab.resulted`` goes to, so
once the missing result is found an operator can send the whole event with
``ntx dlq replay ID --file``."""

from __future__ import annotations

import json
import logging

from services.gateway.domain.pairing import ANALYTE_NAMES, OTHER, HeldResult
from services.gateway.domain.settings import DEFAULT_SETTINGS
from shared import deadletter
from shared.plumbing import PgPlumbing
from shared.runtime import Runtime
from shared.topics import event_type
from shared.types import format_utc

log = logging.getLogger("ntx.gateway")

LAB_RESULTED = "ntx.lab.resulted.v1"


async def report_lone_results(runtime: Runtime) -> int:
    """One round: every result held longer than the wait, dead-lettered."""
    now = runtime.clock.now()
    async with runtime.unit_of_work(now) as uow:
        expired = await uow.repos.pending_results.expire(now - DEFAULT_SETTINGS.lone_result_wait)
        assert isinstance(uow.store, PgPlumbing)
        for held in expired:
            raw = original(held)
            letter = deadletter.dead_letter(
                runtime.spec.name,
                event_type(LAB_RESULTED).topic.name,
                None,
                None,
                held.patient_id.encode(),
                raw,
                reason(held),
                held.path,
                now,
                schema=runtime.schema,
            )
            await deadletter.store(uow.store.conn, letter, held.patient_id.encode(), raw)
    if expired:
        log.warning("lone lab results reported", extra={"count": len(expired)})
        runtime.wake_relay()
    return len(expired)


def original(held: HeldResult) -> bytes:
    return json.dumps(
        {
            "patient_id": held.patient_id,
            "analyte": held.analyte,
            "collected_at": format_utc(held.collected_at),
            "resource": held.resource,
            "held_at": format_utc(held.held_at),
        }
    ).encode()


def reason(held: HeldResult) -> str:
    days = DEFAULT_SETTINGS.lone_result_wait.days
    return (
        f"{ANALYTE_NAMES[held.analyte]} collected at {format_utc(held.collected_at)} had no "
        f"{ANALYTE_NAMES[OTHER[held.analyte]]} within {days} days: no lab.resulted was sent"
    )


def poll_s(settings) -> float:  # type: ignore[no-untyped-def]
    """As often as the runtime's housekeeping: a wait of days needs no faster round."""
    return float(settings.housekeeping_every_s)
