"""Handling a batch of inbound messages: each is admitted at the door
(:mod:`shared.ingress`), then the batch runs in one unit of work
(:mod:`shared.unit_of_work`): the patients' locks, their overdue deadlines, the inbox
claims, the handler, the outbox rows and the dead letters of what was refused.

A handler that refuses or fails on one message rolls the batch back; the batch is
then handled message by message, so only that message is dead-lettered. Only
transient errors (the database away) are retried for ever; a batch that fails
otherwise :attr:`Settings.poison_attempts` times is handled message by message too,
and a message that still fails is dead-lettered with the reason: one message never
stops a partition.

The clock is read once per batch: the door, the deadlines, the handler and the dead
letters all see the moment the batch arrived, however long an outage delays it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from opentelemetry.trace import Span

from shared import db, deadletter, inbox, logs, tracing
from shared.deadlines import Deadlines
from shared.envelope import Event, InvalidEvent
from shared.ingress import Admitted, Message, Refused, admit, as_structured
from shared.plumbing import PgPlumbing, Plumbing
from shared.retrying import Poisoned, attempt
from shared.spec import ServiceSpec
from shared.unit_of_work import UnitOfWork, Units

log = logging.getLogger("ntx.runtime")

Checked = Admitted | Refused | None


class Batches:
    def __init__(
        self,
        units: Units,
        spec: ServiceSpec,
        deadlines: Deadlines,
        shutdown_requested: asyncio.Event,
    ):
        self.units = units
        self.spec = spec
        self.deadlines = deadlines
        self.shutdown_requested = shutdown_requested

    async def handle(self, messages: Sequence[Message], now: datetime) -> list[str]:
        """One outcome per message: ``handled``, ``repeat`` (seen before), ``ignored``
        (valid, of a type this service does not act on) or ``dead``. Retries while
        the database is away: nothing is acknowledged unhandled."""
        checked = [admit(m, now, self.spec.acts_on) for m in messages]
        spans = tracing.start_handling(
            self.spec.name, [c.event.envelope for c in checked if isinstance(c, Admitted)]
        )
        # the trace ids let one request be followed through every service's log: every
        # line logged while its batch is handled carries them (the first of them, in a
        # batch of many traces), and every one of them is named on a line of its own
        lines = tracing.trace_ids(spans)
        first, more = (lines[0], lines[1:]) if lines else (None, [])
        traced = {"trace_ids": first} if first else {}
        with logs.tracing_ids(first):
            try:
                outcomes = await self._handle_traced(messages, checked, now, spans)
            except BaseException as exc:
                tracing.end_handling(spans, exc)
                raise
            tracing.end_handling(spans)
            log.info("handled", extra={"service": self.spec.name, **Counter(outcomes), **traced})
        for ids in more:
            log.info("handled traces", extra={"service": self.spec.name, "trace_ids": ids})
        return outcomes

    async def _handle_traced(
        self,
        messages: Sequence[Message],
        checked: list[Checked],
        now: datetime,
        spans: dict[tracing.Cause, Span],
    ) -> list[str]:
        traces = {cause: tracing.effect_context(span) for cause, span in spans.items()}
        try:
            return await self._attempt(self._in_one_unit, messages, checked, now, False, traces)
        except (_Isolate, Poisoned) as exc:
            if isinstance(exc, Poisoned):
                log.error("batch given up", extra={"error": type(exc.last).__name__})
            return [
                await self._handle_alone(m, c, now, traces)
                for m, c in zip(messages, checked, strict=True)
            ]

    async def _in_one_unit(
        self,
        messages: Sequence[Message],
        checked: list[Checked],
        now: datetime,
        alone: bool,
        traces: dict[tracing.Cause, dict[str, str]],
    ) -> list[str]:
        if all(c is None for c in checked):
            return ["ignored"] * len(checked)  # nothing to record: no transaction
        events = [c for c in checked if isinstance(c, Admitted)]
        async with self.units.begin(now) as uow:
            uow.traces = traces
            patients = sorted({c.event.patient_id for c in events})
            await uow.lock_patients(patients)
            await self.deadlines.fire_before_input(uow, patients)
            claims = await uow.claim_inbox(
                [(c.event.envelope.source, c.event.envelope.id, c.digest) for c in events]
            )
            outcomes, todo, letters = _sort(messages, checked, claims)
            if todo:
                await self._run_handler(uow, todo, alone)
            await uow.flush()  # the handler's rows first, then the letters, as ever
            for message, refusal in letters:
                await self._write_letter(uow.store, message, refusal, now)
        return outcomes

    async def _run_handler(self, uow: UnitOfWork, events: list[Event], alone: bool) -> None:
        try:
            await self.spec.handle(uow, events)
        except db.TRANSIENT_DB_ERRORS:
            raise
        except InvalidEvent:
            if alone:
                raise
            raise _Isolate() from None
        except Exception as exc:
            if alone:
                raise _HandlerFailed(exc) from exc
            raise _Isolate() from exc

    async def _handle_alone(
        self,
        message: Message,
        checked: Checked,
        now: datetime,
        traces: dict[tracing.Cause, dict[str, str]],
    ) -> str:
        """The per-message path after a batch failed: a refusal or a defect rolls back
        this message's effects (inbox claim included) and dead-letters it."""
        try:
            alone = self._in_one_unit
            return (await self._attempt(alone, [message], [checked], now, True, traces))[0]
        except InvalidEvent as exc:  # refused by the service's rules
            refusal = Refused(exc.message, exc.field)
        except (_HandlerFailed, Poisoned) as exc:  # a defect, not bad input: keep it
            cause = exc.cause if isinstance(exc, _HandlerFailed) else exc.last
            # The type only at error level: exception messages may quote input values.
            log.error(
                "handler failed", extra={"topic": message.topic, "error": type(cause).__name__}
            )
            log.debug("handler failure detail", exc_info=cause)
            tries = f" after {exc.attempts} attempts" if isinstance(exc, Poisoned) else ""
            refusal = Refused(
                f"internal error {type(cause).__name__}{tries}; replay once fixed", None
            )
        await self._attempt(self._dead_letter_alone, message, refusal, now)
        return "dead"

    async def _dead_letter_alone(self, message: Message, refusal: Refused, now: datetime) -> None:
        async with self.units.pool.acquire() as conn, conn.transaction():
            await self._write_letter(PgPlumbing(conn, self.units.schema), message, refusal, now)

    async def _write_letter(
        self, store: Plumbing, message: Message, refusal: Refused, now: datetime
    ) -> None:
        await deadletter.write(
            store,
            as_structured(message),
            refusal,
            now,
            service=self.spec.name,
            schema=self.units.schema,
        )

    async def _attempt(self, func: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Retry while the database is away, even while stopping (an unhandled message
        must not be acknowledged) unless a shutdown is requested; give up a call that
        fails otherwise ``poison_attempts`` times."""
        return await attempt(
            func,
            *args,
            transient=db.TRANSIENT_DB_ERRORS,
            attempts=self.units.settings.poison_attempts,
            fatal=(_Isolate, _HandlerFailed, InvalidEvent),
            what="database unavailable",
            abandon_on=self.shutdown_requested,
            outage=self._database_away,
        )

    async def _database_away(self) -> bool:
        """Whether the database fails a trivial query now: then the failures that
        made a call look poisoned were the outage's, and it is retried on."""
        try:
            async with self.units.pool.acquire(timeout=5) as conn:
                await conn.fetchval("SELECT 1", timeout=5)
        except Exception:
            return True
        return False


def _sort(
    messages: Sequence[Message], checked: list[Checked], claims: list[inbox.Seen]
) -> tuple[list[str], list[Event], list[tuple[Message, Refused]]]:
    """Each message's outcome, the events to handle, and the letters to write."""
    outcomes: list[str] = []
    todo: list[Event] = []
    letters: list[tuple[Message, Refused]] = []
    claimed = iter(claims)  # one claim per admitted event, in order
    for message, c in zip(messages, checked, strict=True):
        claim = next(claimed) if isinstance(c, Admitted) else None
        if isinstance(c, Refused) or claim is inbox.Seen.CONFLICT:
            letters.append((message, c if isinstance(c, Refused) else _ID_REUSED))
            outcomes.append("dead")
        elif claim is None:
            outcomes.append("ignored")
        elif claim is inbox.Seen.REPEAT:
            outcomes.append("repeat")
        else:
            assert isinstance(c, Admitted)
            todo.append(c.event)
            outcomes.append("handled")
    return outcomes, todo, letters


class _Isolate(Exception):
    """A handler refused or failed inside a batch: redo the batch message by message."""


class _HandlerFailed(Exception):
    """A handler failed on one message for a reason other than its input: a defect."""

    def __init__(self, cause: BaseException):
        super().__init__(type(cause).__name__)
        self.cause = cause


_ID_REUSED = Refused("id reused with a different body", "id")
