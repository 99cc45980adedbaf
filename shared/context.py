"""The unit of work a handler runs in: one transaction's connection, "now", and the
events, timers and rows its handlers cause, written together at :meth:`Context.flush`.

A whole batch of messages (or of due timers) shares one context, so a batch costs a
handful of statements instead of several per message. Timer operations coalesce per
``(patient, key)``: the last set or cancel wins, as it would have one by one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel

from shared import outbox, timers
from shared.envelope import Envelope, build
from shared.settings import Settings
from shared.timers import TimerRow


@dataclass
class Context:
    """What a handler may do inside its transaction: read and write its own tables
    through ``conn``, emit events, set or cancel timers, and defer bulk inserts.

    ``cause`` is the message being handled (set per message by batch handlers); it
    gives emitted events their ``correlationid`` and ``causationid``."""

    conn: asyncpg.Connection
    now: datetime
    source: str
    cause: Envelope | None = None
    settings: Settings | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    timer_ops: dict[tuple[str, str], TimerRow | None] = field(default_factory=dict)
    deferred: dict[str, list[tuple[Any, ...]]] = field(default_factory=lambda: defaultdict(list))

    def emit(
        self, type_: str, data: BaseModel | dict[str, Any], *, id_: str | None = None
    ) -> dict[str, Any]:
        cause = self.cause
        envelope = build(
            type_,
            data,
            source=self.source,
            time=self.now,
            id_=id_,
            correlationid=(cause.correlationid or cause.id) if cause else None,
            causationid=cause.id if cause else None,
        )
        self.events.append(envelope)
        return envelope

    def set_timer(self, timer: TimerRow) -> None:
        self.timer_ops[(timer.patient_id, timer.key)] = timer

    def cancel_timer(self, patient_id: str, key: str) -> None:
        self.timer_ops[(patient_id, key)] = None

    def defer(self, sql: str, row: tuple[Any, ...]) -> None:
        """Queue ``row`` for ``sql`` (an INSERT of an append-only table that handlers
        never read back); all rows of one statement go in one ``executemany``."""
        self.deferred[sql].append(row)

    async def flush(self) -> int:
        """Write everything queued; returns how many events went to the outbox."""
        cancelled = [k for k, op in self.timer_ops.items() if op is None]
        await timers.cancel_many(self.conn, cancelled)
        await timers.set_timers(self.conn, [op for op in self.timer_ops.values() if op])
        for sql, rows in self.deferred.items():
            await self.conn.executemany(sql, rows)
        await outbox.enqueue_events(self.conn, self.events)
        written = len(self.events)
        self.events, self.timer_ops, self.deferred = [], {}, defaultdict(list)
        return written
