"""Whether a service is getting anywhere, for ``/readyz`` and ``/health`` (DESIGN.md
§10): a service retrying one batch for ever, or whose relay or timer loop keeps
failing, answers and looks alive, so liveness alone would stay green (it did, through
every failure of issue 18)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from shared.ingress import Message


@dataclass
class Progress:
    #: How long a batch may stay in hand, or a loop keep failing, or input wait with
    #: nothing handled, before the service reports itself stalled.
    stall_after_s: float
    busy_since: float | None = None
    last_done: float = field(default_factory=time.monotonic)
    #: The next offset to handle, per (topic, partition) this worker has handled.
    positions: dict[tuple[str, int], int] = field(default_factory=dict)
    #: Loops failing now, and since when.
    failing: dict[str, float] = field(default_factory=dict)

    def batch_started(self) -> None:
        self.busy_since = time.monotonic()

    def batch_done(self, messages: Iterable[Message]) -> None:
        self.busy_since = None
        self.last_done = time.monotonic()
        for m in messages:
            if m.partition is not None and m.offset is not None:
                tp = (m.topic, m.partition)
                self.positions[tp] = max(self.positions.get(tp, 0), m.offset + 1)

    def loop_ok(self, name: str) -> None:
        self.failing.pop(name, None)

    def loop_failed(self, name: str) -> None:
        self.failing.setdefault(name, time.monotonic())

    def waiting(self, highwaters: dict[tuple[str, int], int]) -> int:
        """Messages on the partitions this worker has handled that it has not yet."""
        return sum(
            max(0, end - self.positions[tp])
            for tp, end in highwaters.items()
            if tp in self.positions
        )

    def lag(
        self, highwaters: dict[tuple[str, int], int], committed: dict[tuple[str, int], int]
    ) -> dict[tuple[str, int], int]:
        """Messages not handled yet per assigned partition: from the next offset this
        worker would handle, else (nothing handled here yet) its group's committed one."""
        found = {}
        for tp, end in highwaters.items():
            start = self.positions.get(tp, committed.get(tp))
            if start is not None:
                found[tp] = max(0, end - start)
        return found

    def stalled(self, waiting: int = 0) -> list[str]:
        """Why the service is making no progress; empty when it is."""
        now, limit = time.monotonic(), self.stall_after_s
        found = []
        if self.busy_since is not None and now - self.busy_since > limit:
            found.append(f"a batch in hand for {now - self.busy_since:.0f}s")
        elif waiting and now - self.last_done > limit:
            found.append(
                f"{waiting} messages waiting, none handled for {now - self.last_done:.0f}s"
            )
        found += [
            f"{name} failing for {now - since:.0f}s"
            for name, since in sorted(self.failing.items())
            if now - since > limit
        ]
        return found
