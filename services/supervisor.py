"""``ntx run`` keeps its services running: one that dies (even ``kill -9``) is started
again with backoff, and the event is printed and logged. The broker and database are
never stopped because a service died (issue 18: they once were, and the memory broker
took 3,500 acknowledged requests with it)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

#: The first restart waits this long; each quick death doubles it, up to the longest.
FIRST_BACKOFF_S = 1.0
LONGEST_BACKOFF_S = 30.0
#: A service that ran this long before dying is restarted after the first backoff again.
STABLE_AFTER_S = 60.0


class Processes(Protocol):
    procs: dict
    log_dir: Path

    def start(self, name: str) -> object: ...


@dataclass
class Supervisor:
    processes: Processes
    say: Callable[[str], None] = print
    clock: Callable[[], float] = time.monotonic
    backoff: dict[str, float] = field(default_factory=dict)
    started: dict[str, float] = field(default_factory=dict)
    #: Services that died, and when they are due to start again.
    due: dict[str, float] = field(default_factory=dict)
    restarts: int = 0

    def watch(self, should_stop: Callable[[], bool], poll_s: float = 0.5) -> None:
        """Until ``should_stop()``: check, restart what is due, sleep."""
        while not should_stop():
            self.check()
            time.sleep(poll_s)

    def check(self) -> None:
        now = self.clock()
        for name, proc in list(self.processes.procs.items()):
            self.started.setdefault(name, now)
            if name in self.due:
                if now >= self.due[name]:
                    self._restart(name, now)
            elif proc.poll() is not None:
                self._died(name, proc.returncode, now)

    def _died(self, name: str, code: int | None, now: float) -> None:
        ran = now - self.started[name]
        delay = (
            FIRST_BACKOFF_S if ran >= STABLE_AFTER_S else self.backoff.get(name, FIRST_BACKOFF_S)
        )
        self.backoff[name] = min(delay * 2, LONGEST_BACKOFF_S)
        self.due[name] = now + delay
        self._event(name, f"exited with code {code} after {ran:.0f}s; restarting in {delay:g}s")

    def _restart(self, name: str, now: float) -> None:
        del self.due[name]
        self.processes.start(name)
        self.started[name] = now
        self.restarts += 1
        self._event(name, "restarted")

    def _event(self, name: str, what: str) -> None:
        self.say(f"ntx: {name} {what}")
        line = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": "warning",
            "service": name,
            "logger": "ntx.run",
            "msg": f"supervisor: {what}",
        }
        with open(self.processes.log_dir / f"{name}.log", "a") as log:
            log.write(json.dumps(line, separators=(",", ":")) + "\n")
