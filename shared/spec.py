"""What a service is, to the runtime that runs it and the tools that drive it: its
topics, migrations and handlers, its own background loops, and what "work left"
means in its tables (:class:`Work`: the cluster driver waits for none before it
calls a simulated moment done)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.envelope import Event
from shared.settings import Settings
from shared.timers import TimerRow
from shared.topics import Topic
from shared.unit_of_work import Repositories, UnitOfWork

if TYPE_CHECKING:
    from shared.runtime import Runtime

Handler = Callable[[UnitOfWork, Event], Awaitable[None]]
BatchHandler = Callable[[UnitOfWork, list[Event]], Awaitable[None]]
TimerHandler = Callable[[UnitOfWork, TimerRow], Awaitable[None]]
TimersHandler = Callable[[UnitOfWork, list[TimerRow]], Awaitable[None]]


def each(handle: Handler) -> BatchHandler:
    """A batch handler that handles the events one after another."""

    async def handle_batch(uow: UnitOfWork, events: list[Event]) -> None:
        for event in events:
            uow.cause = event.envelope
            await handle(uow, event)

    return handle_batch


def each_timer(on_timer: TimerHandler) -> TimersHandler:
    async def on_timers(uow: UnitOfWork, due: list[TimerRow]) -> None:
        for row in due:
            await on_timer(uow, row)

    return on_timers


@dataclass(frozen=True)
class LoopSpec:
    """A background loop of the service's own (:class:`shared.supervised.Loop`):
    ``step`` does one round and returns how much it did (0: idle)."""

    name: str
    step: Callable[[Runtime], Awaitable[int]]
    poll_s: Callable[[Settings], float]


@dataclass(frozen=True)
class Work:
    """Work a service has left at a moment ``$1``: ``count`` counts it, ``next_due``
    (optional) finds the next moment after ``$1`` when more falls due. Both are SQL
    over the service's schema, templates for ``{schema}`` and ``{settings}``."""

    name: str
    count: str
    next_due: str | None = None

    def sql(self, template: str, schema: str, settings: Settings) -> str:
        return template.format(schema=schema, settings=settings)


#: The work every service has: outbox rows to publish and timers to fire.
PLUMBING_WORK = (
    Work("outbox", "SELECT count(*) FROM {schema}.outbox WHERE sent_at IS NULL"),
    Work(
        "timers",
        "SELECT count(*) FROM {schema}.timers WHERE due_at <= $1",
        "SELECT min(due_at) FROM {schema}.timers WHERE due_at > $1",
    ),
)


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    topics: tuple[Topic, ...]
    migrations: Path
    handle: BatchHandler
    #: Event types the handler acts on; others on its topics are validated and
    #: ignored (None: every type goes to the handler).
    handles: frozenset[str] | None = None
    on_timers: TimersHandler | None = None
    #: Extra background loops, e.g. the scheduler's horizon materialiser.
    loops: tuple[LoopSpec, ...] = ()
    #: Work of its own besides :data:`PLUMBING_WORK` (the scheduler's due items).
    work: tuple[Work, ...] = ()
    #: Adds the service's own HTTP routes to its faust app, ``routes(app, runtime)``
    #: (the notifier's acknowledgements), beside the operator endpoints.
    routes: Callable[[Any, Runtime], None] | None = None
    #: Reads and checks the service's own configuration before it starts (the
    #: notifier's endpoints); raises ValueError naming the field.
    check: Callable[[], object] | None = None
    #: Its PostgreSQL repositories for a unit of work (``uow.repos``); the in-memory
    #: ones are handed to :class:`shared.memory.MemoryUnits` instead.
    repositories: Repositories | None = None

    @property
    def source(self) -> str:
        return f"ntx/{self.name}"

    @property
    def group(self) -> str:
        """The consumer group of its workers."""
        return f"ntx-{self.name}"

    @property
    def all_work(self) -> tuple[Work, ...]:
        return (*PLUMBING_WORK, *self.work)

    def acts_on(self, type_: str) -> bool:
        """Whether the service acts on this type. Others are ignored: with no effect
        to repeat they need no inbox entry."""
        return self.handles is None or type_ in self.handles
